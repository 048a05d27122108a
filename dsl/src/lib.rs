//! The onetrip flow language.
//!
//! Text in; syntax tree, diagnostics, checked program and compiled flows out. This crate is
//! pure: no I/O (imports are read through the caller's [`Loader`]), no async, no global state
//! (but pest's process-wide error-detail switch, on only while a declaration with a syntax
//! error is parsed a second time), and no input makes it panic.

// pest is built without `std` (so without its per-call stack probe, which costs ~8% of parsing;
// the splitter bounds nesting instead), and its derive then names `alloc`.
extern crate alloc;

pub mod analysis;
pub mod cel;
pub mod check;
pub mod compile;
pub mod diagnostic;
pub mod fmt;
pub mod graph;
pub mod ide;
pub mod model;
pub mod render;
pub mod span;
pub mod syntax;
pub mod workspace;

pub use check::{check, Analysis};
pub use compile::{compile, CompiledFlow};
pub use diagnostic::{Code, Diagnostic, Edit, Fix, Severity};
pub use span::{FileId, LineIndex, Location, Span};
pub use workspace::{Loader, MemoryLoader, SourceFile, Workspace};
