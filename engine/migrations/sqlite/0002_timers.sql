-- Pending timers (warnings, 容缺 deadlines), derived from each case's state at every write:
-- an index for `tick`, never the source of truth.
CREATE TABLE timers (
    case_id TEXT NOT NULL REFERENCES cases (id),
    name    TEXT NOT NULL,
    due_at  TEXT NOT NULL,
    PRIMARY KEY (case_id, name)
);
CREATE INDEX timers_by_due ON timers (due_at);
