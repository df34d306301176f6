//! An attempt's logs in a page, streamed while it runs.
//!
//! The page holds an empty `<pre class="logs">` per stream pointing at admin's log route
//! (`data-src`); `assets/logs.js` fills it and, while the attempt runs, asks every few seconds
//! for the bytes after those it has (`?offset=`), so following a long log moves only what is
//! new. The script keeps what it read across the page's live refreshes (which replace the
//! panel), keyed by the log's URL.
//!
//! A pod keeps one combined log (`output`); the script asks for it first and shows it alone
//! when there is one, else `stdout` and `stderr` apart.

use alula_admin::logs::{log_url, AttemptLogId};
use alula_idl::flyteidl::core::WorkflowExecutionIdentifier;
use maud::{html, Markup};

/// The streams shown, in order; `output` starts hidden (see the module docs).
const STREAMS: [(&str, &str); 3] = [
    ("output", "Output"),
    ("stdout", "Standard output"),
    ("stderr", "Standard error"),
];

/// The logs of one attempt (of one map element when `index` is set): `<pre class="logs"
/// data-stream="stdout">` per stream, followed while `running`.
pub fn logs_panel(
    execution: &WorkflowExecutionIdentifier,
    node_id: &str,
    retry_attempt: u32,
    index: Option<u32>,
    running: bool,
) -> Markup {
    let id = AttemptLogId {
        project: execution.project.clone(),
        domain: execution.domain.clone(),
        name: execution.name.clone(),
        node_id: node_id.to_string(),
        retry_attempt,
        array_index: index,
    };
    let element = index.map(|i| format!("-{i}")).unwrap_or_default();
    html! {
        section.logs-panel data-running=(running) aria-label="Logs" {
            div.logs-toolbar {
                label {
                    input.logs-wrap type="checkbox";
                    " Wrap lines"
                }
                @if running {
                    span.muted.logs-following { "Following while the attempt runs" }
                }
            }
            @for (stream, title) in STREAMS {
                @let url = log_url("", &id, stream);
                @let file = format!("{}-{node_id}{element}-{retry_attempt}-{stream}.txt", id.name);
                figure.log data-stream=(stream) hidden[stream == "output"] {
                    figcaption {
                        span.log-title { (title) }
                        " "
                        a.log-download href=(url) download=(file) { "Download" }
                        " "
                        span.logs-state role="status" aria-live="polite" {
                            @if running { "No output yet." } @else { "Loading…" }
                        }
                    }
                    pre.logs data-stream=(stream) data-src=(url) tabindex="0"
                        aria-label=(format!("{title} of attempt {retry_attempt}")) {}
                }
            }
            noscript { p.muted { "Logs need JavaScript here; use the download links." } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panel_points_each_stream_at_the_log_route() {
        let execution = WorkflowExecutionIdentifier {
            project: "flytesnacks".into(),
            domain: "development".into(),
            name: "abc123".into(),
            ..Default::default()
        };
        let html = logs_panel(&execution, "n0", 1, Some(3), true).into_string();
        assert!(html.contains(r#"data-running="true""#), "{html}");
        assert!(html.contains(
            r#"<pre class="logs" data-stream="stdout" data-src="/api/v1/logs/flytesnacks/development/abc123/n0/1/stdout?index=3""#
        ), "{html}");
        assert!(html.contains(r#"data-stream="stderr""#));
        // A pod's combined log is there, hidden until the script finds one.
        assert!(
            html.contains(r#"<figure class="log" data-stream="output" hidden>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"download="abc123-n0-3-1-stdout.txt""#),
            "{html}"
        );
        let done = logs_panel(&execution, "n0", 0, None, false).into_string();
        assert!(done.contains(r#"data-running="false""#));
        assert!(done.contains("/api/v1/logs/flytesnacks/development/abc123/n0/0/stderr\""));
    }
}
