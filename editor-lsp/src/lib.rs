//! The language server (its own issue): a thin adapter over `dsl`'s analysis API. It is the
//! only crate that knows LSP types.
