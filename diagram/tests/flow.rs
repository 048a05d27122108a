//! Flow pictures of every stdlib process and example: valid XML, one `g.state` per step,
//! everything inside the view box, no step boxes overlapping; heat figures on the boxes;
//! snapshots of a small flow; random heat maps and random graphs never break it.

use std::path::Path;

use diagram::flow::{heat_colour, svg, Heat, Options, StateHeat};
use dsl::compile::{CompiledFlow, Event, State, Transition};
use dsl::{check, compile, MemoryLoader, Workspace};
use proptest::prelude::*;
use stdlib_flows::StdlibLoader;

/// Every process of the stdlib and of `examples/`, by a name for messages.
fn all_flows() -> Vec<(String, CompiledFlow)> {
    let mut flows: Vec<(String, CompiledFlow)> = stdlib_flows::processes()
        .into_iter()
        .map(|p| (format!("stdlib {p}"), stdlib_flows::compiled(p).expect("stdlib process compiles")))
        .collect();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut folders: Vec<_> = std::fs::read_dir(&examples).unwrap().flatten().map(|e| e.path()).collect();
    folders.sort();
    for folder in folders.into_iter().filter(|f| f.is_dir()) {
        let mut files = Vec::new();
        let mut paths: Vec<_> = std::fs::read_dir(&folder).unwrap().flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "flow")) {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            files.push((name, std::fs::read_to_string(&path).unwrap()));
        }
        let roots: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        let workspace = Workspace::load(&roots, &mut StdlibLoader(MemoryLoader::new(files)));
        let analysis = check(&workspace);
        assert!(!analysis.has_errors(), "{} has errors", folder.display());
        for process in &analysis.program.processes {
            if let Some(flow) = compile(&analysis.program, &process.name) {
                flows.push((format!("{} {}", folder.display(), process.name), flow));
            }
        }
    }
    assert!(flows.len() > 10);
    flows
}

fn steps(flow: &CompiledFlow) -> Vec<(String, String)> {
    flow.graph
        .node_weights()
        .filter_map(|s| match s {
            State::Step { item, step, .. } => Some((item.clone(), step.clone())),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct Box2 {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn attr(node: roxmltree::Node, name: &str) -> f64 {
    node.attribute(name).unwrap_or_else(|| panic!("<{}> has no {name}", node.tag_name().name())).parse().unwrap()
}

fn numbers(d: &str) -> Vec<f64> {
    d.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Parses the SVG and checks what every picture must satisfy; returns the step boxes.
fn check_picture(what: &str, text: &str, flow: &CompiledFlow) -> Vec<Box2> {
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{what}: not XML: {e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let view: Vec<f64> = numbers(root.attribute("viewBox").unwrap());
    let (width, height) = (view[2], view[3]);
    assert!(width > 0.0 && height > 0.0, "{what}: empty view box");
    let inside = |x: f64, y: f64, element: &str| {
        assert!(
            (-0.5..=width + 0.5).contains(&x) && (-0.5..=height + 0.5).contains(&y),
            "{what}: {element} at ({x}, {y}) outside 0 0 {width} {height}"
        );
    };
    for node in doc.descendants().filter(|n| n.is_element()) {
        match node.tag_name().name() {
            "rect" if node.attribute("x").is_some() => {
                let (x, y, w, h) = (attr(node, "x"), attr(node, "y"), attr(node, "width"), attr(node, "height"));
                inside(x, y, "rect");
                inside(x + w, y + h, "rect");
            }
            "circle" => {
                let (cx, cy, r) = (attr(node, "cx"), attr(node, "cy"), attr(node, "r"));
                inside(cx - r, cy - r, "circle");
                inside(cx + r, cy + r, "circle");
            }
            "path" if node.attribute("class") == Some("edge") => {
                for pair in numbers(node.attribute("d").unwrap()).chunks(2) {
                    inside(pair[0], pair[1], "edge");
                }
            }
            "text" if node.attribute("x").is_some() => inside(attr(node, "x"), attr(node, "y"), "text"),
            _ => {}
        }
    }

    let states: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.attribute("class") == Some("state")).collect();
    let expected = steps(flow);
    assert_eq!(states.len(), expected.len(), "{what}: one g.state per step state");
    for (item, step) in &expected {
        assert!(
            states.iter().any(|g| g.attribute("data-item") == Some(item) && g.attribute("data-step") == Some(step)),
            "{what}: no state for {item}/{step}"
        );
    }
    assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("edge")).count(), flow.graph.edge_count());

    let boxes: Vec<Box2> = states
        .iter()
        .map(|g| {
            let rect = g.children().find(|c| c.has_tag_name("rect")).expect("a state has a box");
            Box2 { x: attr(rect, "x"), y: attr(rect, "y"), w: attr(rect, "width"), h: attr(rect, "height") }
        })
        .collect();
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
            assert!(apart, "{what}: step boxes overlap: {a:?} {b:?}");
        }
    }
    boxes
}

#[test]
fn every_flow_draws() {
    let out = std::env::var_os("DIAGRAM_OUT");
    for (what, flow) in all_flows() {
        let plain = svg(&flow, &Options::default());
        check_picture(&what, &plain, &flow);
        assert_eq!(plain, svg(&flow, &Options::default()), "{what}: not deterministic");

        // Every step busy, some overdue, a link on each.
        let heat: Heat = steps(&flow)
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let n = (i * 7 % 23) as u64;
                let figures = StateHeat { waiting: n, overdue: n / 5, p50: i as i64, p90: 2 * i as i64, max: 30 };
                (key, figures)
            })
            .collect();
        let options = Options { heat: Some(heat), link: Some(|f, i, s| format!("/cases?flow={f}&item={i}&step={s}")) };
        let hot = svg(&flow, &options);
        check_picture(&what, &hot, &flow);
        assert_eq!(hot.matches("<a href=\"/cases?flow=").count(), steps(&flow).len());
        assert!(hot.contains("&amp;item="), "{what}: links are escaped");
        if let Some(dir) = &out {
            let file = what.replace(['/', ' ', '.'], "_");
            std::fs::write(Path::new(dir).join(format!("{file}.svg")), &plain).unwrap();
            std::fs::write(Path::new(dir).join(format!("{file}-heat.svg")), &hot).unwrap();
        }
    }
}

/// A small flow: a 受理 step, two parallel items (one with 退回), a choice.
fn small() -> CompiledFlow {
    let source = r#"
department window "政务服务中心"
department samr "市场监督管理局"
department tax "税务局"

schema applicant {
  capital double
}

item licence "营业执照" {
  department     samr
  handling       promised
  legal_limit    10 workdays
  promised_limit 3 workdays
  steps {
    accept -> review -> decide
    accept "受理"
    review "审查" limit 2 workdays back accept
    decide "核准" cosign tax
  }
}

item invoice "发票申领" {
  department tax
  handling   immediate
  steps {
    issue "发放"
  }
}

item seal "公章刻制" {
  department tax
  handling   immediate
  steps {
    engrave "刻制"
  }
}

process open "开办企业（测试）" {
  window window
  sla    5 workdays
  flow {
    parallel { licence, invoice } -> if applicant.capital > 1000000 { seal }
  }
}
"#;
    let workspace = Workspace::load(&["open.flow".to_string()], &mut MemoryLoader::new([("open.flow", source)]));
    let analysis = check(&workspace);
    compile(&analysis.program, "open").unwrap_or_else(|| panic!("{:?}", analysis.diagnostics))
}

fn small_heat() -> Heat {
    let mut heat = Heat::new();
    heat.insert(("licence".into(), "review".into()), StateHeat { waiting: 12, overdue: 3, p50: 3, p90: 7, max: 12 });
    heat.insert(("invoice".into(), "issue".into()), StateHeat { waiting: 1, overdue: 0, p50: 1, p90: 1, max: 1 });
    heat
}

#[test]
fn heat_figures_are_on_the_boxes() {
    let flow = small();
    let text = svg(&flow, &Options { heat: Some(small_heat()), link: None });
    check_picture("small", &text, &flow);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let state = |item: &str, step: &str| {
        doc.descendants()
            .find(|n| n.attribute("data-item") == Some(item) && n.attribute("data-step") == Some(step))
            .unwrap_or_else(|| panic!("no {item}/{step}"))
    };
    let visible = |g: roxmltree::Node| -> String {
        g.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).collect::<Vec<_>>().join("|")
    };
    let fill = |g: roxmltree::Node| {
        g.children().find(|c| c.has_tag_name("rect")).unwrap().attribute("fill").unwrap().to_string()
    };

    let review = state("licence", "review");
    assert_eq!(review.attribute("data-waiting"), Some("12"));
    assert_eq!(review.attribute("data-overdue"), Some("3"));
    let text_of_review = visible(review);
    assert!(text_of_review.contains("12 件等待"), "{text_of_review}");
    assert!(text_of_review.contains("超期 3"), "{text_of_review}");
    assert!(text_of_review.contains("p50 3 · p90 7 · 最长 12 工作日"), "{text_of_review}");
    assert!(
        text_of_review.contains("营业执照")
            && text_of_review.contains("审查")
            && text_of_review.contains("市场监督管理局")
    );
    let rect = review.children().find(|c| c.has_tag_name("rect")).unwrap();
    assert_eq!(rect.attribute("stroke"), Some("#c62828"), "overdue: red border");

    let approve = state("licence", "decide");
    assert_eq!(approve.attribute("data-waiting"), Some("0"), "absent from the map: nothing waits");
    assert!(visible(approve).contains("0 件等待"));
    assert!(!visible(approve).contains("超期"));

    let issue = state("invoice", "issue");
    assert_eq!(issue.attribute("data-waiting"), Some("1"));
    // Zero, some and the busiest all look different.
    assert_ne!(fill(approve), fill(issue));
    assert_ne!(fill(issue), fill(review));
    assert_ne!(fill(approve), fill(review));
    assert!(text.contains("class=\"legend\""));

    // The tooltip has the figures in full.
    let title = review.children().find(|c| c.has_tag_name("title")).unwrap().text().unwrap();
    assert!(title.contains("等待 12 件，其中超期 3 件"), "{title}");
}

#[test]
fn heat_colours_rise_with_waiting() {
    let shade = |c: String| {
        let v = u32::from_str_radix(&c[1..], 16).unwrap();
        // Green falls along the ramp (white → yellow → orange → red).
        (v >> 8) & 0xff
    };
    assert_eq!(heat_colour(0, 100), "#ffffff");
    let greens: Vec<u32> = [1, 2, 5, 20, 100].iter().map(|&n| shade(heat_colour(n, 100))).collect();
    assert!(greens.windows(2).all(|w| w[0] > w[1]), "{greens:?}");
    // Logarithmic: 10 out of 1,000 is still clearly coloured, not washed out.
    assert!(shade(heat_colour(10, 1000)) < 0xe0);
    assert_eq!(heat_colour(5, 0), heat_colour(5, 5), "a busiest below the count is the count");
}

#[test]
fn snapshots_of_a_small_flow() {
    let flow = small();
    insta::assert_snapshot!("small_plain", svg(&flow, &Options::default()));
    insta::assert_snapshot!("small_heat", svg(&flow, &Options { heat: Some(small_heat()), link: None }));
}

#[test]
fn text_is_escaped() {
    let mut flow = small();
    flow.title = "<script>alert('x')</script> & \"co\"".into();
    for state in flow.graph.node_weights_mut() {
        if let State::Step { label, .. } = state {
            *label = Some("a<b & c>\"d\"".into());
        }
    }
    for item in &mut flow.items {
        item.title = "</text><evil/>".into();
    }
    let text = svg(&flow, &Options { heat: Some(small_heat()), link: Some(|_, _, _| "/x?a=1&b=\"2\"".into()) });
    check_picture("escaped", &text, &flow);
    assert!(!text.contains("<script>") && !text.contains("<evil/>"));
}

/// A flow with a graph of our making: `edges` between `n` states (start is 0, end is 1, the
/// rest steps), every kind of transition.
fn synthetic(n: usize, edges: &[(usize, usize, u8)]) -> CompiledFlow {
    let mut flow = small();
    flow.graph.clear();
    let nodes: Vec<_> = (0..n.max(2))
        .map(|i| {
            flow.graph.add_node(match i {
                0 => State::Start,
                1 => State::End,
                i if i % 7 == 3 => State::Choice,
                i if i % 7 == 5 => State::Fork,
                i if i % 7 == 6 => State::Join { branches: 2 },
                i => State::Step {
                    item: format!("item{i}"),
                    step: format!("step{i}"),
                    department: "samr".into(),
                    label: Some("一个相当长的步骤名称用来测试截断".repeat(i % 3)),
                    cosign: vec![],
                    limit: None,
                },
            })
        })
        .collect();
    flow.start = nodes[0];
    flow.end = nodes[1];
    for &(a, b, kind) in edges {
        let (a, b) = (nodes[a % nodes.len()], nodes[b % nodes.len()]);
        let event = [Event::Auto, Event::Complete, Event::Back, Event::Otherwise][kind as usize % 4];
        let guard = (kind % 5 == 4).then(|| "company.capital > 1000000 && applicant.age >= 18".to_string());
        flow.graph.add_edge(a, b, Transition { event, guard, department: None, item: None, step: None });
    }
    flow
}

#[test]
fn degenerate_graphs_draw() {
    for (n, edges) in [
        (2, vec![]),
        (2, vec![(0, 1, 0)]),
        (3, vec![(0, 2, 0), (2, 2, 2), (2, 1, 1)]), // a step returning to itself
        (4, vec![(0, 2, 0), (2, 4, 1), (4, 2, 2), (4, 1, 1), (2, 4, 1)]), // a cycle, parallel edges
        (6, vec![(2, 4, 1), (4, 2, 1)]),            // unreachable, cyclic, no start edge
        (1, vec![(0, 0, 0)]),
    ] {
        let flow = synthetic(n, &edges);
        let text = svg(&flow, &Options { heat: Some(Heat::new()), link: None });
        check_picture(&format!("{n} {edges:?}"), &text, &flow);
    }
    // No states at all (not a compiled flow's shape, but nothing must break).
    let mut empty = small();
    empty.graph.clear();
    let text = svg(&empty, &Options::default());
    roxmltree::Document::parse(&text).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_draw(
        n in 2usize..18,
        edges in proptest::collection::vec((0usize..40, 0usize..40, 0u8..10), 0..40),
        waiting in proptest::collection::vec(0u64..5000, 0..20),
    ) {
        let flow = synthetic(n, &edges);
        let heat: Heat = steps(&flow)
            .into_iter()
            .zip(waiting.iter().cycle())
            .map(|(key, &w)| (key, StateHeat { waiting: w, overdue: w / 3, p50: -1, p90: i64::MAX, max: i64::MIN }))
            .collect();
        let text = svg(&flow, &Options { heat: Some(heat), link: None });
        check_picture("random", &text, &flow);
    }
}
