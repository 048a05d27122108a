-- API tokens, stored as SHA-256 digests: a leaked database does not leak tokens.
CREATE TABLE tokens (
    digest     TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    department TEXT,
    created_at TEXT NOT NULL
);
