//! `onetrip guide`, `onetrip stdlib guide` and `onetrip items` end to end, and the guide site in
//! a real browser: Debian's headless Chromium renders the stdlib's site with its flow charts
//! and prints a guide page to PDF on A4 paper.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn onetrip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onetrip"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("onetrip runs")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onetrip-guide-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const EXAMPLE: &str = "examples/start-business/start_business.flow";

#[test]
fn the_guide_of_the_example_in_markdown_and_json() {
    let markdown = stdout(&onetrip(&["guide", "start_business", EXAMPLE]));
    assert!(markdown.starts_with("# 开办企业一件事 办事指南"));
    assert!(markdown.contains("# 企业设立登记 办事指南"), "each item's guide follows");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&onetrip(&["guide", "start_business", EXAMPLE, "--format", "json"])))
            .expect("JSON");
    assert_eq!(json["process"]["sla"], 1);
    assert_eq!(json["items"][0]["name"], "company_registration");
    insta::assert_snapshot!("example_start_business.md", markdown);
    insta::assert_snapshot!("example_start_business.json", serde_json::to_string_pretty(&json).expect("json"));
    // One item alone.
    let item = stdout(&onetrip(&["guide", "seal_filing", EXAMPLE]));
    assert!(item.starts_with("# 印章刻制备案 办事指南"));
}

#[test]
fn bad_requests_for_a_guide_say_what_is_wrong() {
    let unknown = onetrip(&["guide", "no_such_process", EXAMPLE]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no process or item `no_such_process`"));
    let no_folder = onetrip(&["guide", "start_business", EXAMPLE, "--format", "html"]);
    assert_eq!(no_folder.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_folder.stderr).contains("--out DIR"));
    // A folder that cannot be made: under a regular file.
    let file = scratch("file");
    std::fs::write(&file, "not a folder").expect("writes");
    let blocked = file.join("site");
    let refused =
        onetrip(&["guide", "start_business", EXAMPLE, "--format", "html", "--out", &blocked.to_string_lossy()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot create the folder"));
    let _ = std::fs::remove_file(&file);
}

#[test]
fn the_item_list_as_csv_and_json() {
    let csv = stdout(&onetrip(&["items", EXAMPLE]));
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    assert_eq!(lines.next().map(|h| h.split(',').count()), Some(12), "the header");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 7, "one row per item of the example");
    assert!(rows[0].starts_with("11330100002490013X1000107002000,company_registration,企业设立登记,行政许可,市场监督管理局,承诺件,3,1,0,不收费,是,"));
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&onetrip(&["items", EXAMPLE, "--format", "json"]))).expect("JSON");
    assert_eq!(json.as_array().map(Vec::len), Some(7));
    assert_eq!(json[0]["promised_limit"], 1);
}

fn chromium() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("no chromium: `scripts/install-test-deps` installs Debian's chromium and fonts-noto-cjk")
}

fn headless(site: &Path, args: &[&str], page: &str) -> Output {
    let profile = site.join(".profile");
    Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", site.join(page).display()))
        .output()
        .expect("chromium runs")
}

/// Pages of a PDF and the size of the first, in points.
fn pdf_pages(pdf: &[u8]) -> (usize, Option<(f64, f64)>) {
    let text = String::from_utf8_lossy(pdf);
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    let size = text.split("/MediaBox [").nth(1).and_then(|rest| {
        let numbers: Vec<f64> = rest.split(']').next()?.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        (numbers.len() == 4).then(|| (numbers[2] - numbers[0], numbers[3] - numbers[1]))
    });
    (pages, size)
}

#[test]
fn the_stdlib_guide_site_renders_in_chromium_and_prints_on_a4() {
    let site = scratch("site");
    let made = onetrip(&["stdlib", "guide", "--out", &site.to_string_lossy()]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let index = std::fs::read_to_string(site.join("index.html")).expect("an index");
    for process in ["start_business", "newborn", "retirement"] {
        assert!(index.contains(&format!("processes/{process}.html")), "the index links {process}");
        assert!(site.join(format!("processes/{process}.html")).is_file());
    }

    // The browser's DOM of a guide page after loading: the text and the flow chart are there.
    let dom = headless(&site, &["--dump-dom"], "processes/start_business.html");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("开办企业一件事 办事指南") && dom.contains("申请材料"), "the page rendered");
    assert!(dom.contains("<figure class=\"chart\"><svg"), "its flow chart is an inline SVG");
    assert!(dom.contains("企业设立登记"), "the chart and tables name the items");

    // Printed: A4 (595 × 842 points), one page or more.
    let pdf = site.join("start_business.pdf");
    let printed = headless(
        &site,
        &["--no-pdf-header-footer", &format!("--print-to-pdf={}", pdf.display())],
        "processes/start_business.html",
    );
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let (pages, size) = pdf_pages(&std::fs::read(&pdf).expect("a PDF"));
    assert!(pages >= 1, "{pages} pages");
    let (width, height) = size.expect("a page size");
    assert!((width - 595.0).abs() < 2.0 && (height - 842.0).abs() < 2.0, "A4, not {width} × {height}");
    let _ = std::fs::remove_dir_all(&site);
}

#[test]
fn a_notice_for_each_applicant() {
    let facts = "examples/start-business/applicants/company_with_staff.json";
    let markdown = stdout(&onetrip(&["notice", "start_business", EXAMPLE, "--facts", facts]));
    assert!(markdown.contains("您符合申办条件") && markdown.contains("职工花名册"), "{markdown}");
    assert!(!markdown.contains("陈思远") && !markdown.contains("330106199003070022"), "no personal data");
    let json: serde_json::Value = serde_json::from_str(&stdout(&onetrip(&[
        "notice",
        "start_business",
        EXAMPLE,
        "--facts",
        facts,
        "--format",
        "json",
    ])))
    .expect("JSON");
    assert_eq!(json["eligible"], true);
    assert_eq!(json["bring"].as_array().map(Vec::len), Some(7), "the example's own count: 7 to bring");
    let refused = stdout(&onetrip(&[
        "notice",
        "start_business",
        EXAMPLE,
        "--facts",
        "examples/start-business/applicants/partnership.json",
        "--format",
        "html",
    ]));
    assert!(refused.contains("暂不符合申办条件") && refused.contains("有限责任公司和股份有限公司"));

    // Bad facts: a clear error, never the value.
    let dir = scratch("facts");
    std::fs::create_dir_all(&dir).expect("dir");
    let wrong = dir.join("wrong.json");
    std::fs::write(&wrong, r#"{"applicant": {"age": "三十六岁"}}"#).expect("writes");
    let refused = onetrip(&["notice", "start_business", EXAMPLE, "--facts", &wrong.to_string_lossy()]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("applicant.age") && !stderr.contains("三十六岁"), "{stderr}");
    let broken = dir.join("broken.json");
    std::fs::write(&broken, r#"{"applicant": {"name": "陈思远""#).expect("writes");
    let refused = onetrip(&["notice", "start_business", EXAMPLE, "--facts", &broken.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("is not JSON (line 1") && !stderr.contains("陈思远"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sample site under `examples/start-business/guide/` is what `onetrip guide` makes of the
/// example today (`ONETRIP_REFRESH_SAMPLES=1` rewrites it; the PDF beside it is printed from
/// it by Chromium, as README says).
#[test]
fn the_sample_guide_in_examples_is_current() {
    let fresh = scratch("sample");
    let made = onetrip(&["guide", "start_business", EXAMPLE, "--format", "html", "--out", &fresh.to_string_lossy()]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/start-business/guide");
    let refresh = std::env::var("ONETRIP_REFRESH_SAMPLES").is_ok_and(|v| v == "1");
    for page in
        ["index.html", "processes/start_business.html", "items/company_registration.html", "items/seal_filing.html"]
    {
        let made = std::fs::read_to_string(fresh.join(page)).expect("made");
        if refresh {
            std::fs::write(sample.join(page), &made).expect("refreshes");
        }
        let kept = std::fs::read_to_string(sample.join(page)).unwrap_or_default();
        assert!(
            kept == made,
            "examples/start-business/guide/{page} is out of date: ONETRIP_REFRESH_SAMPLES=1 cargo test --test guide"
        );
    }
    let kept: usize = std::fs::read_dir(sample.join("items")).expect("items").count();
    let made: usize = std::fs::read_dir(fresh.join("items")).expect("items").count();
    assert_eq!(kept, made, "one page per item");
    let _ = std::fs::remove_dir_all(&fresh);
}
