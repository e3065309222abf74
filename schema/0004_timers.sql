-- 0004_timers: what fenbo-worker's periodic sweep needs to act exactly once —
-- the SLA timers (reminders, overdue, escalation 督办), the callback desk
-- (回访) and the hotspot alerts (未诉先办).
--
-- Each timer action is keyed by what it is about, and the key is a primary
-- or unique key here, so that a worker restarted after SIGKILL, or several
-- workers sweeping at once, cannot do an action twice: the second INSERT
-- finds the row and does nothing (ON CONFLICT DO NOTHING), and the case
-- event is appended only for the rows that were really inserted.
--
-- The indexes are those of the sweep's statements: most sweeps look only at
-- what fell due since the previous one (a recent window); a full sweep, at
-- start and every minute, walks the whole open set once with a keyset
-- cursor.

-- One row per SLA timer action done. Keyed by the deadline's value: when
-- the deadline moves (an extension, a reopened case), the new value gets its
-- own reminder, overdue event and escalation. The case's history tells of
-- it in a case_events row written by the same statement (its data names the
-- deadline and its due).
CREATE TABLE timer_actions (
    case_id bigint NOT NULL REFERENCES cases (id),
    action  text NOT NULL
            CHECK (action IN ('reminder_accept', 'reminder_reply', 'overdue_accept',
                              'overdue_reply', 'escalated_accept', 'escalated_reply')),
    due     timestamptz NOT NULL,
    done_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, action, due)
);

-- The cases still waiting for a deadline, in deadline order: the statuses
-- from which the lifecycle table (workers/lifecycle.c) allows signing for,
-- resp. signing for or replying. (Only an optimisation: the sweep asks the
-- table, and would merely lose the index if the two disagreed.)
CREATE INDEX cases_accept_due_open_idx ON cases (accept_due, id)
    WHERE status IN ('dispatched', 'reopened');
CREATE INDEX cases_reply_due_open_idx ON cases (reply_due, id)
    WHERE status IN ('dispatched', 'accepted', 'reopened');
-- A recent sweep also looks at the waiting cases changed since the last one
-- (a return rejected, a deadline moved into the past), whatever their
-- deadline.
CREATE INDEX cases_open_updated_idx ON cases (updated_at)
    WHERE status IN ('dispatched', 'accepted', 'reopened');

-- Callbacks (回访): one task per petition of a replied case and per reply
-- (a reopened case replied again gets a new round). Hotline petitions get a
-- 'phone' task for the operators; the residents of the other channels a
-- 'rating_request' (they rate through intake's rating endpoint). A task is
-- due at the start of the next working day after the reply; when no rating
-- has come by expires_at (callback_days working days later) the case is
-- closed as not rated.
CREATE TABLE callback_tasks (
    id               bigserial PRIMARY KEY,
    case_id          bigint NOT NULL REFERENCES cases (id),
    petition_id      bigint NOT NULL REFERENCES petitions (id),
    replied_event_id bigint NOT NULL REFERENCES case_events (id),
    channel          text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('phone', 'rating_request')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    due_at           timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL CHECK (expires_at >= due_at),
    sent_at          timestamptz,  -- a rating request: when it was issued
    -- Written by the callback desk (POST /api/v1/cases/{id}/callback) as well
    -- as by the sweep: calls tried, who finished the task, and how it ended —
    -- 'rated' (a rating arrived), 'not_rated' (expired, the case closed as
    -- not rated), 'closed' or 'superseded' (the case was closed, or replied
    -- to again, without this petition's rating), or what the desk records.
    attempts         integer NOT NULL DEFAULT 0,
    done_at          timestamptz,
    done_by          text,
    outcome          text,
    note             text,
    CHECK ((done_at IS NULL) = (outcome IS NULL)),
    UNIQUE (petition_id, replied_event_id)
);
CREATE INDEX callback_tasks_case_idx ON callback_tasks (case_id);
-- The operators' list: open tasks, due first.
CREATE INDEX callback_tasks_open_idx ON callback_tasks (due_at, id) WHERE done_at IS NULL;
-- Rating requests still to issue.
CREATE INDEX callback_tasks_unsent_idx ON callback_tasks (due_at, id)
    WHERE done_at IS NULL AND sent_at IS NULL AND kind = 'rating_request';
-- Open tasks by expiry: the cases to close as not rated.
CREATE INDEX callback_tasks_expiring_idx ON callback_tasks (expires_at, case_id)
    WHERE done_at IS NULL;
-- The replies and ratings of the last few seconds (a recent sweep), and the
-- replied cases (a full one).
CREATE INDEX case_events_replied_idx ON case_events (at) WHERE type = 'replied';
CREATE INDEX ratings_rated_at_idx ON ratings (rated_at);
CREATE INDEX cases_replied_idx ON cases (id) WHERE status = 'replied';

-- Hotspots (未诉先办): many petitions of one category in one community (a
-- grid counts towards its community) within a short window. An alert is a
-- burst: raised when `threshold` petitions not in any alert came within
-- `window_min` minutes, it then takes in every further petition of its
-- category and community that comes within the window of its last one, so a
-- lasting burst stays one alert that grows; after a quiet window, the next
-- burst is a new alert. first_petition_id makes the same alert computed by
-- two workers at once one row.
CREATE TABLE hotspot_alerts (
    id                bigserial PRIMARY KEY,
    category          text NOT NULL,
    region_code       text NOT NULL REFERENCES regions (code),
    department_code   text REFERENCES departments (code),  -- the street office (属地)
    first_petition_id bigint NOT NULL,
    petitions         integer NOT NULL,
    threshold         integer NOT NULL,
    window_min        integer NOT NULL,
    first_at          timestamptz NOT NULL,  -- received_at of its first petition
    last_at           timestamptz NOT NULL,  -- … and of its last
    alerted_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (category, region_code, first_petition_id)
);
CREATE INDEX hotspot_alerts_key_idx ON hotspot_alerts (category, region_code, last_at);
CREATE INDEX hotspot_alerts_alerted_idx ON hotspot_alerts (alerted_at);
CREATE INDEX hotspot_alerts_department_idx ON hotspot_alerts (department_code, alerted_at);

-- The petitions of each alert; a petition is in one alert at most.
CREATE TABLE hotspot_petitions (
    petition_id bigint PRIMARY KEY REFERENCES petitions (id),
    alert_id    bigint NOT NULL REFERENCES hotspot_alerts (id),
    added_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hotspot_petitions_alert_idx ON hotspot_petitions (alert_id);
-- The hotspot sweep counts recent petitions by time.
CREATE INDEX petitions_received_idx ON petitions (received_at);
