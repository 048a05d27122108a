-- Stall analysis (电子监察): what the supervisor's queries read, kept up to date by every write
-- in the same transaction as its events, so that no query scans the event log.

-- A case's process, and its figures: trips so far, 好差评, whether it finished within its SLA.
ALTER TABLE cases ADD COLUMN flow TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN trips INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN rating INTEGER;
ALTER TABLE cases ADD COLUMN sla_met INTEGER;
UPDATE cases SET flow = (SELECT name FROM flows WHERE flows.version = cases.flow_version),
                 rating = json_extract(state, '$.rating');

-- An open task's process, the (Beijing) day it opened and the last working day of its limit.
ALTER TABLE tasks ADD COLUMN flow TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN day TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN due TEXT;
UPDATE tasks SET flow = (SELECT flow FROM cases WHERE cases.id = tasks.case_id),
                 day = date(since, '+8 hours');
CREATE INDEX tasks_by_since ON tasks (since);
CREATE INDEX tasks_by_flow ON tasks (flow, since);

-- Open tasks counted per state, opening day and due day: the per-state waiting times and the
-- overdue counts come from here, whatever the number of cases.
CREATE TABLE waiting (
    flow       TEXT NOT NULL,
    item       TEXT NOT NULL,
    step       TEXT NOT NULL,
    department TEXT NOT NULL,
    day        TEXT NOT NULL,
    due        TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (flow, item, step, department, day, due)
) WITHOUT ROWID;
INSERT INTO waiting (flow, item, step, department, day, due, n)
    SELECT flow, item, step, department, day, coalesce(due, ''), count(*) FROM tasks
    GROUP BY flow, item, step, department, day, coalesce(due, '');

CREATE TRIGGER tasks_waiting_in AFTER INSERT ON tasks BEGIN
    INSERT INTO waiting (flow, item, step, department, day, due, n)
        VALUES (new.flow, new.item, new.step, new.department, new.day, coalesce(new.due, ''), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER tasks_waiting_out AFTER DELETE ON tasks BEGIN
    UPDATE waiting SET n = n - 1
        WHERE flow = old.flow AND item = old.item AND step = old.step AND department = old.department
          AND day = old.day AND due = coalesce(old.due, '');
END;

-- Tasks handled, as a histogram of working days per department and state (a histogram, not
-- a row per task: the medians need counts only).
CREATE TABLE handled (
    department TEXT NOT NULL,
    flow       TEXT NOT NULL,
    item       TEXT NOT NULL,
    step       TEXT NOT NULL,
    days       INTEGER NOT NULL,
    within     INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (department, flow, item, step, days, within)
) WITHOUT ROWID;

-- Warnings raised (yellow: a deadline is near; red: it passed).
CREATE TABLE warnings (
    id         INTEGER PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases (id),
    flow       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    level      TEXT NOT NULL,
    at         TEXT NOT NULL,
    department TEXT NOT NULL
);
CREATE INDEX warnings_by_at ON warnings (at);

-- Counters per process: cases by status, completed cases by trips, ratings, SLA kept or not.
CREATE TABLE process_counts (
    flow   TEXT NOT NULL,
    metric TEXT NOT NULL,
    key    TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (flow, metric, key)
) WITHOUT ROWID;
INSERT INTO process_counts (flow, metric, key, n)
    SELECT flow, 'status', status, count(*) FROM cases GROUP BY flow, status;
INSERT INTO process_counts (flow, metric, key, n)
    SELECT flow, 'rating', rating, count(*) FROM cases WHERE rating IS NOT NULL GROUP BY flow, rating;

CREATE TRIGGER cases_counts_in AFTER INSERT ON cases BEGIN
    INSERT INTO process_counts (flow, metric, key, n) VALUES (new.flow, 'status', new.status, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER cases_counts_status AFTER UPDATE OF status ON cases WHEN old.status IS NOT new.status BEGIN
    UPDATE process_counts SET n = n - 1 WHERE flow = old.flow AND metric = 'status' AND key = old.status;
    INSERT INTO process_counts (flow, metric, key, n) VALUES (new.flow, 'status', new.status, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER cases_counts_trips AFTER UPDATE OF status ON cases
    WHEN new.status = 'completed' AND old.status IS NOT 'completed' BEGIN
    INSERT INTO process_counts (flow, metric, key, n) VALUES (new.flow, 'trips', new.trips, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER cases_counts_rating AFTER UPDATE OF rating ON cases
    WHEN new.rating IS NOT NULL AND old.rating IS NULL BEGIN
    INSERT INTO process_counts (flow, metric, key, n) VALUES (new.flow, 'rating', new.rating, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER cases_counts_sla AFTER UPDATE OF sla_met ON cases
    WHEN new.sla_met IS NOT NULL AND old.sla_met IS NULL BEGIN
    INSERT INTO process_counts (flow, metric, key, n) VALUES (new.flow, 'sla_met', new.sla_met, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
