//! A compiled flow as SVG, laid out in Rust, optionally as a heat map of waiting cases.
//!
//! `layout-rs` places the states (ranks left to right, fewer crossings, Brandes–Köpf
//! coordinates); our [`RenderBackend`] only records where it put each state, edge and edge
//! label, and the SVG is written here, so that styles, escaping, fonts and `data-*` attributes
//! are ours. Should the layout engine panic or give a non-finite coordinate, a simple layered
//! layout of our own takes over: a picture always comes out.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use dsl::compile::{CompiledFlow, Event, State};
use layout::core::base::Orientation;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::{Point, Position};
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;
use petgraph::visit::{EdgeRef, IntoEdgeReferences};

use crate::{escape, num, text_width, truncate, FONT_FAMILY};

/// What the supervisor sees on one step state: cases waiting there now and for how long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateHeat {
    pub waiting: u64,
    /// Of those waiting, how many are past their limit.
    pub overdue: u64,
    /// Working days waited: median, 90th percentile, longest.
    pub p50: i64,
    pub p90: i64,
    pub max: i64,
}

/// Heat by state, keyed by (item name, step name) — the same across the flow's versions.
pub type Heat = HashMap<(String, String), StateHeat>;

/// How to draw.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Draw waiting counts and colours (a heat map); `None` draws the plain flow.
    pub heat: Option<Heat>,
    /// A link for each step state, given its item and step names (e.g. to a list of the
    /// cases waiting there); `None` for no links.
    pub link: Option<fn(&str, &str, &str) -> String>,
}

/// The flow as a standalone SVG document.
pub fn svg(flow: &CompiledFlow, options: &Options) -> String {
    let scene = Scene::new(flow, options);
    let placed = cached(&scene, || squeeze(&scene, with_layout_rs(&scene).unwrap_or_else(|| layered(&scene))));
    draw(flow, &scene, &placed, options)
}

/// How many layouts [`cached`] keeps.
const CACHED_LAYOUTS: usize = 32;

/// The layout of `scene`, computed by `layout` unless one was computed for the same sizes and
/// edges lately. Placing costs milliseconds (`layout-rs`'s crossing reduction) and drawing a
/// tenth of that, and a dashboard draws the same few flows on every request; the key is
/// everything the layout depends on, so a hit gives the very same picture.
fn cached(scene: &Scene, layout: impl FnOnce() -> Placed) -> Arc<Placed> {
    static LAYOUTS: Mutex<Vec<(Vec<u64>, Arc<Placed>)>> = Mutex::new(Vec::new());
    let mut key = Vec::with_capacity(3 * scene.nodes.len() + 4 * scene.edges.len() + 2);
    key.push(scene.nodes.len() as u64);
    for node in &scene.nodes {
        let shape = match node.kind {
            Kind::Start | Kind::End | Kind::Choice => 0,
            _ => 1,
        };
        key.extend([shape, node.width.to_bits(), node.height.to_bits()]);
    }
    key.push(scene.edges.len() as u64);
    for edge in &scene.edges {
        let label = if edge.label.is_empty() { 0 } else { text_width(&edge.label, EDGE_SIZE).to_bits() };
        key.extend([edge.from as u64, edge.to as u64, (edge.kind == EdgeKind::Back) as u64, label]);
    }
    if let Ok(mut layouts) = LAYOUTS.lock() {
        if let Some(at) = layouts.iter().position(|(k, _)| *k == key) {
            let hit = layouts.remove(at);
            let placed = Arc::clone(&hit.1);
            layouts.insert(0, hit);
            return placed;
        }
    }
    let placed = Arc::new(layout());
    if let Ok(mut layouts) = LAYOUTS.lock() {
        layouts.insert(0, (key, Arc::clone(&placed)));
        layouts.truncate(CACHED_LAYOUTS);
    }
    placed
}

/// The fill of a step state holding `waiting` cases when the busiest holds `busiest`: white
/// for none, then light yellow → orange → red on a logarithmic scale, so that one very busy
/// state does not wash out the others. Public so that a page can draw a matching legend.
pub fn heat_colour(waiting: u64, busiest: u64) -> String {
    if waiting == 0 {
        return EMPTY_FILL.to_string();
    }
    let busiest = busiest.max(waiting);
    let t = if busiest <= 1 { 1.0 } else { ((waiting as f64).ln_1p() / (busiest as f64).ln_1p()).clamp(0.0, 1.0) };
    gradient(t)
}

// The palette: slate greys for structure, a yellow–orange–red ramp for heat, one red for
// overdue. Strokes are 1px.
const INK: &str = "#0f172a";
const TEXT: &str = "#334155";
const MUTED: &str = "#64748b";
const FAINT: &str = "#94a3b8";
const LINE: &str = "#64748b";
const BORDER: &str = "#94a3b8";
const EMPTY_FILL: &str = "#ffffff";
const STRUCTURE_FILL: &str = "#f1f5f9";
const RED: &str = "#c62828";
const RAMP: [(f64, [u8; 3]); 3] = [(0.0, [0xff, 0xf1, 0xc1]), (0.5, [0xfd, 0xb4, 0x62]), (1.0, [0xf0, 0x6a, 0x4b])];

fn gradient(t: f64) -> String {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let (mut lo, mut hi) = (RAMP[0], RAMP[RAMP.len() - 1]);
    for pair in RAMP.windows(2) {
        if t >= pair[0].0 && t <= pair[1].0 {
            (lo, hi) = (pair[0], pair[1]);
            break;
        }
    }
    let span = (hi.0 - lo.0).max(f64::EPSILON);
    let f = ((t - lo.0) / span).clamp(0.0, 1.0);
    let c = |i: usize| (lo.1[i] as f64 + (hi.1[i] as f64 - lo.1[i] as f64) * f).round() as u8;
    format!("#{:02x}{:02x}{:02x}", c(0), c(1), c(2))
}

// Text sizes and the step box's geometry.
const TITLE_SIZE: f64 = 12.5;
const LABEL_SIZE: f64 = 12.0;
const NOTE_SIZE: f64 = 11.0;
const FIGURE_SIZE: f64 = 11.0;
const EDGE_SIZE: f64 = 11.0;
const LINE_HEIGHT: f64 = 16.0;
const PAD_X: f64 = 10.0;
const PAD_Y: f64 = 8.0;
/// The widest a line of a step box gets before it is cut with "…".
const MAX_TEXT: f64 = 200.0;
const MAX_EDGE_LABEL: f64 = 190.0;
const MARGIN: f64 = 16.0;
/// Room between neighbours in a row and between rows.
const GAP_X: f64 = 40.0;
const GAP_Y: f64 = 30.0;

/// The states and transitions to draw, with their texts and sizes.
struct Scene<'f> {
    nodes: Vec<Node<'f>>,
    edges: Vec<Edge>,
    heat: bool,
    busiest: u64,
}

struct Node<'f> {
    kind: Kind<'f>,
    width: f64,
    height: f64,
}

enum Kind<'f> {
    Start,
    End,
    Fork,
    Join(usize),
    Choice,
    Step(Box<StepBox<'f>>),
}

struct StepBox<'f> {
    item: &'f str,
    step: &'f str,
    /// The item's title, the step's label, the department(s): as drawn (maybe cut).
    lines: [String; 3],
    /// Everything in full, for the tooltip.
    tooltip: String,
    heat: Option<StateHeat>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    Forward,
    Back,
}

struct Edge {
    from: usize,
    to: usize,
    kind: EdgeKind,
    /// The label as drawn (cut to fit), and in full when cut.
    label: String,
    full: Option<String>,
}

/// Whitespace runs (newlines in a rule included) as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl<'f> Scene<'f> {
    fn new(flow: &'f CompiledFlow, options: &Options) -> Self {
        let heat = options.heat.as_ref();
        let mut index = HashMap::new();
        let mut nodes = Vec::new();
        for state in flow.graph.node_indices() {
            index.insert(state, nodes.len());
            let kind = match &flow.graph[state] {
                State::Start => Kind::Start,
                State::End => Kind::End,
                State::Fork => Kind::Fork,
                State::Join { branches } => Kind::Join(*branches),
                State::Choice => Kind::Choice,
                State::Step { item, step, department, label, cosign, limit } => {
                    let item_title =
                        flow.items.iter().find(|i| &i.name == item).map_or(item.as_str(), |i| i.title.as_str());
                    let department_title = |name: &str| {
                        flow.departments.iter().find(|d| d.name == name).map_or(name.to_string(), |d| d.title.clone())
                    };
                    let step_label = label.as_deref().unwrap_or(step);
                    let mut who = department_title(department);
                    if !cosign.is_empty() {
                        let others: Vec<String> = cosign.iter().map(|c| department_title(c)).collect();
                        who = format!("{who} · 会签 {}", others.join("、"));
                    }
                    let mut tooltip = format!("{}\n{}\n{}", one_line(item_title), one_line(step_label), one_line(&who));
                    if let Some(limit) = limit {
                        let _ = write!(tooltip, "\n时限 {limit} 个工作日");
                    }
                    let figures = heat.map(|h| h.get(&(item.clone(), step.clone())).cloned().unwrap_or_default());
                    if let Some(f) = &figures {
                        let _ = write!(
                            tooltip,
                            "\n等待 {} 件，其中超期 {} 件\n已等待（工作日）：中位 {} · 90% {} · 最长 {}",
                            f.waiting, f.overdue, f.p50, f.p90, f.max
                        );
                    }
                    Kind::Step(Box::new(StepBox {
                        item,
                        step,
                        lines: [
                            truncate(&one_line(item_title), MAX_TEXT, TITLE_SIZE).0,
                            truncate(&one_line(step_label), MAX_TEXT, LABEL_SIZE).0,
                            truncate(&one_line(&who), MAX_TEXT, NOTE_SIZE).0,
                        ],
                        tooltip,
                        heat: figures,
                    }))
                }
            };
            let (width, height) = match kind {
                Kind::Start | Kind::End => (44.0, 44.0),
                Kind::Fork | Kind::Join(_) => (44.0, 22.0),
                Kind::Choice => (52.0, 36.0),
                Kind::Step(_) => (0.0, 0.0), // all step boxes get one size, below
            };
            nodes.push(Node { kind, width, height });
        }

        // One size for every step box: the columns line up and the picture reads as a table.
        let mut step_width: f64 = 150.0;
        for node in &nodes {
            if let Kind::Step(b) = &node.kind {
                step_width = step_width
                    .max(text_width(&b.lines[0], TITLE_SIZE))
                    .max(text_width(&b.lines[1], LABEL_SIZE))
                    .max(text_width(&b.lines[2], NOTE_SIZE))
                    .max(heat.map_or(0.0, |_| {
                        let f = b.heat.clone().unwrap_or_default();
                        text_width(&days_line(&f), FIGURE_SIZE)
                            .max(text_width(&waiting_line(&f), FIGURE_SIZE) + overdue_badge_width(&f) + 8.0)
                    }));
            }
        }
        let lines = if heat.is_some() { 5.0 } else { 3.0 };
        for node in &mut nodes {
            if let Kind::Step(_) = node.kind {
                // In steps of 10px, so that figures a digit longer rarely need a new layout.
                node.width = ((step_width + 2.0 * PAD_X) / 10.0).ceil() * 10.0;
                node.height = lines * LINE_HEIGHT + 2.0 * PAD_Y + if heat.is_some() { 6.0 } else { 0.0 };
            }
        }

        let mut edges = Vec::new();
        for edge in flow.graph.edge_references() {
            let (Some(&from), Some(&to)) = (index.get(&edge.source()), index.get(&edge.target())) else { continue };
            let t = edge.weight();
            let text = match (&t.guard, t.event) {
                (Some(guard), _) => one_line(guard),
                (None, Event::Otherwise) => "否则".to_string(),
                (None, Event::Back) => "退回".to_string(),
                _ => String::new(),
            };
            let (label, cut) = truncate(&text, MAX_EDGE_LABEL, EDGE_SIZE);
            let kind = if t.event == Event::Back { EdgeKind::Back } else { EdgeKind::Forward };
            edges.push(Edge { from, to, kind, label, full: cut.then_some(text) });
        }

        let busiest = nodes
            .iter()
            .filter_map(|n| match &n.kind {
                Kind::Step(b) => b.heat.as_ref().map(|h| h.waiting),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Scene { nodes, edges, heat: heat.is_some(), busiest }
    }
}

fn waiting_line(f: &StateHeat) -> String {
    format!("{} 件等待", f.waiting)
}

fn days_line(f: &StateHeat) -> String {
    if f.waiting == 0 {
        return "—".to_string();
    }
    format!("p50 {} · p90 {} · 最长 {} 工作日", f.p50, f.p90, f.max)
}

fn overdue_text(f: &StateHeat) -> String {
    format!("超期 {}", f.overdue)
}

fn overdue_badge_width(f: &StateHeat) -> f64 {
    if f.overdue == 0 {
        0.0
    } else {
        text_width(&overdue_text(f), FIGURE_SIZE) + 10.0
    }
}

/// Where everything went: boxes (top-left, size), each edge as cubic Bézier segments from its
/// source to its target, and where each edge's label sits.
#[derive(Debug, Clone, Default)]
struct Placed {
    boxes: Vec<Rect>,
    curves: Vec<Vec<[P; 4]>>,
    labels: Vec<Option<P>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct P {
    x: f64,
    y: f64,
}

impl P {
    fn finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn centre(&self) -> P {
        P { x: self.x + self.w / 2.0, y: self.y + self.h / 2.0 }
    }
}

/// Marks the text of an edge's label connector, followed by the edge's index.
const LABEL_TAG: char = '\u{1}';

/// Records what `layout-rs` draws: our nodes by their `properties` (`n3`), our edges by theirs
/// (`e7`), and edge labels by the tagged text we gave them.
#[derive(Default)]
struct Recorder {
    boxes: HashMap<usize, Rect>,
    curves: HashMap<usize, Vec<[P; 4]>>,
    labels: HashMap<usize, P>,
}

fn tagged(properties: &Option<String>, prefix: char) -> Option<usize> {
    properties.as_deref()?.strip_prefix(prefix)?.parse().ok()
}

fn p(point: Point) -> P {
    P { x: point.x, y: point.y }
}

impl RenderBackend for Recorder {
    fn draw_rect(&mut self, xy: Point, size: Point, _: &StyleAttr, properties: Option<String>, _: Option<ClipHandle>) {
        if let Some(n) = tagged(&properties, 'n') {
            self.boxes.insert(n, Rect { x: xy.x, y: xy.y, w: size.x, h: size.y });
        }
    }

    fn draw_line(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}

    fn draw_circle(&mut self, xy: Point, size: Point, _: &StyleAttr, properties: Option<String>) {
        if let Some(n) = tagged(&properties, 'n') {
            self.boxes.insert(n, Rect { x: xy.x - size.x / 2.0, y: xy.y - size.y / 2.0, w: size.x, h: size.y });
        }
    }

    fn draw_text(&mut self, xy: Point, text: &str, _: &StyleAttr) {
        if let Some(rest) = text.strip_prefix(LABEL_TAG) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(e) = digits.parse() {
                self.labels.insert(e, p(xy));
            }
        }
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        _: bool,
        head: (bool, bool),
        _: &StyleAttr,
        properties: Option<String>,
        _: &str,
    ) {
        let Some(e) = tagged(&properties, 'e') else { return };
        if path.len() < 2 {
            return;
        }
        // The path is [(start, exit control), (entry control, point), …] continued as SVG `S`
        // segments: make every segment an explicit cubic.
        let mut segments = vec![[p(path[0].0), p(path[0].1), p(path[1].0), p(path[1].1)]];
        for step in &path[2..] {
            let [_, _, c, end] = segments[segments.len() - 1];
            let mirrored = P { x: 2.0 * end.x - c.x, y: 2.0 * end.y - c.y };
            segments.push([end, mirrored, p(step.0), p(step.1)]);
        }
        // A back edge was reversed to keep the graph acyclic: its head is at the start.
        if head.0 && !head.1 {
            segments.reverse();
            for s in &mut segments {
                s.reverse();
            }
        }
        self.curves.insert(e, segments);
    }

    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}

/// The layout by `layout-rs`, or `None` if it panicked or left anything out or not finite.
fn with_layout_rs(scene: &Scene) -> Option<Placed> {
    if scene.nodes.is_empty() {
        return None; // `layout-rs` asserts that a graph has nodes
    }
    // Top to bottom: parallel branches side by side as columns, a page that scrolls down,
    // and no crossings on the stdlib's processes (left to right was twice as wide as a screen).
    let orientation = Orientation::TopToBottom;
    let run = || {
        let mut graph = VisualGraph::new(orientation);
        let mut handles = Vec::new();
        for (i, node) in scene.nodes.iter().enumerate() {
            let shape = match node.kind {
                Kind::Start | Kind::End | Kind::Choice => ShapeKind::Circle(String::new()),
                _ => ShapeKind::Box(String::new()),
            };
            let size = Point::new(node.width, node.height);
            let mut element = Element::create(shape, StyleAttr::simple(), orientation, size);
            element.properties = Some(format!("n{i}"));
            // Room between neighbours in a row (x) and between rows (y).
            element.pos = Position::new(Point::zero(), size, Point::zero(), Point::new(GAP_X, GAP_Y));
            handles.push(graph.add_node(element));
        }
        for (i, edge) in scene.edges.iter().enumerate() {
            // A labelled edge goes through a connector sized like its label: the text we give
            // is measured as (characters × font size), so at font size 1 its length and line
            // count are the label's size in pixels. The tag says which edge it is.
            // 退回 edges get no connector: they are bowed afterwards (see `bow`), so they never
            // push a rank between two steps that follow each other.
            let text = if edge.label.is_empty() || edge.kind == EdgeKind::Back {
                String::new()
            } else {
                let w = (text_width(&edge.label, EDGE_SIZE) + 4.0).ceil() as usize;
                let tag = format!("{LABEL_TAG}{i}");
                let mut text = format!("{tag}{}", ".".repeat(w.saturating_sub(tag.chars().count())));
                text.push_str(&"\n.".repeat(6));
                text
            };
            let mut look = StyleAttr::simple();
            look.font_size = 1;
            let style = if edge.kind == EdgeKind::Back { LineStyleKind::Dashed } else { LineStyleKind::Normal };
            let mut arrow = Arrow::new(LineEndKind::None, LineEndKind::Arrow, style, &text, &look, &None, &None);
            arrow.properties = Some(format!("e{i}"));
            graph.add_edge(arrow, handles[edge.from], handles[edge.to]);
        }
        let mut recorder = Recorder::default();
        graph.do_it(false, false, false, &mut recorder);
        recorder
    };
    let recorder = std::panic::catch_unwind(run).ok()?;

    let mut placed = Placed::default();
    for (i, node) in scene.nodes.iter().enumerate() {
        let rect = recorder.boxes.get(&i)?;
        if !(rect.x.is_finite() && rect.y.is_finite()) {
            return None;
        }
        // Keep our sizes; `layout-rs` may have transposed or padded its own copy.
        let centre = rect.centre();
        placed.boxes.push(Rect {
            x: centre.x - node.width / 2.0,
            y: centre.y - node.height / 2.0,
            w: node.width,
            h: node.height,
        });
    }
    for (i, edge) in scene.edges.iter().enumerate() {
        let mut curve = recorder.curves.get(&i)?.clone();
        if curve.iter().flatten().any(|p| !p.finite()) {
            return None;
        }
        // End on our shapes' outlines (a diamond is not the circle `layout-rs` thought it was).
        if let Some(first) = curve.first_mut() {
            first[0] = outline(&scene.nodes[edge.from], &placed.boxes[edge.from], first[0]);
        }
        if let Some(last) = curve.last_mut() {
            last[3] = outline(&scene.nodes[edge.to], &placed.boxes[edge.to], last[3]);
        }
        let mut label = recorder.labels.get(&i).copied().filter(|p| p.finite());
        if edge.kind == EdgeKind::Back && curve.len() == 1 {
            let (bowed, apex) = bow(scene, &placed.boxes, edge, curve[0]);
            curve = vec![bowed];
            label = Some(apex);
        }
        placed.curves.push(curve);
        placed.labels.push(if edge.label.is_empty() { None } else { label.or_else(|| midpoint(&placed.curves[i])) });
    }
    Some(placed)
}

/// A 退回 edge between neighbouring states, bowed to one side (up, or right when the states
/// are one above the other) so that it does not lie on the forward edge between the same
/// states; returns the curve and the bow's apex, where its label goes.
fn bow(scene: &Scene, boxes: &[Rect], edge: &Edge, straight: [P; 4]) -> ([P; 4], P) {
    let (a, b) = (straight[0], straight[3]);
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let length = (dx * dx + dy * dy).sqrt().max(1e-6);
    let (mut nx, mut ny) = (dy / length, -dx / length);
    if (ny.abs() > 0.3 && ny > 0.0) || (ny.abs() <= 0.3 && nx < 0.0) {
        (nx, ny) = (-nx, -ny);
    }
    // Leave and arrive a little to that side too, so that the arrowheads do not meet.
    let shift = |p: P| P { x: p.x + nx * 10.0, y: p.y + ny * 10.0 };
    let start = outline(&scene.nodes[edge.from], &boxes[edge.from], shift(a));
    let end = outline(&scene.nodes[edge.to], &boxes[edge.to], shift(b));
    let lift = 22.0 + (length / 8.0).min(30.0);
    let c1 = P { x: start.x + (end.x - start.x) / 3.0 + nx * lift, y: start.y + (end.y - start.y) / 3.0 + ny * lift };
    let c2 = P {
        x: start.x + 2.0 * (end.x - start.x) / 3.0 + nx * lift,
        y: start.y + 2.0 * (end.y - start.y) / 3.0 + ny * lift,
    };
    let curve = [start, c1, c2, end];
    let apex = midpoint(&[curve]).unwrap_or(start);
    (curve, apex)
}

/// Narrows wide empty columns: `layout-rs` spreads parallel branches far apart, leaving
/// stretches crossed only by edges. Every x is mapped through one increasing function that
/// shrinks each gap between boxes and labels to at most twice the usual room, so nothing
/// that did not overlap comes to overlap and the edges keep their shapes' order.
fn squeeze(scene: &Scene, mut placed: Placed) -> Placed {
    let mut spans: Vec<(f64, f64)> = placed.boxes.iter().map(|r| (r.x, r.x + r.w)).collect();
    for (edge, label) in scene.edges.iter().zip(&placed.labels) {
        if let Some(l) = label {
            let half = text_width(&edge.label, EDGE_SIZE) / 2.0 + 4.0;
            spans.push((l.x - half, l.x + half));
        }
    }
    spans.retain(|(a, b)| a.is_finite() && b.is_finite());
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    // The gaps between the merged spans: (start, end, how much to take out).
    let room = 2.0 * GAP_X;
    let mut gaps: Vec<(f64, f64, f64)> = Vec::new();
    let mut reach = f64::NEG_INFINITY;
    for (a, b) in spans {
        if reach.is_finite() && a - reach > room {
            gaps.push((reach, a, a - reach - room));
        }
        reach = reach.max(b);
    }
    if gaps.is_empty() {
        return placed;
    }
    let map = |x: f64| {
        let mut cut = 0.0;
        for &(start, end, take) in &gaps {
            if x >= end {
                cut += take;
            } else if x > start {
                cut += take * (x - start) / (end - start);
            }
        }
        x - cut
    };
    for r in &mut placed.boxes {
        r.x = map(r.x + r.w / 2.0) - r.w / 2.0;
    }
    for p in placed.curves.iter_mut().flatten().flatten() {
        p.x = map(p.x);
    }
    for p in placed.labels.iter_mut().flatten() {
        p.x = map(p.x);
    }
    placed
}

/// The point of `node`'s outline on the ray from its centre through `towards`.
fn outline(node: &Node, rect: &Rect, towards: P) -> P {
    let c = rect.centre();
    let (dx, dy) = (towards.x - c.x, towards.y - c.y);
    let length = (dx * dx + dy * dy).sqrt();
    if !length.is_finite() || length < 1e-6 {
        return towards;
    }
    let (ux, uy) = (dx / length, dy / length);
    let (a, b) = (rect.w / 2.0, rect.h / 2.0);
    let t = match node.kind {
        Kind::Start | Kind::End => a.min(b),
        Kind::Choice => 1.0 / (ux.abs() / a + uy.abs() / b),
        _ => {
            let tx = if ux.abs() > 1e-9 { a / ux.abs() } else { f64::INFINITY };
            let ty = if uy.abs() > 1e-9 { b / uy.abs() } else { f64::INFINITY };
            tx.min(ty)
        }
    };
    if !t.is_finite() {
        return towards;
    }
    P { x: c.x + ux * t, y: c.y + uy * t }
}

fn midpoint(curve: &[[P; 4]]) -> Option<P> {
    let s = curve.get(curve.len() / 2)?;
    if curve.len() % 2 == 1 {
        // The middle of the middle segment (t = ½ of a cubic).
        Some(P {
            x: (s[0].x + 3.0 * s[1].x + 3.0 * s[2].x + s[3].x) / 8.0,
            y: (s[0].y + 3.0 * s[1].y + 3.0 * s[2].y + s[3].y) / 8.0,
        })
    } else {
        Some(s[0])
    }
}

/// Our own layout, for when `layout-rs` fails: rows by longest path from the start (back
/// edges ignored), boxes side by side in each row, edges as plain curves.
fn layered(scene: &Scene) -> Placed {
    let n = scene.nodes.len();
    // Edges that close a cycle (found by depth-first search from every root in order) are
    // drawn backwards, like 退回.
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, e) in scene.edges.iter().enumerate() {
        out[e.from].push(i);
    }
    let mut state = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
    let mut backwards = vec![false; scene.edges.len()];
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some((node, next)) = stack.pop() {
            if let Some(&e) = out[node].get(next) {
                stack.push((node, next + 1));
                let to = scene.edges[e].to;
                match state[to] {
                    0 => {
                        state[to] = 1;
                        stack.push((to, 0));
                    }
                    1 => backwards[e] = true,
                    _ => {}
                }
            } else {
                state[node] = 2;
            }
        }
    }
    // Longest path layering over the remaining edges (a DAG), in topological order.
    let mut indegree = vec![0usize; n];
    for (i, e) in scene.edges.iter().enumerate() {
        if !backwards[i] && e.from != e.to {
            indegree[e.to] += 1;
        }
    }
    let mut layer = vec![0usize; n];
    let mut queue: std::collections::VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(node) = queue.pop_front() {
        order.push(node);
        for &e in &out[node] {
            let edge = &scene.edges[e];
            if backwards[e] || edge.from == edge.to {
                continue;
            }
            layer[edge.to] = layer[edge.to].max(layer[node] + 1);
            indegree[edge.to] -= 1;
            if indegree[edge.to] == 0 {
                queue.push_back(edge.to);
            }
        }
    }
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for &node in &order {
        rows[layer[node]].push(node);
    }
    let mut boxes = vec![Rect::default(); n];
    let mut y = 0.0;
    for row in &rows {
        let height = row.iter().map(|&i| scene.nodes[i].height).fold(0.0, f64::max);
        let width: f64 = row.iter().map(|&i| scene.nodes[i].width + GAP_X).sum();
        let mut x = -width / 2.0;
        for &i in row {
            let node = &scene.nodes[i];
            boxes[i] = Rect { x, y: y + (height - node.height) / 2.0, w: node.width, h: node.height };
            x += node.width + GAP_X;
        }
        y += height + 2.0 * GAP_Y;
    }
    let mut placed = Placed { boxes, ..Placed::default() };
    for edge in &scene.edges {
        let (a, b) = (placed.boxes[edge.from], placed.boxes[edge.to]);
        let curve = if b.y > a.y {
            let start = outline(&scene.nodes[edge.from], &a, P { x: a.x + a.w / 2.0, y: a.y + a.h });
            let end = outline(&scene.nodes[edge.to], &b, P { x: b.x + b.w / 2.0, y: b.y });
            let dy = (end.y - start.y) / 2.0;
            vec![[start, P { x: start.x, y: start.y + dy }, P { x: end.x, y: end.y - dy }, end]]
        } else {
            // Upwards (or within a row): out to the right and back.
            let start = P { x: a.x + a.w, y: a.y + a.h / 2.0 };
            let end = P { x: b.x + b.w, y: b.y + b.h / 2.0 };
            let aside = start.x.max(end.x) + GAP_X;
            vec![[start, P { x: aside, y: start.y }, P { x: aside, y: end.y }, end]]
        };
        placed.labels.push(if edge.label.is_empty() { None } else { midpoint(&curve) });
        placed.curves.push(curve);
    }
    placed
}

/// Writes the SVG: title, edges, states, edge labels, legend.
fn draw(flow: &CompiledFlow, scene: &Scene, placed: &Placed, options: &Options) -> String {
    // The bounding box of everything placed (control points bound their curves).
    let mut min = P { x: f64::INFINITY, y: f64::INFINITY };
    let mut max = P { x: f64::NEG_INFINITY, y: f64::NEG_INFINITY };
    let mut grow = |x: f64, y: f64| {
        if x.is_finite() && y.is_finite() {
            min = P { x: min.x.min(x), y: min.y.min(y) };
            max = P { x: max.x.max(x), y: max.y.max(y) };
        }
    };
    for r in &placed.boxes {
        grow(r.x, r.y);
        grow(r.x + r.w, r.y + r.h);
    }
    for p in placed.curves.iter().flatten().flatten() {
        grow(p.x, p.y);
    }
    for (edge, label) in scene.edges.iter().zip(&placed.labels) {
        if let Some(l) = label {
            let half = text_width(&edge.label, EDGE_SIZE) / 2.0 + 3.0;
            grow(l.x - half, l.y - 9.0);
            grow(l.x + half, l.y + 9.0);
        }
    }
    if !min.finite() || !max.finite() {
        min = P::default();
        max = P::default();
    }

    let title = one_line(&flow.title);
    let subtitle = format!("{} · 版本 {}", one_line(&flow.name), flow.version.get(..8).unwrap_or(&flow.version));
    let header = if scene.heat { 76.0 } else { 52.0 };
    let legend_width = if scene.heat { 470.0 } else { 0.0 };
    let width = ((max.x - min.x) + 2.0 * MARGIN)
        .max(text_width(&title, 16.0) + 2.0 * MARGIN)
        .max(legend_width + 2.0 * MARGIN)
        .ceil();
    let height = ((max.y - min.y) + header + MARGIN).ceil();
    let (dx, dy) = (MARGIN - min.x, header - min.y);
    let at = |p: P| (num(p.x + dx), num(p.y + dy));

    let mut out = String::with_capacity(16 * 1024);
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"onetrip-flow\" data-flow=\"{}\" width=\"{w}\" \
         height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT_FAMILY}\" role=\"img\" aria-label=\"{}\">",
        escape(&flow.name),
        escape(&title),
        w = num(width),
        h = num(height),
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&title));
    let _ = writeln!(
        out,
        "<defs>\
         <marker id=\"ot-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
         orient=\"auto\" markerUnits=\"userSpaceOnUse\"><path d=\"M0,1 L10,5 L0,9 z\" fill=\"{LINE}\"/></marker>\
         <marker id=\"ot-arrow-back\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
         orient=\"auto\" markerUnits=\"userSpaceOnUse\"><path d=\"M0,1 L10,5 L0,9 z\" fill=\"{FAINT}\"/></marker>\
         </defs>"
    );
    let _ = writeln!(out, "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>");
    let _ = writeln!(
        out,
        "<text class=\"flow-title\" x=\"{MARGIN}\" y=\"26\" font-size=\"16\" font-weight=\"600\" fill=\"{INK}\">{}</text>",
        escape(&title)
    );
    let _ =
        writeln!(out, "<text x=\"{MARGIN}\" y=\"44\" font-size=\"11\" fill=\"{MUTED}\">{}</text>", escape(&subtitle));
    if scene.heat {
        legend(&mut out, scene.busiest, MARGIN, 56.0);
    }

    // Edges under the states.
    out.push_str("<g class=\"edges\" fill=\"none\">\n");
    for (i, (edge, curve)) in scene.edges.iter().zip(&placed.curves).enumerate() {
        let Some(first) = curve.first() else { continue };
        let mut d = String::new();
        let (x, y) = at(first[0]);
        let _ = write!(d, "M{x},{y}");
        for s in curve {
            let ((x1, y1), (x2, y2), (x3, y3)) = (at(s[1]), at(s[2]), at(s[3]));
            let _ = write!(d, " C{x1},{y1} {x2},{y2} {x3},{y3}");
        }
        let (stroke, extra, kind) = match edge.kind {
            EdgeKind::Back => (FAINT, " stroke-dasharray=\"4 3\" marker-end=\"url(#ot-arrow-back)\"", "back"),
            EdgeKind::Forward => (LINE, " marker-end=\"url(#ot-arrow)\"", "forward"),
        };
        let _ = writeln!(
            out,
            "<path class=\"edge\" data-edge=\"{i}\" data-kind=\"{kind}\" d=\"{d}\" stroke=\"{stroke}\" stroke-width=\"1\"{extra}/>"
        );
    }
    out.push_str("</g>\n");

    out.push_str("<g class=\"states\">\n");
    for (node, rect) in scene.nodes.iter().zip(&placed.boxes) {
        let (x, y) = (rect.x + dx, rect.y + dy);
        let (cx, cy) = (x + rect.w / 2.0, y + rect.h / 2.0);
        match &node.kind {
            Kind::Start | Kind::End => {
                let (class, text) =
                    if matches!(node.kind, Kind::Start) { ("start", "受理") } else { ("end", "办结") };
                let r = rect.w.min(rect.h) / 2.0;
                let _ = write!(out, "<g class=\"{class}\"><title>{text}</title>");
                let _ = write!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{STRUCTURE_FILL}\" stroke=\"{MUTED}\" stroke-width=\"1\"/>",
                    num(cx),
                    num(cy),
                    num(r)
                );
                if class == "end" {
                    let _ = write!(
                        out,
                        "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"none\" stroke=\"{MUTED}\" stroke-width=\"1\"/>",
                        num(cx),
                        num(cy),
                        num(r - 4.0)
                    );
                }
                centred(&mut out, cx, cy, 12.0, TEXT, "500", text);
                out.push_str("</g>\n");
            }
            Kind::Fork | Kind::Join(_) => {
                let (class, text, tip) = match node.kind {
                    Kind::Join(n) => ("join", "汇合", format!("汇合：等待 {n} 路并联办理完成")),
                    _ => ("fork", "并联", "并联：以下各路同时办理".to_string()),
                };
                let _ = write!(out, "<g class=\"{class}\"><title>{}</title>", escape(&tip));
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"11\" fill=\"{STRUCTURE_FILL}\" stroke=\"{MUTED}\" stroke-width=\"1\"/>",
                    num(x),
                    num(y),
                    num(rect.w),
                    num(rect.h)
                );
                centred(&mut out, cx, cy, 11.0, TEXT, "400", text);
                out.push_str("</g>\n");
            }
            Kind::Choice => {
                let (a, b) = (rect.w / 2.0, rect.h / 2.0);
                let _ = write!(out, "<g class=\"choice\"><title>条件分支：取第一个成立的条件，否则走“否则”</title>");
                let _ = write!(
                    out,
                    "<path d=\"M{},{} L{},{} L{},{} L{},{} Z\" fill=\"{STRUCTURE_FILL}\" stroke=\"{MUTED}\" stroke-width=\"1\"/>",
                    num(cx),
                    num(cy - b),
                    num(cx + a),
                    num(cy),
                    num(cx),
                    num(cy + b),
                    num(cx - a),
                    num(cy)
                );
                centred(&mut out, cx, cy, 10.5, TEXT, "400", "判断");
                out.push_str("</g>\n");
            }
            Kind::Step(b) => step(&mut out, flow, scene, b, Rect { x, y, w: rect.w, h: rect.h }, options),
        }
    }
    out.push_str("</g>\n");

    // Labels last, over the lines, with a white halo.
    out.push_str("<g class=\"edge-labels\">\n");
    for (edge, label) in scene.edges.iter().zip(&placed.labels) {
        let Some(l) = label else { continue };
        let (x, y) = at(*l);
        let fill = if edge.kind == EdgeKind::Back { MUTED } else { TEXT };
        out.push_str("<text");
        let _ = write!(
            out,
            " x=\"{x}\" y=\"{y}\" dy=\"0.35em\" text-anchor=\"middle\" font-size=\"{EDGE_SIZE}\" fill=\"{fill}\" \
             stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\" stroke-linejoin=\"round\">"
        );
        if let Some(full) = &edge.full {
            let _ = write!(out, "<title>{}</title>", escape(full));
        }
        let _ = writeln!(out, "{}</text>", escape(&edge.label));
    }
    out.push_str("</g>\n</svg>\n");
    out
}

fn centred(out: &mut String, x: f64, y: f64, size: f64, fill: &str, weight: &str, text: &str) {
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" dy=\"0.35em\" text-anchor=\"middle\" font-size=\"{size}\" font-weight=\"{weight}\" fill=\"{fill}\">{}</text>",
        num(x),
        num(y),
        escape(text)
    );
}

/// A step state: its group (with `data-*` figures and a tooltip), box and lines.
fn step(out: &mut String, flow: &CompiledFlow, scene: &Scene, b: &StepBox, r: Rect, options: &Options) {
    let link = options.link.map(|f| f(&flow.name, b.item, b.step));
    if let Some(href) = &link {
        let _ = write!(out, "<a href=\"{}\">", escape(href));
    }
    let _ = write!(out, "<g class=\"state\" data-item=\"{}\" data-step=\"{}\"", escape(b.item), escape(b.step));
    if let Some(h) = &b.heat {
        let _ = write!(
            out,
            " data-waiting=\"{}\" data-overdue=\"{}\" data-p50=\"{}\" data-p90=\"{}\" data-max=\"{}\"",
            h.waiting, h.overdue, h.p50, h.p90, h.max
        );
    }
    let _ = write!(out, "><title>{}</title>", escape(&b.tooltip));
    let (fill, stroke, stroke_width) = match &b.heat {
        Some(h) if h.overdue > 0 => (heat_colour(h.waiting, scene.busiest), RED, "2"),
        Some(h) => (heat_colour(h.waiting, scene.busiest), if h.waiting > 0 { "#d97706" } else { "#cbd5e1" }, "1"),
        None => (EMPTY_FILL.to_string(), BORDER, "1"),
    };
    let _ = write!(
        out,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{stroke_width}\"/>",
        num(r.x),
        num(r.y),
        num(r.w),
        num(r.h)
    );
    let x = r.x + PAD_X;
    let mut baseline = r.y + PAD_Y + 12.0;
    let line = |out: &mut String, y: f64, size: f64, fill: &str, weight: &str, text: &str| {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{size}\" font-weight=\"{weight}\" fill=\"{fill}\">{}</text>",
            num(x),
            num(y),
            escape(text)
        );
    };
    line(out, baseline, TITLE_SIZE, INK, "600", &b.lines[0]);
    baseline += LINE_HEIGHT;
    line(out, baseline, LABEL_SIZE, TEXT, "400", &b.lines[1]);
    baseline += LINE_HEIGHT;
    line(out, baseline, NOTE_SIZE, "#475569", "400", &b.lines[2]);
    if let Some(h) = &b.heat {
        // A hairline between what the state is and what waits there.
        let rule = baseline + 7.0;
        let _ = write!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"1\" stroke-opacity=\"0.35\"/>",
            num(r.x + 1.0),
            num(rule),
            num(r.x + r.w - 1.0),
            num(rule),
            MUTED
        );
        baseline += LINE_HEIGHT + 6.0;
        let (fill, weight) = if h.waiting == 0 { (FAINT, "400") } else { (INK, "600") };
        line(out, baseline, FIGURE_SIZE + 1.0, fill, weight, &waiting_line(h));
        if h.overdue > 0 {
            let text = overdue_text(h);
            let w = overdue_badge_width(h);
            let bx = r.x + r.w - PAD_X - w;
            let _ = write!(
                out,
                "<g class=\"overdue\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\" rx=\"8\" fill=\"{RED}\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{FIGURE_SIZE}\" font-weight=\"600\" fill=\"#ffffff\">{}</text></g>",
                num(bx),
                num(baseline - 12.0),
                num(w),
                num(bx + w / 2.0),
                num(baseline),
                escape(&text)
            );
        }
        baseline += LINE_HEIGHT;
        line(out, baseline, FIGURE_SIZE, if h.waiting == 0 { FAINT } else { TEXT }, "400", &days_line(h));
    }
    out.push_str("</g>");
    if link.is_some() {
        out.push_str("</a>");
    }
    out.push('\n');
}

/// The heat legend: white for none, the ramp from 1 to the busiest state, the overdue border.
fn legend(out: &mut String, busiest: u64, x: f64, y: f64) {
    let _ = write!(out, "<g class=\"legend\" font-size=\"11\" fill=\"{MUTED}\">");
    let baseline = num(y + 11.0);
    let mut cx = x;
    let label = |out: &mut String, cx: &mut f64, text: &str, gap: f64| {
        let _ = write!(out, "<text x=\"{}\" y=\"{baseline}\">{}</text>", num(*cx), escape(text));
        *cx += text_width(text, 11.0) + gap;
    };
    let swatch = |out: &mut String, cx: &mut f64, fill: &str, stroke: &str, stroke_width: &str| {
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"20\" height=\"14\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{stroke_width}\"/>",
            num(*cx),
            num(y)
        );
        *cx += 20.0;
    };
    label(out, &mut cx, "等待件数", 8.0);
    swatch(out, &mut cx, EMPTY_FILL, "#cbd5e1", "1");
    cx += 4.0;
    label(out, &mut cx, "0", 16.0);
    label(out, &mut cx, "1", 4.0);
    // Five steps of the ramp, from one case to the busiest state's count.
    for k in 0..5 {
        swatch(out, &mut cx, &gradient(k as f64 / 4.0), "none", "0");
    }
    cx += 4.0;
    label(out, &mut cx, &busiest.max(1).to_string(), 24.0);
    swatch(out, &mut cx, EMPTY_FILL, RED, "2");
    cx += 6.0;
    label(out, &mut cx, "有超期件", 24.0);
    label(out, &mut cx, "p50 · p90 · 最长：已等待的工作日", 0.0);
    out.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback layout draws every stdlib process: valid XML with every step state.
    #[test]
    fn the_fallback_layout_draws_every_process() {
        for process in stdlib_flows::processes() {
            let flow = stdlib_flows::compiled(process).unwrap();
            for options in [Options::default(), Options { heat: Some(Heat::new()), link: None }] {
                let scene = Scene::new(&flow, &options);
                let text = draw(&flow, &scene, &layered(&scene), &options);
                let doc = roxmltree::Document::parse(&text).unwrap();
                let states = doc.descendants().filter(|n| n.attribute("class") == Some("state")).count();
                let steps = flow.graph.node_weights().filter(|s| matches!(s, State::Step { .. })).count();
                assert_eq!(states, steps, "{process}");
                let edges = doc.descendants().filter(|n| n.attribute("class") == Some("edge")).count();
                assert_eq!(edges, flow.graph.edge_count(), "{process}");
            }
        }
    }

    /// `layout-rs` keeps a `HashSet` (random order): its result must not depend on it.
    #[test]
    fn layout_rs_is_deterministic() {
        for process in stdlib_flows::processes() {
            let flow = stdlib_flows::compiled(process).unwrap();
            let options = Options { heat: Some(Heat::new()), link: None };
            let scene = Scene::new(&flow, &options);
            let first = with_layout_rs(&scene).expect("layout-rs lays out every stdlib process");
            for _ in 0..3 {
                let again = with_layout_rs(&scene).unwrap();
                assert_eq!(format!("{first:?}"), format!("{again:?}"), "{process}");
            }
        }
    }

    /// What a picture costs, without the cache and with it (printed for the README; the bound
    /// is generous because tests run unoptimised).
    #[test]
    fn cost_of_a_picture() {
        let flows: Vec<_> = stdlib_flows::processes().into_iter().map(|p| stdlib_flows::compiled(p).unwrap()).collect();
        let biggest = flows.iter().max_by_key(|f| f.graph.node_count()).unwrap();
        let options = Options { heat: Some(Heat::new()), link: None };
        let rounds = 10;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            let scene = Scene::new(biggest, &options);
            let placed = with_layout_rs(&scene).unwrap();
            std::hint::black_box(draw(biggest, &scene, &placed, &options));
        }
        let cold = started.elapsed() / rounds;
        let started = std::time::Instant::now();
        let mut bytes = 0;
        for _ in 0..rounds {
            bytes = svg(biggest, &options).len();
        }
        let warm = started.elapsed() / rounds;
        eprintln!(
            "{}: {} states, {bytes} bytes; {cold:?} laid out, {warm:?} from the cache",
            biggest.name,
            biggest.graph.node_count()
        );
        assert!(cold < std::time::Duration::from_millis(500) && warm < std::time::Duration::from_millis(100));
    }
}
