//! A store chosen by its URL: `postgres://…` or `postgresql://…` opens a [`PgStore`],
//! anything else the SQLite file it names (a path or `sqlite://…`). What the CLI and the
//! server hold, so `--db` takes either.

use dsl::CompiledFlow;

use crate::case::Event;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::stalls::{rows, StallFilter};
use crate::store::{Append, QueuedTask, Store, StoreError, StoredCase, TokenRecord};

#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl AnyStore {
    /// Opens the store `url` names (see the module's documentation); a plain path is a SQLite
    /// file, created if missing.
    pub async fn open(url: &str) -> Result<AnyStore, StoreError> {
        if is_postgres(url) {
            Ok(AnyStore::Postgres(PgStore::open(url).await?))
        } else {
            Ok(AnyStore::Sqlite(SqliteStore::open(url).await?))
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }
}

impl From<SqliteStore> for AnyStore {
    fn from(store: SqliteStore) -> AnyStore {
        AnyStore::Sqlite(store)
    }
}

impl From<PgStore> for AnyStore {
    fn from(store: PgStore) -> AnyStore {
        AnyStore::Postgres(store)
    }
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call.await,
            AnyStore::Postgres($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn deploy(&self, flow: &CompiledFlow) -> Result<bool, StoreError> {
        delegate!(self, s => s.deploy(flow))
    }
    async fn flow(&self, version: &str) -> Result<Option<CompiledFlow>, StoreError> {
        delegate!(self, s => s.flow(version))
    }
    async fn latest_version(&self, name: &str) -> Result<Option<String>, StoreError> {
        delegate!(self, s => s.latest_version(name))
    }
    async fn latest_flow(&self, name: &str) -> Result<Option<CompiledFlow>, StoreError> {
        delegate!(self, s => s.latest_flow(name))
    }
    async fn deployed(&self) -> Result<Vec<(String, String)>, StoreError> {
        delegate!(self, s => s.deployed())
    }
    async fn case(&self, id: &str) -> Result<Option<StoredCase>, StoreError> {
        delegate!(self, s => s.case(id))
    }
    async fn append(&self, append: Append<'_>) -> Result<(), StoreError> {
        delegate!(self, s => s.append(append))
    }
    async fn idempotent(&self, key: &str) -> Result<Option<(String, String)>, StoreError> {
        delegate!(self, s => s.idempotent(key))
    }
    async fn history(&self, case_id: &str) -> Result<Vec<Event>, StoreError> {
        delegate!(self, s => s.history(case_id))
    }
    async fn events_after(&self, position: i64, limit: u32) -> Result<Vec<(i64, String, Event)>, StoreError> {
        delegate!(self, s => s.events_after(position, limit))
    }
    async fn history_until(&self, case_id: &str, position: i64) -> Result<Vec<Event>, StoreError> {
        delegate!(self, s => s.history_until(case_id, position))
    }
    async fn feed_cursor(&self, name: &str) -> Result<i64, StoreError> {
        delegate!(self, s => s.feed_cursor(name))
    }
    async fn set_feed_cursor(&self, name: &str, position: i64) -> Result<(), StoreError> {
        delegate!(self, s => s.set_feed_cursor(name, position))
    }
    async fn tasks(&self, department: &str) -> Result<Vec<QueuedTask>, StoreError> {
        delegate!(self, s => s.tasks(department))
    }
    async fn add_token(&self, digest: &str, token: &TokenRecord) -> Result<(), StoreError> {
        delegate!(self, s => s.add_token(digest, token))
    }
    async fn token(&self, digest: &str) -> Result<Option<TokenRecord>, StoreError> {
        delegate!(self, s => s.token(digest))
    }
    async fn due_timers(&self, now: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        delegate!(self, s => s.due_timers(now, limit))
    }
    async fn waiting(&self, filter: &StallFilter) -> Result<Vec<rows::Waiting>, StoreError> {
        delegate!(self, s => s.waiting(filter))
    }
    async fn oldest_tasks(&self, filter: &StallFilter) -> Result<Vec<rows::OpenTask>, StoreError> {
        delegate!(self, s => s.oldest_tasks(filter))
    }
    async fn handled(&self, filter: &StallFilter) -> Result<Vec<rows::Handled>, StoreError> {
        delegate!(self, s => s.handled(filter))
    }
    async fn warnings(
        &self,
        filter: &StallFilter,
    ) -> Result<(Vec<rows::Warning>, Vec<(String, bool, u64)>), StoreError> {
        delegate!(self, s => s.warnings(filter))
    }
    async fn process_counts(&self, filter: &StallFilter) -> Result<Vec<rows::ProcessCount>, StoreError> {
        delegate!(self, s => s.process_counts(filter))
    }
}

/// `url` fit for a message or a log: a PostgreSQL URL's password replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(super::redacted("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redacted("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(super::redacted("x.db"), "x.db");
    }
}
