//! The timeline (Gantt) of the execution's top-level nodes: per node a hatched bar while it was
//! queued (created → started) and a solid bar, coloured by its phase, while it ran (started →
//! started + duration). Built from the node executions the page already has: no call per node,
//! so 1,000 nodes cost nothing extra (attempts are in each node's panel). Rows have a fixed
//! height inside a scroll box; the time axis sits above it and stays in view.

use alula_idl::flyteidl::admin::{Execution, NodeExecution};
use chrono::{DateTime, Utc};
use maud::{html, Markup};

use crate::{format, graph};

const LABEL_W: f64 = 220.0;
const CHART_W: f64 = 860.0;
const ROW_H: f64 = 22.0;
const BAR_H: f64 = 14.0;
const AXIS_H: f64 = 24.0;

/// One node's bar: seconds from the timeline's start.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: String,
    phase: &'static str,
    created: f64,
    started: Option<f64>,
    ended: f64,
}

/// The timeline section of an execution page.
pub fn timeline_section(execution: &Execution, nodes: &[NodeExecution]) -> Markup {
    render(execution, nodes, until(execution, Utc::now()))
}

/// Where unfinished bars end: now while the execution runs, its last update once it ended (a
/// node left queued by a failed execution must not grow for ever).
fn until(execution: &Execution, now: DateTime<Utc>) -> DateTime<Utc> {
    match &execution.closure {
        Some(c) if format::workflow_phase_is_terminal(c.phase) => c
            .updated_at
            .as_ref()
            .and_then(format::datetime)
            .filter(|t| t.timestamp() > 0)
            .map_or(now, |t| t.min(now)),
        _ => now,
    }
}

fn seconds(at: DateTime<Utc>, origin: DateTime<Utc>) -> f64 {
    (at - origin).num_milliseconds() as f64 / 1000.0
}

/// The rows, sorted by creation, and the span they cover in seconds.
fn rows(nodes: &[NodeExecution], now: DateTime<Utc>) -> (Vec<Row>, f64) {
    let moment = |ts: Option<&alula_idl::wkt::Timestamp>| {
        ts.and_then(format::datetime).filter(|t| t.timestamp() > 0)
    };
    let timed: Vec<(&NodeExecution, DateTime<Utc>)> = nodes
        .iter()
        .filter(|n| graph::is_shown(n))
        .filter_map(|n| {
            let c = n.closure.as_ref()?;
            Some((
                n,
                moment(c.created_at.as_ref()).or(moment(c.started_at.as_ref()))?,
            ))
        })
        .collect();
    let Some(origin) = timed.iter().map(|(_, t)| *t).min() else {
        return (Vec::new(), 0.0);
    };
    let mut out: Vec<Row> = timed
        .into_iter()
        .map(|(n, created)| {
            let c = n.closure.as_ref();
            let phase_code = c.map_or(0, |c| c.phase);
            let phase = format::node_phase(phase_code);
            let terminal = format::node_phase_is_terminal(phase_code);
            let started = c.and_then(|c| moment(c.started_at.as_ref()));
            let ran = c.and_then(|c| format::proto_duration(c.duration.as_ref()));
            let end = match (started, ran) {
                (Some(s), Some(d)) if !d.is_zero() || terminal => {
                    s + chrono::Duration::from_std(d).unwrap_or_default()
                }
                _ if terminal => c
                    .and_then(|c| moment(c.updated_at.as_ref()))
                    .unwrap_or(created),
                _ => now,
            };
            Row {
                id: graph::node_id(n).to_string(),
                phase,
                created: seconds(created, origin),
                started: started.map(|s| seconds(s, origin)),
                ended: seconds(end.max(started.unwrap_or(created)), origin),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        a.created.total_cmp(&b.created).then(
            a.started
                .unwrap_or(f64::MAX)
                .total_cmp(&b.started.unwrap_or(f64::MAX)),
        )
    });
    let span = out.iter().map(|r| r.ended).fold(0.0, f64::max);
    (out, span)
}

/// A tick step that gives about six ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    const STEPS: [f64; 16] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
        7200.0,
    ];
    STEPS
        .into_iter()
        .find(|s| span / s <= 8.0)
        .unwrap_or((span / 6.0 / 3600.0).ceil() * 3600.0)
}

fn offset_text(s: f64) -> String {
    format!(
        "+{}",
        format::duration_text(std::time::Duration::from_secs_f64(s.max(0.0)))
    )
}

fn render(_execution: &Execution, nodes: &[NodeExecution], now: DateTime<Utc>) -> Markup {
    let (rows, span) = rows(nodes, now);
    if rows.is_empty() {
        return html! {
            section #timeline-section aria-labelledby="timeline-heading" {
                h2 #timeline-heading { "Timeline" }
                p.muted { "No node has started yet." }
            }
        };
    }
    let span = span.max(0.001);
    let scale = CHART_W / span;
    let x = |s: f64| LABEL_W + s * scale;
    let step = tick_step(span);
    let ticks: Vec<f64> = (0..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= span + 1e-9)
        .collect();
    let width = LABEL_W + CHART_W + 60.0;
    let height = rows.len() as f64 * ROW_H + 4.0;
    html! {
        section #timeline-section aria-labelledby="timeline-heading" {
            h2 #timeline-heading { "Timeline" }
            ul.timeline-legend aria-label="Legend" {
                li {
                    svg width="28" height="12" aria-hidden="true" {
                        (hatch_defs("legend-hatch"))
                        rect.queued x="0" y="0" width="28" height="12" fill="url(#legend-hatch)" {}
                    }
                    " Queued (created, not yet started)"
                }
                li {
                    svg width="28" height="12" aria-hidden="true" {
                        rect.run data-phase="SUCCEEDED" x="0" y="0" width="28" height="12" {}
                    }
                    " Running, coloured by the node's phase (named in each bar's tooltip)"
                }
            }
            svg.timeline-axis width=(width) height=(AXIS_H) aria-hidden="true" {
                @for t in &ticks {
                    line x1=(x(*t)) x2=(x(*t)) y1=(AXIS_H - 6.0) y2=(AXIS_H) {}
                    text x=(x(*t)) y=(AXIS_H - 9.0) text-anchor="middle" { (offset_text(*t)) }
                }
            }
            div.timeline-scroll tabindex="0" aria-label="Timeline rows, scrollable" {
                svg #timeline role="img" width=(width) height=(height)
                    aria-label={ "Timeline of " (rows.len()) " nodes over " (offset_text(span)) } {
                    (hatch_defs("queued-hatch"))
                    @for t in &ticks {
                        line.grid x1=(x(*t)) x2=(x(*t)) y1="0" y2=(height) {}
                    }
                    @for (i, r) in rows.iter().enumerate() {
                        @let top = i as f64 * ROW_H + 2.0;
                        @let bar_y = top + (ROW_H - BAR_H) / 2.0;
                        @let run_from = r.started.unwrap_or(r.ended);
                        g.row data-node-id=(r.id) data-phase=(r.phase) {
                            title { (row_title(r)) }
                            text.row-label x="6" y=(top + 15.0) { (clip(&r.id)) }
                            @if run_from > r.created {
                                rect.queued x=(x(r.created)) y=(bar_y)
                                    width=(((run_from - r.created) * scale).max(1.0)) height=(BAR_H)
                                    fill="url(#queued-hatch)" {}
                            }
                            @if let Some(s) = r.started {
                                rect.run data-phase=(r.phase) x=(x(s)) y=(bar_y)
                                    width=(((r.ended - s) * scale).max(2.0)) height=(BAR_H) {}
                            }
                            text.row-phase x=(x(r.ended) + 4.0) y=(top + 15.0) {
                                (format::phase_label(r.phase))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn hatch_defs(id: &str) -> Markup {
    html! {
        defs {
            pattern id=(id) width="6" height="6" patternUnits="userSpaceOnUse"
                patternTransform="rotate(45)" {
                rect.hatch-back width="6" height="6" {}
                line.hatch-line x1="0" y1="0" x2="0" y2="6" {}
            }
        }
    }
}

fn clip(text: &str) -> String {
    if text.chars().count() <= 30 {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(29).collect();
        t.push('…');
        t
    }
}

fn row_title(r: &Row) -> String {
    let queued = r.started.unwrap_or(r.ended) - r.created;
    let ran = r.started.map(|s| r.ended - s);
    format!(
        "{}: {} — queued {}, ran {} (from {} to {})",
        r.id,
        format::phase_label(r.phase),
        format::duration_text(std::time::Duration::from_secs_f64(queued.max(0.0))),
        ran.map_or("not yet".to_string(), |d| format::duration_text(
            std::time::Duration::from_secs_f64(d.max(0.0))
        )),
        offset_text(r.created),
        offset_text(r.ended),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alula_idl::flyteidl::admin::NodeExecutionClosure;
    use alula_idl::flyteidl::core::{node_execution, NodeExecutionIdentifier};
    use alula_idl::wkt::{Duration as ProtoDuration, Timestamp};

    fn at(s: i64) -> Option<Timestamp> {
        Some(Timestamp {
            seconds: 1_700_000_000 + s,
            nanos: 0,
        })
    }

    fn node(
        id: &str,
        created: i64,
        started: Option<i64>,
        ran: i64,
        phase: node_execution::Phase,
    ) -> NodeExecution {
        NodeExecution {
            id: Some(NodeExecutionIdentifier {
                node_id: id.into(),
                execution_id: None,
            }),
            closure: Some(NodeExecutionClosure {
                phase: phase as i32,
                created_at: at(created),
                started_at: started.and_then(at),
                duration: Some(ProtoDuration {
                    seconds: ran,
                    nanos: 0,
                }),
                updated_at: at(created + ran),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn bars_split_queueing_from_running_and_keep_phases() {
        use node_execution::Phase;
        let nodes = vec![
            node("start-node", 0, Some(0), 0, Phase::Succeeded),
            node("n1", 10, Some(12), 30, Phase::Failed),
            node("n0", 0, Some(4), 6, Phase::Succeeded),
            node("n2", 40, None, 0, Phase::Queued),
        ];
        let now = format::datetime(&at(100).unwrap()).unwrap();
        let (rows, span) = rows(&nodes, now);
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["n0", "n1", "n2"], "sorted by creation, no start node");
        assert_eq!(
            (rows[0].created, rows[0].started, rows[0].ended),
            (0.0, Some(4.0), 10.0)
        );
        assert_eq!(
            (rows[1].created, rows[1].started, rows[1].ended),
            (10.0, Some(12.0), 42.0)
        );
        // Still queued: the bar runs to now, all of it queueing.
        assert_eq!((rows[2].started, rows[2].ended), (None, 100.0));
        assert_eq!(span, 100.0);

        let html = render(&Execution::default(), &nodes, now).into_string();
        assert_eq!(html.matches("<g class=\"row\"").count(), 3);
        assert!(html.contains(r#"data-node-id="n1" data-phase="FAILED""#));
        assert!(html.contains(r#"class="run" data-phase="FAILED""#));
        // Queueing is drawn for the three nodes (n0 waited 4 s, n1 2 s, n2 still waits).
        assert_eq!(html.matches(r##"fill="url(#queued-hatch)""##).count(), 3);
        assert!(html.contains("n1: Failed — queued 2.0s, ran 30s"));
        assert!(html.contains("Queued (created, not yet started)"));
    }

    #[test]
    fn bars_of_an_ended_execution_stop_at_its_end() {
        use alula_idl::flyteidl::admin::ExecutionClosure;
        use alula_idl::flyteidl::core::workflow_execution::Phase;
        let now = format::datetime(&at(1000).unwrap()).unwrap();
        let mut execution = Execution {
            closure: Some(ExecutionClosure {
                phase: Phase::Failed as i32,
                updated_at: at(50),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            until(&execution, now),
            format::datetime(&at(50).unwrap()).unwrap()
        );
        execution.closure.as_mut().unwrap().phase = Phase::Running as i32;
        assert_eq!(until(&execution, now), now);
    }

    #[test]
    fn nothing_started_says_so() {
        let html = render(&Execution::default(), &[], Utc::now()).into_string();
        assert!(html.contains("No node has started yet."));
    }
}
