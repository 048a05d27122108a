//! A compiled flow drawn as Graphviz `dot` or Mermaid text.

use std::fmt::Write as _;

use petgraph::visit::{EdgeRef, IntoEdgeReferences};

use crate::compile::{CompiledFlow, Event, State, Transition};

/// The flow as a Graphviz digraph.
pub fn to_dot(flow: &CompiledFlow) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", dot_escape(&flow.name));
    let _ = writeln!(out, "  label=\"{}\";\n  labelloc=t;\n  rankdir=LR;", dot_escape(&flow.title));
    let _ =
        writeln!(out, "  node [fontname=\"sans-serif\", fontsize=11];\n  edge [fontname=\"sans-serif\", fontsize=9];");
    for index in flow.graph.node_indices() {
        let (label, shape) = node_label(flow, &flow.graph[index]);
        let _ = writeln!(out, "  n{} [label=\"{}\", shape={shape}];", index.index(), dot_escape(&label));
    }
    for edge in flow.graph.edge_references() {
        let style = if edge.weight().event == Event::Back { ", style=dashed" } else { "" };
        let _ = writeln!(
            out,
            "  n{} -> n{} [label=\"{}\"{style}];",
            edge.source().index(),
            edge.target().index(),
            dot_escape(&edge_label(edge.weight()))
        );
    }
    out.push_str("}\n");
    out
}

/// The flow as a Mermaid flowchart.
pub fn to_mermaid(flow: &CompiledFlow) -> String {
    let mut out = String::from("flowchart LR\n");
    for index in flow.graph.node_indices() {
        let (label, shape) = node_label(flow, &flow.graph[index]);
        let label = mermaid_escape(&label);
        let node = match shape {
            "circle" | "doublecircle" => format!("(({label}))"),
            "diamond" => format!("{{\"{label}\"}}"),
            "box" => format!("[\"{label}\"]"),
            _ => format!("[/\"{label}\"/]"),
        };
        let _ = writeln!(out, "  n{}{node}", index.index());
    }
    for edge in flow.graph.edge_references() {
        let arrow = if edge.weight().event == Event::Back { "-.->" } else { "-->" };
        let label = edge_label(edge.weight());
        let label = if label.is_empty() { String::new() } else { format!("|\"{}\"|", mermaid_escape(&label)) };
        let _ = writeln!(out, "  n{} {arrow}{label} n{}", edge.source().index(), edge.target().index());
    }
    out
}

fn node_label(flow: &CompiledFlow, state: &State) -> (String, &'static str) {
    match state {
        State::Start => ("start".into(), "circle"),
        State::End => ("end".into(), "doublecircle"),
        State::Fork => ("parallel".into(), "box3d"),
        State::Join { branches } => (format!("join {branches}"), "box3d"),
        State::Choice => ("if".into(), "diamond"),
        State::Step { item, step, department, label, cosign, .. } => {
            let item_title = flow.items.iter().find(|i| &i.name == item).map_or(item.as_str(), |i| i.title.as_str());
            let step = label.as_deref().unwrap_or(step);
            let cosign = if cosign.is_empty() { String::new() } else { format!(" +{}", cosign.join(",")) };
            (format!("{item_title}\n{step} ({department}{cosign})"), "box")
        }
    }
}

fn edge_label(transition: &Transition) -> String {
    match (&transition.guard, transition.event) {
        (Some(guard), _) => guard.clone(),
        (None, Event::Otherwise) => "else".into(),
        (None, Event::Back) => "退回".into(),
        _ => String::new(),
    }
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn mermaid_escape(text: &str) -> String {
    text.replace('"', "#quot;").replace('\n', "<br/>")
}
