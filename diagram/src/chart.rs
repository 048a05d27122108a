//! A time chart (Gantt) on a working-day axis.

use serde::Serialize;

/// A chart: lanes of bars over an axis of working days. Positions are in working days from
/// the axis' start (fractions place events within a day).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Chart {
    pub title: String,
    /// One label per working day on the axis, from day 0 (e.g. `10-09`).
    pub days: Vec<String>,
    pub lanes: Vec<Lane>,
    /// Periods shaded across every lane (e.g. 补正: the clock stood still).
    pub shaded: Vec<Period>,
    /// Vertical marks across every lane (e.g. the promised limit).
    pub lines: Vec<Mark>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Lane {
    /// The lane's label, left of the axis (e.g. an item and its step).
    pub label: String,
    /// A second, smaller line (e.g. the department).
    pub note: String,
    pub bars: Vec<Bar>,
    /// Point marks in this lane (e.g. warnings).
    pub marks: Vec<Mark>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bar {
    pub from: f64,
    pub to: f64,
    /// Still running: drawn open-ended to `to`.
    pub open: bool,
    pub tone: Tone,
    /// Tooltip text.
    pub title: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Period {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Mark {
    pub at: f64,
    pub tone: Tone,
    pub label: String,
}

/// Colour of a bar or mark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    #[default]
    Normal,
    Done,
    Yellow,
    Red,
    Muted,
}

/// The chart as a standalone SVG document.
pub fn svg(chart: &Chart) -> String {
    let _ = chart;
    String::from("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"></svg>\n")
}
