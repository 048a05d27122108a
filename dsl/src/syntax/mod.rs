//! Text to syntax tree: the grammar, the tree and the recovering parser.

pub mod ast;
mod parser;

pub use parser::{parse, Parsed, MAX_NESTING};
