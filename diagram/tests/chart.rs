//! Time charts: valid XML, bars where their days say, marks, shaded periods and lines drawn,
//! degenerate input still a picture; one snapshot.

use diagram::chart::{svg, Bar, Chart, Lane, Mark, Period, Tone};
use proptest::prelude::*;

/// A joint case over the 2026 National Day holiday: two departments, a 补正 pause, a late step.
fn case() -> Chart {
    let days = ["09-28", "09-29", "09-30", "10-09", "10-10", "10-12", "10-13", "10-14", "10-15", "10-16"];
    Chart {
        title: "案件 2026-0001 · 开办企业一件事".into(),
        days: days.iter().map(|d| d.to_string()).collect(),
        lanes: vec![
            Lane {
                label: "企业设立登记 · 审查".into(),
                note: "市场监督管理局".into(),
                bars: vec![
                    Bar { from: 0.0, to: 1.5, open: false, tone: Tone::Done, title: "审查 1.5 个工作日".into() },
                    Bar { from: 3.0, to: 4.0, open: false, tone: Tone::Done, title: "补正后复审".into() },
                ],
                marks: vec![],
            },
            Lane {
                label: "新办纳税人涉税事项 · 核定".into(),
                note: "税务局".into(),
                bars: vec![Bar {
                    from: 4.0,
                    to: 9.0,
                    open: true,
                    tone: Tone::Red,
                    title: "已 5 个工作日，超期".into(),
                }],
                marks: vec![
                    Mark { at: 6.0, tone: Tone::Yellow, label: "黄牌：已用 60% 时限".into() },
                    Mark { at: 7.0, tone: Tone::Red, label: "红牌：超期".into() },
                ],
            },
            Lane {
                label: "印章刻制备案".into(),
                note: "公安局".into(),
                bars: vec![Bar { from: 4.0, to: 5.0, open: false, tone: Tone::Normal, title: "刻制".into() }],
                marks: vec![],
            },
        ],
        shaded: vec![Period { from: 1.5, to: 3.0, label: "补正 · 计时暂停".into() }],
        lines: vec![
            Mark { at: 5.0, tone: Tone::Red, label: "承诺时限".into() },
            Mark { at: 9.0, tone: Tone::Muted, label: "今天".into() },
        ],
    }
}

fn parse(text: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("not XML: {e}\n{text}"))
}

fn f(node: roxmltree::Node, name: &str) -> f64 {
    node.attribute(name).unwrap_or_else(|| panic!("no {name}")).parse().unwrap()
}

fn class<'a, 'i>(doc: &'a roxmltree::Document<'i>, class: &'a str) -> Vec<roxmltree::Node<'a, 'i>> {
    doc.descendants().filter(|n| n.attribute("class") == Some(class)).collect()
}

/// Everything drawn lies inside the view box.
fn inside(doc: &roxmltree::Document) {
    let root = doc.root_element();
    let (w, h) = (f(root, "width"), f(root, "height"));
    for n in doc.descendants().filter(|n| n.is_element()) {
        for (x, y) in [("x", "y"), ("x1", "y1"), ("x2", "y2")] {
            if let (Some(x), Some(y)) = (n.attribute(x), n.attribute(y)) {
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(
                    (0.0..=w).contains(&x) && (0.0..=h).contains(&y),
                    "<{}> at {x},{y} outside {w}×{h}",
                    n.tag_name().name()
                );
            }
        }
    }
}

#[test]
fn bars_sit_on_their_days() {
    let text = svg(&case());
    let doc = parse(&text);
    inside(&doc);
    let plot = class(&doc, "plot")[0];
    let (x0, day) = (f(plot, "data-x0"), f(plot, "data-day-width"));
    assert!(day > 0.0);
    let bars = class(&doc, "bar");
    assert_eq!(bars.len(), 4);
    for bar in &bars {
        let (from, to) = (f(*bar, "data-from"), f(*bar, "data-to"));
        assert!((f(*bar, "x") - (x0 + from * day)).abs() < 0.11, "x of {from}");
        assert!((f(*bar, "width") - (to - from) * day).abs() < 0.21, "width of {from}..{to}");
    }
    // The same length in days is the same width.
    let widths: Vec<f64> = bars.iter().map(|b| f(*b, "width")).collect();
    assert_eq!(widths[1], widths[3]);
    assert_eq!(bars[2].attribute("data-tone"), Some("red"));
    assert_eq!(bars[2].attribute("data-open"), Some("true"));
    assert!(bars[2].attribute("fill").unwrap().starts_with("url(#ot-open-red)"));
    assert_ne!(bars[0].attribute("fill"), bars[3].attribute("fill"), "tones differ");

    let marks = class(&doc, "mark");
    assert_eq!(marks.iter().map(|m| m.attribute("data-tone").unwrap()).collect::<Vec<_>>(), ["yellow", "red"]);
    assert!(marks[0].children().any(|c| c.has_tag_name("title") && c.text() == Some("黄牌：已用 60% 时限")));

    let shaded = class(&doc, "shaded");
    assert_eq!(shaded.len(), 1);
    assert!(shaded[0].descendants().any(|n| n.text() == Some("补正 · 计时暂停")));
    let band = shaded[0].children().find(|c| c.has_tag_name("rect")).unwrap();
    assert!((f(band, "x") - (x0 + 1.5 * day)).abs() < 0.11);

    let lines = class(&doc, "line");
    assert_eq!(lines.len(), 2);
    assert!(lines[0].descendants().any(|n| n.text() == Some("承诺时限")));
    let rule = lines[1].children().find(|c| c.has_tag_name("line")).unwrap();
    assert!((f(rule, "x1") - (x0 + 9.0 * day)).abs() < 0.11);

    // Lane labels and notes are there; every day label is (ten days fit).
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    for wanted in ["企业设立登记 · 审查", "市场监督管理局", "09-28", "10-16"] {
        assert!(texts.contains(&wanted), "{wanted}");
    }
}

#[test]
fn many_days_thin_out_their_labels() {
    let chart = Chart { days: (0..200).map(|d| format!("d{d:03}")).collect(), ..case() };
    let doc_text = svg(&chart);
    let doc = parse(&doc_text);
    inside(&doc);
    let labels = doc
        .descendants()
        .filter(|n| n.is_element() && n.text().is_some_and(|t| t.starts_with('d') && t.len() == 4))
        .count();
    assert!(labels > 10 && labels < 100, "{labels} day labels");
}

#[test]
fn degenerate_charts_draw() {
    let nan = f64::NAN;
    let charts = [
        Chart::default(),
        Chart { title: "<b>&\"'".into(), ..Chart::default() },
        Chart {
            title: String::new(),
            days: vec!["a".into()],
            lanes: vec![Lane {
                label: "x".repeat(500),
                note: String::new(),
                bars: vec![
                    Bar { from: nan, to: 3.0, ..Bar::default() },
                    Bar { from: 5.0, to: -2.0, open: true, ..Bar::default() },
                    Bar { from: f64::NEG_INFINITY, to: f64::INFINITY, ..Bar::default() },
                    Bar { from: 1e300, to: 1e301, ..Bar::default() },
                ],
                marks: vec![Mark { at: nan, ..Mark::default() }, Mark { at: -5.0, ..Mark::default() }],
            }],
            shaded: vec![
                Period { from: 4.0, to: 1.0, label: "</text>".into() },
                Period { from: nan, to: nan, label: String::new() },
            ],
            lines: vec![
                Mark { at: f64::INFINITY, ..Mark::default() },
                Mark { at: 0.0, label: "今天".repeat(50), ..Mark::default() },
            ],
        },
        Chart { lanes: vec![Lane::default(); 3], ..Chart::default() },
    ];
    for chart in &charts {
        let text = svg(chart);
        let doc = parse(&text);
        inside(&doc);
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    }
}

#[test]
fn snapshot_of_a_case() {
    insta::assert_snapshot!("case", svg(&case()));
}

proptest! {
    #[test]
    fn random_charts_draw(
        days in 0usize..60,
        bars in proptest::collection::vec((-10.0f64..80.0, -10.0f64..80.0, any::<bool>()), 0..20),
        lines in proptest::collection::vec(-5.0f64..90.0, 0..4),
    ) {
        let chart = Chart {
            days: (0..days).map(|d| format!("{d}")).collect(),
            lanes: bars
                .chunks(3)
                .map(|b| Lane {
                    label: "环节".into(),
                    note: "部门".into(),
                    bars: b.iter().map(|&(from, to, open)| Bar { from, to, open, ..Bar::default() }).collect(),
                    marks: b.iter().map(|&(at, _, _)| Mark { at, ..Mark::default() }).collect(),
                })
                .collect(),
            lines: lines.iter().map(|&at| Mark { at, label: "承诺时限".into(), ..Mark::default() }).collect(),
            ..Chart::default()
        };
        let text = svg(&chart);
        inside(&parse(&text));
    }
}
