//! Parse + check + compile of a generated library: 1,000 items and 100 processes over 12
//! files (about 50,000 lines), the size of a province's whole catalogue of joint processes.
//!
//! `cargo bench -p onetrip-dsl --bench compile_library`

use std::fmt::Write as _;

// The allocator the `onetrip` binary ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dsl::{check, compile, MemoryLoader, Workspace};

const ITEMS: usize = 1_000;
const PROCESSES: usize = 100;
const FILES: usize = 10;

/// The library as (path, text) pairs; `processes.flow` imports the rest.
fn library() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut common = String::from("// Generated: departments and the applicant schema.\n");
    for d in 0..20 {
        let _ = writeln!(common, "department dept{d} \"部门{d}\" {{\n  data register{d} \"登记信息{d}\"\n}}\n");
    }
    common.push_str(
        "schema applicant {\n  name string pii(name)\n  id_number string pii(id)\n  phone string pii(phone)\n  age int\n  \
         credit_ok bool\n  income double\n  region string\n  company {\n    kind string\n    capital double\n    employees int\n  }\n}\n",
    );
    files.push(("common.flow".to_string(), common));
    let per_file = ITEMS / FILES;
    for f in 0..FILES {
        let mut text = String::from("import \"common.flow\"\n");
        // Licences come from the first item of each process, which may live in another file.
        for producer_file in 0..f {
            let _ = writeln!(text, "import \"items{producer_file}.flow\"");
        }
        for i in f * per_file..(f + 1) * per_file {
            write_item(&mut text, i);
        }
        files.push((format!("items{f}.flow"), text));
    }
    let mut processes = String::from("import \"common.flow\"\n");
    for f in 0..FILES {
        let _ = writeln!(processes, "import \"items{f}.flow\"");
    }
    for p in 0..PROCESSES {
        let i = |k: usize| format!("item{}", p * 10 + k);
        let _ = write!(
            processes,
            "\n// Joint process {p}.\nprocess process{p} \"联办{p}\" {{\n  code \"PROC{p:08}\"\n  window dept{}\n  sla 40 workdays\n  \
             visits at_most 3\n  eligible applicant.age >= 18 && applicant.credit_ok else \"不符合条件\"\n  flow {{\n    {} -> parallel {{ {} -> {}, {}, {} -> {} }}\n    \
             -> {} -> if applicant.income > 1000.0 {{ {} }} else {{ {} }} -> {}\n  }}\n  warn yellow at 75% of sla, red at overdue\n}}\n",
            p % 20,
            i(0),
            i(1),
            i(2),
            i(3),
            i(4),
            i(5),
            i(6),
            i(7),
            i(8),
            i(9),
        );
    }
    files.push(("processes.flow".to_string(), processes));
    files
}

fn write_item(text: &mut String, i: usize) {
    let first_of_process = i.is_multiple_of(10);
    let _ = write!(
        text,
        "\n// Item {i}: a promised licensing item with fourteen materials.\n// 受理条件: 申请人年满18周岁, 企业注册资本大于零, 且在本市登记; 或信用良好。\n// 办理流程: 受理、审查、(现场核查)、决定、送达或归档。\nitem item{i} \"事项{i}\" {{\n  code           \"{:012}\"\n  department     dept{}\n  \
         type           licensing\n  handling       promised\n  legal_limit    20 workdays\n  promised_limit {} workdays\n  visits         0\n  fee            free\n  \
         basis          \"《条例{i}》第十条\"\n  online         true\n  supplement     pauses_clock\n  eligible       applicant.age >= 18 && \
         applicant.company.capital > 0.0 && in_region(applicant.region, \"3301\") || applicant.credit_ok\n                 else \"申请人不符合受理条件\"\n  materials {{\n",
        i,
        i % 20,
        1 + i % 3,
    );
    for m in 0..14 {
        let source = match m {
            0 if !first_of_process => format!(" from licence item{}.licence{}", i - i % 10, i - i % 10),
            1 => format!(" from shared dept{}.register{}", (i + 1) % 20, (i + 1) % 20),
            2 => " when applicant.company.kind != \"home\" tolerated".to_string(),
            3 => " promise".to_string(),
            4 => " optional copies 2 paper".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(text, "    material{m}_{} \"材料{m}\"{source}", i % 50);
    }
    let _ = write!(
        text,
        "  }}\n  steps {{\n    accept -> review -> decide -> deliver -> end\n    review -> inspect -> decide\n    decide -> archive -> end\n    accept \"受理\"\n    archive \"归档\"\n    \
         review \"审查\" back accept\n    inspect \"现场核查\" back review\n    decide \"决定\" back review cosign dept{}\n    deliver \"送达\"\n  }}\n",
        (i + 3) % 20
    );
    if first_of_process {
        let _ = writeln!(text, "  produces licence licence{i} \"证照{i}\"");
    }
    text.push_str("}\n");
}

fn compile_library(c: &mut Criterion) {
    let files = library();
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
