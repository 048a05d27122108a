//! Syntax errors describe the place where the text goes wrong: a message never says it
//! expected the very token it found ("expected `licence`, found `licence`"), which happens
//! when pest's furthest failing rule started at that token and failed further on.
//!
//! Every flow file of the repository (fixtures, examples, the standard library) is mutated at
//! many positions, deterministically: one token deleted, or the text cut after a token (every
//! seventh token here; every token with `-- --ignored`).

use std::path::PathBuf;

use dsl::diagnostic::Code;
use dsl::syntax::parse;
use dsl::FileId;

mod support;

/// Every `.flow` file under the fixtures, the examples and the standard library, in path order.
fn flow_files() -> Vec<(PathBuf, String)> {
    support::flow_files_under(&["dsl/tests/fixtures", "examples", "stdlib-flows/flows"])
}

/// The byte ranges of the tokens of `text`: words, strings, `->`, and single characters;
/// whitespace and comments are skipped.
fn tokens(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let mut end = start + c.len_utf8();
        if c == '/' && text[end..].starts_with('/') {
            while chars.next_if(|&(_, c)| c != '\n').is_some() {}
            continue;
        }
        if c == '_' || c.is_alphanumeric() {
            while let Some((at, c)) = chars.next_if(|&(_, c)| c == '_' || c.is_alphanumeric()) {
                end = at + c.len_utf8();
            }
        } else if c == '"' {
            while let Some((at, c)) = chars.next_if(|&(_, c)| c != '\n') {
                end = at + c.len_utf8();
                if c == '"' {
                    break;
                }
            }
        } else if c == '-' && text[end..].starts_with('>') {
            chars.next();
            end += 1;
        }
        out.push((start, end));
    }
    out
}

/// Whether a syntax error message says it expected what it found.
fn expects_what_it_found(message: &str) -> bool {
    let Some(rest) = message.strip_prefix("expected ") else { return false };
    let Some((expected, found)) = rest.rsplit_once(", found ") else { return false };
    // "expected `{` after `if x`, found …": what comes before the error is not expected.
    let expected = expected.split(" after `").next().unwrap_or(expected);
    let word = found.trim_matches('`');
    if found.starts_with('`') && expected.contains(found) {
        return true;
    }
    if word.starts_with('"') {
        return expected.contains("a quoted string");
    }
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_digit()) {
        return ["a whole number", "an amount", "a number of working days", "a percentage"]
            .iter()
            .any(|n| expected.contains(n));
    }
    let keyword = ["end", "if", "else", "parallel"].contains(&word);
    let is_name = !word.is_empty()
        && !keyword
        && word.chars().all(|c| c == '_' || c.is_alphanumeric())
        && !word.starts_with(|c: char| c.is_ascii_digit());
    is_name && found.starts_with('`') && expected.contains("a name")
}

/// The syntax error messages of one text.
fn syntax_messages(text: &str) -> Vec<String> {
    parse(FileId(0), text).diagnostics.into_iter().filter(|d| d.code == Code::Syntax).map(|d| d.message).collect()
}

/// Every mutation of every file, with every message that expects what it found: `(what, message)`.
/// With `SURVEY_DUMP=path`, every message of every mutation is written there too.
fn survey(every: usize) -> (usize, Vec<(String, String)>) {
    let mut tried = 0;
    let mut bad = Vec::new();
    let mut dump = String::new();
    for (f, (path, text)) in flow_files().into_iter().enumerate() {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (i, &(start, end)) in tokens(&text).iter().enumerate() {
            // A different share of the tokens of each file.
            if (i + f) % every != 0 {
                continue;
            }
            let deleted = format!("{}{}", &text[..start], &text[end..]);
            let cut = text[..end].to_string();
            for (how, mutated) in [("without", deleted), ("cut after", cut)] {
                tried += 1;
                for message in syntax_messages(&mutated) {
                    dump.push_str(&format!("{name}: {how} `{}` at {start}\t{message}\n", &text[start..end]));
                    if expects_what_it_found(&message) {
                        bad.push((format!("{name}: {how} `{}` at {start}", &text[start..end]), message));
                    }
                }
            }
        }
    }
    if let Ok(path) = std::env::var("SURVEY_DUMP") {
        std::fs::write(path, dump).expect("dump written");
    }
    (tried, bad)
}

#[test]
fn the_found_token_is_never_the_expected_one() {
    let (tried, bad) = survey(7);
    assert!(tried > 1_000, "only {tried} mutations");
    let listing: Vec<String> = bad.iter().take(20).map(|(what, message)| format!("{what}: {message}")).collect();
    assert!(bad.is_empty(), "{} of {tried} mutations:\n{}", bad.len(), listing.join("\n"));
}

/// Every position, and every flagged message: `cargo test -p onetrip-dsl --test syntax_errors -- --ignored --nocapture`.
#[test]
#[ignore]
fn survey_every_position() {
    let (tried, bad) = survey(1);
    let mut counts = std::collections::BTreeMap::new();
    for (what, message) in &bad {
        let entry = counts.entry(message.clone()).or_insert((0, what.clone()));
        entry.0 += 1;
    }
    for (message, (n, example)) in &counts {
        println!("{n:5}  {message}\n       e.g. {example}");
    }
    println!("{} flagged of {tried} mutations, {} distinct", bad.len(), counts.len());
}
