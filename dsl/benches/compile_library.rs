//! Parse + check + compile of a generated library: 1,000 items and 100 processes over 12
//! files (about 50,000 lines), the size of a province's whole catalogue of joint processes.
//!
//! `cargo bench -p onetrip-dsl --bench compile_library`

// The allocator the `onetrip` binary ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dsl::{check, compile, MemoryLoader, Workspace};

const ITEMS: usize = 1_000;
const PROCESSES: usize = 100;
const FILES: usize = 10;

#[path = "support/library.rs"]
mod library;

fn compile_library(c: &mut Criterion) {
    let files = library::library(PROCESSES, FILES);
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let lines: usize = files.iter().map(|(_, t)| t.lines().count()).sum();
    let mut loader = MemoryLoader::new(files);
    // The library must be sound, or the benchmark measures error paths.
    let workspace = Workspace::load(&["processes.flow".to_string()], &mut loader);
    let analysis = check(&workspace);
    assert!(analysis.diagnostics.is_empty(), "{:?}", analysis.diagnostics.first());
    assert_eq!((analysis.program.items.len(), analysis.program.processes.len()), (ITEMS, PROCESSES));
    eprintln!("library: {ITEMS} items, {PROCESSES} processes, {lines} lines, {bytes} bytes");

    let mut group = c.benchmark_group("library");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function("parse+check+compile", |b| {
        b.iter(|| {
            let workspace = Workspace::load(&["processes.flow".to_string()], &mut loader);
            let analysis = check(&workspace);
            let versions: Vec<String> = analysis
                .program
                .processes
                .iter()
                .filter_map(|p| compile(&analysis.program, &p.name))
                .map(|f| f.version)
                .collect();
            assert_eq!(versions.len(), PROCESSES);
            versions
        })
    });
    group.bench_function("parse", |b| b.iter(|| Workspace::load(&["processes.flow".to_string()], &mut loader)));
    group.finish();
}

criterion_group!(benches, compile_library);
criterion_main!(benches);
