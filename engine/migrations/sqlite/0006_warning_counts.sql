-- Warnings counted per process, department, level and whether their case still runs, so that
-- the supervisor's counts cost the same however many warnings were ever raised.
CREATE INDEX warnings_by_case ON warnings (case_id);
CREATE INDEX warnings_by_flow ON warnings (flow, at);

CREATE TABLE warning_counts (
    flow       TEXT NOT NULL,
    department TEXT NOT NULL,
    level      TEXT NOT NULL,
    open       INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (flow, department, level, open)
) WITHOUT ROWID;
INSERT INTO warning_counts (flow, department, level, open, n)
    SELECT w.flow, w.department, w.level, c.status IN ('open', 'awaiting_supplement'), count(*)
    FROM warnings w JOIN cases c ON c.id = w.case_id
    GROUP BY 1, 2, 3, 4;

-- A warning is counted with its case's status as it is written (the case row is written first).
CREATE TRIGGER warnings_counted AFTER INSERT ON warnings BEGIN
    INSERT INTO warning_counts (flow, department, level, open, n)
        VALUES (new.flow, new.department, new.level,
                coalesce((SELECT status IN ('open', 'awaiting_supplement') FROM cases WHERE id = new.case_id), 0), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

-- A case that ends (or, never, reopens) moves its warnings between open and past.
CREATE TRIGGER cases_warnings_moved AFTER UPDATE OF status ON cases
    WHEN (old.status IN ('open', 'awaiting_supplement')) IS NOT (new.status IN ('open', 'awaiting_supplement')) BEGIN
    UPDATE warning_counts SET n = n - (
        SELECT count(*) FROM warnings w
        WHERE w.case_id = new.id AND w.flow = warning_counts.flow AND w.department = warning_counts.department
          AND w.level = warning_counts.level)
        WHERE open = (old.status IN ('open', 'awaiting_supplement'))
          AND (flow, department, level) IN (SELECT flow, department, level FROM warnings WHERE case_id = new.id);
    INSERT INTO warning_counts (flow, department, level, open, n)
        SELECT flow, department, level, new.status IN ('open', 'awaiting_supplement'), count(*)
        FROM warnings WHERE case_id = new.id GROUP BY flow, department, level
        ON CONFLICT DO UPDATE SET n = n + excluded.n;
END;
