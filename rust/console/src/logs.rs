//! (being written) An attempt's logs in a page, streamed while it runs.

use alula_idl::flyteidl::core::WorkflowExecutionIdentifier;
use maud::{html, Markup};

/// The logs of one attempt (of one map element when `index` is set): `<pre class="logs"
/// data-stream="stdout">` per stream, followed while `running`.
pub fn logs_panel(
    _execution: &WorkflowExecutionIdentifier,
    _node_id: &str,
    _retry_attempt: u32,
    _index: Option<u32>,
    _running: bool,
) -> Markup {
    html! { section.logs-panel { p.muted { "Logs are being built." } } }
}
