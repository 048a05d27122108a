//! The SQLite store: one file, WAL, migrations embedded. Writes take the write lock at once
//! (`BEGIN IMMEDIATE`) so that a transaction never fails half-way on a lock upgrade.

use std::str::FromStr;
use std::time::Duration;

use dsl::CompiledFlow;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row;

use crate::case::{CaseState, Event};
use crate::store::{Append, QueuedTask, Store, StoreError, StoredCase};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn db(error: sqlx::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn corrupt(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url`, e.g. `sqlite://onetrip.db` or
    /// `sqlite::memory:`, and brings its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every acknowledged command survives a crash of the process and of the machine.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // An in-memory database lives in one connection.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(options).await.map_err(db)?;
        MIGRATIONS.run(&pool).await.map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(SqliteStore { pool })
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

    async fn latest_flow(&self, name: &str) -> Result<Option<CompiledFlow>, StoreError> {
        let row = sqlx::query("SELECT body FROM flows WHERE name = ? ORDER BY deployed_at DESC, rowid DESC LIMIT 1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| serde_json::from_str(r.get::<&str, _>(0)).map_err(corrupt)).transpose()
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
        let state = append.state;
        let state_json = serde_json::to_string(state).map_err(corrupt)?;
        let status = serde_json::to_value(state.status).map_err(corrupt)?;
        let status = status.as_str().unwrap_or_default().to_string();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        if append.expected_version == 0 {
            let facts = serde_json::to_string(append.facts.unwrap_or(&serde_json::Value::Null)).map_err(corrupt)?;
            let inserted = sqlx::query(
                "INSERT OR IGNORE INTO cases (id, flow_version, version, status, state, facts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&state.id)
            .bind(&state.version_id)
            .bind(state.version as i64)
            .bind(&status)
            .bind(&state_json)
            .bind(facts)
            .bind(&state.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if inserted.rows_affected() != 1 {
                return Err(StoreError::Conflict { expected: 0, actual: 1 });
            }
        } else {
            let updated = sqlx::query(
                "UPDATE cases SET version = ?, status = ?, state = ?, updated_at = ? WHERE id = ? AND version = ?",
            )
            .bind(state.version as i64)
            .bind(&status)
            .bind(&state_json)
            .bind(&state.updated_at)
            .bind(&state.id)
            .bind(append.expected_version as i64)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if updated.rows_affected() != 1 {
                let actual: Option<i64> = sqlx::query_scalar("SELECT version FROM cases WHERE id = ?")
                    .bind(&state.id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                return Err(StoreError::Conflict {
                    expected: append.expected_version,
                    actual: actual.unwrap_or(0) as u64,
                });
            }
        }
        for (offset, event) in append.events.iter().enumerate() {
            let seq = append.expected_version + offset as u64 + 1;
            sqlx::query("INSERT INTO events (case_id, seq, body) VALUES (?, ?, ?)")
                .bind(&state.id)
                .bind(seq as i64)
                .bind(serde_json::to_string(event).map_err(corrupt)?)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        sqlx::query("DELETE FROM tasks WHERE case_id = ?").bind(&state.id).execute(&mut *tx).await.map_err(db)?;
        for (node, task) in &state.tasks {
            sqlx::query("INSERT INTO tasks (case_id, node, department, item, step, since) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(&state.id)
                .bind(*node as i64)
                .bind(&task.department)
                .bind(&task.item)
                .bind(&task.step)
                .bind(&task.since)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        sqlx::query("DELETE FROM timers WHERE case_id = ?").bind(&state.id).execute(&mut *tx).await.map_err(db)?;
        for (name, due_at) in state.timers() {
            sqlx::query("INSERT INTO timers (case_id, name, due_at) VALUES (?, ?, ?)")
                .bind(&state.id)
                .bind(name)
                .bind(due_at)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        if let Some(idempotency) = append.idempotency {
            let inserted =
                sqlx::query("INSERT OR IGNORE INTO idempotency (key, request_hash, response) VALUES (?, ?, ?)")
                    .bind(idempotency.key)
                    .bind(idempotency.request_hash)
                    .bind(idempotency.response)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            if inserted.rows_affected() != 1 {
                return Err(StoreError::KeyReused);
            }
        }
        tx.commit().await.map_err(db)
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

    async fn add_token(&self, digest: &str, role: &str, department: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("INSERT OR REPLACE INTO tokens (digest, role, department, created_at) VALUES (?, ?, ?, ?)")
            .bind(digest)
            .bind(role)
            .bind(department)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn token(&self, digest: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT role, department FROM tokens WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| (r.get::<String, _>(0), r.get::<Option<String>, _>(1))))
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
}
