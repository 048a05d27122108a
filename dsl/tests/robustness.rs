//! No input panics the parser, the checker, the compiler or the renderer: deep nesting gives a
//! diagnostic, and random mutations of real flow files (a bounded number of cases) run the
//! whole pipeline without a panic.

mod support;

use dsl::diagnostic::Code;
use dsl::{check, MemoryLoader, Workspace};
use proptest::prelude::*;

/// Runs every stage on one text and returns the diagnostic codes.
fn pipeline(text: &str) -> Vec<Code> {
    let mut loader = MemoryLoader::default();
    let workspace = Workspace::single("input.flow", text, &mut loader);
    let analysis = check(&workspace);
    for diagnostic in &analysis.diagnostics {
        let _ = dsl::render::render(&workspace, diagnostic, false);
        let _ = dsl::render::to_json(&workspace, diagnostic);
    }
    for process in &analysis.program.processes {
        let _ = dsl::analysis::report(&analysis.program, process);
    }
    for name in analysis.program.processes.iter().map(|p| &p.name).chain(analysis.program.items.iter().map(|i| &i.name))
    {
        if let Some(flow) = dsl::compile(&analysis.program, name) {
            let _ = dsl::graph::to_dot(&flow);
        }
    }
    let _ = dsl::fmt::format(text);
    analysis.diagnostics.iter().map(|d| d.code).collect()
}

#[test]
fn ten_thousand_nested_brackets_give_a_diagnostic() {
    let n = 10_000;
    let cases = [
        format!("item a \"A\" {{\n eligible {}1{}\n}}", "(".repeat(n), ")".repeat(n)),
        format!("item a \"A\" {{ {} }}", "{".repeat(n)),
        format!("process p \"P\" {{ flow {{ {}a{} }} }}", "parallel { ".repeat(n), " }".repeat(n)),
        format!("process p \"P\" {{ flow {{ {}a{} }} }}", "if x { ".repeat(n), " }".repeat(n)),
        format!("schema s {{ f {}int{} }}", "list<".repeat(n), ">".repeat(n)),
        format!("schema s {{ {}{} }}", "f { ".repeat(n), "}".repeat(n)),
        format!("item a \"A\" {{\n eligible {}x[0]{}\n}}", "[".repeat(n), "]".repeat(n)),
    ];
    for text in &cases {
        let codes = pipeline(text);
        assert!(codes.contains(&Code::TooDeep), "{:?} for {}…", codes, &text[..40]);
    }
}

/// Unclosed brackets below the nesting bound: a plain syntax error, found in linear time (they
/// once made the grammar backtrack exponentially, which this test would turn into a hang).
#[test]
fn unclosed_brackets_are_errors_without_backtracking() {
    for open in ["(", "[", "{", "(x, [", "('", "(\""] {
        let rule = open.repeat(40) + "applicant.age > 1";
        let text =
            format!("department d \"D\"\nitem a \"A\" {{\n department d\n handling immediate\n eligible {rule}\n}}");
        let codes = pipeline(&text);
        assert!(
            codes.iter().any(|c| matches!(c, Code::Syntax | Code::CelSyntax | Code::TooDeep)),
            "{codes:?} for {open}"
        );
    }
}

#[test]
fn long_rules_without_brackets_are_errors_not_crashes() {
    for n in [4_000, 10_000] {
        for rule in [
            "!".repeat(n) + "true",
            "1".to_string() + &" + 1".repeat(n / 4),
            "-".repeat(n) + "1",
            "a.".repeat(n / 2) + "b",
        ] {
            let text = format!(
                "department d \"D\"\nitem a \"A\" {{\n department d\n handling immediate\n eligible {rule}\n}}"
            );
            let codes = pipeline(&text);
            // Within the size limit such a rule is valid CEL; past it, a clear error.
            if rule.len() > dsl::cel::MAX_RULE_LEN {
                assert!(codes.contains(&Code::CelSyntax), "{codes:?}");
            }
        }
    }
}

/// Every `.flow` file of the fixtures and the examples: the seeds for mutation, read once.
fn seeds() -> &'static [String] {
    static SEEDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| support::flow_files().into_iter().map(|(_, text)| text).collect())
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Duplicate { at: usize, len: usize },
    Swap { a: usize, b: usize },
}

/// Tokens that matter to the grammar, to make mutations that get past the first error.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "<",
    ">",
    "\"",
    "'",
    "->",
    ",",
    ".",
    "//",
    "\n",
    " ",
    "end",
    "parallel",
    "if",
    "else",
    "item",
    "process",
    "department",
    "schema",
    "import",
    "workdays",
    "from",
    "licence",
    "shared",
    "when",
    "back",
    "cosign",
    "by",
    "pii(",
    "list<",
    "&&",
    "||",
    "!",
    "0",
    "99999999999",
    "名",
    "\u{3000}",
    "\\",
    "%",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(at, t)| Mutation::Insert { at, text: t.to_string() }),
        (any::<usize>(), "[\\PC]{1,8}").prop_map(|(at, text)| Mutation::Insert { at, text }),
        (any::<usize>(), 1usize..200).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap { a, b }),
    ]
}

/// Applies a mutation at character positions, so the text stays valid UTF-8.
fn apply(text: &str, mutation: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len().max(1);
    let mut out = chars.clone();
    match mutation {
        Mutation::Delete { at, len } => {
            let at = at % n;
            out.drain(at.min(out.len())..(at + len).min(out.len()));
        }
        Mutation::Insert { at, text } => {
            let at = at % (chars.len() + 1);
            out.splice(at..at, text.chars());
        }
        Mutation::Duplicate { at, len } => {
            let at = at % n;
            let piece: Vec<char> = chars[at.min(chars.len())..(at + len).min(chars.len())].to_vec();
            out.splice(at.min(out.len())..at.min(out.len()), piece);
        }
        Mutation::Swap { a, b } => {
            if !out.is_empty() {
                let (a, b) = (a % out.len(), b % out.len());
                out.swap(a, b);
            }
        }
    }
    out.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_flow_files_never_panic(seed in any::<prop::sample::Index>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let seeds = seeds();
        prop_assume!(!seeds.is_empty());
        let mut text = seeds[seed.index(seeds.len())].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        pipeline(&text);
    }
}
