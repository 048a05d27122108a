//! Persistence behind one trait: SQLite (`sqlite`) and PostgreSQL (`postgres`), which must
//! pass the same tests. Only implementations of [`Store`] know SQL.
//!
//! The invariant every implementation keeps: the events of a command, the case projection
//! they give, the task queue rows and the idempotency record are written in one transaction,
//! or not at all; and the write happens only if the case is still at the version the command
//! was decided on (optimistic concurrency), so two racing commands cannot both apply.

use std::future::Future;

use dsl::CompiledFlow;

use crate::case::{CaseState, Event};
use crate::stalls::{rows, StallFilter, Supervision};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the case changed meanwhile (version {actual}, expected {expected})")]
    Conflict { expected: u64, actual: u64 },
    #[error("an idempotency key was reused by another request")]
    KeyReused,
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(String),
}

/// A write: new events for a case, the projection after them, and the answer to remember.
pub struct Append<'a> {
    pub state: &'a CaseState,
    pub events: &'a [Event],
    /// The case version the events were decided on (0 for a new case).
    pub expected_version: u64,
    /// The case's facts (applicant data), written with a new case.
    pub facts: Option<&'a serde_json::Value>,
    pub idempotency: Option<Idempotency<'a>>,
    /// What the supervision tables gain (stall analysis), written in the same transaction.
    pub supervision: &'a Supervision,
}

pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
    pub response: &'a str,
}

/// A case as stored: its projection and its facts.
#[derive(Debug, Clone)]
pub struct StoredCase {
    pub state: CaseState,
    pub facts: serde_json::Value,
}

/// A task in a department's queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueuedTask {
    pub case_id: String,
    pub item: String,
    pub step: String,
    /// When the task was opened (RFC 3339).
    pub since: String,
}

/// Whom an API token stands for: a role, and for officers their department and, when known,
/// the officer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub role: String,
    pub department: Option<String>,
    pub officer: Option<String>,
}

pub trait Store: Send + Sync {
    /// Stores a compiled flow; `false` when that version was already there.
    fn deploy(&self, flow: &CompiledFlow) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn flow(&self, version: &str) -> impl Future<Output = Result<Option<CompiledFlow>, StoreError>> + Send;
    /// The version id of the latest deployment of the flow called `name`.
    fn latest_version(&self, name: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The latest deployed version of the flow called `name`.
    fn latest_flow(&self, name: &str) -> impl Future<Output = Result<Option<CompiledFlow>, StoreError>> + Send;
    /// Every flow deployed, by name: the latest version of each, ordered by name.
    fn deployed(&self) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    fn case(&self, id: &str) -> impl Future<Output = Result<Option<StoredCase>, StoreError>> + Send;
    fn append(&self, append: Append<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The remembered answer for an idempotency key: its request hash and response.
    fn idempotent(&self, key: &str) -> impl Future<Output = Result<Option<(String, String)>, StoreError>> + Send;
    fn history(&self, case_id: &str) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;
    /// Events of every case after a global position, oldest first: a subscriber's feed.
    fn events_after(
        &self,
        position: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(i64, String, Event)>, StoreError>> + Send;
    /// A case's events up to a global position of the feed, oldest first: its history as a
    /// subscriber at that position has seen it.
    fn history_until(
        &self,
        case_id: &str,
        position: i64,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;
    /// The position a named follower of the feed has stored (0 when none).
    fn feed_cursor(&self, name: &str) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Stores a named follower's position in the feed.
    fn set_feed_cursor(&self, name: &str, position: i64) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn tasks(&self, department: &str) -> impl Future<Output = Result<Vec<QueuedTask>, StoreError>> + Send;
    /// Stores an API token's digest with whom it stands for.
    fn add_token(&self, digest: &str, token: &TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whom a token digest stands for.
    fn token(&self, digest: &str) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;
    /// Cases with a timer due at or before `now` (RFC 3339), soonest first.
    fn due_timers(&self, now: &str, limit: u32) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    // Stall analysis: reads of the tables every write keeps (never of the event log).

    /// Open tasks counted per state, opening day and due day.
    fn waiting(&self, filter: &StallFilter) -> impl Future<Output = Result<Vec<rows::Waiting>, StoreError>> + Send;
    /// The `filter.limit()` open tasks that opened first.
    fn oldest_tasks(
        &self,
        filter: &StallFilter,
    ) -> impl Future<Output = Result<Vec<rows::OpenTask>, StoreError>> + Send;
    /// Tasks handled, counted per department, working days and limit kept.
    fn handled(&self, filter: &StallFilter) -> impl Future<Output = Result<Vec<rows::Handled>, StoreError>> + Send;
    /// The latest `filter.limit()` warnings, and counts by level and by whether the case runs.
    #[allow(clippy::type_complexity)]
    fn warnings(
        &self,
        filter: &StallFilter,
    ) -> impl Future<Output = Result<(Vec<rows::Warning>, Vec<(String, bool, u64)>), StoreError>> + Send;
    /// The counters of each process (cases by status, trips, ratings, SLA kept).
    fn process_counts(
        &self,
        filter: &StallFilter,
    ) -> impl Future<Output = Result<Vec<rows::ProcessCount>, StoreError>> + Send;
}
