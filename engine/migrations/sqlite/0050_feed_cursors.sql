-- Where each follower of the event feed (the OpenTelemetry exporter) has got to, so that it
-- resumes there after a restart. Numbered apart from the main sequence: independent of the
-- tables other branches add.
CREATE TABLE feed_cursors (
    name       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
