//! `onetrip-lsp`, the language server of the flow language: a thin adapter over
//! [`dsl::ide`]. This is the only crate that knows LSP: positions in UTF-16, URIs, JSON-RPC.
//! Everything the server says about a flow comes from `dsl`; it only keeps the open
//! documents, decides which files are checked together, and converts.

pub mod convert;
pub mod project;
pub mod server;
pub mod transport;

pub use server::{run, Config};
