//! The PostgreSQL store: the same tables and invariants as the SQLite store (`sqlite`), for
//! several nodes sharing one database. Reads go through a pool; writes through one writer task
//! per store that commits the writes of concurrent commands together (group commit), with one
//! multi-row statement per table (`json_array_elements`, `unnest`).
//!
//! **The feed.** A sequence gives ids in allocation order, not commit order: a reader could pass
//! an id whose transaction commits later and never see it. So positions are not a sequence.
//! Every write transaction first takes the feed lock (`pg_advisory_xact_lock(FEED_LOCK)`), and
//! its last statement takes the next positions from the `feed_position` row; the lock is held
//! until the commit is visible, so positions are handed out in commit order, and a reader that
//! sees position p sees every position below it. Taking the lock first (not only around the
//! positions) also orders the counter rows every write updates (`waiting`, `process_counts`,
//! …): two nodes' batches never lock them in opposite orders, so they never deadlock.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use dsl::CompiledFlow;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Row};
use tokio::sync::{mpsc, oneshot};

use crate::case::{CaseState, Event};
use crate::sqlite::{corrupt, task_key, Write};
use crate::stalls::{rows, StallFilter};
use crate::store::{Append, QueuedTask, Store, StoreError, StoredCase, TokenRecord};

pub(crate) static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock every write transaction holds from its start to its commit.
const FEED_LOCK: i64 = 0x006f_6e65_7472_6970; // "onetrip"

/// Most writes committed together.
const MAX_BATCH: usize = 256;

/// How long a node's claim on due timers lasts (it ends sooner: when the case is written).
/// Only the work of a node that died waits this long; a claim that runs out while its node
/// is still firing costs nothing but a refused write (the version check), never a second fire.
const CLAIM_SECONDS: f64 = 10.0;

/// How long opening the database may take before `open` gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Queue = mpsc::Receiver<(Write, oneshot::Sender<Result<(), StoreError>>)>;

/// Reads through a pool; writes through one writer task that commits the writes of concurrent
/// commands together, each checked at its case version, answered only after the commit.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    writer: mpsc::Sender<(Write, oneshot::Sender<Result<(), StoreError>>)>,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`), brings its
    /// schema up to date (under sqlx's advisory lock, so nodes starting together are safe) and
    /// starts the writer. Fails within a few seconds when the database does not answer, and
    /// when its schema is newer than this binary. The URL may set the read pool's size and
    /// the statement timeout ([`Settings`]); its other parameters are sqlx's (`sslmode`, …).
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let (url, settings) = Settings::from_url(url)?;
        let mut options = PgConnectOptions::from_str(&url).map_err(db)?;
        options = options.options([("statement_timeout", &settings.statement_timeout)]);
        // One connection first, for its error: the pool's would only say it timed out.
        match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(probe)) => drop(probe),
            Ok(Err(e)) => return Err(StoreError::Database(format!("cannot connect to PostgreSQL: {e}"))),
            Err(_) => {
                return Err(StoreError::Database(format!(
                    "cannot connect to PostgreSQL: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate(&pool).await?;
        let (writes, queue) = mpsc::channel(4 * MAX_BATCH);
        // The writer has a thread and a runtime of its own, as the SQLite store's: its round
        // trips never wait behind the tasks deciding commands.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database(format!("cannot start the writer: {e}")))?;
        let (ready, started) = oneshot::channel();
        std::thread::Builder::new()
            .name("onetrip-pg-writer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
                        Ok(Ok(conn)) => {
                            let _ = ready.send(Ok(()));
                            writer(conn, options, queue).await;
                        }
                        Ok(Err(e)) => {
                            let _ = ready.send(Err(db(e)));
                        }
                        Err(_) => {
                            let _ =
                                ready.send(Err(StoreError::Database("cannot connect to PostgreSQL: timed out".into())));
                        }
                    }
                })
            })
            .map_err(|e| StoreError::Database(format!("cannot start the writer: {e}")))?;
        started.await.map_err(|_| StoreError::Database("the writer has stopped".into()))??;
        Ok(PgStore { pool, writer: writes })
    }
}

/// The settings onetrip reads from a PostgreSQL URL's query, before sqlx sees the rest:
/// `max_connections=N` (the read pool; default 8; the writer has one connection more) and
/// `statement_timeout=30s` (PostgreSQL's units: `ms`, `s`, `min`; a bare number is
/// milliseconds; `0` for none; default 60s), so a stuck query cannot hold a connection forever.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub max_connections: u32,
    /// As PostgreSQL takes it, checked.
    pub statement_timeout: String,
}

impl Settings {
    /// The URL without onetrip's parameters, and the settings they gave.
    pub fn from_url(url: &str) -> Result<(String, Settings), StoreError> {
        let mut settings = Settings { max_connections: 8, statement_timeout: "60s".into() };
        let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), settings)) };
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "max_connections" => {
                    settings.max_connections =
                        value.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                            StoreError::Database(format!(
                                "the database URL's max_connections `{value}` is not a number from 1 to 1000"
                            ))
                        })?;
                }
                "statement_timeout" => settings.statement_timeout = statement_timeout(value)?,
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
        Ok((url, settings))
    }
}

/// A statement timeout as PostgreSQL takes it: digits, then `ms`, `s`, `min`, `h` or nothing.
fn statement_timeout(value: &str) -> Result<String, StoreError> {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &value[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !["", "ms", "s", "min", "h"].contains(&unit)
    {
        return Err(StoreError::Database(format!(
            "the database URL's statement_timeout `{value}` is not a duration such as 500ms, 30s or 2min (0: none)"
        )));
    }
    Ok(value.to_string())
}

/// Applies the embedded migrations, refusing a database whose schema is newer than this binary.
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATIONS.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::VersionMissing(version) => StoreError::Database(format!(
            "the database's schema is newer than this binary: migration {version} was applied by a newer onetrip \
             (this one knows migrations up to {}); upgrade onetrip",
            MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
        )),
        other => StoreError::Database(format!("cannot migrate the database: {other}")),
    })
}

type Batch = [(Write, oneshot::Sender<Result<(), StoreError>>)];

/// The writer: takes every write waiting, commits them in one transaction, answers each.
async fn writer(mut conn: PgConnection, options: PgConnectOptions, mut queue: Queue) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let results = match write_batch(&mut conn, &batch).await {
            Ok(results) => results,
            Err(error) => {
                if sqlx::query("ROLLBACK").execute(&mut conn).await.is_err() {
                    // The connection is gone (the server restarted): the next batch gets a new one.
                    if let Ok(Ok(fresh)) = tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
                        conn = fresh;
                    }
                }
                let reason = error.to_string();
                (0..batch.len()).map(|_| Err(StoreError::Database(reason.clone()))).collect()
            }
        };
        for ((_, reply), result) in batch.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// One transaction for the batch: each write's outcome once committed, or an error that
/// leaves nothing of the batch behind.
async fn write_batch(conn: &mut PgConnection, batch: &Batch) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("BEGIN; SELECT pg_advisory_xact_lock({FEED_LOCK})")))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    // Writes without a key, one per case, together; the rest one by one in a savepoint each.
    let mut together = Vec::new();
    let mut one_by_one = Vec::new();
    let mut cases = HashSet::new();
    for (index, (write, _)) in batch.iter().enumerate() {
        if write.idempotency.is_none() && cases.insert(write.case_id.as_str()) {
            together.push(index);
        } else {
            one_by_one.push(index);
        }
    }
    let mut results: Vec<Result<(), StoreError>> =
        (0..batch.len()).map(|_| Err(StoreError::Database("not written".into()))).collect();
    // The writes applied, in the order their events go into the feed.
    let mut applied = Vec::new();
    for (index, outcome) in together.iter().zip(apply_together(conn, batch, &together).await?) {
        if outcome.is_ok() {
            applied.push(*index);
        }
        results[*index] = outcome;
    }
    for index in one_by_one {
        sqlx::query("SAVEPOINT one").execute(&mut *conn).await.map_err(db)?;
        let result = apply_one(conn, batch, index).await;
        match &result {
            Ok(()) => {
                applied.push(index);
                sqlx::query("RELEASE SAVEPOINT one").execute(&mut *conn).await.map_err(db)?;
            }
            // A database error aborts the whole transaction in PostgreSQL.
            Err(StoreError::Database(_)) => return Err(result.unwrap_err()),
            Err(_) => {
                sqlx::query("ROLLBACK TO SAVEPOINT one").execute(&mut *conn).await.map_err(db)?;
            }
        }
        results[index] = result;
    }
    // The events last, numbered from the feed counter while the feed lock is held.
    let mut case_ids = Vec::new();
    let mut seqs = Vec::new();
    let mut bodies = Vec::new();
    for index in applied {
        let write = &batch[index].0;
        for (i, body) in write.events.iter().enumerate() {
            case_ids.push(write.case_id.as_str());
            seqs.push(write.expected_version + i as i64 + 1);
            bodies.push(body.as_str());
        }
    }
    if !bodies.is_empty() {
        sqlx::query(
            "WITH p AS (UPDATE feed_position SET n = n + $4 RETURNING n - $4 AS base) \
             INSERT INTO events (position, case_id, seq, body) \
             SELECT p.base + e.i, e.case_id, e.seq, e.body \
             FROM p, unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS e(case_id, seq, body, i)",
        )
        .bind(&case_ids)
        .bind(&seqs)
        .bind(&bodies)
        .bind(bodies.len() as i64)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    sqlx::query("COMMIT").execute(&mut *conn).await.map_err(db)?;
    Ok(results)
}

/// Checks and applies one write, and records its idempotency key: a key taken meanwhile
/// refuses it (the caller runs it in a savepoint, so the refusal leaves nothing behind).
async fn apply_one(conn: &mut PgConnection, batch: &Batch, index: usize) -> Result<(), StoreError> {
    apply_together(conn, batch, &[index]).await?.pop().unwrap_or(Ok(()))?;
    let Some((key, hash, response)) = &batch[index].0.idempotency else { return Ok(()) };
    let inserted = sqlx::query(
        "INSERT INTO idempotency (key, request_hash, response) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
    )
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

/// Checks and applies the writes at `indices` (one per case) with one statement per table,
/// events aside (the caller writes those last): each write's outcome (a failed version check
/// writes nothing), or a database error that fails the batch.
async fn apply_together(
    conn: &mut PgConnection,
    batch: &Batch,
    indices: &[usize],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    if indices.is_empty() {
        return Ok(Vec::new());
    }
    let writes: Vec<&Write> = indices.iter().map(|&i| &batch[i].0).collect();
    // 1. The version checks: new cases inserted unless they exist, others updated at their
    //    expected version (a concurrent update of the same case makes this one wait, then
    //    find the version changed). RETURNING says which went through.
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
    let mut written = HashSet::new();
    if !new.is_empty() {
        let rows = sqlx::query(
            "INSERT INTO cases (id, flow_version, version, status, state, facts, updated_at, flow, trips, rating, \
             sla_met) SELECT v ->> 0, v ->> 1, (v ->> 2)::bigint, v ->> 3, v ->> 4, v ->> 5, v ->> 6, v ->> 7, \
             (v ->> 8)::bigint, (v ->> 9)::integer, ((v ->> 10)::boolean)::integer \
             FROM json_array_elements($1::json) AS e(v) ON CONFLICT (id) DO NOTHING RETURNING id",
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
            "UPDATE cases SET version = (u ->> 2)::bigint, status = u ->> 3, state = u ->> 4, \
             updated_at = u ->> 5, trips = cases.trips + (u ->> 6)::bigint, \
             rating = coalesce((u ->> 7)::integer, cases.rating), \
             sla_met = coalesce(((u ->> 8)::boolean)::integer, cases.sla_met) \
             FROM json_array_elements($1::json) AS e(u) \
             WHERE cases.id = u ->> 0 AND cases.version = (u ->> 1)::bigint RETURNING cases.id",
        )
        // Planned on each run, for the table as it is: a prepared statement's generic plan, made
        // while `cases` was small, went on joining by scanning it whole as it grew.
        .persistent(false)
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
        let actual: Option<i64> = sqlx::query_scalar("SELECT version FROM cases WHERE id = $1")
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
    // 2. Task rows and timer rows of every write that went through.
    let existing: Vec<&str> = applied.iter().filter(|w| w.expected_version > 0).map(|w| w.case_id.as_str()).collect();
    if !existing.is_empty() {
        // Only the task rows that closed or changed go (each fires the waiting counters).
        let kept: Vec<String> = applied
            .iter()
            .filter(|w| w.expected_version > 0)
            .flat_map(|w| w.tasks.iter().map(move |task| task_key(&w.case_id, task)))
            .collect();
        sqlx::query(
            "DELETE FROM tasks WHERE case_id = ANY($1::text[]) \
             AND NOT ((case_id || chr(31) || node || chr(31) || since || chr(31) || coalesce(due, '')) = ANY($2::text[]))",
        )
        .bind(&existing)
        .bind(&kept)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM timers WHERE case_id = ANY($1::text[])")
            .bind(&existing)
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
            "INSERT INTO tasks (case_id, node, department, item, step, since, flow, day, due) \
             SELECT v ->> 0, (v ->> 1)::bigint, v ->> 2, v ->> 3, v ->> 4, v ->> 5, v ->> 6, v ->> 7, v ->> 8 \
             FROM json_array_elements($1::json) AS e(v) ON CONFLICT (case_id, node) DO NOTHING",
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
            "INSERT INTO timers (case_id, name, due_at) SELECT v ->> 0, v ->> 1, v ->> 2 \
             FROM json_array_elements($1::json) AS e(v)",
        )
        .bind(json(&timers)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    // 3. Supervision: tasks handled (a histogram: rows summed first, since one statement may
    //    not update a row twice in PostgreSQL) and warnings raised.
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
             SELECT v ->> 0, v ->> 1, v ->> 2, v ->> 3, (v ->> 4)::bigint, (v ->> 5)::boolean, count(*) \
             FROM json_array_elements($1::json) AS e(v) GROUP BY 1, 2, 3, 4, 5, 6 \
             ON CONFLICT (department, flow, item, step, days, within) DO UPDATE SET n = handled.n + excluded.n",
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
             SELECT v ->> 0, v ->> 1, v ->> 2, v ->> 3, v ->> 4, v ->> 5 \
             FROM json_array_elements($1::json) WITH ORDINALITY AS e(v, i) ORDER BY i",
        )
        .bind(json(&warnings)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(outcomes)
}

/// Rows of a bulk statement as one JSON text, read back with `json_array_elements`.
fn json<T: serde::Serialize + ?Sized>(rows: &T) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(corrupt)
}

fn db(error: sqlx::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(corrupt)
}

impl Store for PgStore {
    async fn deploy(&self, flow: &CompiledFlow) -> Result<bool, StoreError> {
        let body = serde_json::to_string(flow).map_err(corrupt)?;
        let result = sqlx::query(
            "INSERT INTO flows (version, name, body, deployed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(&flow.version)
        .bind(&flow.name)
        .bind(body)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(result.rows_affected() == 1)
    }

    async fn flow(&self, version: &str) -> Result<Option<CompiledFlow>, StoreError> {
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM flows WHERE version = $1")
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        body.map(|b| parse(&b)).transpose()
    }

    async fn latest_version(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT version FROM flows WHERE name = $1 ORDER BY deployed_at DESC, seq DESC LIMIT 1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn latest_flow(&self, name: &str) -> Result<Option<CompiledFlow>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM flows WHERE name = $1 ORDER BY deployed_at DESC, seq DESC LIMIT 1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        body.map(|b| parse(&b)).transpose()
    }

    async fn deployed(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT ON (name) name, version FROM flows ORDER BY name, deployed_at DESC, seq DESC")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn case(&self, id: &str) -> Result<Option<StoredCase>, StoreError> {
        let row = sqlx::query("SELECT state, facts FROM cases WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let state: CaseState = parse(row.get::<&str, _>(0))?;
        let facts = parse(row.get::<&str, _>(1))?;
        Ok(Some(StoredCase { state, facts }))
    }

    async fn append(&self, append: Append<'_>) -> Result<(), StoreError> {
        let write = Write::prepare(&append)?;
        let (reply, answer) = oneshot::channel();
        self.writer.send((write, reply)).await.map_err(|_| StoreError::Database("the writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Database("the writer has stopped".into()))?
    }

    async fn idempotent(&self, key: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT request_hash, response FROM idempotency WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))))
    }

    async fn history(&self, case_id: &str) -> Result<Vec<Event>, StoreError> {
        let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM events WHERE case_id = $1 ORDER BY seq")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        bodies.iter().map(|b| parse(b)).collect()
    }

    async fn events_after(&self, position: i64, limit: u32) -> Result<Vec<(i64, String, Event)>, StoreError> {
        let rows =
            sqlx::query("SELECT position, case_id, body FROM events WHERE position > $1 ORDER BY position LIMIT $2")
                .bind(position)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.iter().map(|r| Ok((r.get::<i64, _>(0), r.get::<String, _>(1), parse(r.get::<&str, _>(2))?))).collect()
    }

    async fn history_until(&self, case_id: &str, position: i64) -> Result<Vec<Event>, StoreError> {
        let bodies: Vec<String> =
            sqlx::query_scalar("SELECT body FROM events WHERE case_id = $1 AND position <= $2 ORDER BY seq")
                .bind(case_id)
                .bind(position)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        bodies.iter().map(|b| parse(b)).collect()
    }

    async fn feed_cursor(&self, name: &str) -> Result<i64, StoreError> {
        let position: Option<i64> = sqlx::query_scalar("SELECT position FROM feed_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(position.unwrap_or(0))
    }

    async fn set_feed_cursor(&self, name: &str, position: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO feed_cursors (name, position, updated_at) VALUES ($1, $2, $3) \
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

    async fn tasks(&self, department: &str) -> Result<Vec<QueuedTask>, StoreError> {
        let rows =
            sqlx::query("SELECT case_id, item, step, since FROM tasks WHERE department = $1 ORDER BY since, case_id")
                .bind(department)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| QueuedTask { case_id: r.get(0), item: r.get(1), step: r.get(2), since: r.get(3) })
            .collect())
    }

    async fn add_token(&self, digest: &str, token: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (digest, role, department, officer, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (digest) DO UPDATE SET role = excluded.role, department = excluded.department, \
             officer = excluded.officer, created_at = excluded.created_at",
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
        let row = sqlx::query("SELECT role, department, officer FROM tokens WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| TokenRecord { role: r.get(0), department: r.get(1), officer: r.get(2) }))
    }

    /// Claims the due timer rows it returns (`FOR UPDATE SKIP LOCKED`, then `claimed_until`):
    /// another node's tick passes over them until the case is written or the claim runs out,
    /// so two nodes do not fire the same case's timers at once.
    async fn due_timers(&self, now: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "WITH picked AS ( \
                 SELECT case_id FROM timers \
                 WHERE due_at <= $1 AND (claimed_until IS NULL OR claimed_until < now()) \
                 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE timers SET claimed_until = now() + make_interval(secs => $3) \
             WHERE case_id IN (SELECT case_id FROM picked) AND due_at <= $1 \
             RETURNING case_id, due_at",
        )
        .bind(now)
        .bind(i64::from(limit))
        .bind(CLAIM_SECONDS)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut due: Vec<(String, String)> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
        due.sort();
        let mut seen = HashSet::new();
        Ok(due
            .into_iter()
            .map(|(_, case)| case)
            .filter(|case| seen.insert(case.clone()))
            .take(limit as usize)
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
            "SELECT department, days, within, sum(n)::bigint FROM handled WHERE true{clause} \
             GROUP BY department, days, within"
        );
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| rows::Handled {
                department: r.get(0),
                days: r.get(1),
                within: r.get(2),
                count: r.get::<i64, _>(3).max(0) as u64,
            })
            .collect())
    }

    async fn warnings(
        &self,
        filter: &StallFilter,
    ) -> Result<(Vec<rows::Warning>, Vec<(String, bool, u64)>), StoreError> {
        let (clause, binds) = filtered(filter, "w.flow", Some("w.department"));
        let sql = format!(
            "SELECT w.case_id, w.flow, w.scope, w.level, w.at, w.department, \
             c.status IN ('open', 'awaiting_supplement') \
             FROM warnings w JOIN cases c ON c.id = w.case_id WHERE true{clause} ORDER BY w.at DESC, w.id DESC LIMIT {}",
            filter.limit()
        );
        let latest = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(&self.pool).await.map_err(db)?;
        let (clause, binds) = filtered(filter, "flow", Some("department"));
        let sql = format!("SELECT level, open, sum(n)::bigint FROM warning_counts WHERE n > 0{clause} GROUP BY 1, 2");
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
                    open: r.get(6),
                })
                .collect(),
            counts.iter().map(|r| (r.get(0), r.get(1), r.get::<i64, _>(2).max(0) as u64)).collect(),
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
    crate::sql::stall_conditions(filter, process, department, false, |n| format!("${n}"))
}

/// [`filtered`], and the item and step for the tables that have them.
fn filtered_states(filter: &StallFilter, process: &str, department: Option<&str>) -> (String, Vec<String>) {
    crate::sql::stall_conditions(filter, process, department, true, |n| format!("${n}"))
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    binds: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for value in binds {
        query = query.bind(value.as_str());
    }
    query
}

#[cfg(test)]
mod tests {
    use super::Settings;

    #[test]
    fn onetrip_reads_its_settings_from_the_url_and_leaves_the_rest_to_sqlx() {
        let (url, settings) =
            Settings::from_url("postgres://u@h/db?sslmode=disable&max_connections=20&statement_timeout=5s").unwrap();
        assert_eq!(url, "postgres://u@h/db?sslmode=disable");
        assert_eq!(settings, Settings { max_connections: 20, statement_timeout: "5s".into() });
        let (url, settings) = Settings::from_url("postgres://u@h/db").unwrap();
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(settings, Settings { max_connections: 8, statement_timeout: "60s".into() });
        assert_eq!(Settings::from_url("postgres://h/d?statement_timeout=0").unwrap().0, "postgres://h/d");
        for bad in [
            "max_connections=0",
            "max_connections=x",
            "statement_timeout=5 s",
            "statement_timeout=s",
            "statement_timeout=5days",
        ] {
            let error = Settings::from_url(&format!("postgres://h/d?{bad}")).unwrap_err().to_string();
            assert!(error.contains(bad.split('=').next().unwrap()), "{bad}: {error}");
        }
    }
}
