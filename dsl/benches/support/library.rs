//! A generated flow library for benchmarks: departments with shared data sets, an applicant
//! schema, promised licensing items with fourteen materials and a step graph with returns, and
//! joint processes with parallel branches and a condition.

use std::fmt::Write as _;

/// A generated library of `processes` joint processes of ten items each, the items spread
/// over `item_files` files, as (path, text) pairs; `processes.flow` imports the rest.
/// Shared by the benchmarks of `dsl` and of the language server (`#[path]`-included).
pub fn library(processes: usize, item_files: usize) -> Vec<(String, String)> {
    let (items, files_count) = (processes * 10, item_files);
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
    let per_file = items / files_count;
    for f in 0..files_count {
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
    let mut processes_text = String::from("import \"common.flow\"\n");
    for f in 0..files_count {
        let _ = writeln!(processes_text, "import \"items{f}.flow\"");
    }
    for p in 0..processes {
        let i = |k: usize| format!("item{}", p * 10 + k);
        let _ = write!(
            processes_text,
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
    files.push(("processes.flow".to_string(), processes_text));
    files
}

pub fn write_item(text: &mut String, i: usize) {
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
