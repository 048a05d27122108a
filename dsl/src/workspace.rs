//! A set of flow files and their imports.
//!
//! The crate does no I/O: a [`Loader`] supplied by the caller reads files. Paths are plain
//! strings joined and normalised here (`import "x.flow"` is relative to the importing file),
//! so the same workspace can live on disk, in an editor's memory or in a test. A path that
//! starts with `@name/` belongs to a library the loader serves (`@stdlib/…`, the national
//! processes): it is never joined with the importing file's folder.

use std::collections::{BTreeMap, HashMap};

use crate::diagnostic::{Code, Diagnostic};
use crate::span::{FileId, Span};
use crate::syntax::ast::{Decl, File};
use crate::syntax::{self, Parsed};

/// Reads the text of a file by its normalised path.
pub trait Loader {
    fn read(&mut self, path: &str) -> Result<String, String>;
}

/// A loader over files held in memory, for tests, editors and embedded libraries.
#[derive(Debug, Default, Clone)]
pub struct MemoryLoader {
    pub files: BTreeMap<String, String>,
}

impl MemoryLoader {
    pub fn new<P: Into<String>, T: Into<String>>(files: impl IntoIterator<Item = (P, T)>) -> Self {
        MemoryLoader { files: files.into_iter().map(|(p, t)| (normalize(&p.into()), t.into())).collect() }
    }
}

impl Loader for MemoryLoader {
    fn read(&mut self, path: &str) -> Result<String, String> {
        self.files.get(path).cloned().ok_or_else(|| "no such file".to_string())
    }
}

/// One file of the workspace: its path, text, syntax tree and syntax diagnostics.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub id: FileId,
    pub path: String,
    pub text: String,
    pub tree: File,
    /// Files this file imports, resolved (a file that could not be read is left out).
    pub imports: Vec<FileId>,
}

/// Every file reachable from the roots, each parsed once.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    pub files: Vec<SourceFile>,
    /// Syntax and import diagnostics, in file order.
    pub diagnostics: Vec<Diagnostic>,
    by_path: HashMap<String, FileId>,
}

impl Workspace {
    /// Loads the root files and, transitively, everything they import.
    pub fn load(roots: &[String], loader: &mut dyn Loader) -> Workspace {
        Workspace::reload(roots, loader, None)
    }

    /// Like [`Workspace::load`], reusing the syntax trees of `previous` for files whose text
    /// has not changed: an editor re-checks after each keystroke, and only one file changed.
    pub fn reload(roots: &[String], loader: &mut dyn Loader, previous: Option<&Workspace>) -> Workspace {
        let mut workspace = Workspace::default();
        for root in roots {
            let path = normalize(root);
            if workspace.by_path.contains_key(&path) {
                continue;
            }
            match loader.read(&path) {
                Ok(text) => {
                    workspace.add(path, text, loader, previous);
                }
                Err(reason) => workspace.diagnostics.push(
                    Diagnostic::new(
                        Code::ImportNotFound,
                        FileId(u32::MAX),
                        Span::default(),
                        format!("cannot read `{path}`: {reason}"),
                    )
                    .label("file not read"),
                ),
            }
        }
        workspace
    }

    /// A workspace of one file given as text, following its imports through `loader`.
    pub fn single(path: &str, text: &str, loader: &mut dyn Loader) -> Workspace {
        let mut workspace = Workspace::default();
        workspace.add(normalize(path), text.to_string(), loader, None);
        workspace
    }

    pub fn file(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn file_by_path(&self, path: &str) -> Option<&SourceFile> {
        self.by_path.get(&normalize(path)).and_then(|&id| self.file(id))
    }

    /// Adds a file and, depth first, the files it imports.
    fn add(&mut self, path: String, text: String, loader: &mut dyn Loader, previous: Option<&Workspace>) -> FileId {
        let id = FileId(self.files.len() as u32);
        let unchanged = previous.and_then(|p| p.file_by_path(&path).map(|f| (p, f))).filter(|(_, f)| f.text == text);
        let tree = match unchanged {
            Some((previous, file)) => {
                // The same text parses to the same tree and syntax diagnostics.
                let moved = |location: &mut crate::span::Location| location.file = id;
                let syntax = |d: &&Diagnostic| d.location.file == file.id && d.code != Code::ImportNotFound;
                for diagnostic in previous.diagnostics.iter().filter(syntax) {
                    let mut diagnostic = diagnostic.clone();
                    moved(&mut diagnostic.location);
                    diagnostic.secondary.iter_mut().for_each(|l| moved(&mut l.location));
                    self.diagnostics.push(diagnostic);
                }
                file.tree.clone()
            }
            None => {
                let Parsed { file: tree, diagnostics } = syntax::parse(id, &text);
                self.diagnostics.extend(diagnostics);
                tree
            }
        };
        let import_decls: Vec<(String, Span)> = tree
            .decls
            .iter()
            .filter_map(|d| match d {
                Decl::Import(import) => Some((import.path.value.clone(), import.path.span)),
                _ => None,
            })
            .collect();
        self.by_path.insert(path.clone(), id);
        self.files.push(SourceFile { id, path: path.clone(), text, tree, imports: Vec::new() });
        let mut imports = Vec::new();
        for (relative, span) in import_decls {
            let target = join(&path, &relative);
            if let Some(&existing) = self.by_path.get(&target) {
                imports.push(existing);
                continue;
            }
            match loader.read(&target) {
                Ok(text) => imports.push(self.add(target, text, loader, previous)),
                Err(reason) => self.diagnostics.push(
                    Diagnostic::new(Code::ImportNotFound, id, span, format!("cannot import `{relative}`: {reason}"))
                        .label(format!("looked for `{target}`"))
                        .help("import paths are relative to the importing file"),
                ),
            }
        }
        self.files[id.0 as usize].imports = imports;
        id
    }

    /// Files with those they import first (a post-order walk from each file in load order),
    /// so that "declared first" means "declared in the imported file".
    pub fn dependency_order(&self) -> Vec<FileId> {
        let mut order = Vec::with_capacity(self.files.len());
        let mut state = vec![0u8; self.files.len()]; // 0 new, 1 on the stack, 2 done
        for root in 0..self.files.len() {
            let mut stack = vec![(root, 0usize)];
            while let Some((file, next_import)) = stack.pop() {
                if next_import == 0 {
                    if state[file] != 0 {
                        continue;
                    }
                    state[file] = 1;
                }
                match self.files[file].imports.get(next_import) {
                    Some(import) => {
                        stack.push((file, next_import + 1));
                        let import = import.0 as usize;
                        if state[import] == 0 {
                            stack.push((import, 0));
                        }
                    }
                    None => {
                        state[file] = 2;
                        order.push(FileId(file as u32));
                    }
                }
            }
        }
        order
    }

    /// For each file, the files whose declarations it can see: itself and its imports,
    /// transitively.
    pub fn visibility(&self) -> Vec<Vec<bool>> {
        let n = self.files.len();
        let mut visible = vec![vec![false; n]; n];
        for (start, row) in visible.iter_mut().enumerate() {
            let mut stack = vec![start];
            while let Some(file) = stack.pop() {
                if std::mem::replace(&mut row[file], true) {
                    continue;
                }
                stack.extend(self.files[file].imports.iter().map(|id| id.0 as usize));
            }
        }
        visible
    }
}

/// `dir/of/importer` + `relative`, normalised.
pub fn join(importer: &str, relative: &str) -> String {
    // `/…` is absolute; `@library/…` names a file of a library the loader provides (the
    // stdlib is `@stdlib/…`), wherever the importing file is.
    if relative.starts_with('/') || relative.starts_with('@') {
        return normalize(relative);
    }
    match importer.rfind('/') {
        Some(slash) => normalize(&format!("{}/{}", &importer[..slash], relative)),
        None => normalize(relative),
    }
}

/// The import path that `importer` writes to reach `target` (the inverse of [`join`]):
/// relative when both are on the same side (relative paths, or absolute ones), else `target`.
pub fn relative(importer: &str, target: &str) -> String {
    let (importer, target) = (normalize(importer), normalize(target));
    if target.starts_with('@') || importer.starts_with('/') != target.starts_with('/') || importer.starts_with('@') {
        return target;
    }
    let from: Vec<&str> = importer.split('/').collect();
    let from = &from[..from.len() - 1];
    let to: Vec<&str> = target.split('/').collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if from[common..].contains(&"..") {
        return target;
    }
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

/// Removes `.` segments, folds `..` where possible and doubles slashes.
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_relative_to_the_importer() {
        assert_eq!(join("examples/a/process.flow", "items.flow"), "examples/a/items.flow");
        assert_eq!(join("examples/a/process.flow", "../shared/d.flow"), "examples/shared/d.flow");
        assert_eq!(join("process.flow", "./x.flow"), "x.flow");
        assert_eq!(join("/abs/p.flow", "../../x.flow"), "/x.flow");
        assert_eq!(join("province/zj.flow", "@stdlib/newborn/newborn.flow"), "@stdlib/newborn/newborn.flow");
        assert_eq!(join("@stdlib/newborn/newborn.flow", "../common/person.flow"), "@stdlib/common/person.flow");
        assert_eq!(normalize("../a/./b//c.flow"), "../a/b/c.flow");
    }

    #[test]
    fn reloading_reuses_unchanged_trees_and_gives_the_same_diagnostics() {
        let mut loader = MemoryLoader::new([
            ("p.flow", "import \"d.flow\"\nimport \"gone.flow\"\nitem x \"X\" { department ??? }"),
            ("d.flow", "department a \"A\"\nitem broken {"),
        ]);
        let first = Workspace::load(&["p.flow".into()], &mut loader);
        loader
            .files
            .insert("p.flow".into(), "import \"d.flow\"\nimport \"gone.flow\"\nitem y \"Y\" { department ??? }".into());
        let fresh = Workspace::load(&["p.flow".into()], &mut loader);
        let reloaded = Workspace::reload(&["p.flow".into()], &mut loader, Some(&first));
        assert_eq!(reloaded.diagnostics, fresh.diagnostics);
        assert_eq!(reloaded.files.len(), fresh.files.len());
        assert!(reloaded.diagnostics.iter().filter(|d| d.code == Code::ImportNotFound).count() == 1);
    }

    #[test]
    fn relative_paths_invert_join() {
        for (importer, target) in [
            ("examples/a/process.flow", "examples/a/items.flow"),
            ("examples/a/process.flow", "examples/shared/d.flow"),
            ("process.flow", "x.flow"),
            ("a/b/c.flow", "d.flow"),
            ("/abs/p.flow", "/x.flow"),
            ("province/zj.flow", "@stdlib/newborn/newborn.flow"),
        ] {
            assert_eq!(join(importer, &relative(importer, target)), target, "{importer} -> {target}");
        }
        assert_eq!(relative("examples/a/process.flow", "examples/shared/d.flow"), "../shared/d.flow");
    }

    #[test]
    fn imports_are_loaded_once_and_missing_ones_reported() {
        let mut loader = MemoryLoader::new([
            ("p.flow", "import \"d.flow\"\nimport \"e.flow\"\nimport \"missing.flow\""),
            ("d.flow", "department a \"A\""),
            ("e.flow", "import \"d.flow\""),
        ]);
        let ws = Workspace::load(&["p.flow".into()], &mut loader);
        assert_eq!(ws.files.len(), 3);
        assert_eq!(ws.diagnostics.len(), 1);
        assert_eq!(ws.diagnostics[0].code, Code::ImportNotFound);
        assert_eq!(ws.dependency_order(), [FileId(1), FileId(2), FileId(0)]);
        let visible = ws.visibility();
        assert!(visible[0].iter().all(|&v| v));
        assert!(!visible[1][0]);
    }
}
