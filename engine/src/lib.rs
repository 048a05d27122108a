//! The onetrip case engine (the engine issue builds it): cases, tasks, events, timers and
//! working-day calendars over a `Store` trait with SQLite and PostgreSQL implementations.
//!
//! It consumes `dsl::CompiledFlow` only, never a syntax tree.

pub use dsl::CompiledFlow;
