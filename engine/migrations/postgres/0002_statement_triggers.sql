-- The counters' triggers fire once per statement instead of once per row. A batch of commands
-- moves the same few counter rows (`waiting`, `process_counts`) many times: as row triggers,
-- each move was an upsert of its own, planned and run through PL/pgSQL, leaving a new version
-- of the row each time in one transaction — most of the database's time in the write path.
-- Over the statement's transition tables the moves are summed first: one upsert per counter
-- row per statement. The rules are 0001's, word for word where they can be.

DROP TRIGGER tasks_waiting_in ON tasks;
DROP TRIGGER tasks_waiting_out ON tasks;
DROP TRIGGER cases_counts_in ON cases;
DROP TRIGGER cases_counts_changed ON cases;
DROP TRIGGER warnings_counted ON warnings;
DROP FUNCTION tasks_waiting_in();
DROP FUNCTION tasks_waiting_out();
DROP FUNCTION cases_counts_in();
DROP FUNCTION cases_counts_changed();
DROP FUNCTION warnings_counted();
DROP FUNCTION count_process(TEXT, TEXT, TEXT, BIGINT);

CREATE FUNCTION tasks_waiting_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO waiting (flow, item, step, department, day, due, n)
        SELECT flow, item, step, department, day, coalesce(due, ''), count(*) FROM opened
        GROUP BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (flow, item, step, department, day, due) DO UPDATE SET n = waiting.n + excluded.n;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_waiting_in AFTER INSERT ON tasks REFERENCING NEW TABLE AS opened
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_waiting_in();

CREATE FUNCTION tasks_waiting_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE waiting SET n = waiting.n - closed.n
        FROM (SELECT flow, item, step, department, day, coalesce(due, '') AS due, count(*) AS n FROM closed_tasks
              GROUP BY 1, 2, 3, 4, 5, 6) closed
        WHERE waiting.flow = closed.flow AND waiting.item = closed.item AND waiting.step = closed.step
          AND waiting.department = closed.department AND waiting.day = closed.day AND waiting.due = closed.due;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_waiting_out AFTER DELETE ON tasks REFERENCING OLD TABLE AS closed_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_waiting_out();

CREATE FUNCTION cases_counts_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO process_counts (flow, metric, key, n)
        SELECT flow, 'status', status, count(*) FROM submitted GROUP BY flow, status
        ON CONFLICT (flow, metric, key) DO UPDATE SET n = process_counts.n + excluded.n;
    RETURN NULL;
END $$;
CREATE TRIGGER cases_counts_in AFTER INSERT ON cases REFERENCING NEW TABLE AS submitted
    FOR EACH STATEMENT EXECUTE FUNCTION cases_counts_in();

-- Status, trips at completion, rating and SLA (SQLite has four triggers), then the warnings of
-- the cases that ended (or, never, reopened) moved between open and past.
CREATE FUNCTION cases_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO process_counts (flow, metric, key, n)
        SELECT flow, metric, key, sum(delta) FROM (
            SELECT o.flow, 'status' AS metric, o.status AS key, -1 AS delta
                FROM old_cases o JOIN new_cases n ON n.id = o.id WHERE o.status IS DISTINCT FROM n.status
            UNION ALL SELECT n.flow, 'status', n.status, 1
                FROM old_cases o JOIN new_cases n ON n.id = o.id WHERE o.status IS DISTINCT FROM n.status
            UNION ALL SELECT n.flow, 'trips', n.trips::text, 1
                FROM old_cases o JOIN new_cases n ON n.id = o.id WHERE o.status IS DISTINCT FROM n.status AND n.status = 'completed'
            UNION ALL SELECT n.flow, 'rating', n.rating::text, 1
                FROM old_cases o JOIN new_cases n ON n.id = o.id WHERE n.rating IS NOT NULL AND o.rating IS NULL
            UNION ALL SELECT n.flow, 'sla_met', n.sla_met::text, 1
                FROM old_cases o JOIN new_cases n ON n.id = o.id WHERE n.sla_met IS NOT NULL AND o.sla_met IS NULL
        ) moves GROUP BY flow, metric, key
        ON CONFLICT (flow, metric, key) DO UPDATE SET n = process_counts.n + excluded.n;

    WITH moved AS (
        SELECT w.flow, w.department, w.level, m.was_open, m.is_open, count(*) AS n
        FROM (SELECT n.id, o.status IN ('open', 'awaiting_supplement') AS was_open,
                     n.status IN ('open', 'awaiting_supplement') AS is_open
              FROM old_cases o JOIN new_cases n ON n.id = o.id) m
        JOIN warnings w ON w.case_id = m.id
        WHERE m.was_open IS DISTINCT FROM m.is_open
        GROUP BY 1, 2, 3, 4, 5)
    UPDATE warning_counts c SET n = c.n - m.n
        FROM (SELECT flow, department, level, was_open, sum(n) AS n FROM moved GROUP BY 1, 2, 3, 4) m
        WHERE c.flow = m.flow AND c.department = m.department AND c.level = m.level AND c.open = m.was_open;
    WITH moved AS (
        SELECT w.flow, w.department, w.level, m.was_open, m.is_open, count(*) AS n
        FROM (SELECT n.id, o.status IN ('open', 'awaiting_supplement') AS was_open,
                     n.status IN ('open', 'awaiting_supplement') AS is_open
              FROM old_cases o JOIN new_cases n ON n.id = o.id) m
        JOIN warnings w ON w.case_id = m.id
        WHERE m.was_open IS DISTINCT FROM m.is_open
        GROUP BY 1, 2, 3, 4, 5)
    INSERT INTO warning_counts (flow, department, level, open, n)
        SELECT flow, department, level, is_open, sum(n) FROM moved GROUP BY 1, 2, 3, 4
        ON CONFLICT (flow, department, level, open) DO UPDATE SET n = warning_counts.n + excluded.n;
    RETURN NULL;
END $$;
CREATE TRIGGER cases_counts_changed AFTER UPDATE ON cases REFERENCING OLD TABLE AS old_cases NEW TABLE AS new_cases
    FOR EACH STATEMENT EXECUTE FUNCTION cases_counts_changed();

-- A warning is counted with its case's status as it is written (the case row is written first).
CREATE FUNCTION warnings_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO warning_counts (flow, department, level, open, n)
        SELECT w.flow, w.department, w.level, coalesce(c.status IN ('open', 'awaiting_supplement'), false), count(*)
        FROM raised w LEFT JOIN cases c ON c.id = w.case_id
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (flow, department, level, open) DO UPDATE SET n = warning_counts.n + excluded.n;
    RETURN NULL;
END $$;
CREATE TRIGGER warnings_counted AFTER INSERT ON warnings REFERENCING NEW TABLE AS raised
    FOR EACH STATEMENT EXECUTE FUNCTION warnings_counted();
