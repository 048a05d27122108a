-- The PostgreSQL store's schema: the same tables, columns and meaning as the SQLite migrations
-- 0001-0006 and 0050, in one step (there is no older PostgreSQL schema to carry forward).
-- Text that is ordered or compared by range (times, days, case ids, names) is `COLLATE "C"`:
-- byte order, as in SQLite, whatever the database's default collation.

-- Compiled flows, by content hash (the version id): deploying the same flow again is a no-op.
-- `seq` breaks ties between deployments in the same instant (SQLite's rowid).
CREATE TABLE flows (
    version     TEXT PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    body        TEXT NOT NULL,
    deployed_at TEXT COLLATE "C" NOT NULL,
    seq         BIGSERIAL NOT NULL
);
CREATE INDEX flows_by_name ON flows (name, deployed_at, seq);

-- The projection of each case's events, its version for optimistic concurrency, and its
-- figures for supervision: process, trips so far, 好差评, whether it finished within its SLA.
CREATE TABLE cases (
    id           TEXT COLLATE "C" PRIMARY KEY,
    flow_version TEXT NOT NULL REFERENCES flows (version),
    version      BIGINT NOT NULL,
    status       TEXT NOT NULL,
    state        TEXT NOT NULL,
    facts        TEXT NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL,
    flow         TEXT NOT NULL DEFAULT '',
    trips        BIGINT NOT NULL DEFAULT 0,
    rating       INTEGER,
    sla_met      INTEGER
);

-- The event log: numbered per case, and globally (position) for subscribers. Positions are
-- not a sequence: the writer assigns them from `feed_position` as the last statement of its
-- transaction, holding the feed lock, so they grow in commit order and a reader that has seen
-- position p has seen every position below it (see ARCHITECTURE.md, "The feed on PostgreSQL").
CREATE TABLE events (
    position BIGINT PRIMARY KEY,
    case_id  TEXT COLLATE "C" NOT NULL REFERENCES cases (id),
    seq      BIGINT NOT NULL,
    body     TEXT NOT NULL,
    UNIQUE (case_id, seq)
);
CREATE TABLE feed_position (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    n        BIGINT NOT NULL
);
INSERT INTO feed_position (only_row, n) VALUES (true, 0);

-- Open tasks, for each department's queue, with the (Beijing) day each opened and the last
-- working day of its limit.
CREATE TABLE tasks (
    case_id    TEXT COLLATE "C" NOT NULL REFERENCES cases (id),
    node       BIGINT NOT NULL,
    department TEXT NOT NULL,
    item       TEXT NOT NULL,
    step       TEXT NOT NULL,
    since      TEXT COLLATE "C" NOT NULL,
    flow       TEXT NOT NULL DEFAULT '',
    day        TEXT COLLATE "C" NOT NULL DEFAULT '',
    due        TEXT COLLATE "C",
    PRIMARY KEY (case_id, node)
);
CREATE INDEX tasks_by_department ON tasks (department, since);
CREATE INDEX tasks_by_since ON tasks (since);
CREATE INDEX tasks_by_flow ON tasks (flow, since);

-- Commands already carried out, by idempotency key: a retry gets the first answer.
CREATE TABLE idempotency (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    response     TEXT NOT NULL
);

-- Pending timers (warnings, 容缺 deadlines), derived from each case's state at every write:
-- an index for `tick`, never the source of truth. `claimed_until`: a node that picked the
-- row to fire it (the rows are rewritten when the case is written, which ends the claim; a
-- claim of a node that died runs out).
CREATE TABLE timers (
    case_id       TEXT COLLATE "C" NOT NULL REFERENCES cases (id),
    name          TEXT NOT NULL,
    due_at        TEXT COLLATE "C" NOT NULL,
    claimed_until TIMESTAMPTZ,
    PRIMARY KEY (case_id, name)
);
CREATE INDEX timers_by_due ON timers (due_at);

-- API tokens, stored as SHA-256 digests: a leaked database does not leak tokens. An officer
-- token may name the officer (转办).
CREATE TABLE tokens (
    digest     TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    department TEXT,
    created_at TEXT NOT NULL,
    officer    TEXT
);

-- Where each follower of the event feed (the OpenTelemetry exporter) has got to.
CREATE TABLE feed_cursors (
    name       TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Stall analysis (电子监察): what the supervisor's queries read, kept up to date by every
-- write in the same transaction as its events, so that no query scans the event log.

-- Open tasks counted per state, opening day and due day.
CREATE TABLE waiting (
    flow       TEXT NOT NULL,
    item       TEXT NOT NULL,
    step       TEXT NOT NULL,
    department TEXT NOT NULL,
    day        TEXT COLLATE "C" NOT NULL,
    due        TEXT COLLATE "C" NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (flow, item, step, department, day, due)
);

-- Tasks handled, as a histogram of working days per department and state.
CREATE TABLE handled (
    department TEXT NOT NULL,
    flow       TEXT NOT NULL,
    item       TEXT NOT NULL,
    step       TEXT NOT NULL,
    days       BIGINT NOT NULL,
    within     BOOLEAN NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (department, flow, item, step, days, within)
);

-- Warnings raised (yellow: a deadline is near; red: it passed).
CREATE TABLE warnings (
    id         BIGSERIAL PRIMARY KEY,
    case_id    TEXT COLLATE "C" NOT NULL REFERENCES cases (id),
    flow       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    level      TEXT NOT NULL,
    at         TEXT COLLATE "C" NOT NULL,
    department TEXT NOT NULL
);
CREATE INDEX warnings_by_at ON warnings (at);
CREATE INDEX warnings_by_case ON warnings (case_id);
CREATE INDEX warnings_by_flow ON warnings (flow, at);

-- Warnings counted per process, department, level and whether their case still runs.
CREATE TABLE warning_counts (
    flow       TEXT NOT NULL,
    department TEXT NOT NULL,
    level      TEXT NOT NULL,
    open       BOOLEAN NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (flow, department, level, open)
);

-- Counters per process: cases by status, completed cases by trips, ratings, SLA kept or not
-- (keys as text: a status, a number of trips, a rating, 1 or 0).
CREATE TABLE process_counts (
    flow   TEXT NOT NULL,
    metric TEXT NOT NULL,
    key    TEXT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (flow, metric, key)
);

-- The counters are kept by row triggers, as in SQLite: the same rules in the same words, so the
-- two stores cannot drift apart, and the write path sends the same statements to both.

CREATE FUNCTION count_process(flow TEXT, metric TEXT, key TEXT, delta BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO process_counts (flow, metric, key, n) VALUES (flow, metric, key, delta)
        ON CONFLICT (flow, metric, key) DO UPDATE SET n = process_counts.n + excluded.n;
$$;

CREATE FUNCTION tasks_waiting_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO waiting (flow, item, step, department, day, due, n)
        VALUES (NEW.flow, NEW.item, NEW.step, NEW.department, NEW.day, coalesce(NEW.due, ''), 1)
        ON CONFLICT (flow, item, step, department, day, due) DO UPDATE SET n = waiting.n + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_waiting_in AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_waiting_in();

CREATE FUNCTION tasks_waiting_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE waiting SET n = n - 1
        WHERE flow = OLD.flow AND item = OLD.item AND step = OLD.step AND department = OLD.department
          AND day = OLD.day AND due = coalesce(OLD.due, '');
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_waiting_out AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_waiting_out();

CREATE FUNCTION cases_counts_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count_process(NEW.flow, 'status', NEW.status, 1);
    RETURN NULL;
END $$;
CREATE TRIGGER cases_counts_in AFTER INSERT ON cases FOR EACH ROW EXECUTE FUNCTION cases_counts_in();

-- Status, trips at completion, rating and SLA as one trigger of the update (SQLite has four).
CREATE FUNCTION cases_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_open BOOLEAN := OLD.status IN ('open', 'awaiting_supplement');
    is_open  BOOLEAN := NEW.status IN ('open', 'awaiting_supplement');
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status THEN
        PERFORM count_process(OLD.flow, 'status', OLD.status, -1);
        PERFORM count_process(NEW.flow, 'status', NEW.status, 1);
        IF NEW.status = 'completed' THEN
            PERFORM count_process(NEW.flow, 'trips', NEW.trips::text, 1);
        END IF;
    END IF;
    IF NEW.rating IS NOT NULL AND OLD.rating IS NULL THEN
        PERFORM count_process(NEW.flow, 'rating', NEW.rating::text, 1);
    END IF;
    IF NEW.sla_met IS NOT NULL AND OLD.sla_met IS NULL THEN
        PERFORM count_process(NEW.flow, 'sla_met', NEW.sla_met::text, 1);
    END IF;
    -- A case that ends (or, never, reopens) moves its warnings between open and past.
    IF was_open IS DISTINCT FROM is_open THEN
        UPDATE warning_counts c SET n = c.n - w.n
            FROM (SELECT flow, department, level, count(*) AS n FROM warnings WHERE case_id = NEW.id
                  GROUP BY flow, department, level) w
            WHERE c.flow = w.flow AND c.department = w.department AND c.level = w.level AND c.open = was_open;
        INSERT INTO warning_counts (flow, department, level, open, n)
            SELECT flow, department, level, is_open, count(*) FROM warnings WHERE case_id = NEW.id
            GROUP BY flow, department, level
            ON CONFLICT (flow, department, level, open) DO UPDATE SET n = warning_counts.n + excluded.n;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER cases_counts_changed AFTER UPDATE ON cases FOR EACH ROW EXECUTE FUNCTION cases_counts_changed();

-- A warning is counted with its case's status as it is written (the case row is written first).
CREATE FUNCTION warnings_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO warning_counts (flow, department, level, open, n)
        VALUES (NEW.flow, NEW.department, NEW.level,
                coalesce((SELECT status IN ('open', 'awaiting_supplement') FROM cases WHERE id = NEW.case_id), false), 1)
        ON CONFLICT (flow, department, level, open) DO UPDATE SET n = warning_counts.n + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER warnings_counted AFTER INSERT ON warnings FOR EACH ROW EXECUTE FUNCTION warnings_counted();
