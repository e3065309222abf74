-- 0001_core: the reference tables (regions, departments, categories, rules,
-- calendar, tokens) and the petition → case → assignment → event chain.
-- Applied once by `fenboctl db migrate`, inside one transaction.

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- City → district → street/town → community → grid. Codes are hierarchical
-- strings (a child's code starts with its parent's), so a rule's region prefix
-- is a plain string prefix.
CREATE TABLE regions (
    code        text PRIMARY KEY,
    parent_code text REFERENCES regions (code),
    level       smallint NOT NULL CHECK (level BETWEEN 1 AND 5),
    name        text NOT NULL,
    geom        geometry(MultiPolygon, 4326)
);
CREATE INDEX regions_geom_idx ON regions USING gist (geom);

CREATE TABLE departments (
    code   text PRIMARY KEY CHECK (code ~ '^[a-z0-9_-]+$'),
    name   text NOT NULL,
    kind   text NOT NULL CHECK (kind IN ('bureau', 'street_office', 'utility', 'other')),
    active boolean NOT NULL DEFAULT true
);

-- Which office owns which region (属地管理): `@street` and `@community` rules
-- resolve through this table.
CREATE TABLE jurisdictions (
    department_code text NOT NULL REFERENCES departments (code) ON DELETE CASCADE,
    region_code     text NOT NULL REFERENCES regions (code) ON DELETE CASCADE,
    PRIMARY KEY (department_code, region_code)
);
CREATE INDEX jurisdictions_region_idx ON jurisdictions (region_code);

CREATE TABLE categories (
    code        text PRIMARY KEY,
    parent_code text REFERENCES categories (code),
    name        text NOT NULL
);

-- Routing rules (派单规则): the first enabled rule by (priority, id) whose
-- conditions all hold wins. NULL/empty conditions match anything.
CREATE TABLE route_rules (
    id                 serial PRIMARY KEY,
    priority           integer NOT NULL,
    name               text NOT NULL,
    channel            text CHECK (channel IN ('hotline', 'miniapp', 'mailbox', 'open311')),
    category_prefix    text,
    region_prefix      text,
    keywords_any       text[] NOT NULL DEFAULT '{}',
    keywords_none      text[] NOT NULL DEFAULT '{}',
    time_from          time,
    time_to            time,
    urgency            text CHECK (urgency IN ('normal', 'urgent', 'emergency')),
    kind               text,
    action_department  text NOT NULL,  -- a department code, '@street' or '@community'
    assist_departments text[] NOT NULL DEFAULT '{}',
    set_urgency        text CHECK (set_urgency IN ('normal', 'urgent', 'emergency')),
    accept_hours       integer CHECK (accept_hours > 0),
    reply_workdays     integer CHECK (reply_workdays > 0),
    enabled            boolean NOT NULL DEFAULT true,
    note               text
);

-- Exceptions to the Monday–Friday week: public holidays that fall on a weekday
-- and make-up working days (调休) that fall on a weekend.
CREATE TABLE calendar_days (
    day  date PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name text NOT NULL DEFAULT ''
);

CREATE TABLE api_tokens (
    id              serial PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE,  -- sha256 of the token; the token itself is never stored
    role            text NOT NULL
                    CHECK (role IN ('hotline', 'miniapp', 'open311', 'mailbox', 'operator',
                                    'department', 'supervisor', 'admin')),
    department_code text REFERENCES departments (code),
    name            text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    CHECK ((role = 'department') = (department_code IS NOT NULL))
);

CREATE TABLE cases (
    id              bigserial PRIMARY KEY,
    status          text NOT NULL
                    CHECK (status IN ('manual', 'dispatched', 'accepted', 'replied', 'rated',
                                      'closed', 'returned', 'reopened')),
    department_code text REFERENCES departments (code),  -- NULL while in the manual queue
    rule_id         integer,
    category        text,
    region_code     text,
    urgency         text NOT NULL,
    kind            text NOT NULL,
    location        geometry(Point, 4326),
    accept_due      timestamptz,
    reply_due       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_department_idx ON cases (department_code, status);
CREATE INDEX cases_manual_idx ON cases (id) WHERE status = 'manual';

-- Every input as it arrived (raw) and as fenbo read it (normalised fields).
CREATE TABLE petitions (
    id           bigserial PRIMARY KEY,
    tracking_no  text NOT NULL UNIQUE,
    channel      text NOT NULL,
    idem_key     text NOT NULL,
    received_at  timestamptz NOT NULL,
    spooled_at   timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    caller_name  text,
    caller_phone text,
    content      text NOT NULL,
    content_norm text NOT NULL,
    category     text,
    address      text,
    location     geometry(Point, 4326),
    urgency      text NOT NULL,
    kind         text NOT NULL,
    callback     boolean NOT NULL DEFAULT false,
    region_code  text,
    case_id      bigint REFERENCES cases (id),
    raw          jsonb NOT NULL,
    UNIQUE (channel, idem_key)
);
CREATE INDEX petitions_case_idx ON petitions (case_id);

CREATE TABLE assignments (
    id              bigserial PRIMARY KEY,
    case_id         bigint NOT NULL REFERENCES cases (id),
    department_code text NOT NULL REFERENCES departments (code),
    role            text NOT NULL CHECK (role IN ('lead', 'assist')),
    rule_id         integer,
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    accept_due      timestamptz,
    reply_due       timestamptz,
    delivered_at    timestamptz,  -- when a worker handed it to the department's desk
    accepted_at     timestamptz,
    replied_at      timestamptz
);
CREATE INDEX assignments_case_idx ON assignments (case_id);
CREATE INDEX assignments_undelivered_idx ON assignments (id) WHERE delivered_at IS NULL;

-- Append-only history of every case: who did what, when.
CREATE TABLE case_events (
    id      bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES cases (id),
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    type    text NOT NULL,
    data    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX case_events_case_idx ON case_events (case_id, id);

CREATE TABLE ratings (
    id           bigserial PRIMARY KEY,
    case_id      bigint NOT NULL REFERENCES cases (id),
    petition_id  bigint REFERENCES petitions (id),
    resolved     boolean NOT NULL,
    satisfaction text NOT NULL
                 CHECK (satisfaction IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    comment      text,
    source       text NOT NULL,
    rated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ratings_case_idx ON ratings (case_id);

-- Any change to what routing reads wakes every dispatcher (LISTEN fenbo_rules),
-- which reloads its compiled rules without a restart.
CREATE FUNCTION fenbo_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fenbo_rules', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER route_rules_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON route_rules
    FOR EACH STATEMENT EXECUTE FUNCTION fenbo_rules_changed();
CREATE TRIGGER departments_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION fenbo_rules_changed();
CREATE TRIGGER jurisdictions_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jurisdictions
    FOR EACH STATEMENT EXECUTE FUNCTION fenbo_rules_changed();
CREATE TRIGGER calendar_days_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calendar_days
    FOR EACH STATEMENT EXECUTE FUNCTION fenbo_rules_changed();
