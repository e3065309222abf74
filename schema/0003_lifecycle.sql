-- 0003_lifecycle: what the case lifecycle needs beyond the core chain —
-- returns (退单) and extensions (延期) waiting for an operator, assignments
-- that a return or a manual assignment ended, and ratings the worker has
-- acted on. The statuses stay those of cases' CHECK (0001).

-- A department's return of a case (status 'returned' while pending). An
-- approved return keeps the department out of every later dispatch of the
-- case, whoever dispatches it.
CREATE TABLE case_returns (
    id              bigserial PRIMARY KEY,
    case_id         bigint NOT NULL REFERENCES cases (id),
    assignment_id   bigint REFERENCES assignments (id),
    department_code text NOT NULL REFERENCES departments (code),
    reason          text NOT NULL CHECK (btrim(reason) <> ''),
    requested_by    text NOT NULL,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by      text,
    decided_at      timestamptz,
    note            text,
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX case_returns_case_idx ON case_returns (case_id);
-- At most one return of a case waits at a time.
CREATE UNIQUE INDEX case_returns_pending_idx ON case_returns (case_id) WHERE status = 'pending';

-- A lead department's request for a later reply deadline. Asked only before
-- the deadline; approving it moves cases.reply_due and the lead
-- assignment's reply_due to `until`. A reply withdraws a pending request.
CREATE TABLE extensions (
    id              bigserial PRIMARY KEY,
    case_id         bigint NOT NULL REFERENCES cases (id),
    assignment_id   bigint REFERENCES assignments (id),
    department_code text NOT NULL REFERENCES departments (code),
    reason          text NOT NULL CHECK (btrim(reason) <> ''),
    previous_due    timestamptz NOT NULL,
    until           timestamptz NOT NULL CHECK (until > previous_due),
    requested_by    text NOT NULL,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    decided_by      text,
    decided_at      timestamptz,
    note            text,
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX extensions_case_idx ON extensions (case_id);
CREATE UNIQUE INDEX extensions_pending_idx ON extensions (case_id) WHERE status = 'pending';

-- An assignment whose round ended without its reply: the lead that
-- returned the case and the assisting parts of that round still open, or
-- the assisting parts still open when the lead replied for the case. It
-- stays as history; the department may still read the case, but acts on it
-- no more, and nothing is due from it (deadlines, delivery, reminders
-- should skip it).
ALTER TABLE assignments ADD COLUMN withdrawn_at timestamptz;
CREATE INDEX assignments_open_assist_idx ON assignments (case_id)
    WHERE role = 'assist' AND withdrawn_at IS NULL AND replied_at IS NULL;

-- When fenbo-worker applied a rating to its case (closed it, reopened it,
-- or found nothing to do). Ratings that intake records arrive with NULL;
-- the worker's ratings job takes each exactly once (FOR UPDATE SKIP LOCKED)
-- even with several workers. Ratings recorded by the callback desk are
-- applied in their own transaction and arrive processed.
ALTER TABLE ratings ADD COLUMN processed_at timestamptz;
CREATE INDEX ratings_unprocessed_idx ON ratings (id) WHERE processed_at IS NULL;
