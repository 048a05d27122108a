//! Pictures of flows and cases as SVG text. Pure like `dsl`: data in, a string out, no I/O,
//! and every input gives a picture (never a panic).
//!
//! - [`flow`]: a compiled flow's state machine, laid out in Rust (no Graphviz at run time),
//!   optionally as a heat map: each step coloured by how many cases wait there and for how
//!   long, with the numbers written on it.
//! - [`chart`]: a time chart (Gantt) on a working-day axis: lanes of bars, shaded periods,
//!   marks. It knows nothing of cases; the caller says what each bar means.
//!
//! A flow's layout is memoised (a few dozen, keyed by the sizes and edges it depends on, so
//! a hit is the very same picture): placing costs milliseconds, drawing a tenth of that.
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

/// The fonts the pictures ask for: CJK-capable faces first, so Chinese and Latin text share
/// one face and the widths [`text_width`] assumes hold.
pub const FONT_FAMILY: &str = "'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',sans-serif";

/// The width in pixels of one line of text at `font_size`, as the layout assumes it: a
/// full-width (CJK) character is one em, anything else 0.6 em (a little more than the Latin
/// letters and digits of those fonts need, so text never overflows its box).
pub fn text_width(text: &str, font_size: f64) -> f64 {
    use unicode_width::UnicodeWidthChar;
    let columns: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    let full: usize = text.chars().filter(|c| c.width() == Some(2)).count();
    // A full-width character counts 2 columns: 1 em; the rest 0.6 em per column.
    (full as f64 + (columns - 2 * full) as f64 * 0.6) * font_size
}

/// `text` cut to fit `max_width` pixels at `font_size`, ending in "…" when cut; the flag says
/// whether it was.
pub(crate) fn truncate(text: &str, max_width: f64, font_size: f64) -> (String, bool) {
    if text_width(text, font_size) <= max_width {
        return (text.to_string(), false);
    }
    let room = max_width - text_width("…", font_size);
    let mut out = String::new();
    let mut width = 0.0;
    for c in text.chars() {
        let w = text_width(c.encode_utf8(&mut [0; 4]), font_size);
        if width + w > room {
            break;
        }
        width += w;
        out.push(c);
    }
    out.push('…');
    (out, true)
}

/// A coordinate as SVG text: one decimal, no trailing `.0`, and 0 for what is not a number
/// (a picture must come out of any input).
pub(crate) fn num(value: f64) -> String {
    if !value.is_finite() {
        return "0".to_string();
    }
    let rounded = (value * 10.0).round() / 10.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}
