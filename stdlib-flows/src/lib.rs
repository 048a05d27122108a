//! The national "one thing" (一件事) processes as a tested library.
//!
//! Every `.flow` file under `flows/` and every scenario under `scenarios/` is embedded at
//! build time. Process `P` is declared in `flows/P/P.flow`; its files import the shared
//! departments and schemas of `flows/common/`. In the flow language the library's files are
//! `@stdlib/…` paths, so a province's own file can `import "@stdlib/start_business/start_business.flow"`
//! and declare a variant of a process (`process zj_start_business "…" extends start_business`).
//!
//! This crate is pure like `dsl`: it serves text from memory and never reads the disk.

use dsl::{check, compile, Analysis, CompiledFlow, Loader, Workspace};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// How the flow language names the library's files: `@stdlib/P/P.flow`.
pub const PREFIX: &str = "@stdlib/";

/// Every file of the library, by its `@stdlib/…` path, with its text.
pub fn files() -> impl Iterator<Item = (String, &'static str)> {
    embedded::FLOW_FILES.iter().map(|(path, text)| (format!("{PREFIX}{path}"), *text))
}

/// The text of a library file given by its `@stdlib/…` path.
pub fn source(path: &str) -> Option<&'static str> {
    let relative = path.strip_prefix(PREFIX)?;
    embedded::FLOW_FILES.iter().find(|(p, _)| *p == relative).map(|(_, text)| *text)
}

/// The processes of the library, by name, sorted: every folder of `flows/` with a main file
/// named after it.
pub fn processes() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = embedded::FLOW_FILES
        .iter()
        .filter_map(|(path, _)| {
            let (folder, file) = path.split_once('/')?;
            (file.strip_suffix(".flow") == Some(folder)).then_some(folder)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The path of a process's main file, `@stdlib/P/P.flow`.
pub fn main_file(process: &str) -> String {
    format!("{PREFIX}{process}/{process}.flow")
}

/// The scenarios of a process, by path under `scenarios/`, with their text.
pub fn scenarios(process: &str) -> Vec<(&'static str, &'static str)> {
    embedded::SCENARIO_FILES
        .iter()
        .filter(|(path, _)| path.split_once('/').is_some_and(|(folder, _)| folder == process))
        .copied()
        .collect()
}

/// Serves `@stdlib/…` paths from the library and hands every other path to `inner` (the disk,
/// an editor's buffers).
pub struct StdlibLoader<L>(pub L);

impl<L: Loader> Loader for StdlibLoader<L> {
    fn read(&mut self, path: &str) -> Result<String, String> {
        match path.strip_prefix(PREFIX) {
            Some(_) => source(path).map(str::to_string).ok_or_else(|| "no such file in the stdlib".to_string()),
            None => self.0.read(path),
        }
    }
}

/// A loader that knows only the library.
pub struct LibraryOnly;

impl Loader for LibraryOnly {
    fn read(&mut self, _path: &str) -> Result<String, String> {
        Err("only `@stdlib/…` files can be read here".to_string())
    }
}

/// A process of the library, checked with everything it imports.
pub struct Checked {
    pub workspace: Workspace,
    pub analysis: Analysis,
}

/// Checks a process of the library; `None` when there is no such process.
pub fn load(process: &str) -> Option<Checked> {
    if !processes().contains(&process) {
        return None;
    }
    let workspace = Workspace::load(&[main_file(process)], &mut StdlibLoader(LibraryOnly));
    let analysis = check(&workspace);
    Some(Checked { workspace, analysis })
}

/// Why a library process cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum StdlibError {
    #[error("no process `{0}` in the stdlib")]
    Unknown(String),
    #[error("the stdlib process `{0}` has errors: run `onetrip stdlib check {0}`")]
    Invalid(String),
}

/// The compiled flow of a library process.
pub fn compiled(process: &str) -> Result<CompiledFlow, StdlibError> {
    let checked = load(process).ok_or_else(|| StdlibError::Unknown(process.to_string()))?;
    if checked.analysis.has_errors() {
        return Err(StdlibError::Invalid(process.to_string()));
    }
    compile(&checked.analysis.program, process).ok_or_else(|| StdlibError::Unknown(process.to_string()))
}
