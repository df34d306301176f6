//! The graph drawn as SVG: a `<g class="node" data-node-id data-phase>` per box (the page
//! contract) wrapping a link to the node's panel, edges as curves with arrowheads. Colours come
//! from graph.css by `data-phase`; every box also spells its phase out, so colour is never the
//! only signal.

use alula_idl::flyteidl::core::WorkflowExecutionIdentifier;
use maud::{html, Markup};

use super::layout::{self, Layout, NODE_W};
use super::model::{ElementCounts, Graph, GraphNode, Kind, END_NODE, START_NODE};
use crate::{format, urls};

const BOX_H: f64 = 58.0;
const MAP_H: f64 = 80.0;
const TERMINAL_H: f64 = 32.0;
/// Characters of a line that fit in a box at the stylesheet's font sizes.
const LINE_CHARS: usize = 27;

/// Where the drawing sits: the execution, the nested path it shows, the selected node.
pub struct Context<'a> {
    pub execution: &'a WorkflowExecutionIdentifier,
    /// Node ids from the top level down to the node whose nested graph this is (empty for the
    /// execution's own graph).
    pub path: &'a [String],
    pub selected: Option<&'a str>,
    /// `Some("graph")` for the page's main graph (`<svg id="graph">`); nested ones have none.
    pub svg_id: Option<&'a str>,
}

/// The start and end boxes (a branch's error case is an end too, but a full box).
fn is_terminal(n: &GraphNode) -> bool {
    n.spec_id == START_NODE || n.spec_id == END_NODE
}

fn height(n: &GraphNode) -> f64 {
    if is_terminal(n) {
        TERMINAL_H
    } else if n.kind == Kind::Map {
        MAP_H
    } else {
        BOX_H
    }
}

/// The arrowhead marker's id, distinct per drawing since a page may hold several.
fn marker_id(ctx: &Context) -> String {
    let mut id = String::from("arrow");
    for step in ctx.path {
        id.push('-');
        id.extend(
            step.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

/// Lays the graph out and draws it.
pub fn render(graph: &Graph, ctx: &Context) -> Markup {
    let heights: Vec<f64> = graph.nodes.iter().map(height).collect();
    let l = layout::layout(&heights, &graph.edges);
    draw(graph, &heights, &l, ctx)
}

/// The nested graph's URL of a node: the path down to it.
pub fn expand_url(execution: &WorkflowExecutionIdentifier, path: &[String], node: &str) -> String {
    let mut steps: Vec<&str> = path.iter().map(String::as_str).collect();
    steps.push(node);
    format!(
        "{}/graph?path={}",
        urls::execution(execution),
        urls::escape(&steps.join(","))
    )
}

/// A map node's elements, 100 a page.
pub fn elements_url(execution: &WorkflowExecutionIdentifier, node: &str) -> String {
    format!(
        "{}/nodes/{}/elements",
        urls::execution(execution),
        urls::escape(node)
    )
}

fn clip(text: &str) -> String {
    if text.chars().count() <= LINE_CHARS {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(LINE_CHARS - 1).collect();
        t.push('…');
        t
    }
}

fn summary(graph: &Graph) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for n in graph.nodes.iter().filter(|n| !is_terminal(n)) {
        match counts.iter_mut().find(|(p, _)| *p == n.phase) {
            Some((_, c)) => *c += 1,
            None => counts.push((n.phase, 1)),
        }
    }
    let total: usize = counts.iter().map(|c| c.1).sum();
    let parts: Vec<String> = counts
        .iter()
        .map(|(p, c)| format!("{c} {}", format::phase_label(p).to_lowercase()))
        .collect();
    format!("Execution graph of {total} nodes: {}", parts.join(", "))
}

fn draw(graph: &Graph, heights: &[f64], l: &Layout, ctx: &Context) -> Markup {
    let (w, h) = (l.width.ceil(), l.height.ceil());
    let marker = marker_id(ctx);
    let marker_ref = format!("url(#{marker})");
    html! {
        svg id=[ctx.svg_id] class="graph" role="img" aria-label=(summary(graph))
            xmlns="http://www.w3.org/2000/svg"
            width=(w) height=(h) viewBox={ "0 0 " (w) " " (h) }
            data-width=(w) data-height=(h) {
            defs {
                marker id=(marker)
                    viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"
                    orient="auto-start-reverse" {
                    path class="arrowhead" d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            g.edges {
                @for &(a, b) in &graph.edges {
                    (edge(l.positions[a], heights[a], l.positions[b], heights[b], &marker_ref))
                }
            }
            @for (i, n) in graph.nodes.iter().enumerate() {
                (node_box(n, l.positions[i], heights[i], ctx))
            }
        }
    }
}

fn edge(from: (f64, f64), from_h: f64, to: (f64, f64), to_h: f64, marker: &str) -> Markup {
    let (x1, y1) = (from.0 + NODE_W, from.1 + from_h / 2.0);
    let (x2, y2) = (to.0, to.1 + to_h / 2.0);
    let bend = ((x2 - x1) / 2.0).max(20.0);
    let d = format!(
        "M{x1:.1} {y1:.1} C{:.1} {y1:.1} {:.1} {y2:.1} {x2:.1} {y2:.1}",
        x1 + bend,
        x2 - bend
    );
    html! { path.edge d=(d) marker-end=(marker) {} }
}

fn node_box(n: &GraphNode, (x, y): (f64, f64), h: f64, ctx: &Context) -> Markup {
    let selected = ctx.selected == Some(n.id.as_str());
    let terminal = is_terminal(n);
    let class = if selected { "node selected" } else { "node" };
    let kind = format!("{:?}", n.kind).to_lowercase();
    let title = format!(
        "{} — {} — {}",
        n.spec_id,
        if n.label.is_empty() { &kind } else { &n.label },
        format::phase_label(n.phase)
    );
    let inner = html! {
        title { (title) }
        rect.box x=(x) y=(y) width=(NODE_W) height=(h) rx=(if terminal { 16 } else { 6 }) {}
        @if terminal {
            text.label x=(x + NODE_W / 2.0) y=(y + 20.0) text-anchor="middle" { (n.label) }
        } @else {
            text.id x=(x + 10.0) y=(y + 18.0) { (clip(&n.spec_id)) }
            text.label x=(x + 10.0) y=(y + 34.0) { (clip(&n.label)) }
            text.phase-text x=(x + 10.0) y=(y + 50.0) {
                @if n.ran || n.phase != "UNDEFINED" { (format::phase_label(n.phase)) } @else { "Not started" }
            }
        }
    };
    html! {
        g class=(class) data-node-id=(n.id) data-phase=(n.phase) data-kind=(kind)
            data-elements=[n.elements.as_ref().map(|e| e.total)]
            aria-current=[selected.then_some("true")] {
            @if n.ran {
                a.node-link href=(urls::node(ctx.execution, &n.id)) data-node-link=(n.id) { (inner) }
            } @else {
                g.node-link tabindex="0" { (inner) }
            }
            @if let Some(counts) = &n.elements {
                (element_bar(counts, x + 10.0, y + 58.0))
                @if n.ran {
                    a.elements-link href=(elements_url(ctx.execution, &n.id))
                        aria-label={ "Elements of " (n.spec_id) } {
                        text x=(x + NODE_W - 10.0) y=(y + 50.0) text-anchor="end" { "elements ›" }
                    }
                }
            }
            @if n.expandable {
                a.expand href=(expand_url(ctx.execution, ctx.path, &n.id))
                    data-expand=(expand_url(ctx.execution, ctx.path, &n.id))
                    aria-label={ "Expand " (n.spec_id) } {
                    rect.expand-box x=(x + NODE_W - 26.0) y=(y + 6.0) width="20" height="20" rx="4" {}
                    text x=(x + NODE_W - 16.0) y=(y + 21.0) text-anchor="middle" { "+" }
                }
            }
            @if let Some(child) = &n.child_execution {
                a.child-link href=(urls::execution(child))
                    aria-label={ "Child execution " (child.name) } {
                    text x=(x + NODE_W - 10.0) y=(y + 50.0) text-anchor="end" { "child ›" }
                }
            }
        }
    }
}

/// A stacked bar of the elements by phase and the counts in words (in the bar's `<title>`).
fn element_bar(counts: &ElementCounts, x: f64, y: f64) -> Markup {
    let width = NODE_W - 20.0;
    let total = counts.total.max(1) as f64;
    let words: Vec<String> = counts
        .by_phase
        .iter()
        .map(|(p, c)| format!("{c} {}", format::phase_label(p).to_lowercase()))
        .collect();
    let mut left = x;
    let segments: Vec<(&str, f64, f64)> = counts
        .by_phase
        .iter()
        .map(|(phase, count)| {
            let w = width * (*count as f64) / total;
            left += w;
            (phase.as_str(), left - w, w)
        })
        .collect();
    let caption = if counts.total == 0 {
        "no elements yet".to_string()
    } else {
        format!("{} elements: {}", counts.total, words.join(", "))
    };
    html! {
        g.elements {
            title { (caption) }
            rect.bar-back x=(x) y=(y) width=(width) height="6" {}
            @for (phase, left, w) in &segments {
                rect.seg data-phase=(phase) x=(format!("{left:.2}")) y=(y)
                    width=(format!("{w:.2}")) height="6" {}
            }
            text.counts x=(x) y=(y + 17.0) { (clip(&caption)) }
        }
    }
}
