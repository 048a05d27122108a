//! Shared by the engine's scenario tests (and the server's): an engine on a fresh database
//! with a flow deployed, and a clock the test moves. Every test runs on both backends: a
//! fresh SQLite file, and a fresh PostgreSQL database created on the server named by
//! `ONETRIP_TEST_POSTGRES_URL` and dropped when the test is done ([`conformance!`]).

// Each test file uses a different part of this module.
#![allow(dead_code, unused_macros)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use calendar::Calendar;
use chrono::{DateTime, Utc};
use engine::{AnyStore, Engine, ManualClock};

/// Which store a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The server's URL (any database on it: each test makes its own).
    Postgres(String),
}

pub const POSTGRES_URL: &str = "ONETRIP_TEST_POSTGRES_URL";
pub const SKIP_POSTGRES: &str = "ONETRIP_SKIP_POSTGRES";

impl Backend {
    /// The PostgreSQL backend, from `ONETRIP_TEST_POSTGRES_URL`. Without it the test fails,
    /// unless `ONETRIP_SKIP_POSTGRES=1` says to skip it (then `None`): a PostgreSQL test never
    /// passes without having run.
    pub fn postgres() -> Option<Backend> {
        match std::env::var(POSTGRES_URL) {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ if std::env::var(SKIP_POSTGRES).is_ok_and(|v| v == "1") => {
                eprintln!("skipped: {SKIP_POSTGRES}=1 (the PostgreSQL half of the conformance suite did not run)");
                None
            }
            _ => panic!(
                "the PostgreSQL half of the conformance suite needs a server: set {POSTGRES_URL} \
                 (e.g. postgres://postgres@127.0.0.1:5432/postgres; scripts/test does), \
                 or {SKIP_POSTGRES}=1 to skip it"
            ),
        }
    }
}

/// Runs each named `async fn(Backend)` as two tests, `name::sqlite` and `name::postgres`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::support::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(backend) = super::support::Backend::postgres() {
                    super::$name(backend).await
                }
            }
        }
    )*};
}

/// A database made for one test: the SQLite file's URL, or a PostgreSQL database dropped
/// when the last clone of this is dropped (also when the test fails).
pub struct Database {
    pub url: String,
    /// The PostgreSQL server's URL and the database's name.
    postgres: Option<(String, String)>,
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else { return };
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = connect(&server).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                }
            })
        })
        .join();
    }
}

async fn connect(server: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    sqlx::postgres::PgConnectOptions::from_str(server)?.connect().await
}

/// A fresh database on `backend`: `name` is the SQLite file's; PostgreSQL databases are
/// `onetrip_test_<pid>_<n>`.
pub async fn fresh(backend: &Backend, name: &str) -> Arc<Database> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    match backend {
        Backend::Sqlite => Arc::new(Database { url: fresh_db(name), postgres: None }),
        Backend::Postgres(server) => {
            let db = format!("onetrip_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            let mut conn =
                connect(server).await.unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL}={server}: {e}"));
            for sql in [format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"), format!("CREATE DATABASE {db}")] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create the database {db} on {server}: {e}"));
            }
            let url = with_database(server, &db);
            Arc::new(Database { url, postgres: Some((server.clone(), db)) })
        }
    }
}

/// `url` naming the database `db` instead of its own.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

pub struct Setup {
    pub engine: Engine<AnyStore>,
    pub clock: Arc<ManualClock>,
    pub url: String,
    /// Keeps the database while the test may open it again (clone it to outlive `Setup`).
    pub db: Arc<Database>,
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("time").with_timezone(&Utc)
}

pub fn fresh_db(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("onetrip-test-{}-{name}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    format!("sqlite://{}", path.display())
}

pub async fn engine_at(url: &str, clock: Arc<ManualClock>) -> Engine<AnyStore> {
    let store = AnyStore::open(url).await.expect("store opens");
    Engine::new(store, Arc::new(Calendar::official()), clock)
}

/// An engine on a fresh database of `backend` with `process` of `source` deployed, its clock
/// at `now`.
pub async fn setup(backend: Backend, name: &str, source: &str, process: &str, now: &str) -> Setup {
    let db = fresh(&backend, name).await;
    let url = db.url.clone();
    let clock = Arc::new(ManualClock::new(at(now)));
    let engine = engine_at(&url, Arc::clone(&clock)).await;
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("flow.flow", source, &mut loader);
    let analysis = dsl::check(&workspace);
    assert!(analysis.diagnostics.is_empty(), "{:#?}", analysis.diagnostics);
    let flow = dsl::compile(&analysis.program, process).expect("compiles");
    assert!(engine.deploy(&flow).await.expect("deploys"));
    assert!(!engine.deploy(&flow).await.expect("deploys again"), "deploying the same flow twice is a no-op");
    Setup { engine, clock, url, db }
}
