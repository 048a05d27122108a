//! The files the server knows and how they are checked.
//!
//! A *unit* is what `onetrip check FILE` checks: a root file with everything it imports. The
//! roots are the files of the workspace folders (and the open files) that no other file
//! imports, so that two independent flows in one folder do not clash, exactly as on the
//! command line; a file imported by several roots is checked in each, and its diagnostics
//! are merged. An edit re-checks only the units holding the edited file.
//!
//! Open buffers take precedence over the disk (unsaved edits and imports agree); `@stdlib/…`
//! comes from the embedded library.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use dsl::ide::Snapshot;
use dsl::{Loader, Workspace};
use stdlib_flows::StdlibLoader;

/// One root and everything it imports, checked.
pub struct Unit {
    pub roots: Vec<String>,
    pub snapshot: Snapshot,
}

impl Unit {
    pub fn contains(&self, path: &str) -> bool {
        self.snapshot.workspace.file_by_path(path).is_some()
    }
}

#[derive(Default)]
pub struct Project {
    /// Workspace folders, absolute.
    pub folders: Vec<PathBuf>,
    /// `.flow` files found in the folders.
    disk: BTreeSet<String>,
    /// Open buffers by path: text and version.
    pub open: HashMap<String, (String, i32)>,
    pub units: Vec<Unit>,
}

/// Reads open buffers first, then the embedded library, then the disk.
pub struct Overlay<'a> {
    pub open: &'a HashMap<String, (String, i32)>,
}

impl Loader for Overlay<'_> {
    fn read(&mut self, path: &str) -> Result<String, String> {
        if let Some((text, _)) = self.open.get(path) {
            return Ok(text.clone());
        }
        StdlibLoader(Disk).read(path)
    }
}

struct Disk;

impl Loader for Disk {
    fn read(&mut self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

impl Project {
    /// Finds the `.flow` files of the folders again (on start, and when files are created,
    /// deleted or renamed).
    pub fn scan(&mut self) {
        self.disk.clear();
        for folder in self.folders.clone() {
            walk(&folder, &mut self.disk, 0);
        }
    }

    /// Every file a root may be chosen from: the folders' files and the open ones.
    fn candidates(&self) -> BTreeSet<String> {
        self.disk.iter().cloned().chain(self.open.keys().cloned()).filter(|p| !p.starts_with('@')).collect()
    }

    /// Rebuilds every unit.
    pub fn rebuild(&mut self) {
        let candidates: Vec<String> = self.candidates().into_iter().collect();
        let everything = Workspace::load(&candidates, &mut Overlay { open: &self.open });
        let mut imported: BTreeSet<&str> = BTreeSet::new();
        for file in &everything.files {
            for &target in &file.imports {
                if let Some(target) = everything.file(target) {
                    if target.path != file.path {
                        imported.insert(target.path.as_str());
                    }
                }
            }
        }
        let mut roots: Vec<String> = candidates.iter().filter(|p| !imported.contains(p.as_str())).cloned().collect();
        // Files only reachable through an import cycle: the first of each cycle is a root.
        let mut covered: BTreeSet<String> = BTreeSet::new();
        self.units.clear();
        for root in std::mem::take(&mut roots) {
            self.push_unit(vec![root], &mut covered, &everything);
        }
        for candidate in &candidates {
            if !covered.contains(candidate) {
                self.push_unit(vec![candidate.clone()], &mut covered, &everything);
            }
        }
    }

    /// Adds the unit of `roots`, reusing the syntax trees parsed for the whole folder.
    fn push_unit(&mut self, roots: Vec<String>, covered: &mut BTreeSet<String>, parsed: &Workspace) {
        let workspace = Workspace::reload(&roots, &mut Overlay { open: &self.open }, Some(parsed));
        covered.extend(workspace.files.iter().map(|f| f.path.clone()));
        self.units.push(Unit { roots, snapshot: Snapshot::new(workspace) });
    }

    /// Re-checks the units that hold `path`. Returns false when the file's place among the
    /// units may have changed (it is in none, or its imports changed): then call `rebuild`.
    pub fn recheck(&mut self, path: &str) -> bool {
        let mut found = false;
        for unit in &mut self.units {
            let Some(old) = unit.snapshot.workspace.file_by_path(path) else { continue };
            found = true;
            let old_imports: Vec<String> = imports_of(&unit.snapshot.workspace, old);
            let workspace =
                Workspace::reload(&unit.roots, &mut Overlay { open: &self.open }, Some(&unit.snapshot.workspace));
            let new_imports = workspace.file_by_path(path).map(|f| imports_of(&workspace, f)).unwrap_or_default();
            if new_imports != old_imports {
                return false;
            }
            unit.snapshot = Snapshot::new(workspace);
        }
        found
    }

    /// The units holding a file.
    pub fn units_of(&self, path: &str) -> Vec<&Unit> {
        self.units.iter().filter(|u| u.contains(path)).collect()
    }

    /// The unit answering questions about a file: the first holding it.
    pub fn unit_of(&self, path: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.contains(path))
    }

    /// Every file of every unit, with the diagnostics located in it (merged across units).
    pub fn diagnostics(&self) -> BTreeMap<String, Vec<(&Snapshot, &dsl::Diagnostic)>> {
        let mut out: BTreeMap<String, Vec<(&Snapshot, &dsl::Diagnostic)>> = BTreeMap::new();
        for unit in &self.units {
            let snapshot = &unit.snapshot;
            for file in &snapshot.workspace.files {
                out.entry(file.path.clone()).or_default();
            }
            for d in &snapshot.analysis.diagnostics {
                let Some(file) = snapshot.workspace.file(d.location.file) else { continue };
                let list = out.entry(file.path.clone()).or_default();
                let duplicate = list.iter().any(|(_, seen)| {
                    seen.code == d.code && seen.location.span == d.location.span && seen.message == d.message
                });
                if !duplicate {
                    list.push((snapshot, d));
                }
            }
        }
        out
    }
}

fn imports_of(workspace: &Workspace, file: &dsl::SourceFile) -> Vec<String> {
    file.imports.iter().filter_map(|&id| workspace.file(id)).map(|f| f.path.clone()).collect()
}

/// Collects `.flow` files under a folder, skipping hidden folders, `target` and
/// `node_modules`, and not following deeper than 16 levels.
fn walk(folder: &Path, out: &mut BTreeSet<String>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                walk(&path, out, depth + 1);
            }
        } else if name.ends_with(".flow") {
            out.insert(dsl::workspace::normalize(&path.to_string_lossy()));
        }
    }
}
