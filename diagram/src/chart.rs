//! A time chart (Gantt) on a working-day axis.
//!
//! Laid out by hand: one column per working day, one row per lane. Numbers that are not
//! finite are left out, reversed periods are turned round and everything is clamped to the
//! axis, so any chart gives a valid picture.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{escape, num, text_width, truncate, FONT_FAMILY};

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
    let geometry = Geometry::new(chart);
    let g = &geometry;
    let mut out = String::with_capacity(8 * 1024);
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"onetrip-chart\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"{FONT_FAMILY}\" role=\"img\" aria-label=\"{t}\">\n<title>{t}</title>",
        w = num(g.width),
        h = num(g.height),
        t = escape(&chart.title),
    );
    out.push_str("<defs>");
    // Hatching for periods when the clock stood still.
    out.push_str(
        "<pattern id=\"ot-hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <rect width=\"6\" height=\"6\" fill=\"#f1f5f9\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#cbd5e1\" stroke-width=\"2\"/></pattern>",
    );
    // An open bar fades out towards its end: it is still running.
    for tone in TONES {
        let _ = write!(
            out,
            "<linearGradient id=\"ot-open-{name}\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">\
             <stop offset=\"0\" stop-color=\"{c}\"/><stop offset=\"0.6\" stop-color=\"{c}\"/>\
             <stop offset=\"1\" stop-color=\"{c}\" stop-opacity=\"0.15\"/></linearGradient>",
            name = tone_name(tone),
            c = tone_colour(tone),
        );
    }
    out.push_str("</defs>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
    let _ = writeln!(
        out,
        "<text class=\"chart-title\" x=\"{MARGIN}\" y=\"24\" font-size=\"16\" font-weight=\"600\" fill=\"#0f172a\">{}</text>",
        escape(&one_line(&chart.title))
    );

    let _ = writeln!(
        out,
        "<g class=\"plot\" data-x0=\"{}\" data-day-width=\"{}\" data-days=\"{}\">",
        num(g.x0),
        num(g.day),
        g.days
    );
    // Lanes: zebra rows, labels on the left.
    for (i, lane) in chart.lanes.iter().enumerate() {
        let y = g.lane_y(i);
        if i % 2 == 1 {
            let _ = write!(
                out,
                "<rect x=\"{MARGIN}\" y=\"{}\" width=\"{}\" height=\"{LANE}\" fill=\"#f8fafc\"/>",
                num(y),
                num(g.x_end() - MARGIN)
            );
        }
        let (label, _) = truncate(&one_line(&lane.label), g.label_width, 12.5);
        let (note, _) = truncate(&one_line(&lane.note), g.label_width, 11.0);
        let tip = if lane.note.is_empty() { lane.label.clone() } else { format!("{}\n{}", lane.label, lane.note) };
        let (ty, ny) = if note.is_empty() { (y + LANE / 2.0 + 4.5, 0.0) } else { (y + 17.0, y + 32.0) };
        let _ = write!(
            out,
            "<g class=\"lane-label\"><title>{}</title><text x=\"{MARGIN}\" y=\"{}\" font-size=\"12.5\" fill=\"#0f172a\">{}</text>",
            escape(&tip),
            num(ty),
            escape(&label)
        );
        if !note.is_empty() {
            let _ = write!(
                out,
                "<text x=\"{MARGIN}\" y=\"{}\" font-size=\"11\" fill=\"#64748b\">{}</text>",
                num(ny),
                escape(&note)
            );
        }
        out.push_str("</g>\n");
    }

    // The day grid and the axis labels, thinned out to what fits.
    let top = g.lanes_top;
    let bottom = g.lanes_bottom();
    let label_width = chart.days.iter().map(|d| text_width(d, 10.5)).fold(0.0, f64::max) + 6.0;
    let every = ((label_width / g.day).ceil() as usize).max(1);
    out.push_str("<g class=\"axis\" font-size=\"10.5\" fill=\"#64748b\">");
    for d in 0..=g.days {
        let x = g.x(d as f64);
        let stroke = if d % every == 0 { "#e2e8f0" } else { "#f1f5f9" };
        let _ = write!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"1\"/>",
            num(top - 4.0),
            num(bottom),
            x = num(x)
        );
    }
    for (d, label) in chart.days.iter().enumerate().take(g.days) {
        if d % every == 0 {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                num(g.x(d as f64 + 0.5)),
                num(top - 8.0),
                escape(&one_line(label))
            );
        }
    }
    let _ = write!(
        out,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#94a3b8\" stroke-width=\"1\"/>",
        num(g.x0),
        num(top),
        num(g.x_end()),
        num(top)
    );
    out.push_str("</g>\n");

    // Shaded periods under the bars.
    for period in &chart.shaded {
        let Some((from, to)) = g.span(period.from, period.to) else { continue };
        let (x1, x2) = (g.x(from), g.x(to));
        let _ = write!(
            out,
            "<g class=\"shaded\" data-from=\"{}\" data-to=\"{}\"><title>{}</title>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"url(#ot-hatch)\" opacity=\"0.9\"/>",
            num(from),
            num(to),
            escape(&period.label),
            num(x1),
            num(top),
            num((x2 - x1).max(1.0)),
            num(bottom - top)
        );
        let (label, _) = truncate(&one_line(&period.label), (x2 - x1 - 6.0).max(g.day * 3.0), 10.5);
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"10.5\" fill=\"#475569\" stroke=\"#ffffff\" stroke-width=\"3\" \
             paint-order=\"stroke\">{}</text></g>",
            num(x1 + 3.0),
            num(bottom + 14.0),
            escape(&label)
        );
    }

    // Bars and marks.
    for (i, lane) in chart.lanes.iter().enumerate() {
        let y = g.lane_y(i);
        let _ = write!(out, "<g class=\"lane\" data-lane=\"{i}\">");
        for bar in &lane.bars {
            let Some((from, to)) = g.span(bar.from, bar.to) else { continue };
            let (x1, x2) = (g.x(from), g.x(to));
            let width = (x2 - x1).max(2.0);
            let tone = tone_name(bar.tone);
            let fill = if bar.open { format!("url(#ot-open-{tone})") } else { tone_colour(bar.tone).to_string() };
            let _ = write!(
                out,
                "<rect class=\"bar\" data-tone=\"{tone}\" data-from=\"{}\" data-to=\"{}\" data-open=\"{}\" x=\"{}\" y=\"{}\" \
                 width=\"{}\" height=\"{BAR}\" rx=\"3\" fill=\"{fill}\"><title>{}</title></rect>",
                num(from),
                num(to),
                bar.open,
                num(x1),
                num(y + (LANE - BAR) / 2.0),
                num(width),
                escape(&bar.title)
            );
            if bar.open {
                // A chevron at the running end.
                let (cx, cy) = (x1 + width, y + LANE / 2.0);
                let _ = write!(
                    out,
                    "<path d=\"M{},{} L{},{} L{},{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>",
                    num(cx + 1.0),
                    num(cy - 5.0),
                    num(cx + 6.0),
                    num(cy),
                    num(cx + 1.0),
                    num(cy + 5.0),
                    tone_colour(bar.tone)
                );
            }
        }
        for mark in &lane.marks {
            let Some(at) = g.point(mark.at) else { continue };
            let (cx, cy) = (g.x(at), y + (LANE - BAR) / 2.0 - 1.0);
            let _ = write!(
                out,
                "<path class=\"mark\" data-tone=\"{}\" data-at=\"{}\" d=\"M{},{} L{},{} L{},{} L{},{} Z\" fill=\"{}\" \
                 stroke=\"#ffffff\" stroke-width=\"1\"><title>{}</title></path>",
                tone_name(mark.tone),
                num(at),
                num(cx),
                num(cy - 6.0),
                num(cx + 5.0),
                num(cy),
                num(cx),
                num(cy + 6.0),
                num(cx - 5.0),
                num(cy),
                tone_colour(mark.tone),
                escape(&mark.label)
            );
        }
        out.push_str("</g>\n");
    }

    // Lines across every lane, labelled above the axis; a label that would run into the one
    // before goes up a row.
    let mut row_ends = [f64::NEG_INFINITY; 2];
    for line in &chart.lines {
        let Some(at) = g.point(line.at) else { continue };
        let x = g.x(at);
        let colour = tone_colour(line.tone);
        let (label, _) = truncate(&one_line(&line.label), 160.0, 10.5);
        let w = text_width(&label, 10.5);
        let start = (x - w / 2.0).min(g.width - MARGIN - w).max(MARGIN);
        let row = if start > row_ends[0] + 4.0 { 0 } else { 1 };
        row_ends[row] = start + w;
        let _ = writeln!(
            out,
            "<g class=\"line\" data-tone=\"{}\" data-at=\"{}\"><title>{}</title>\
             <line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"1\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10.5\" font-weight=\"600\" fill=\"{colour}\">{}</text></g>",
            tone_name(line.tone),
            num(at),
            escape(&line.label),
            num(top - 22.0 - row as f64 * 13.0),
            num(bottom),
            num(start),
            num(top - 26.0 - row as f64 * 13.0),
            escape(&label),
            x = num(x),
        );
    }
    out.push_str("</g>\n</svg>\n");
    out
}

const MARGIN: f64 = 16.0;
const LANE: f64 = 40.0;
const BAR: f64 = 16.0;
const TONES: [Tone; 5] = [Tone::Normal, Tone::Done, Tone::Yellow, Tone::Red, Tone::Muted];
/// The most days an axis gets, whatever the positions say.
const MAX_DAYS: usize = 400;

fn tone_name(tone: Tone) -> &'static str {
    match tone {
        Tone::Normal => "normal",
        Tone::Done => "done",
        Tone::Yellow => "yellow",
        Tone::Red => "red",
        Tone::Muted => "muted",
    }
}

fn tone_colour(tone: Tone) -> &'static str {
    match tone {
        Tone::Normal => "#3b73c4",
        Tone::Done => "#5b9e74",
        Tone::Yellow => "#d99a12",
        Tone::Red => "#c62828",
        Tone::Muted => "#a3adb8",
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where the axis and the lanes go.
struct Geometry {
    /// Working days on the axis.
    days: usize,
    /// Pixels per working day.
    day: f64,
    /// The axis' start (day 0).
    x0: f64,
    label_width: f64,
    lanes_top: f64,
    lanes: usize,
    width: f64,
    height: f64,
}

impl Geometry {
    fn new(chart: &Chart) -> Self {
        // The axis covers the labelled days and anything placed after them.
        let mut last: f64 = chart.days.len() as f64;
        let mut see = |v: f64| {
            if v.is_finite() {
                last = last.max(v);
            }
        };
        for lane in &chart.lanes {
            for bar in &lane.bars {
                see(bar.from);
                see(bar.to);
            }
            for mark in &lane.marks {
                see(mark.at);
            }
        }
        for period in &chart.shaded {
            see(period.from);
            see(period.to);
        }
        for line in &chart.lines {
            see(line.at);
        }
        let days = (last.ceil() as usize).clamp(1, MAX_DAYS);
        let day = (960.0 / days as f64).clamp(10.0, 48.0);
        let label_width = chart
            .lanes
            .iter()
            .map(|l| text_width(&one_line(&l.label), 12.5).max(text_width(&one_line(&l.note), 11.0)))
            .fold(90.0, f64::max)
            .min(300.0);
        let x0 = MARGIN + label_width + 16.0;
        let lines_rows = if chart.lines.is_empty() { 0.0 } else { 28.0 };
        let lanes_top = 58.0 + lines_rows;
        let lanes = chart.lanes.len();
        let width = (x0 + days as f64 * day + 48.0).max(MARGIN * 2.0 + text_width(&chart.title, 16.0)).ceil();
        let height = (lanes_top + lanes.max(1) as f64 * LANE + 24.0).ceil();
        Geometry { days, day, x0, label_width, lanes_top, lanes, width, height }
    }

    fn x(&self, day: f64) -> f64 {
        self.x0 + day * self.day
    }

    fn x_end(&self) -> f64 {
        self.x(self.days as f64)
    }

    fn lane_y(&self, lane: usize) -> f64 {
        self.lanes_top + lane as f64 * LANE
    }

    fn lanes_bottom(&self) -> f64 {
        self.lane_y(self.lanes.max(1))
    }

    /// A position on the axis, clamped to it; `None` when it is not a number.
    fn point(&self, at: f64) -> Option<f64> {
        at.is_finite().then(|| at.clamp(0.0, self.days as f64))
    }

    /// A period on the axis, turned round if reversed and clamped.
    fn span(&self, from: f64, to: f64) -> Option<(f64, f64)> {
        let (a, b) = (self.point(from)?, self.point(to)?);
        Some((a.min(b), a.max(b)))
    }
}
