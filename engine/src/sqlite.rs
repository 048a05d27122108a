//! The SQLite store: one file, WAL, migrations embedded. Writes take the write lock at once
//! (`BEGIN IMMEDIATE`) so that a transaction never fails half-way on a lock upgrade.

use std::str::FromStr;
use std::time::Duration;

use dsl::CompiledFlow;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};
use tokio::sync::{mpsc, oneshot};

use crate::case::{CaseState, Event};
use crate::stalls::{rows, StallFilter};
use crate::store::{Append, QueuedTask, Store, StoreError, StoredCase, TokenRecord};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Reads go through a pool; every write goes through one writer task that commits the writes
/// of concurrent commands together (group commit): one fsync for many commands, each still
/// checked and applied on its own (a savepoint each) and answered only after the commit.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<(Write, oneshot::Sender<Result<(), StoreError>>)>,
}

/// Most writes committed together.
const MAX_BATCH: usize = 256;

/// One command's write, ready for SQL.
#[derive(Debug)]
pub(crate) struct Write {
    pub(crate) case_id: String,
    pub(crate) flow_version: String,
    pub(crate) version: i64,
    pub(crate) expected_version: i64,
    pub(crate) status: String,
    pub(crate) state: String,
    pub(crate) facts: Option<String>,
    pub(crate) updated_at: String,
    pub(crate) events: Vec<String>,
    pub(crate) tasks: Vec<TaskRow>,
    pub(crate) timers: Vec<(String, String)>,
    pub(crate) idempotency: Option<(String, String, String)>,
    pub(crate) flow: String,
    pub(crate) trips: i64,
    pub(crate) rating: Option<u8>,
    pub(crate) sla_met: Option<bool>,
    pub(crate) handled: Vec<(String, String, String, i64, bool)>,
    pub(crate) warnings: Vec<(String, String, String, String)>,
}

/// An open task: node, department, item, step, since, and for supervision the day it opened
/// and its due day.
pub(crate) type TaskRow = (i64, String, String, String, String, String, Option<String>);

/// What identifies a task row as unchanged: its case, node, opening and due day, joined as the
/// SQL in `apply_together` joins the columns.
pub(crate) fn task_key(case_id: &str, (node, _, _, _, since, _, due): &TaskRow) -> String {
    format!("{case_id}\u{1f}{node}\u{1f}{since}\u{1f}{}", due.as_deref().unwrap_or(""))
}

impl Write {
    pub(crate) fn prepare(append: &Append<'_>) -> Result<Write, StoreError> {
        let state = append.state;
        let status = serde_json::to_value(state.status).map_err(corrupt)?;
        Ok(Write {
            case_id: state.id.clone(),
            flow_version: state.version_id.clone(),
            version: state.version as i64,
            expected_version: append.expected_version as i64,
            status: status.as_str().unwrap_or_default().to_string(),
            state: serde_json::to_string(state).map_err(corrupt)?,
            facts: if append.expected_version == 0 {
                Some(serde_json::to_string(append.facts.unwrap_or(&serde_json::Value::Null)).map_err(corrupt)?)
            } else {
                None
            },
            updated_at: state.updated_at.clone(),
            events: append.events.iter().map(serde_json::to_string).collect::<Result<_, _>>().map_err(corrupt)?,
            tasks: state
                .tasks
                .iter()
                .map(|(node, t)| {
                    let clock = append.supervision.tasks.get(node);
                    (
                        i64::from(*node),
                        t.department.clone(),
                        t.item.clone(),
                        t.step.clone(),
                        t.since.clone(),
                        clock.map_or_else(|| crate::case::date_of(&t.since), |c| c.day.clone()),
                        clock.and_then(|c| c.due.clone()),
                    )
                })
                .collect(),
            timers: state.timers(),
            idempotency: append
                .idempotency
                .as_ref()
                .map(|i| (i.key.to_string(), i.request_hash.to_string(), i.response.to_string())),
            flow: state.flow.clone(),
            trips: i64::from(append.supervision.trips),
            rating: append.supervision.rating,
            sla_met: append.supervision.sla_met,
            handled: append
                .supervision
                .handled
                .iter()
                .map(|h| (h.department.clone(), h.item.clone(), h.step.clone(), h.days, h.within))
                .collect(),
            warnings: append
                .supervision
                .warnings
                .iter()
                .map(|w| {
                    let level = if w.level == crate::case::Level::Red { "red" } else { "yellow" };
                    (w.scope.clone(), level.to_string(), w.at.clone(), w.department.clone())
                })
                .collect(),
        })
    }
}

/// The writer: takes every write waiting, commits them in one transaction, answers each.
///
/// The writes of a batch that carry no idempotency key, one per case, are checked and applied
/// together: one statement for all their version checks, one for all their events, and so on
/// (a statement is a round trip to SQLite's thread, which is what limits throughput). The
/// others — a write with a key, which needs a savepoint, or a second write to a case already
/// in the batch — follow one by one, in the same transaction, and see the writes before them.
async fn writer(
    mut conn: SqliteConnection,
    mut queue: mpsc::Receiver<(Write, oneshot::Sender<Result<(), StoreError>>)>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let began = sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await;
        if let Err(e) = began {
            for (_, reply) in batch {
                let _ = reply.send(Err(db_ref(&e)));
            }
            continue;
        }
        let mut together = Vec::new();
        let mut one_by_one = Vec::new();
        let mut cases = std::collections::HashSet::new();
        for (index, (write, _)) in batch.iter().enumerate() {
            if write.idempotency.is_none() && cases.insert(write.case_id.as_str()) {
                together.push(index);
            } else {
                one_by_one.push(index);
            }
        }
        let mut results: Vec<Option<Result<(), StoreError>>> = (0..batch.len()).map(|_| None).collect();
        // A failure after a version check has written part of the batch: then nothing of it
        // may be committed.
        let mut poisoned = match apply_together(&mut conn, &batch, &together).await {
            Ok(outcomes) => {
                for (index, outcome) in together.iter().zip(outcomes) {
                    results[*index] = Some(outcome);
                }
                None
            }
            Err(error) => Some(error.to_string()),
        };
        for index in one_by_one {
            if poisoned.is_some() {
                break;
            }
            let write = &batch[index].0;
            let guarded = write.idempotency.is_some();
            if guarded {
                let _ = sqlx::query("SAVEPOINT one").execute(&mut conn).await;
            }
            let result = apply_one(&mut conn, &batch, index).await;
            if guarded {
                if result.is_err() {
                    let _ = sqlx::query("ROLLBACK TO one").execute(&mut conn).await;
                }
                let _ = sqlx::query("RELEASE one").execute(&mut conn).await;
            }
            if let (false, Err(error @ StoreError::Database(_))) = (guarded, &result) {
                poisoned = Some(error.to_string());
            }
            results[index] = Some(result);
        }
        if let Some(reason) = poisoned {
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Database(reason.clone())));
            }
            continue;
        }
        match sqlx::query("COMMIT").execute(&mut conn).await {
            Ok(_) => {
                for ((_, reply), result) in batch.into_iter().zip(results) {
                    let _ = reply.send(result.unwrap_or(Err(StoreError::Database("not written".into()))));
                }
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                for (_, reply) in batch {
                    let _ = reply.send(Err(db_ref(&e)));
                }
            }
        }
    }
}

/// Checks and applies one write, and records its idempotency key: a key taken meanwhile
/// refuses it (the caller runs it in a savepoint, so the refusal leaves nothing behind).
async fn apply_one(
    conn: &mut SqliteConnection,
    batch: &[(Write, oneshot::Sender<Result<(), StoreError>>)],
    index: usize,
) -> Result<(), StoreError> {
    apply_together(conn, batch, &[index]).await?.pop().unwrap_or(Ok(()))?;
    let Some((key, hash, response)) = &batch[index].0.idempotency else { return Ok(()) };
    let inserted = sqlx::query("INSERT OR IGNORE INTO idempotency (key, request_hash, response) VALUES (?, ?, ?)")
        .bind(key)
        .bind(hash)
        .bind(response)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if inserted.rows_affected() != 1 {
        return Err(StoreError::KeyReused);
    }
    Ok(())
}

/// Checks and applies the writes at `indices` (one per case) with one
/// statement per table: each write's outcome (a failed version check writes nothing), or a
/// database error that poisons the batch.
async fn apply_together(
    conn: &mut SqliteConnection,
    batch: &[(Write, oneshot::Sender<Result<(), StoreError>>)],
    indices: &[usize],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    if indices.is_empty() {
        return Ok(Vec::new());
    }
    let writes: Vec<&Write> = indices.iter().map(|&i| &batch[i].0).collect();
    // 1. The version checks: new cases inserted unless they exist, others updated at their
    //    expected version. RETURNING says which went through.
    let new: Vec<_> = writes
        .iter()
        .filter(|w| w.expected_version == 0)
        .map(|w| {
            (
                &w.case_id,
                &w.flow_version,
                w.version,
                &w.status,
                &w.state,
                w.facts.as_deref().unwrap_or("null"),
                &w.updated_at,
                &w.flow,
                w.trips,
                w.rating,
                w.sla_met,
            )
        })
        .collect();
    let mut written = std::collections::HashSet::new();
    if !new.is_empty() {
        let rows = sqlx::query(
            "INSERT INTO cases (id, flow_version, version, status, state, facts, updated_at, flow, trips, rating, \
             sla_met) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
             value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10 \
             FROM json_each(?) WHERE true ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(json(&new)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        written.extend(rows.iter().map(|r| r.get::<String, _>(0)));
    }
    let updated: Vec<_> = writes
        .iter()
        .filter(|w| w.expected_version > 0)
        .map(|w| {
            (
                &w.case_id,
                w.expected_version,
                w.version,
                &w.status,
                &w.state,
                &w.updated_at,
                w.trips,
                w.rating,
                w.sla_met,
            )
        })
        .collect();
    if !updated.is_empty() {
        let rows = sqlx::query(
            "UPDATE cases SET version = u.value ->> 2, status = u.value ->> 3, state = u.value ->> 4, \
             updated_at = u.value ->> 5, trips = cases.trips + (u.value ->> 6), \
             rating = coalesce(u.value ->> 7, cases.rating), sla_met = coalesce(u.value ->> 8, cases.sla_met) \
             FROM json_each(?) AS u \
             WHERE cases.id = u.value ->> 0 AND cases.version = u.value ->> 1 RETURNING cases.id",
        )
        .bind(json(&updated)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        written.extend(rows.iter().map(|r| r.get::<String, _>(0)));
    }
    let mut outcomes = Vec::with_capacity(writes.len());
    for write in &writes {
        if written.contains(&write.case_id) {
            outcomes.push(Ok(()));
            continue;
        }
        let actual: Option<i64> = sqlx::query_scalar("SELECT version FROM cases WHERE id = ?")
            .bind(&write.case_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        outcomes.push(Err(StoreError::Conflict {
            expected: write.expected_version as u64,
            actual: actual.unwrap_or(0) as u64,
        }));
    }
    let applied: Vec<&Write> = writes.iter().copied().filter(|w| written.contains(&w.case_id)).collect();
    if applied.is_empty() {
        return Ok(outcomes);
    }
    // 2. Events, task rows and timer rows of every write that went through.
    let events: Vec<(&str, i64, &str)> = applied
        .iter()
        .flat_map(|w| {
            w.events
                .iter()
                .enumerate()
                .map(|(i, body)| (w.case_id.as_str(), w.expected_version + i as i64 + 1, body.as_str()))
        })
        .collect();
    sqlx::query(
        "INSERT INTO events (case_id, seq, body) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
    )
    .bind(json(&events)?)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let existing: Vec<&str> = applied.iter().filter(|w| w.expected_version > 0).map(|w| w.case_id.as_str()).collect();
    if !existing.is_empty() {
        let ids = json(&existing)?;
        // Only the task rows that closed or changed go: each row deleted or inserted fires the
        // waiting counters' triggers, and most commands leave most of a case's tasks as they were.
        let kept: Vec<String> = applied
            .iter()
            .filter(|w| w.expected_version > 0)
            .flat_map(|w| w.tasks.iter().map(move |task| task_key(&w.case_id, task)))
            .collect();
        sqlx::query(
            "DELETE FROM tasks WHERE case_id IN (SELECT value FROM json_each(?)) \
             AND (case_id || char(31) || node || char(31) || since || char(31) || coalesce(due, '')) \
             NOT IN (SELECT value FROM json_each(?))",
        )
        .bind(&ids)
        .bind(json(&kept)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM timers WHERE case_id IN (SELECT value FROM json_each(?))")
            .bind(&ids)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    let tasks: Vec<_> = applied
        .iter()
        .flat_map(|w| {
            w.tasks.iter().map(move |(node, department, item, step, since, day, due)| {
                (&w.case_id, node, department, item, step, since, &w.flow, day, due)
            })
        })
        .collect();
    if !tasks.is_empty() {
        sqlx::query(
            "INSERT OR IGNORE INTO tasks (case_id, node, department, item, step, since, flow, day, due) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
             value ->> 7, value ->> 8 FROM json_each(?)",
        )
        .bind(json(&tasks)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    let timers: Vec<_> =
        applied.iter().flat_map(|w| w.timers.iter().map(move |(name, due)| (&w.case_id, name, due))).collect();
    if !timers.is_empty() {
        sqlx::query(
            "INSERT INTO timers (case_id, name, due_at) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
        )
        .bind(json(&timers)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    // 3. Supervision: tasks handled (a histogram) and warnings raised.
    let handled: Vec<_> = applied
        .iter()
        .flat_map(|w| {
            w.handled
                .iter()
                .map(move |(department, item, step, days, within)| (department, &w.flow, item, step, days, within))
        })
        .collect();
    if !handled.is_empty() {
        sqlx::query(
            "INSERT INTO handled (department, flow, item, step, days, within, n) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, 1 \
             FROM json_each(?) WHERE true ON CONFLICT DO UPDATE SET n = n + 1",
        )
        .bind(json(&handled)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    let warnings: Vec<_> = applied
        .iter()
        .flat_map(|w| {
            w.warnings
                .iter()
                .map(move |(scope, level, at, department)| (&w.case_id, &w.flow, scope, level, at, department))
        })
        .collect();
    if !warnings.is_empty() {
        sqlx::query(
            "INSERT INTO warnings (case_id, flow, scope, level, at, department) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?)",
        )
        .bind(json(&warnings)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(outcomes)
}

/// Rows of a bulk statement as one JSON text, read back with `json_each`.
fn json<T: serde::Serialize + ?Sized>(rows: &T) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(corrupt)
}

fn db_ref(error: &sqlx::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn db(error: sqlx::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

pub(crate) fn corrupt(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `url`, e.g. `sqlite://onetrip.db`, brings
    /// its schema up to date and starts the writer task (so it must run inside a Tokio runtime).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every acknowledged command survives a crash of the process and of the machine.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if url.contains(":memory:") {
            // The writer and the readers need one database: a file.
            return Err(StoreError::Database("an in-memory SQLite database cannot be shared: give a file".into()));
        }
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await.map_err(db)?;
        MIGRATIONS.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::VersionMissing(version) => StoreError::Database(format!(
                "the database's schema is newer than this binary: migration {version} was applied by a newer \
                 onetrip (this one knows migrations up to {}); upgrade onetrip",
                MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
            )),
            other => StoreError::Database(other.to_string()),
        })?;
        let conn = options.connect().await.map_err(db)?;
        let (writes, queue) = mpsc::channel(4 * MAX_BATCH);
        // The writer has a thread of its own: on the shared runtime every statement's answer
        // would wait in the queue behind the tasks deciding commands, and the batch with it.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database(format!("cannot start the writer: {e}")))?;
        std::thread::Builder::new()
            .name("onetrip-writer".into())
            .spawn(move || runtime.block_on(writer(conn, queue)))
            .map_err(|e| StoreError::Database(format!("cannot start the writer: {e}")))?;
        Ok(SqliteStore { pool, writer: writes })
    }
}

impl Store for SqliteStore {
    async fn deploy(&self, flow: &CompiledFlow) -> Result<bool, StoreError> {
        let body = serde_json::to_string(flow).map_err(corrupt)?;
        let now = chrono::Utc::now().to_rfc3339();
        let result = sqlx::query("INSERT OR IGNORE INTO flows (version, name, body, deployed_at) VALUES (?, ?, ?, ?)")
            .bind(&flow.version)
            .bind(&flow.name)
            .bind(body)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(result.rows_affected() == 1)
    }

    async fn flow(&self, version: &str) -> Result<Option<CompiledFlow>, StoreError> {
        let row = sqlx::query("SELECT body FROM flows WHERE version = ?")
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| serde_json::from_str(r.get::<&str, _>(0)).map_err(corrupt)).transpose()
    }

    async fn latest_version(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT version FROM flows WHERE name = ? ORDER BY deployed_at DESC, rowid DESC LIMIT 1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn latest_flow(&self, name: &str) -> Result<Option<CompiledFlow>, StoreError> {
        let row = sqlx::query("SELECT body FROM flows WHERE name = ? ORDER BY deployed_at DESC, rowid DESC LIMIT 1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| serde_json::from_str(r.get::<&str, _>(0)).map_err(corrupt)).transpose()
    }

    async fn deployed(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version FROM flows f WHERE rowid = \
             (SELECT rowid FROM flows WHERE name = f.name ORDER BY deployed_at DESC, rowid DESC LIMIT 1) ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn case(&self, id: &str) -> Result<Option<StoredCase>, StoreError> {
        let row = sqlx::query("SELECT state, facts FROM cases WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let state: CaseState = serde_json::from_str(row.get::<&str, _>(0)).map_err(corrupt)?;
        let facts = serde_json::from_str(row.get::<&str, _>(1)).map_err(corrupt)?;
        Ok(Some(StoredCase { state, facts }))
    }

    async fn append(&self, append: Append<'_>) -> Result<(), StoreError> {
        // Serialised here, on the caller's thread; the writer only runs SQL.
        let write = Write::prepare(&append)?;
        let (reply, answer) = oneshot::channel();
        self.writer.send((write, reply)).await.map_err(|_| StoreError::Database("the writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Database("the writer has stopped".into()))?
    }

    async fn idempotent(&self, key: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT request_hash, response FROM idempotency WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))))
    }

    async fn history(&self, case_id: &str) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query("SELECT body FROM events WHERE case_id = ? ORDER BY seq")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|r| serde_json::from_str(r.get::<&str, _>(0)).map_err(corrupt)).collect()
    }

    async fn events_after(&self, position: i64, limit: u32) -> Result<Vec<(i64, String, Event)>, StoreError> {
        let rows =
            sqlx::query("SELECT position, case_id, body FROM events WHERE position > ? ORDER BY position LIMIT ?")
                .bind(position)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.iter()
            .map(|r| {
                let event = serde_json::from_str(r.get::<&str, _>(2)).map_err(corrupt)?;
                Ok((r.get::<i64, _>(0), r.get::<String, _>(1), event))
            })
            .collect()
    }

    async fn history_until(&self, case_id: &str, position: i64) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query("SELECT body FROM events WHERE case_id = ? AND position <= ? ORDER BY seq")
            .bind(case_id)
            .bind(position)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|r| serde_json::from_str(r.get::<&str, _>(0)).map_err(corrupt)).collect()
    }

    async fn feed_cursor(&self, name: &str) -> Result<i64, StoreError> {
        let position: Option<i64> = sqlx::query_scalar("SELECT position FROM feed_cursors WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(position.unwrap_or(0))
    }

    async fn set_feed_cursor(&self, name: &str, position: i64) -> Result<(), StoreError> {
        // Through the pool, not the command writer: a follower never queues behind commands.
        sqlx::query(
            "INSERT INTO feed_cursors (name, position, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(position)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn add_token(&self, digest: &str, token: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO tokens (digest, role, department, officer, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(digest)
        .bind(&token.role)
        .bind(&token.department)
        .bind(&token.officer)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn token(&self, digest: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT role, department, officer FROM tokens WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| TokenRecord { role: r.get(0), department: r.get(1), officer: r.get(2) }))
    }

    async fn due_timers(&self, now: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT case_id, MIN(due_at) AS due FROM timers WHERE due_at <= ? GROUP BY case_id ORDER BY due LIMIT ?",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    async fn tasks(&self, department: &str) -> Result<Vec<QueuedTask>, StoreError> {
        let rows =
            sqlx::query("SELECT case_id, item, step, since FROM tasks WHERE department = ? ORDER BY since, case_id")
                .bind(department)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| QueuedTask { case_id: r.get(0), item: r.get(1), step: r.get(2), since: r.get(3) })
            .collect())
    }

    async fn waiting(&self, filter: &StallFilter) -> Result<Vec<rows::Waiting>, StoreError> {
        let (clause, binds) = filtered_states(filter, "flow", Some("department"));
        let sql = format!("SELECT flow, item, step, department, day, due, n FROM waiting WHERE n > 0{clause}");
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| rows::Waiting {
                flow: r.get(0),
                item: r.get(1),
                step: r.get(2),
                department: r.get(3),
                day: r.get(4),
                due: Some(r.get::<String, _>(5)).filter(|d| !d.is_empty()),
                count: r.get::<i64, _>(6).max(0) as u64,
            })
            .collect())
    }

    async fn oldest_tasks(&self, filter: &StallFilter) -> Result<Vec<rows::OpenTask>, StoreError> {
        let (clause, binds) = filtered_states(filter, "flow", Some("department"));
        let sql = format!(
            "SELECT case_id, flow, item, step, department, since, due FROM tasks WHERE true{clause} \
             ORDER BY since, case_id LIMIT {}",
            filter.limit()
        );
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| rows::OpenTask {
                case_id: r.get(0),
                flow: r.get(1),
                item: r.get(2),
                step: r.get(3),
                department: r.get(4),
                since: r.get(5),
                due: r.get(6),
            })
            .collect())
    }

    async fn handled(&self, filter: &StallFilter) -> Result<Vec<rows::Handled>, StoreError> {
        let (clause, binds) = filtered_states(filter, "flow", Some("department"));
        let sql = format!(
            "SELECT department, days, within, sum(n) FROM handled WHERE true{clause} GROUP BY department, days, within"
        );
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| rows::Handled {
                department: r.get(0),
                days: r.get(1),
                within: r.get::<i64, _>(2) != 0,
                count: r.get::<i64, _>(3).max(0) as u64,
            })
            .collect())
    }

    async fn warnings(
        &self,
        filter: &StallFilter,
    ) -> Result<(Vec<rows::Warning>, Vec<(String, bool, u64)>), StoreError> {
        let (clause, binds) = filtered(filter, "w.flow", Some("w.department"));
        let open = "c.status IN ('open', 'awaiting_supplement')";
        let sql = format!(
            "SELECT w.case_id, w.flow, w.scope, w.level, w.at, w.department, {open} \
             FROM warnings w JOIN cases c ON c.id = w.case_id WHERE true{clause} ORDER BY w.at DESC, w.id DESC LIMIT {}",
            filter.limit()
        );
        let latest = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(&self.pool).await.map_err(db)?;
        // The counts from the counters the writes keep (migration 0006), not from the warnings.
        let (clause, binds) = filtered(filter, "flow", Some("department"));
        let sql = format!("SELECT level, open, sum(n) FROM warning_counts WHERE n > 0{clause} GROUP BY 1, 2");
        let counts = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(&self.pool).await.map_err(db)?;
        Ok((
            latest
                .iter()
                .map(|r| rows::Warning {
                    case_id: r.get(0),
                    flow: r.get(1),
                    scope: r.get(2),
                    level: r.get(3),
                    at: r.get(4),
                    department: r.get(5),
                    open: r.get::<i64, _>(6) != 0,
                })
                .collect(),
            counts.iter().map(|r| (r.get(0), r.get::<i64, _>(1) != 0, r.get::<i64, _>(2).max(0) as u64)).collect(),
        ))
    }

    async fn process_counts(&self, filter: &StallFilter) -> Result<Vec<rows::ProcessCount>, StoreError> {
        let (clause, binds) = filtered(filter, "flow", None);
        let sql = format!("SELECT flow, metric, key, n FROM process_counts WHERE n > 0{clause}");
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| rows::ProcessCount {
                flow: r.get(0),
                metric: r.get(1),
                key: r.get(2),
                count: r.get::<i64, _>(3).max(0) as u64,
            })
            .collect())
    }
}

fn filtered(filter: &StallFilter, process: &str, department: Option<&str>) -> (String, Vec<String>) {
    crate::sql::stall_conditions(filter, process, department, false, |_| "?".to_string())
}

/// [`filtered`], and the item and step for the tables that have them.
fn filtered_states(filter: &StallFilter, process: &str, department: Option<&str>) -> (String, Vec<String>) {
    crate::sql::stall_conditions(filter, process, department, true, |_| "?".to_string())
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    binds: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    for value in binds {
        query = query.bind(value.as_str());
    }
    query
}
