//! Pictures of flows and cases as SVG text. Pure like `dsl`: data in, a string out, no I/O,
//! and every input gives a picture (never a panic).
//!
//! - [`flow`]: a compiled flow's state machine, laid out in Rust (no Graphviz at run time),
//!   optionally as a heat map: each step coloured by how many cases wait there and for how
//!   long, with the numbers written on it.
//! - [`chart`]: a time chart (Gantt) on a working-day axis: lanes of bars, shaded periods,
//!   marks. It knows nothing of cases; the caller says what each bar means.
//!
//! The SVG is self-contained (inline styles, no scripts, no external fonts beyond a CJK-capable
//! `font-family` list), so it renders the same in a page, a report or a file.

pub mod chart;
pub mod flow;

/// Escapes text for SVG/HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
