//! The top of the execution page: phase, who launched what and how, the error or abort cause,
//! labels, the actions, and the inputs and outputs.

use alula_idl::flyteidl::admin::{
    execution_closure::OutputResult, execution_metadata::ExecutionMode, Execution, ExecutionClosure,
};
use alula_idl::flyteidl::core::{ExecutionError, Identifier, WorkflowExecutionIdentifier};
use maud::{html, Markup};

use super::execution::ExecutionView;
use crate::{format, urls, values, Api};

/// The header section: `<section id="execution-header" data-phase=..>`, live while running.
pub fn header(view: &ExecutionView, live: Option<&str>) -> Markup {
    let execution = &view.execution;
    let closure = execution.closure.clone().unwrap_or_default();
    let spec = execution.spec.clone().unwrap_or_default();
    let metadata = spec.metadata.clone().unwrap_or_default();
    let phase = format::workflow_phase(closure.phase);
    html! {
        section #execution-header .execution-header data-phase=(phase)
            data-execution=(view.id.name) data-live=[live] {
            h1 {
                (format::phase_badge(phase))
                " "
                span.execution-name { (view.id.name) }
            }
            dl.facts {
                dt { "Duration" } dd { (duration(&closure)) }
                dt { "Started" } dd { (format::time(closure.started_at.as_ref())) }
                dt { "Created" } dd { (format::time(closure.created_at.as_ref())) }
                dt { "Launched by" }
                dd {
                    @if metadata.principal.is_empty() { span.none { "—" } }
                    @else { (metadata.principal) }
                }
                @if let Some(target) = &spec.launch_plan {
                    dt { (target_kind(target)) }
                    dd { (entity_link(target)) }
                }
                @if let Some(workflow) = &closure.workflow_id {
                    dt { "Workflow" } dd { (entity_link(workflow)) }
                }
                dt { "Mode" } dd { (mode(execution)) }
                (tags("Labels", spec.labels.as_ref().map(|l| &l.values)))
                (tags("Annotations", spec.annotations.as_ref().map(|a| &a.values)))
            }
            (waiting(view))
            (actions(view))
            (outcome(&closure))
        }
    }
}

fn duration(closure: &ExecutionClosure) -> String {
    if closure.duration.is_some() {
        return format::duration(closure.duration.as_ref());
    }
    // Running: the time since it started.
    let started = closure.started_at.as_ref().and_then(format::datetime);
    match started {
        Some(at) if at.timestamp() > 0 && !format::workflow_phase_is_terminal(closure.phase) => {
            let elapsed = chrono::Utc::now() - at;
            elapsed.to_std().map_or_else(
                |_| "—".to_string(),
                |d| format!("{} so far", format::duration_text(d)),
            )
        }
        _ => "—".to_string(),
    }
}

fn target_kind(id: &Identifier) -> &'static str {
    if id.resource_type == alula_idl::flyteidl::core::ResourceType::Task as i32 {
        "Task"
    } else {
        "Launch plan"
    }
}

/// `name` linked to its page, then the version.
fn entity_link(id: &Identifier) -> Markup {
    html! {
        a href=(urls::entity(id)) { (id.name) }
        @if !id.version.is_empty() {
            " " span.version title="version" { (id.version) }
        }
    }
}

/// How the execution came to be, linking the execution it came from.
fn mode(execution: &Execution) -> Markup {
    let metadata = execution
        .spec
        .as_ref()
        .and_then(|s| s.metadata.clone())
        .unwrap_or_default();
    let mode = ExecutionMode::try_from(metadata.mode).unwrap_or(ExecutionMode::Manual);
    let reference = metadata.reference_execution.as_ref();
    let parent = metadata.parent_node_execution.as_ref();
    html! {
        span.mode data-mode=(mode.as_str_name()) {
            @match mode {
                ExecutionMode::Relaunch => "relaunch of ",
                ExecutionMode::Recovered => "recovered from ",
                ExecutionMode::ChildWorkflow => "child of ",
                ExecutionMode::Scheduled => "scheduled",
                ExecutionMode::System => "system",
                ExecutionMode::Trigger => "triggered",
                ExecutionMode::Manual => "manual",
            }
        }
        @if let (ExecutionMode::Relaunch | ExecutionMode::Recovered, Some(r)) = (mode, reference) {
            a.reference href=(urls::execution(r)) { (r.name) }
        }
        @if let (ExecutionMode::ChildWorkflow, Some(p)) = (mode, parent) {
            @if let Some(parent_execution) = &p.execution_id {
                a.reference href=(urls::node(parent_execution, &p.node_id)) {
                    (parent_execution.name) " / " (p.node_id)
                }
            }
        }
    }
}

fn tags(label: &str, values: Option<&std::collections::BTreeMap<String, String>>) -> Markup {
    html! {
        @if let Some(values) = values.filter(|v| !v.is_empty()) {
            dt { (label) }
            dd {
                ul.tags {
                    @for (key, value) in values {
                        li.tag data-key=(key) { (key) "=" (value) }
                    }
                }
            }
        }
    }
}

/// Gates waiting for a signal: where to answer them.
fn waiting(view: &ExecutionView) -> Markup {
    html! {
        @if !view.waiting.is_empty() && !view.is_terminal() {
            div.waiting role="status" {
                "Waiting for input: "
                @for signal in &view.waiting {
                    @let signal_id = signal.id.as_ref().map_or("", |s| s.signal_id.as_str());
                    span.signal data-signal-id=(signal_id) { (signal_id) }
                    " "
                }
                "— open the gate node below to answer."
            }
        }
    }
}

/// Terminate (while running), relaunch, recover (after a failure); none for a caller who may
/// not launch in the execution's project (the services would refuse them anyway).
fn actions(view: &ExecutionView) -> Markup {
    if !view.can_launch {
        return html! {};
    }
    let id = &view.id;
    let phase = format::workflow_phase(view.phase());
    let recoverable = matches!(phase, "FAILED" | "ABORTED" | "TIMED_OUT");
    let terminable = !view.is_terminal() && phase != "ABORTING";
    html! {
        div.actions role="group" aria-label="Actions" {
            @if terminable {
                button.danger type="button" data-action="terminate"
                    data-project=(id.project) data-domain=(id.domain) data-name=(id.name)
                    aria-haspopup="dialog" { "Terminate…" }
            }
            button type="button" data-action="relaunch"
                data-project=(id.project) data-domain=(id.domain) data-name=(id.name) { "Relaunch" }
            @if recoverable {
                button type="button" data-action="recover"
                    data-project=(id.project) data-domain=(id.domain) data-name=(id.name)
                    title="Rerun what did not succeed, reusing the outputs of what did" { "Recover" }
            }
        }
    }
}

/// The error (with its full message: the traceback) or the abort cause.
fn outcome(closure: &ExecutionClosure) -> Markup {
    #[allow(deprecated)]
    match &closure.output_result {
        Some(OutputResult::Error(error)) => error_block(error),
        Some(OutputResult::AbortMetadata(abort)) => abort_block(&abort.cause, &abort.principal),
        Some(OutputResult::AbortCause(cause)) => abort_block(cause, ""),
        _ => html! {},
    }
}

/// An execution or node error: code, kind and the message in a `<pre>`.
pub fn error_block(error: &ExecutionError) -> Markup {
    let kind = match error.kind {
        1 => "user error",
        2 => "system error",
        _ => "error",
    };
    html! {
        section.error role="alert" aria-label="Error" {
            h2 { "Error" }
            p.error-code {
                @if !error.code.is_empty() { code { (error.code) } " · " }
                (kind)
            }
            pre.traceback { (error.message) }
        }
    }
}

fn abort_block(cause: &str, principal: &str) -> Markup {
    html! {
        section.abort role="status" aria-label="Abort cause" {
            h2 { "Terminated" }
            p.abort-cause {
                (if cause.is_empty() { "no cause given" } else { cause })
                @if !principal.is_empty() { " — by " (principal) }
            }
        }
    }
}

/// The confirmation asked before terminating: a dialog with the cause to record.
pub fn terminate_dialog(id: &WorkflowExecutionIdentifier) -> Markup {
    html! {
        dialog #terminate-dialog aria-labelledby="terminate-title" {
            form #terminate-form method="dialog" data-project=(id.project)
                data-domain=(id.domain) data-name=(id.name) {
                h2 #terminate-title { "Terminate " (id.name) "?" }
                label for="terminate-cause" { "Cause (recorded with the execution)" }
                textarea #terminate-cause name="cause" rows="3" required {}
                div.dialog-buttons {
                    button type="button" data-dismiss="dialog" { "Cancel" }
                    button.danger type="submit" data-confirm="terminate" { "Terminate" }
                }
            }
        }
    }
}

/// Inputs and outputs, typed by the execution's interface.
pub async fn values(api: &Api, view: &ExecutionView) -> Markup {
    #[allow(deprecated)]
    let closure_outputs = match view
        .execution
        .closure
        .as_ref()
        .and_then(|c| c.output_result.as_ref())
    {
        Some(OutputResult::OutputData(map)) => Some(map.clone()),
        _ => None,
    };
    let outputs = match &view.outputs {
        Ok(Some(map)) => Ok(Some(map.clone())),
        Ok(None) => Ok(closure_outputs),
        Err(e) => Err(e.clone()),
    };
    let inputs = value_list(api, &view.inputs, view.definition.inputs(), "inputs").await;
    let outputs = value_list(api, &outputs, view.definition.outputs(), "outputs").await;
    html! {
        div.values-column { h2 { "Inputs" } (inputs) }
        div.values-column { h2 { "Outputs" } (outputs) }
    }
}

pub async fn value_list(
    api: &Api,
    map: &Result<Option<alula_idl::flyteidl::core::LiteralMap>, String>,
    types: Option<&alula_idl::flyteidl::core::VariableMap>,
    what: &str,
) -> Markup {
    match map {
        Ok(Some(map)) if !map.literals.is_empty() => values::literal_map(api, map, types).await,
        Ok(_) => html! { p.muted.no-values { "No " (what) "." } },
        Err(message) => html! { p.muted { "Could not read the values: " (message) } },
    }
}
