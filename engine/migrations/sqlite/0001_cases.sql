-- Compiled flows, by content hash (the version id): deploying the same flow again is a no-op.
CREATE TABLE flows (
    version     TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    deployed_at TEXT NOT NULL
);
CREATE INDEX flows_by_name ON flows (name, deployed_at);

-- The projection of each case's events, and its version for optimistic concurrency.
CREATE TABLE cases (
    id           TEXT PRIMARY KEY,
    flow_version TEXT NOT NULL REFERENCES flows (version),
    version      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    state        TEXT NOT NULL,
    facts        TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- The event log: numbered per case, and globally (position) for subscribers.
CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id  TEXT NOT NULL REFERENCES cases (id),
    seq      INTEGER NOT NULL,
    body     TEXT NOT NULL,
    UNIQUE (case_id, seq)
);

-- Open tasks, for each department's queue.
CREATE TABLE tasks (
    case_id    TEXT NOT NULL REFERENCES cases (id),
    node       INTEGER NOT NULL,
    department TEXT NOT NULL,
    item       TEXT NOT NULL,
    step       TEXT NOT NULL,
    since      TEXT NOT NULL,
    PRIMARY KEY (case_id, node)
);
CREATE INDEX tasks_by_department ON tasks (department, since);

-- Commands already carried out, by idempotency key: a retry gets the first answer.
CREATE TABLE idempotency (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    response     TEXT NOT NULL
);
