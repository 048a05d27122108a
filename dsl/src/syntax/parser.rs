//! From text to syntax tree, with error recovery.
//!
//! `pest` stops at the first error, so the file is first cut into top-level declarations by a
//! small scanner that knows only strings, comments, brackets and the declaration keywords. A
//! line starts a new declaration when its first word is `import`, `department`, `schema`,
//! `item` or `process` and either no bracket is open or the word stands in column 0 (so a
//! missing `}` does not swallow the rest of the file). Each piece is then parsed on its own:
//! an error in one declaration is reported and the others still parse and get checked.
//!
//! The same scanner bounds bracket nesting (a piece nested deeper than [`MAX_NESTING`] is not
//! handed to pest, whose recursion would otherwise overflow the stack) and collects the
//! comments for the formatter.

use pest::iterators::Pair;
use pest::Parser as _;

use super::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::span::{FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "syntax/flow.pest"]
struct FlowParser;

/// Deepest bracket nesting accepted in one declaration.
pub const MAX_NESTING: usize = 64;

/// The syntax tree of one file and the syntax errors found in it.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub file: File,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses one file. Never panics; every problem becomes a diagnostic.
pub fn parse(file_id: FileId, text: &str) -> Parsed {
    let scan = scan(text);
    let mut file = File { comments: scan.comments, ..File::default() };
    let mut diagnostics = Vec::new();
    for chunk in scan.chunks {
        let piece = &text[chunk.start..chunk.end];
        if let Some(at) = chunk.too_deep_at {
            diagnostics.push(
                Diagnostic::new(
                    Code::TooDeep,
                    file_id,
                    Span::new(at, at + 1),
                    format!("brackets nested more than {MAX_NESTING} deep"),
                )
                .label("nested too deep here")
                .help("split the rule or the flow into smaller parts"),
            );
            file.broken.push(broken(piece, chunk.start));
            continue;
        }
        match FlowParser::parse(Rule::declaration, piece) {
            Ok(mut pairs) => match pairs.next() {
                Some(pair) => {
                    let builder = Builder { offset: chunk.start };
                    file.decls.push(builder.decl(pair));
                }
                None => file.broken.push(broken(piece, chunk.start)),
            },
            Err(error) => {
                diagnostics.push(syntax_error(file_id, piece, chunk.start, &error));
                file.broken.push(broken(piece, chunk.start));
            }
        }
    }
    Parsed { file, diagnostics }
}

// ------------------------------------------------------------------ the splitter

struct Chunk {
    start: usize,
    end: usize,
    too_deep_at: Option<usize>,
}

struct Scan {
    chunks: Vec<Chunk>,
    comments: Vec<Comment>,
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The declaration keyword starting at `at`, if any.
fn keyword_at(text: &str, at: usize) -> Option<DeclKind> {
    let rest = &text[at..];
    let word_len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
    DeclKind::from_keyword(&rest[..word_len])
}

fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut comments = Vec::new();
    // A byte-order mark is not part of any declaration.
    let bom = if text.starts_with('\u{FEFF}') { '\u{FEFF}'.len_utf8() } else { 0 };
    let mut current = Chunk { start: bom, end: 0, too_deep_at: None };
    let mut depth = 0usize;
    let mut angle_depth = 0usize;
    let mut at_line_start = true;
    let mut i = bom;
    while i < bytes.len() {
        if at_line_start {
            at_line_start = false;
            let line_start = i;
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            if i < bytes.len() && keyword_at(text, i).is_some() && (depth == 0 || i == line_start) {
                if has_content(text, current.start, i) {
                    current.end = i;
                    chunks.push(current);
                    current = Chunk { start: i, end: 0, too_deep_at: None };
                } else {
                    current.start = i;
                }
                depth = 0;
                angle_depth = 0;
            }
            continue;
        }
        match bytes[i] {
            b'\n' => {
                at_line_start = true;
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                comments.push(Comment { text: text[i..end].trim_end().to_string(), span: Span::new(i, end) });
                i = end;
            }
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' && bytes.get(i + 1).is_some_and(|&b| b != b'\n') { 2 } else { 1 };
                }
                if i < bytes.len() && bytes[i] == quote {
                    i += 1;
                }
            }
            // `list<…>` nests types; `<` elsewhere is a comparison.
            b'<' if text[..i].trim_end().ends_with("list") => {
                angle_depth += 1;
                depth += 1;
                if depth > MAX_NESTING && current.too_deep_at.is_none() {
                    current.too_deep_at = Some(i);
                }
                i += 1;
            }
            b'>' if angle_depth > 0 => {
                angle_depth -= 1;
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING && current.too_deep_at.is_none() {
                    current.too_deep_at = Some(i);
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    if has_content(text, current.start, text.len()) {
        current.end = text.len();
        chunks.push(current);
    }
    Scan { chunks, comments }
}

/// Whether `text[start..end]` holds anything besides whitespace and comments.
fn has_content(text: &str, start: usize, end: usize) -> bool {
    text[start..end].lines().any(|line| {
        let line = line.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
        !line.is_empty() && !line.starts_with("//")
    })
}

fn broken(piece: &str, offset: usize) -> BrokenDecl {
    let trimmed_at = piece.len() - piece.trim_start().len();
    let rest = &piece[trimmed_at..];
    let keyword = keyword_at(piece, trimmed_at);
    let name = keyword.and_then(|kind| {
        let after = trimmed_at + kind.keyword().len();
        let name_start = after + (piece[after..].len() - piece[after..].trim_start().len());
        let name_len = piece[name_start..].find(|c: char| !is_ident_char(c)).unwrap_or(piece.len() - name_start);
        (name_len > 0 && name_start > after).then(|| Ident {
            name: piece[name_start..name_start + name_len].to_string(),
            span: Span::new(offset + name_start, offset + name_start + name_len),
        })
    });
    let _ = rest;
    BrokenDecl {
        keyword: keyword.unwrap_or(DeclKind::Item),
        name,
        span: Span::new(offset + trimmed_at, offset + piece.trim_end().len()),
    }
}

// ------------------------------------------------------------------ syntax errors

fn syntax_error(file: FileId, piece: &str, offset: usize, error: &pest::error::Error<Rule>) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut pos = pos.min(piece.len());
    let mut found = found_at(piece, pos);
    let mut expected = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => describe_expected(positives),
        ErrorVariant::CustomError { message } => message.clone(),
    };
    let mut after = None;
    // pest reports the rules that failed furthest on where they *started*: in
    // `from licence bl }`, `licence bl` is a good start of a licence source that fails at `}`,
    // and pest says it expected `licence` where it found `licence`. When the tokens it tried
    // go past the found one, the text really goes wrong where they were tried last.
    if let ErrorVariant::ParsingError { .. } = &error.variant {
        if let Some(later) = later_failure(piece, pos, &found) {
            after = Some(context(&piece[pos..later.pos]));
            pos = later.pos;
            found = found_at(piece, pos);
            expected = later.expected;
        }
    }
    let span = Span::new(offset + pos, offset + pos + found.len);
    let message = match &after {
        Some(context) => format!("expected {expected} after `{context}`, found {}", found.text),
        None => format!("expected {expected}, found {}", found.text),
    };
    let mut diagnostic = Diagnostic::new(Code::Syntax, file, span, message).label(format!("expected {expected}"));
    if let Some(help) = syntax_help(piece, pos, &found) {
        diagnostic = diagnostic.help(help);
    }
    diagnostic
}

/// Where a declaration really goes wrong when the rule pest names got past the found token.
struct Later {
    pos: usize,
    expected: String,
}

/// Parses the piece again with pest's record of the tokens tried at the furthest position
/// (its "error detail", too slow to keep on: only a failing declaration is parsed so). The
/// switch is process-wide: a lock keeps two of these parses from turning it off under each
/// other, and a parse elsewhere that runs meanwhile only records more than it needs.
fn later_failure(piece: &str, pos: usize, found: &Found) -> Option<Later> {
    static DETAIL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let attempts = {
        let _only_one = DETAIL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pest::set_error_detail(true);
        let result = FlowParser::parse(Rule::declaration, piece);
        pest::set_error_detail(false);
        result.err()?.parse_attempts()?
    };
    let at = attempts.max_position;
    if at < pos + found.len.max(1) || at > piece.len() {
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    // Each call stack ends in the rule that wanted a token here. A rule of one token (a name,
    // a string, a keyword) that starts here is named; one that started before (a CEL rule, or
    // the `75` of `75%`) and any other rule wanted one of the literal tokens (`.`, `{`, …).
    let continues_word = piece[..at].chars().next_back().is_some_and(is_ident_char);
    let mut within = Vec::new();
    let mut literal_wanted = false;
    for stack in attempts.call_stacks() {
        match stack.deepest.get_rule().copied() {
            Some(Rule::cel) if !cel_starts_at(piece, at) => literal_wanted = true,
            Some(Rule::percent) if continues_word => push("`%`".into()),
            Some(rule) if is_token_rule(rule) => match rule_name(rule) {
                Some(name) if !continues_word => push(name.to_string()),
                _ => literal_wanted = true,
            },
            Some(rule) => {
                within.push(rule);
                literal_wanted = true;
            }
            None => {
                within.extend(stack.parent);
                literal_wanted = true;
            }
        }
    }
    if literal_wanted {
        // pest's tokens print as themselves; ranges print as `a..z` and built-in rules (the
        // spaces skipped between tokens) as `BUILTIN_RULE`. The characters that start a
        // string, a comment, a name or a bracket in a CEL rule are not what is missing.
        let tokens: Vec<String> = attempts.expected_tokens().iter().map(|t| t.to_string()).collect();
        // An open bracket of a CEL rule wants its closing one; a `{` there would only start a
        // nested group.
        let open_bracket = tokens.iter().any(|t| t == ")" || t == "]");
        for token in tokens {
            let range = token.len() == 4 && &token[1..3] == "..";
            let inside_a_token = ["BUILTIN_RULE", "//", "_", "\"", "'", "\\", "[", "%", "&&", "||"]
                .contains(&token.as_str())
                || (token == "(" && !within.contains(&Rule::pii))
                || (token == "{" && open_bracket);
            if range || inside_a_token || !token.chars().all(|c| c.is_ascii_graphic()) {
                continue;
            }
            push(what_follows(&within, &token).unwrap_or_else(|| format!("`{token}`")));
        }
    }
    let expected = match names.len() {
        0 => return None,
        1 => names.remove(0),
        n => format!("{} or {}", names[..n - 1].join(", "), names[n - 1]),
    };
    Some(Later { pos: at, expected })
}

/// Whether a CEL rule would start at `at` (rather than go on there): it follows `if`,
/// `eligible` or `when`.
fn cel_starts_at(piece: &str, at: usize) -> bool {
    let before = piece[..at].trim_end();
    let word_start = before.rfind(|c: char| !is_ident_char(c)).map_or(0, |i| i + 1);
    matches!(&before[word_start..], "if" | "eligible" | "when")
}

/// A literal token and what must come after it, where the rest is not obvious.
fn what_follows(within: &[Rule], token: &str) -> Option<String> {
    within.iter().find_map(|rule| {
        Some(match (rule, token) {
            (Rule::from_licence, ".") => "`.` and a licence name".to_string(),
            (Rule::from_shared, ".") => "`.` and a data set name".to_string(),
            _ => return None,
        })
    })
}

/// Rules that match one token: pest's record names them rather than their characters.
fn is_token_rule(rule: Rule) -> bool {
    is_keyword(rule)
        || matches!(
            rule,
            Rule::ident
                | Rule::string
                | Rule::int
                | Rule::decimal
                | Rule::percent
                | Rule::bool
                | Rule::workdays
                | Rule::prim_type
                | Rule::cel
                | Rule::end_kw
                | Rule::overdue
                | Rule::m_tolerated
                | Rule::m_promise
                | Rule::m_optional
                | Rule::m_form
                | Rule::EOI
        )
}

/// The text between two positions on one line, without comments, its middle left out when
/// it is long.
fn context(text: &str) -> String {
    let code: String = text.lines().map(|line| &line[..comment_start(line)]).collect::<Vec<_>>().join(" ");
    let words: Vec<&str> = code.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() <= 40 {
        return line;
    }
    // Whole words from each end, about 20 characters of them; a longer word is cut.
    let width = |words: &[&str]| words.iter().map(|w| w.chars().count() + 1).sum::<usize>();
    let mut head = 1;
    while head < words.len() && width(&words[..=head]) <= 21 {
        head += 1;
    }
    let mut tail = words.len() - 1;
    while tail > head && width(&words[tail - 1..]) <= 21 {
        tail -= 1;
    }
    let cut = |word: &str, from_end: bool| {
        let chars: Vec<char> = word.chars().collect();
        match (chars.len() > 20, from_end) {
            (false, _) => word.to_string(),
            (true, false) => chars[..20].iter().collect::<String>() + "…",
            (true, true) => "…".to_string() + &chars[chars.len() - 20..].iter().collect::<String>(),
        }
    };
    let head = match &words[..head] {
        [one] => cut(one, false),
        many => many.join(" "),
    };
    let tail = match &words[tail.max(1)..] {
        [] => String::new(),
        [one] => cut(one, true),
        many => many.join(" "),
    };
    if tail.is_empty() {
        head
    } else {
        format!("{head} … {tail}")
    }
}

/// Where a `//` comment starts on a line (outside strings), or the line's length.
fn comment_start(line: &str) -> usize {
    let bytes = line.as_bytes();
    let mut quote = None;
    let mut i = 0;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), b) if b == q => quote = None,
            (None, b'"' | b'\'') => quote = Some(bytes[i]),
            (None, b'/') if bytes.get(i + 1) == Some(&b'/') => return i,
            _ => {}
        }
        i += 1;
    }
    line.len()
}

/// The token at a position, as a message names it, and its length in the text.
struct Found {
    text: String,
    len: usize,
}

/// The token at `pos`: a word, a string, or one character.
fn found_at(piece: &str, pos: usize) -> Found {
    let rest = &piece[pos..];
    let Some(first) = rest.chars().next() else {
        return Found { text: "the end of the declaration".into(), len: 0 };
    };
    if is_ident_char(first) {
        let len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        Found { text: format!("`{}`", &rest[..len]), len }
    } else if first == '"' {
        // Up to the closing quote (an escaped one does not close) or the end of the line.
        let mut chars = rest.char_indices().skip(1).peekable();
        let mut end = None;
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next_if(|&(_, c)| c != '\n');
                }
                '"' => {
                    end = Some(at + 1);
                    break;
                }
                '\n' => break,
                _ => {}
            }
        }
        match end {
            Some(len) => Found { text: format!("`{}`", &rest[..len]), len },
            None => {
                let len = rest.find('\n').unwrap_or(rest.len());
                let open = rest[..len].trim_end();
                Found { text: format!("an unclosed string `{open}`"), len: open.len() }
            }
        }
    } else if first == '\n' || first == '\r' {
        Found { text: "the end of the line".into(), len: 1 }
    } else if first.is_whitespace() {
        Found { text: "a space".into(), len: first.len_utf8() }
    } else {
        Found { text: format!("`{first}`"), len: first.len_utf8() }
    }
}

fn syntax_help(piece: &str, pos: usize, found: &Found) -> Option<String> {
    let before = piece[..pos].trim_end();
    if pos >= piece.len() {
        return Some("a `}` may be missing".into());
    }
    if before.ends_with("limit") || before.ends_with("sla") {
        return Some("write a limit as a number of working days, e.g. `20 workdays`".into());
    }
    if found.text.starts_with("an unclosed string") {
        return Some("close the string with `\"` on the same line".into());
    }
    None
}

fn rule_name(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::ident | Rule::item_ref | Rule::ident_list => "a name",
        Rule::string | Rule::s_label => "a quoted string",
        Rule::int => "a whole number",
        Rule::decimal => "an amount",
        Rule::percent => "a percentage like `75%`",
        Rule::bool => "`true` or `false`",
        Rule::duration => "a number of working days",
        Rule::workdays => "`workdays`",
        Rule::cel => "a CEL rule",
        Rule::import => "`import`",
        Rule::department | Rule::i_department => "`department`",
        Rule::schema => "`schema`",
        Rule::item => "`item`",
        Rule::process => "`process`",
        Rule::dataset => "`data`",
        Rule::record => "`{`",
        Rule::field => "a field name",
        Rule::type_expr | Rule::prim_type | Rule::list_type => {
            "a type (string, int, double, bool, date, list<…>, or `{`)"
        }
        Rule::pii => "`pii(…)`",
        Rule::i_code | Rule::p_code => "`code`",
        Rule::i_type => "`type`",
        Rule::i_handling => "`handling`",
        Rule::i_legal_limit => "`legal_limit`",
        Rule::i_promised_limit => "`promised_limit`",
        Rule::i_visits | Rule::p_visits => "`visits`",
        Rule::i_fee => "`fee`",
        Rule::fee_free => "`free`",
        Rule::i_basis => "`basis`",
        Rule::i_online => "`online`",
        Rule::i_supplement => "`supplement`",
        Rule::i_eligible | Rule::p_eligible => "`eligible`",
        Rule::i_materials => "`materials`",
        Rule::i_steps => "`steps`",
        Rule::i_produces => "`produces`",
        Rule::material => "a material",
        Rule::m_from => "`from`",
        Rule::from_shared => "`shared`",
        Rule::from_licence => "`licence`",
        Rule::from_applicant => "`applicant`",
        Rule::m_when => "`when`",
        Rule::m_tolerated => "`tolerated`",
        Rule::m_promise => "`promise`",
        Rule::m_optional => "`optional`",
        Rule::m_copies => "`copies`",
        Rule::m_form => "`paper`, `copy` or `electronic`",
        Rule::g_serves | Rule::k_serves => "`serves`",
        Rule::g_where => "`where`",
        Rule::g_hours => "`hours`",
        Rule::g_contact => "`contact`",
        Rule::g_complaint => "`complaint`",
        Rule::g_url => "`url`",
        Rule::g_faq => "`faq`",
        Rule::step_chain | Rule::step_attrs | Rule::step_ref => "a step",
        Rule::end_kw => "`end`",
        Rule::s_back => "`back`",
        Rule::s_cosign => "`cosign`",
        Rule::s_by => "`by`",
        Rule::s_limit | Rule::k_limit => "`limit`",
        Rule::p_window => "`window`",
        Rule::p_sla => "`sla`",
        Rule::p_flow => "`flow`",
        Rule::p_warn => "`warn`",
        Rule::sequence => "an item",
        Rule::parallel => "`parallel`",
        Rule::conditional | Rule::if_branch => "`if`",
        Rule::else_branch => "`else`",
        Rule::warn_rule => "`yellow` or `red`",
        Rule::overdue => "`overdue`",
        Rule::EOI => "the end of the declaration",
        Rule::k_import => "`import`",
        Rule::k_department => "`department`",
        Rule::k_data => "`data`",
        Rule::k_schema => "`schema`",
        Rule::k_item => "`item`",
        Rule::k_type => "`type`",
        Rule::k_handling => "`handling`",
        Rule::k_supplement => "`supplement`",
        Rule::k_produces => "`produces`",
        Rule::k_licence => "`licence`",
        Rule::k_from => "`from`",
        Rule::k_shared => "`shared`",
        Rule::k_applicant => "`applicant`",
        Rule::k_when => "`when`",
        Rule::k_back => "`back`",
        Rule::k_cosign => "`cosign`",
        Rule::k_by => "`by`",
        Rule::k_process => "`process`",
        Rule::k_window => "`window`",
        Rule::k_if => "`if`",
        Rule::k_free => "`free`",
        Rule::extends | Rule::k_extends => "`extends`",
        Rule::p_replace | Rule::k_replace => "`replace`",
        Rule::k_with => "`with`",
        _ => return None,
    })
}

fn describe_expected(positives: &[Rule]) -> String {
    let mut names: Vec<&str> = Vec::new();
    let item_fields = positives.iter().filter(|r| format!("{r:?}").starts_with("i_")).count();
    let process_fields = positives.iter().filter(|r| format!("{r:?}").starts_with("p_")).count();
    let material_attrs = positives.iter().filter(|r| format!("{r:?}").starts_with("m_")).count();
    // A field's keyword is already named by its group.
    let grouped = item_fields > 3 || process_fields > 3 || material_attrs > 3;
    for &rule in positives {
        if grouped && is_keyword(rule) {
            continue;
        }
        let group = format!("{rule:?}");
        // The guide's fields (`g_…`) belong to the item's or the process's group.
        let field = group.starts_with("g_") || group == "k_serves";
        let name = if item_fields > 3 && (group.starts_with("i_") || field) {
            "an item field (code, department, type, handling, legal_limit, promised_limit, visits, fee, basis, online, supplement, eligible, materials, steps, produces, or for the guide serves, where, hours, contact, complaint, url, faq)"
        } else if process_fields > 3 && (group.starts_with("p_") || field) {
            "a process field (code, window, sla, visits, eligible, flow, warn, replace, or for the guide where, hours, contact, complaint, url, faq)"
        } else if material_attrs > 3 && group.starts_with("m_") {
            "a material attribute (from, when, tolerated, promise, optional, copies, paper, copy, electronic)"
        } else {
            match rule_name(rule) {
                Some(name) => name,
                None => continue,
            }
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    match names.len() {
        0 => "something else".into(),
        1 => names[0].into(),
        n => format!("{} or {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

// ------------------------------------------------------------------ pairs to tree

struct Builder {
    offset: usize,
}

impl Builder {
    /// The pair's span without the whitespace and comments pest skipped after its last token
    /// (a rule ending in an optional part keeps them), so that diagnostics underline code only.
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        let end = code_end(s.as_str());
        Span::new(s.start() + self.offset, s.start() + end + self.offset)
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident { name: pair.as_str().to_string(), span: self.span(&pair) }
    }

    fn text(&self, pair: Pair<Rule>) -> Text {
        let span = self.span(&pair);
        let inner = children(pair).next().map(|p| p.as_str()).unwrap_or("");
        Text { value: unescape(inner), span }
    }

    fn number(&self, pair: Pair<Rule>) -> Number {
        // The grammar allows at most nine digits, so this cannot overflow.
        let value = pair.as_str().trim_end_matches('%').parse().unwrap_or(u32::MAX);
        Number { value, span: self.span(&pair) }
    }

    fn cel(&self, pair: Pair<Rule>) -> CelText {
        CelText { source: pair.as_str().to_string(), span: self.span(&pair) }
    }

    fn duration(&self, pair: Pair<Rule>) -> Number {
        let span = self.span(&pair);
        let number = children(pair).next().map(|p| self.number(p)).unwrap_or(Number { value: 0, span });
        Number { value: number.value, span }
    }

    fn decl(&self, pair: Pair<Rule>) -> Decl {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = children(pair);
        match rule {
            Rule::import => Decl::Import(Import { path: self.text(inner.next().expect("grammar: path")), span }),
            Rule::department => {
                let name = self.ident(inner.next().expect("grammar: name"));
                let title = self.text(inner.next().expect("grammar: title"));
                let datasets = inner
                    .map(|d| {
                        let span = self.span(&d);
                        let mut parts = children(d);
                        Dataset {
                            name: self.ident(parts.next().expect("grammar: data name")),
                            title: self.text(parts.next().expect("grammar: data title")),
                            span,
                        }
                    })
                    .collect();
                Decl::Department(Department { name, title, datasets, span })
            }
            Rule::schema => {
                let name = self.ident(inner.next().expect("grammar: name"));
                let fields = self.record(inner.next().expect("grammar: record"));
                Decl::Schema(Schema { name, fields, span })
            }
            Rule::item => {
                let name = self.ident(inner.next().expect("grammar: name"));
                let title = self.text(inner.next().expect("grammar: title"));
                let mut inner = inner.peekable();
                let base = self.extends(&mut inner);
                let fields = inner.map(|f| self.item_field(f)).collect();
                Decl::Item(Item { name, title, base, fields, span })
            }
            Rule::process => {
                let name = self.ident(inner.next().expect("grammar: name"));
                let title = self.text(inner.next().expect("grammar: title"));
                let mut inner = inner.peekable();
                let base = self.extends(&mut inner);
                let fields = inner.map(|f| self.process_field(f)).collect();
                Decl::Process(Process { name, title, base, fields, span })
            }
            other => unreachable!("grammar: declaration {other:?}"),
        }
    }

    /// The `extends base` clause of a declaration, if it has one.
    fn extends<'i>(&self, inner: &mut std::iter::Peekable<impl Iterator<Item = Pair<'i, Rule>>>) -> Option<Ident> {
        let clause = inner.next_if(|p| p.as_rule() == Rule::extends)?;
        children(clause).next().map(|base| self.ident(base))
    }

    fn record(&self, pair: Pair<Rule>) -> Vec<Field> {
        children(pair).map(|f| self.field(f)).collect()
    }

    fn field(&self, pair: Pair<Rule>) -> Field {
        let span = self.span(&pair);
        let mut inner = children(pair);
        let name = self.ident(inner.next().expect("grammar: field name"));
        let ty_pair = inner.next().expect("grammar: field type");
        let ty = self.type_expr(ty_pair);
        let pii = inner.next().and_then(|p| p.into_inner().next()).map(|p| self.ident(p));
        Field { name, ty, pii, span }
    }

    fn type_expr(&self, pair: Pair<Rule>) -> TypeExpr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::record => TypeExpr::Record { fields: self.record(pair), span },
            Rule::type_expr => self.type_expr(children(pair).next().expect("grammar: type")),
            Rule::list_type => {
                let element = self.type_expr(children(pair).next().expect("grammar: element"));
                TypeExpr::List { element: Box::new(element), span }
            }
            _ => TypeExpr::Primitive { name: pair.as_str().to_string(), span },
        }
    }

    fn keyword_span(&self, pair: &Pair<Rule>, keyword: &str) -> Span {
        let start = self.span(pair).start as usize;
        Span::new(start, start + keyword.len())
    }

    fn item_field(&self, pair: Pair<Rule>) -> ItemField {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let whole = pair.clone();
        let mut inner = children(pair);
        let mut next = || inner.next().expect("grammar: item field value");
        let kind = match rule {
            Rule::i_code => ItemFieldKind::Code(self.text(next())),
            Rule::i_department => ItemFieldKind::Department(self.ident(next())),
            Rule::i_type => ItemFieldKind::Type(self.ident(next())),
            Rule::i_handling => ItemFieldKind::Handling(self.ident(next())),
            Rule::i_legal_limit => ItemFieldKind::LegalLimit(self.duration(next())),
            Rule::i_promised_limit => ItemFieldKind::PromisedLimit(self.duration(next())),
            Rule::i_visits => ItemFieldKind::Visits(self.number(next())),
            Rule::i_fee => {
                let value = next();
                ItemFieldKind::Fee(match value.as_rule() {
                    Rule::fee_free => Fee::Free,
                    _ => Fee::Yuan(value.as_str().to_string()),
                })
            }
            Rule::i_basis => ItemFieldKind::Basis(self.text(next())),
            Rule::i_online => ItemFieldKind::Online(next().as_str() == "true"),
            Rule::i_supplement => ItemFieldKind::Supplement(self.ident(next())),
            Rule::i_eligible => {
                let expr = self.cel(next());
                let message = inner.next().map(|m| self.text(m));
                ItemFieldKind::Eligible(EligibilityRule { expr, message })
            }
            Rule::i_materials => ItemFieldKind::Materials(inner.map(|m| self.material(m)).collect()),
            Rule::i_steps => ItemFieldKind::Steps(inner.map(|s| self.step_stmt(s)).collect()),
            Rule::i_produces => {
                let name = self.ident(next());
                let title = self.text(next());
                ItemFieldKind::Produces { name, title }
            }
            other => ItemFieldKind::Guide(self.guide_field(other, &whole)),
        };
        let keyword = self.keyword_span(&whole, kind.keyword());
        ItemField { kind, span, keyword }
    }

    fn material(&self, pair: Pair<Rule>) -> Material {
        let span = self.span(&pair);
        let mut inner = children(pair);
        let name = self.ident(inner.next().expect("grammar: material name"));
        let title = self.text(inner.next().expect("grammar: material title"));
        let mut material = Material {
            name,
            title,
            source: None,
            condition: None,
            tolerated: false,
            promise: false,
            optional: false,
            copies: None,
            form: None,
            span,
        };
        for attr in inner {
            match attr.as_rule() {
                Rule::m_from => {
                    let source = children(attr).next().expect("grammar: source");
                    let source_span = self.span(&source);
                    let rule = source.as_rule();
                    let mut parts = children(source);
                    material.source = Some(match rule {
                        Rule::from_shared => MaterialSource::Shared {
                            department: self.ident(parts.next().expect("grammar: department")),
                            dataset: self.ident(parts.next().expect("grammar: data set")),
                            span: source_span,
                        },
                        Rule::from_licence => MaterialSource::Licence {
                            item: self.ident(parts.next().expect("grammar: item")),
                            licence: self.ident(parts.next().expect("grammar: licence")),
                            span: source_span,
                        },
                        _ => MaterialSource::Applicant { span: source_span },
                    });
                }
                Rule::m_when => material.condition = children(attr).next().map(|c| self.cel(c)),
                Rule::m_tolerated => material.tolerated = true,
                Rule::m_promise => material.promise = true,
                Rule::m_optional => material.optional = true,
                Rule::m_copies => material.copies = children(attr).next().map(|n| self.number(n)),
                Rule::m_form => material.form = Some(self.ident(attr)),
                other => unreachable!("grammar: material attribute {other:?}"),
            }
        }
        material
    }

    fn step_stmt(&self, pair: Pair<Rule>) -> StepStmt {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::step_chain => StepStmt::Chain {
                steps: pair
                    .into_inner()
                    .map(|r| {
                        let inner = children(r).next().expect("grammar: step ref");
                        match inner.as_rule() {
                            Rule::end_kw => StepRef::End(self.span(&inner)),
                            _ => StepRef::Step(self.ident(inner)),
                        }
                    })
                    .collect(),
                span,
            },
            _ => {
                let mut inner = children(pair);
                let step = self.ident(inner.next().expect("grammar: step"));
                let attrs = inner
                    .map(|a| match a.as_rule() {
                        Rule::s_label => StepAttr::Label(self.text(children(a).next().expect("grammar: label"))),
                        Rule::s_back => StepAttr::Back(self.ident_list(a)),
                        Rule::s_cosign => StepAttr::Cosign(self.ident_list(a)),
                        Rule::s_limit => StepAttr::Limit(self.duration(children(a).next().expect("grammar: limit"))),
                        _ => StepAttr::By(self.ident(children(a).next().expect("grammar: department"))),
                    })
                    .collect();
                StepStmt::Attrs { step, attrs, span }
            }
        }
    }

    fn ident_list(&self, pair: Pair<Rule>) -> Vec<Ident> {
        children(pair).flat_map(|list| children(list)).map(|i| self.ident(i)).collect()
    }

    fn process_field(&self, pair: Pair<Rule>) -> ProcessField {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let whole = pair.clone();
        let mut inner = children(pair);
        let mut next = || inner.next().expect("grammar: process field value");
        let kind = match rule {
            Rule::p_code => ProcessFieldKind::Code(self.text(next())),
            Rule::p_window => ProcessFieldKind::Window(self.ident(next())),
            Rule::p_sla => ProcessFieldKind::Sla(self.duration(next())),
            Rule::p_visits => ProcessFieldKind::Visits(self.number(next())),
            Rule::p_eligible => {
                let expr = self.cel(next());
                let message = inner.next().map(|m| self.text(m));
                ProcessFieldKind::Eligible(EligibilityRule { expr, message })
            }
            Rule::p_flow => ProcessFieldKind::Flow(self.sequence(next())),
            Rule::p_warn => ProcessFieldKind::Warn(inner.map(|w| self.warn_rule(w)).collect()),
            Rule::p_replace => {
                let item = self.ident(next());
                ProcessFieldKind::Replace { item, with: self.ident(next()) }
            }
            other => ProcessFieldKind::Guide(self.guide_field(other, &whole)),
        };
        let keyword = self.keyword_span(&whole, kind.keyword());
        ProcessField { kind, span, keyword }
    }

    /// A field of the guide (`where "…"`, `faq "…" "…"`, …), in an item or a process.
    fn guide_field(&self, rule: Rule, pair: &Pair<Rule>) -> GuideField {
        let mut texts = children(pair.clone()).filter(|p| p.as_rule() == Rule::string).map(|p| self.text(p));
        let mut text = || texts.next().expect("grammar: a guide field's text");
        match rule {
            Rule::g_serves => GuideField::Serves(self.ident_list(pair.clone())),
            Rule::g_where => GuideField::Where(text()),
            Rule::g_hours => GuideField::Hours(text()),
            Rule::g_contact => GuideField::Contact(text()),
            Rule::g_complaint => GuideField::Complaint(text()),
            Rule::g_url => GuideField::Url(text()),
            Rule::g_faq => {
                let question = text();
                GuideField::Faq(question, text())
            }
            other => unreachable!("grammar: guide field {other:?}"),
        }
    }

    fn sequence(&self, pair: Pair<Rule>) -> Sequence {
        let span = self.span(&pair);
        Sequence { nodes: children(pair).map(|n| self.flow_node(n)).collect(), span }
    }

    fn flow_node(&self, pair: Pair<Rule>) -> FlowNode {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::item_ref => FlowNode::Item(self.ident(children(pair).next().expect("grammar: item"))),
            Rule::end_kw => FlowNode::End(span),
            Rule::parallel => FlowNode::Parallel { branches: children(pair).map(|s| self.sequence(s)).collect(), span },
            Rule::conditional => {
                let mut branches = Vec::new();
                let mut otherwise = None;
                for branch in children(pair) {
                    let rule = branch.as_rule();
                    let mut parts = children(branch);
                    if rule == Rule::if_branch {
                        let cond = self.cel(parts.next().expect("grammar: condition"));
                        let body = self.sequence(parts.next().expect("grammar: body"));
                        branches.push((cond, body));
                    } else {
                        otherwise = Some(self.sequence(parts.next().expect("grammar: else body")));
                    }
                }
                FlowNode::Conditional { branches, otherwise, span }
            }
            other => unreachable!("grammar: flow node {other:?}"),
        }
    }

    fn warn_rule(&self, pair: Pair<Rule>) -> WarnRule {
        let span = self.span(&pair);
        let mut inner = children(pair);
        let level = self.ident(inner.next().expect("grammar: level"));
        let at = match inner.next() {
            Some(p) if p.as_rule() == Rule::percent => WarnAt::PercentOfSla(self.number(p)),
            _ => WarnAt::Overdue,
        };
        WarnRule { level, at, span }
    }
}

/// The length of `text` up to the end of its last token: trailing whitespace and `//`
/// comments (outside strings) left out.
fn code_end(text: &str) -> usize {
    if !text.contains("//") {
        return text.trim_end_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}').len();
    }
    let bytes = text.as_bytes();
    let (mut i, mut end) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                end = i;
            }
            b if b.is_ascii_whitespace() => i += 1,
            _ => {
                // A whole character: multi-byte ones (including U+3000, a space) are skipped.
                let c = text[i..].chars().next().unwrap_or(' ');
                i += c.len_utf8();
                if !c.is_whitespace() && c != '\u{FEFF}' {
                    end = i;
                }
            }
        }
    }
    end
}

/// The children of a pair without the keyword tokens (`k_*`), which carry no value.
fn children(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner().filter(|p| !is_keyword(p.as_rule()))
}

fn is_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::k_import
            | Rule::k_department
            | Rule::k_data
            | Rule::k_schema
            | Rule::k_item
            | Rule::k_type
            | Rule::k_handling
            | Rule::k_supplement
            | Rule::k_produces
            | Rule::k_licence
            | Rule::k_from
            | Rule::k_shared
            | Rule::k_applicant
            | Rule::k_when
            | Rule::k_back
            | Rule::k_cosign
            | Rule::k_by
            | Rule::k_process
            | Rule::k_window
            | Rule::k_if
            | Rule::k_free
            | Rule::k_extends
            | Rule::k_replace
            | Rule::k_with
            | Rule::k_limit
            | Rule::k_serves
    )
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}
