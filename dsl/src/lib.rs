//! The onetrip flow language.
//!
//! Text in; syntax tree, diagnostics, checked program and compiled flows out. This crate is
//! pure: no I/O (imports are read through the caller's [`Loader`]), no async, no global state,
//! and no input makes it panic.

pub mod cel;
pub mod diagnostic;
pub mod fmt;
pub mod span;
pub mod syntax;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use span::{FileId, LineIndex, Location, Span};
