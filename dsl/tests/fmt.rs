//! The formatter: snapshots of `fixtures/fmt/*.flow`, and, for those and for every other flow
//! file in the repository that parses: formatting is idempotent, keeps every comment in order
//! and keeps the syntax tree (CEL rules, with any comments inside them, as written).

use std::path::{Path, PathBuf};

use dsl::fmt::format;
use dsl::syntax::parse;
use dsl::FileId;

/// What formatting must keep: the syntax tree, with every `Span { start: …, end: … }` replaced
/// by `Span`, and the comment texts in order. A comment inside a CEL rule is part of the rule's
/// text, which the tree holds; the comment scanner may see more of it than the rule has (a `)`
/// after `//` closes a bracket for the grammar), so such comments are left to the tree.
fn tree_and_comments(text: &str) -> (String, Vec<String>) {
    let file = parse(FileId(0), text).file;
    let dump = format!("{:?}", file.decls);
    let mut tree = String::with_capacity(dump.len());
    let mut rest = dump.as_str();
    while let Some(at) = rest.find("Span { start: ") {
        tree.push_str(&rest[..at]);
        tree.push_str("Span");
        let after = &rest[at..];
        rest = match after.find('}') {
            Some(close) => &after[close + 1..],
            None => "",
        };
    }
    tree.push_str(rest);
    let rules = file.rule_spans();
    let comments = file
        .comments
        .into_iter()
        .filter(|c| !rules.iter().any(|rule| rule.contains(c.span.start)))
        .map(|c| c.text)
        .collect();
    (tree, comments)
}

/// The first line where `a` and `b` differ, for readable failures.
fn first_difference(a: &str, b: &str) -> String {
    let (a_lines, b_lines): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    for at in 0..a_lines.len().max(b_lines.len()) {
        if a_lines.get(at) != b_lines.get(at) {
            return format!("line {}:\n  {:?}\n  {:?}", at + 1, a_lines.get(at), b_lines.get(at));
        }
    }
    "no line differs".into()
}

/// Formats `text` and checks the output; `None` when the text has syntax errors.
fn format_checked(name: &str, text: &str) -> Option<String> {
    let formatted = format(text).ok()?;
    let again = match format(&formatted) {
        Ok(again) => again,
        Err(errors) => {
            panic!("{name}: the output does not parse: {errors:?}\n--- input\n{text}\n--- output\n{formatted}")
        }
    };
    assert!(
        again == formatted,
        "{name}: formatting twice changes the text at {}\n--- input\n{text}\n--- once\n{formatted}\n--- twice\n{again}",
        first_difference(&formatted, &again)
    );
    let ((tree_before, comments_before), (tree_after, comments_after)) =
        (tree_and_comments(text), tree_and_comments(&formatted));
    assert!(
        comments_before == comments_after,
        "{name}: comments lost or reordered\n--- input\n{text}\n--- output\n{formatted}\n--- before\n{comments_before:#?}\n--- after\n{comments_after:#?}"
    );
    assert!(
        tree_before == tree_after,
        "{name}: the tree changed\n--- input\n{text}\n--- output\n{formatted}\n--- before\n{tree_before}\n--- after\n{tree_after}"
    );
    assert!(formatted.is_empty() || (formatted.ends_with('\n') && !formatted.ends_with("\n\n")), "{name}: file end");
    assert!(!formatted.lines().any(|line| line.ends_with(' ')), "{name}: trailing spaces\n{formatted}");
    Some(formatted)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn flow_files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            flow_files_under(&path, found);
        } else if path.extension().is_some_and(|e| e == "flow") {
            found.push(path);
        }
    }
}

fn fmt_fixtures() -> Vec<PathBuf> {
    let mut found = Vec::new();
    flow_files_under(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fmt"), &mut found);
    found.sort();
    assert!(!found.is_empty(), "no formatter fixtures found");
    found
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn fixture_snapshots() {
    insta::glob!("fixtures/fmt/*.flow", |path| {
        let text = read(path);
        if let Err(errors) = format(&text) {
            panic!("{}: a formatter fixture must parse: {errors:#?}", path.display());
        }
        let formatted = format_checked(&path.display().to_string(), &text).unwrap_or_default();
        insta::assert_snapshot!(formatted);
    });
}

#[test]
fn every_flow_file_that_parses_formats_cleanly() {
    let root = workspace_root();
    let mut files = Vec::new();
    flow_files_under(&root.join("dsl/tests/fixtures"), &mut files);
    flow_files_under(&root.join("examples"), &mut files);
    files.sort();
    let mut formatted = 0;
    for path in &files {
        if format_checked(&path.display().to_string(), &read(path)).is_some() {
            formatted += 1;
        }
    }
    assert!(formatted >= fmt_fixtures().len(), "only {formatted} of {} files formatted", files.len());
}

#[test]
fn crlf_line_endings_and_byte_order_mark() {
    for path in fmt_fixtures() {
        let text = read(&path);
        let unix = format(&text).unwrap_or_default();
        let windows = format_checked(&path.display().to_string(), &format!("\u{FEFF}{}", text.replace('\n', "\r\n")))
            .unwrap_or_else(|| panic!("{}: does not parse with CRLF line endings", path.display()));
        // Only a multi-line CEL rule keeps its `\r`, as it keeps all of its text.
        assert_eq!(windows.replace('\r', ""), unix, "{}", path.display());
    }
}

#[test]
fn broken_input_is_not_formatted() {
    for text in ["item x {", "item x \"X\" { code }", "process p \"P\" { flow { a -> } }", "schema s { a }", "garbage"]
    {
        let errors = format(text).expect_err(text);
        assert!(!errors.is_empty() && errors.iter().all(|e| e.is_error()), "{text}: {errors:?}");
    }
    // One broken declaration is enough: the rest of the file is not reformatted either.
    assert!(format("department a \"A\"\n\nitem x \"X\" { steps { -> } }\n").is_err());
}

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(format("").unwrap(), "");
    assert_eq!(format("\n\n  \n").unwrap(), "");
    assert_eq!(
        format("\n\n// only a comment   \n\n\n// and another\n\n").unwrap(),
        "// only a comment\n\n// and another\n"
    );
}

/// Offsets where a token ends (the next character is whitespace) or a line starts.
fn token_boundaries(text: &str) -> Vec<usize> {
    let mut boundaries = Vec::new();
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        let token_ends = c.is_whitespace() && previous.is_some_and(|p| !p.is_whitespace());
        if token_ends || previous == Some('\n') {
            boundaries.push(at);
        }
        previous = Some(c);
    }
    boundaries.push(text.len());
    boundaries
}

/// Comments, line breaks and blank lines dropped in everywhere: whatever still parses must
/// format cleanly.
#[test]
fn comments_and_line_breaks_anywhere() {
    let mut checked = 0;
    for path in fmt_fixtures() {
        let text = read(&path);
        for (n, at) in token_boundaries(&text).into_iter().enumerate() {
            for insert in [format!(" // probe {n}\n"), format!("\n// probe {n}\n"), "\n".into(), "\n\n".into()] {
                let probed = format!("{}{insert}{}", &text[..at], &text[at..]);
                if format_checked(&format!("{} + {insert:?} at {at}", path.display()), &probed).is_some() {
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} probes parsed");
}

/// Every prefix of every fixture: no panic, and a prefix that parses formats cleanly.
#[test]
fn truncated_files_never_panic() {
    for path in fmt_fixtures() {
        let text = read(&path);
        let cuts: Vec<usize> = text.char_indices().map(|(at, _)| at).step_by(7).collect();
        for at in cuts {
            format_checked(&format!("{} cut at {at}", path.display()), &text[..at]);
        }
    }
}
