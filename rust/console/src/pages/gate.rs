//! A gate node's controls: approve / reject for an approval, a typed input for a signal. The
//! buttons post to the console's actions (`assets/actions.js`).

use alula_admin::authz::Permission;
use alula_idl::flyteidl::admin::{Signal, SignalListRequest};
use alula_idl::flyteidl::core::{
    gate_node, literal_type, node, LiteralType, Node, SimpleType, WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use maud::{html, Markup};

use crate::Api;

/// The controls of `spec` (node execution `node` of `execution`) when it is a gate waiting for
/// a signal the data plane has created and nobody has set, and the caller may answer it (the
/// launch permission); a notice or nothing otherwise.
pub async fn controls(
    api: &Api,
    execution: &WorkflowExecutionIdentifier,
    node: &str,
    spec: &Node,
) -> Markup {
    let Some(node::Target::GateNode(gate)) = &spec.target else {
        return html! {};
    };
    let (signal_id, approval) = match &gate.condition {
        Some(gate_node::Condition::Approve(a)) => (a.signal_id.as_str(), true),
        Some(gate_node::Condition::Signal(s)) => (s.signal_id.as_str(), false),
        _ => return html! {},
    };
    let Some(signal) = find_signal(api, execution, signal_id).await else {
        return html! {
            section.gate aria-label="Gate" {
                p.muted { "Waiting for the gate to open its signal " code { (signal_id) } "." }
            }
        };
    };
    if signal.value.is_some() {
        return html! {
            section.gate aria-label="Gate" { p { "The signal " code { (signal_id) } " is set." } }
        };
    }
    if !api
        .allows(Permission::Launch, &execution.project, &execution.domain)
        .await
    {
        // A viewer sees that the gate waits, not controls the services would refuse.
        return html! {
            section.gate aria-label="Gate" {
                p {
                    "Waiting for the signal " code { (signal_id) } " (answering it needs the "
                    "runner role on this project)."
                }
            }
        };
    }
    let target = Target {
        execution,
        node,
        signal_id,
    };
    if approval {
        approval_controls(&target)
    } else {
        signal_form(&target, signal.r#type.as_ref())
    }
}

struct Target<'a> {
    execution: &'a WorkflowExecutionIdentifier,
    node: &'a str,
    signal_id: &'a str,
}

async fn find_signal(
    api: &Api,
    execution: &WorkflowExecutionIdentifier,
    signal_id: &str,
) -> Option<Signal> {
    let request = api.request(SignalListRequest {
        workflow_execution_id: Some(execution.clone()),
        limit: 1_000,
        ..Default::default()
    });
    let signals = SignalService::list_signals(&api.admin, request)
        .await
        .ok()?
        .into_inner()
        .signals;
    signals
        .into_iter()
        .find(|s| s.id.as_ref().is_some_and(|id| id.signal_id == signal_id))
}

fn approval_controls(t: &Target) -> Markup {
    html! {
        section.gate role="group" aria-label="Approval" {
            p { "Waiting for approval (signal " code { (t.signal_id) } ")." }
            @for (action, label) in [("approve", "Approve"), ("reject", "Reject")] {
                button type="button" data-action=(action)
                    class=[(action == "reject").then_some("danger")]
                    data-project=(t.execution.project) data-domain=(t.execution.domain)
                    data-name=(t.execution.name) data-node=(t.node)
                    data-signal-id=(t.signal_id) { (label) }
                " "
            }
        }
    }
}

/// How the browser should read the input: `boolean`, `integer`, `float`, `string` or `json`.
fn input_kind(ty: Option<&LiteralType>) -> &'static str {
    match ty.and_then(|t| t.r#type.as_ref()) {
        Some(literal_type::Type::Simple(s)) => match SimpleType::try_from(*s) {
            Ok(SimpleType::Boolean) => "boolean",
            Ok(SimpleType::Integer) => "integer",
            Ok(SimpleType::Float) => "float",
            Ok(SimpleType::String) => "string",
            _ => "json",
        },
        _ => "json",
    }
}

fn signal_form(t: &Target, ty: Option<&LiteralType>) -> Markup {
    let kind = input_kind(ty);
    let type_name = ty.map_or_else(|| "any".to_string(), alula_core::types::display_type);
    html! {
        form.gate.signal-form data-signal-form="" aria-label="Signal"
            data-project=(t.execution.project) data-domain=(t.execution.domain)
            data-name=(t.execution.name) data-node=(t.node) data-signal-id=(t.signal_id) {
            p { "Waiting for the value of signal " code { (t.signal_id) } "." }
            label for="signal-value" { "Value (" (type_name) ")" }
            @match kind {
                "boolean" => select #signal-value name="value" data-kind=(kind) {
                    option value="true" { "true" }
                    option value="false" { "false" }
                },
                "integer" => input #signal-value name="value" type="number" step="1" required
                    data-kind=(kind);,
                "float" => input #signal-value name="value" type="number" step="any" required
                    data-kind=(kind);,
                "string" => input #signal-value name="value" type="text" data-kind=(kind);,
                _ => textarea #signal-value name="value" rows="3" data-kind=(kind)
                    placeholder="a JSON value" {},
            }
            " "
            button type="submit" data-action="signal" { "Send" }
        }
    }
}
