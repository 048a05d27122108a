//! Byte offsets and LSP positions (lines and UTF-16 code units), paths and URIs.

use lsp_types::{Position, Range, Uri};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// Line starts of a text, for converting both ways.
pub struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    pub fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let character = self.text[start..end].encode_utf16().count();
        Position { line: line as u32, character: character as u32 }
    }

    pub fn range(&self, span: dsl::Span) -> Range {
        Range { start: self.position(span.start as usize), end: self.position(span.end as usize) }
    }

    /// The byte offset of a position; `None` past the last line. A character past the end of
    /// its line means the end of the line (as LSP says), and one inside a surrogate pair the
    /// start of that character.
    pub fn offset(&self, position: Position) -> Option<usize> {
        let start = *self.starts.get(position.line as usize)?;
        let line_end = self.starts.get(position.line as usize + 1).map_or(self.text.len(), |&next| next - 1);
        let line = &self.text[start..line_end.max(start)];
        let mut units = 0u32;
        for (i, c) in line.char_indices() {
            let next = units + c.len_utf16() as u32;
            if next > position.character {
                return Some(start + i);
            }
            units = next;
        }
        Some(start + line.len())
    }

    /// Like [`Lines::offset`], a position past the last line meaning the end of the text
    /// (for edits, which must apply somewhere).
    pub fn offset_clamped(&self, position: Position) -> usize {
        self.offset(position).unwrap_or(self.text.len())
    }
}

/// What a URI's path may keep unencoded (RFC 3986 path characters, `/` included).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The file path of a `file:` URI (percent-decoded), else `None`.
pub fn uri_to_path(uri: &Uri) -> Option<String> {
    let text = uri.as_str();
    let rest = text.strip_prefix("file://")?;
    // `file:///path` or `file://localhost/path`.
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return None;
    }
    let decoded = percent_decode_str(path).decode_utf8().ok()?;
    Some(dsl::workspace::normalize(&decoded))
}

/// The `file:` URI of an absolute path.
pub fn path_to_uri(path: &str) -> Option<Uri> {
    let encoded: String = utf8_percent_encode(path, PATH).collect();
    format!("file://{encoded}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let text = "item 企业 \"𝄞x\"\nb";
        let lines = Lines::new(text);
        let x = text.find('x').unwrap();
        let p = lines.position(x);
        // `item 企业 "` is 9 units, the clef two more.
        assert_eq!(p, Position { line: 0, character: 11 });
        assert_eq!(lines.offset(p), Some(x));
        // Inside the surrogate pair: the clef's start.
        assert_eq!(lines.offset(Position { line: 0, character: 10 }), Some(text.find('𝄞').unwrap()));
        // Past the end of the line: its end; past the last line: nothing.
        assert_eq!(lines.offset(Position { line: 0, character: 99 }), Some(text.find('\n').unwrap()));
        assert_eq!(lines.offset(Position { line: 1, character: 1 }), Some(text.len()));
        assert_eq!(lines.offset(Position { line: 9, character: 0 }), None);
    }

    #[test]
    fn uris_round_trip_chinese_and_spaces() {
        let path = "/work/开办 企业/a#b.flow";
        let uri = path_to_uri(path).unwrap();
        assert_eq!(uri_to_path(&uri).as_deref(), Some(path));
        assert_eq!(uri_to_path(&"untitled:Untitled-1".parse().unwrap()), None);
    }
}
