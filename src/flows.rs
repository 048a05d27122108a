//! The flow commands: check, fmt, graph, report, compile.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dsl::diagnostic::count;
use dsl::{check, compile, render, Analysis, Loader, Workspace};
use stdlib_flows::StdlibLoader;

/// Reads files from disk for the pure core (`@stdlib/…` paths come from the embedded library).
pub struct FsLoader;

impl Loader for FsLoader {
    fn read(&mut self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

/// Expands folders to the `.flow` files in them, sorted.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<String>, String> {
    expand_to(paths, "flow")
}

/// Expands folders to the files in them with the extension given, sorted.
pub fn expand_to(paths: &[PathBuf], extension: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read folder `{}`: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == extension))
                .collect();
            files.sort();
            out.extend(files.iter().map(|p| p.to_string_lossy().into_owned()));
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// One root file checked with everything it imports (the stdlib's processes are the same).
pub use stdlib_flows::Checked;

/// Checks each root file as its own program: a file sees what it declares and what it
/// imports, so two independent flows given together do not clash.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Checked>, String> {
    let roots = expand(paths)?;
    Ok(roots
        .iter()
        .map(|root| {
            let workspace = Workspace::load(std::slice::from_ref(root), &mut StdlibLoader(FsLoader));
            let analysis = check(&workspace);
            Checked { workspace, analysis }
        })
        .collect())
}

pub fn same_json(a: &render::JsonDiagnostic, b: &render::JsonDiagnostic) -> bool {
    (&a.code, &a.path, a.line, a.column, &a.message) == (&b.code, &b.path, b.line, b.column, &b.message)
}

/// Prints every diagnostic once, even when several roots import the file it is in.
pub fn print_diagnostics(programs: &[Checked]) {
    use std::io::IsTerminal;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut printed: Vec<String> = Vec::new();
    let (mut errors, mut warnings) = (0, 0);
    let mut files: Vec<&str> = Vec::new();
    for checked in programs {
        files.extend(checked.workspace.files.iter().map(|f| f.path.as_str()));
        for diagnostic in &checked.analysis.diagnostics {
            let text = render::render(&checked.workspace, diagnostic, color);
            if printed.contains(&text) {
                continue;
            }
            eprintln!("{text}\n");
            printed.push(text);
            if diagnostic.is_error() {
                errors += 1;
            } else {
                warnings += 1;
            }
        }
    }
    files.sort_unstable();
    files.dedup();
    if errors + warnings > 0 {
        eprintln!(
            "{}, {} in {}",
            count(errors, "error", "errors"),
            count(warnings, "warning", "warnings"),
            count(files.len(), "file", "files")
        );
    }
}

/// The checked program of the first root that declares `name`; prints its diagnostics and
/// returns `None` when it has errors.
pub fn program_declaring(name: &str, files: &[PathBuf]) -> Result<Option<Checked>, String> {
    let programs = load(files)?;
    let found = programs
        .into_iter()
        .find(|c| c.analysis.program.process(name).is_some() || c.analysis.program.item(name).is_some());
    let Some(checked) = found else { return Err(format!("no process or item `{name}` in these files")) };
    if checked.analysis.has_errors() {
        print_diagnostics(std::slice::from_ref(&checked));
        return Ok(None);
    }
    Ok(Some(checked))
}

/// Checks, then compiles `name`; prints diagnostics and returns `None` on errors.
pub fn compiled(name: &str, files: &[PathBuf]) -> Result<Option<dsl::CompiledFlow>, String> {
    let Some(checked) = program_declaring(name, files)? else { return Ok(None) };
    compile(&checked.analysis.program, name)
        .map(Some)
        .ok_or_else(|| format!("no process or item `{name}` in these files"))
}

pub fn format_files(paths: &[PathBuf], check_only: bool) -> Result<ExitCode, String> {
    let mut failed = false;
    for path in expand(paths)? {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        match dsl::fmt::format(&text) {
            Ok(formatted) if formatted == text => {}
            Ok(_) if check_only => {
                println!("{path}: not formatted");
                failed = true;
            }
            Ok(formatted) => write_atomically(Path::new(&path), &formatted)?,
            Err(_) => {
                // Do not format a file that does not parse: show why instead.
                let workspace = Workspace::single(&path, &text, &mut StdlibLoader(FsLoader));
                let analysis = Analysis { diagnostics: workspace.diagnostics.clone(), ..Analysis::default() };
                print_diagnostics(&[Checked { workspace, analysis }]);
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("flow.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace `{}`: {e}", path.display()))
}

/// Pads to a display width: CJK characters take two columns.
fn pad(text: &str, width: usize) -> String {
    let used = unicode_width::UnicodeWidthStr::width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(used)))
}

pub fn report_table(report: &dsl::analysis::Report) -> String {
    let sla = report.sla.map_or_else(|| "—".to_string(), |d| d.to_string());
    let bound = report.trips_bound.map_or_else(|| "—".to_string(), |d| d.to_string());
    let path: Vec<String> = report.critical_path.iter().map(|(n, d)| format!("{n} ({d})")).collect();
    let asked: Vec<&str> = report.asked.iter().map(|(_, title)| title.as_str()).collect();
    let rows = [
        ("items 事项", report.items.to_string(), String::new()),
        ("departments 部门", report.departments.len().to_string(), report.departments.join(", ")),
        ("steps 环节", report.steps.to_string(), String::new()),
        (
            "materials 材料",
            format!("{} asked of {}", report.materials_asked, report.materials_total),
            format!(
                "{} from shared data, {} from licences, {} removed",
                report.materials_from_shared_data,
                report.materials_from_licences,
                count(
                    report.materials_total
                        - report.materials_from_shared_data
                        - report.materials_from_licences
                        - report.materials_asked,
                    "duplicate",
                    "duplicates"
                )
            ),
        ),
        (
            "working days 工作日",
            format!("{} (SLA {sla})", report.days),
            match report.legal_days_separately {
                Some(legal) => format!("{} one by one; legal limits {legal}", report.days_separately),
                None => format!("{} one by one", report.days_separately),
            },
        ),
        ("critical path", path.join(" → "), String::new()),
        (
            "trips 跑动次数",
            format!("{} (bound {bound})", report.trips),
            format!("{} one by one", report.trips_separately),
        ),
    ];
    let mut out = format!("{} {}\n", report.process, report.title);
    for (name, value, note) in rows {
        let line = format!("  {} {} {note}", pad(name, 22), pad(&value, 26));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if !asked.is_empty() {
        out.push_str(&format!("  asked once: {}\n", asked.join("、")));
    }
    out
}

/// One row per process: the figures of `onetrip stdlib report`.
pub fn summary_table(reports: &[dsl::analysis::Report]) -> String {
    let header = ["process", "一件事", "items", "depts", "steps", "materials", "days", "SLA", "trips"];
    let mut rows: Vec<[String; 9]> = vec![header.map(str::to_string)];
    for r in reports {
        rows.push([
            r.process.clone(),
            r.title.clone(),
            r.items.to_string(),
            r.departments.len().to_string(),
            r.steps.to_string(),
            format!("{}/{}", r.materials_asked, r.materials_total),
            r.days.to_string(),
            r.sla.map_or_else(|| "—".to_string(), |d| d.to_string()),
            format!("{}/{}", r.trips, r.trips_bound.map_or_else(|| "—".to_string(), |d| d.to_string())),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| unicode_width::UnicodeWidthStr::width(r[c].as_str())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| pad(cell, *w)).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(
        "materials: asked of the applicant / listed by the items; days: promised working days on the critical path;\n",
    );
    out.push_str("trips: on-site visits / the bound the process promises\n");
    out
}

/// `onetrip guide`: the guide of `name` in `format`, to standard output or into `out`.
pub fn guide(
    name: &str,
    files: &[PathBuf],
    format: crate::GuideFormat,
    out: Option<&Path>,
) -> Result<ExitCode, String> {
    let Some(checked) = program_declaring(name, files)? else { return Ok(ExitCode::FAILURE) };
    let guide = guide::guide(&checked.analysis.program, name)
        .ok_or_else(|| format!("no process or item `{name}` in these files"))?;
    let (text, extension) = match format {
        crate::GuideFormat::Md => (guide::markdown::render(&guide), "md"),
        crate::GuideFormat::Json => (serde_json::to_string_pretty(&guide).map_err(|e| e.to_string())? + "\n", "json"),
        crate::GuideFormat::Html => {
            let folder = out.ok_or("`--format html` writes a site: give its folder with `--out DIR`")?;
            let mut site = guide::html::Site::default();
            site.add(&checked.analysis.program, name);
            write_site(folder, site.finish("办事指南"))?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    match out {
        None => print!("{text}"),
        Some(folder) => {
            create_folder(folder)?;
            let path = folder.join(format!("{name}.{extension}"));
            std::fs::write(&path, text).map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn create_folder(folder: &Path) -> Result<(), String> {
    std::fs::create_dir_all(folder).map_err(|e| format!("cannot create the folder `{}`: {e}", folder.display()))
}

/// Writes the pages of a guide site under `folder`.
pub fn write_site(folder: &Path, pages: Vec<guide::html::Page>) -> Result<(), String> {
    for page in &pages {
        let path = folder.join(&page.path);
        if let Some(parent) = path.parent() {
            create_folder(parent)?;
        }
        std::fs::write(&path, &page.html).map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    }
    eprintln!("wrote {} pages under {} (open index.html)", pages.len(), folder.display());
    Ok(())
}

/// `onetrip items`: every item of the files, once, in the order written.
pub fn items(files: &[PathBuf], format: crate::ItemsFormat) -> Result<ExitCode, String> {
    let programs = load(files)?;
    if programs.iter().any(|c| c.analysis.has_errors()) {
        print_diagnostics(&programs);
        return Ok(ExitCode::FAILURE);
    }
    let mut rows: Vec<guide::items::ItemRow> = Vec::new();
    for checked in &programs {
        let program = &checked.analysis.program;
        for item in &program.items {
            if !rows.iter().any(|r| r.name == item.name) {
                rows.push(guide::items::row(program, item));
            }
        }
    }
    match format {
        crate::ItemsFormat::Csv => print!("{}", guide::items::csv(&rows).map_err(|e| e.to_string())?),
        crate::ItemsFormat::Json => println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?),
    }
    Ok(ExitCode::SUCCESS)
}

/// `onetrip notice`: the 一次告知 of `name` for the applicant whose data is in `facts`.
pub fn notice(name: &str, files: &[PathBuf], facts: &Path, format: crate::GuideFormat) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(facts).map_err(|e| format!("cannot read `{}`: {e}", facts.display()))?;
    // Only the position of a syntax error is shown: the file holds personal data.
    let data: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("`{}` is not JSON (line {}, column {})", facts.display(), e.line(), e.column()))?;
    let serde_json::Value::Object(data) = data else {
        return Err(format!("`{}` must hold a JSON object: the value of each schema by name", facts.display()));
    };
    let Some(checked) = program_declaring(name, files)? else { return Ok(ExitCode::FAILURE) };
    let calendar = std::sync::Arc::new(calendar::Calendar::official());
    // Government service days are Beijing days.
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let facts = rules::Facts { data, today: Some(today), ..rules::Facts::default() };
    let notice = guide::notice::notice(&checked.analysis.program, name, &facts, calendar).map_err(|e| e.to_string())?;
    match format {
        crate::GuideFormat::Md => print!("{}", guide::markdown::notice(&notice)),
        crate::GuideFormat::Json => println!("{}", serde_json::to_string_pretty(&notice).map_err(|e| e.to_string())?),
        crate::GuideFormat::Html => print!("{}", guide::html::notice(&notice)),
    }
    Ok(ExitCode::SUCCESS)
}
