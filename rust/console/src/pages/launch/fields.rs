//! The form itself: one labelled field per input, of the kind its type calls for, pre-filled
//! with the launch plan's default. `launch.js` reads each field by its `data-kind` into the JSON
//! [`crate::forms::literal_from_json`] reads, so the two agree on every kind listed here.

use alula_core::types::{display_type, is_none_type};
use alula_idl::flyteidl::admin::LaunchPlan;
use alula_idl::flyteidl::core::{
    blob_type::BlobDimensionality, literal_type::Type, parameter, Identifier, LiteralType,
    Parameter, ParameterMap, SimpleType,
};
use maud::{html, Markup};
use serde_json::Value;

use crate::forms::{json_of_literal, DURATION_PATTERN};

/// How an input is typed in: the field's `data-kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Integer,
    Float,
    String,
    Boolean,
    Enum(Vec<String>),
    Datetime,
    Duration,
    /// Lists, maps, dicts, dataclasses, unions other than `Optional[T]`: JSON text.
    Json,
    /// A file (single blob) or a directory (multipart blob): a URI or an upload.
    File {
        directory: bool,
    },
    /// A data frame or schema: a URI, or files uploaded into a fresh folder.
    Dataset,
    /// An input of type `None`: nothing to type.
    Nothing,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Integer => "integer",
            Kind::Float => "float",
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::Enum(_) => "enum",
            Kind::Datetime => "datetime",
            Kind::Duration => "duration",
            Kind::Json => "json",
            Kind::File { .. } => "file",
            Kind::Dataset => "dataset",
            Kind::Nothing => "none",
        }
    }
}

/// The field kind for `ty`, and whether it is `Optional[T]` shown as `T` (an empty field then
/// means `None`).
pub(super) fn kind_of(ty: &LiteralType) -> (Kind, bool) {
    if let Some(Type::UnionType(u)) = &ty.r#type {
        let others: Vec<&LiteralType> = u.variants.iter().filter(|v| !is_none_type(v)).collect();
        if let [only] = others.as_slice() {
            if others.len() < u.variants.len() {
                let (kind, _) = kind_of(only);
                if !matches!(kind, Kind::Json | Kind::Nothing) {
                    return (kind, true);
                }
            }
        }
        return (Kind::Json, false);
    }
    let kind = match &ty.r#type {
        Some(Type::Simple(s)) => match SimpleType::try_from(*s) {
            Ok(SimpleType::Integer) => Kind::Integer,
            Ok(SimpleType::Float) => Kind::Float,
            Ok(SimpleType::String) => Kind::String,
            Ok(SimpleType::Boolean) => Kind::Boolean,
            Ok(SimpleType::Datetime) => Kind::Datetime,
            Ok(SimpleType::Duration) => Kind::Duration,
            Ok(SimpleType::None) => Kind::Nothing,
            _ => Kind::Json,
        },
        Some(Type::EnumType(e)) => Kind::Enum(e.values.clone()),
        Some(Type::Blob(b)) => Kind::File {
            directory: b.dimensionality == BlobDimensionality::Multipart as i32,
        },
        Some(Type::StructuredDatasetType(_) | Type::Schema(_)) => Kind::Dataset,
        _ => Kind::Json,
    };
    (kind, false)
}

/// The inputs the form offers: the launch plan's expected inputs (its workflow's inputs with
/// its defaults, fixed ones left out), or its declared defaults when the closure has none.
pub(super) fn expected_inputs(plan: &LaunchPlan) -> ParameterMap {
    plan.closure
        .as_ref()
        .and_then(|c| c.expected_inputs.clone())
        .filter(|p| !p.parameters.is_empty())
        .or_else(|| plan.spec.as_ref().and_then(|s| s.default_inputs.clone()))
        .unwrap_or_default()
}

pub(super) fn is_required(param: &Parameter) -> bool {
    matches!(param.behavior, Some(parameter::Behavior::Required(true)))
}

pub(super) fn launch_form(id: &Identifier, plan: &LaunchPlan) -> Markup {
    let inputs = expected_inputs(plan);
    let fixed = plan
        .spec
        .as_ref()
        .and_then(|s| s.fixed_inputs.clone())
        .unwrap_or_default();
    html! {
        form #launch-form .launch-form novalidate
            data-project=(id.project) data-domain=(id.domain) data-name=(id.name)
            data-version=(id.version) {
            div #launch-error .notice.error role="alert" tabindex="-1" hidden {}
            fieldset.inputs {
                legend { "Inputs" }
                @if inputs.parameters.is_empty() {
                    p.muted { "This launch plan takes no inputs." }
                }
                @for (name, param) in &inputs.parameters {
                    (field(name, param))
                }
            }
            @if !fixed.literals.is_empty() {
                fieldset.fixed-inputs {
                    legend { "Fixed inputs" }
                    p.muted { "Set by the launch plan; a launch cannot change them." }
                    dl.facts {
                        @for (name, value) in &fixed.literals {
                            dt { (name) }
                            dd data-fixed=(name) {
                                code { (json_of_literal(value).map_or_else(|| "(not shown)".to_string(), |v| v.to_string())) }
                            }
                        }
                    }
                }
            }
            fieldset.execution {
                legend { "Execution" }
                div.field {
                    label for="launch-exec-name" { "Execution name " span.muted { "(optional)" } }
                    input #launch-exec-name type="text" name="name" autocomplete="off"
                        pattern="[a-z]([a-z0-9\\-]{0,61}[a-z0-9])?" maxlength="63" aria-describedby="launch-exec-name-hint";
                    p.hint #launch-exec-name-hint { "Lowercase letters, digits and dashes; a random name when empty." }
                }
                div.field {
                    label for="launch-labels" { "Labels " span.muted { "(optional)" } }
                    textarea #launch-labels name="labels" rows="2" aria-describedby="launch-labels-hint" {}
                    p.hint #launch-labels-hint { "One key=value a line." }
                    p.field-error #launch-labels-error aria-live="polite" {}
                }
                div.field {
                    label for="launch-annotations" { "Annotations " span.muted { "(optional)" } }
                    textarea #launch-annotations name="annotations" rows="2" aria-describedby="launch-annotations-hint" {}
                    p.hint #launch-annotations-hint { "One key=value a line." }
                    p.field-error #launch-annotations-error aria-live="polite" {}
                }
            }
            div.launch-submit {
                button.primary type="submit" data-action="launch" { "Launch" }
                span #launch-status .muted aria-live="polite" {}
            }
        }
    }
}

/// One input: label (name, type, required mark), the control, a hint and an error slot.
fn field(name: &str, param: &Parameter) -> Markup {
    let var = param.var.clone().unwrap_or_default();
    let ty = var.r#type.clone().unwrap_or_default();
    let (kind, optional) = kind_of(&ty);
    let required = is_required(param);
    let default = match &param.behavior {
        Some(parameter::Behavior::Default(lit)) => json_of_literal(lit),
        _ => None,
    };
    let input_id = format!("input-{name}");
    let hint_id = format!("hint-{name}");
    let error_id = format!("error-{name}");
    let described = format!("{hint_id} {error_id}");
    html! {
        div.field data-input=(name) data-kind=(kind.name()) data-optional[optional]
            data-required[required] {
            label for=(input_id) {
                (name) " "
                span.type { (display_type(&ty)) }
                @if required { " " span.required { "required" } }
            }
            (control(&kind, &input_id, name, default.as_ref(), required, &described))
            p.hint id=(hint_id) { (hint_text(name, &var.description, &kind, optional)) }
            p.field-error id=(error_id) aria-live="polite" {}
        }
    }
}

/// The input's description (flytekit repeats the name when there is none) and how to type it.
fn hint_text(name: &str, description: &str, kind: &Kind, optional: bool) -> String {
    let description = description.trim();
    [description, hint(kind, optional)]
        .into_iter()
        .filter(|part| !part.is_empty() && *part != name)
        .collect::<Vec<_>>()
        .join(" · ")
}

fn hint(kind: &Kind, optional: bool) -> &'static str {
    match (kind, optional) {
        (_, true) => "Leave empty for None.",
        (Kind::Json, _) => "JSON.",
        (Kind::Datetime, _) => "In UTC.",
        (Kind::Duration, _) => "Like 1h30m, 90s, 250ms, or a number of seconds.",
        (Kind::File { directory: false }, _) => "A URI, or upload a file.",
        (Kind::File { directory: true }, _) => "A URI of a folder, or upload a folder.",
        (Kind::Dataset, _) => "A URI, or upload the data file(s).",
        (Kind::Nothing, _) => "This input only takes None.",
        _ => "",
    }
}

fn text_of(default: Option<&Value>) -> String {
    match default {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `2024-05-01T12:30:00Z` as a `datetime-local` value (`2024-05-01T12:30:00`, UTC).
fn datetime_local(default: Option<&Value>) -> String {
    default
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|dt| dt.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

fn control(
    kind: &Kind,
    id: &str,
    name: &str,
    default: Option<&Value>,
    required: bool,
    described: &str,
) -> Markup {
    let value = text_of(default);
    html! {
        @match kind {
            Kind::Integer => input id=(id) name=(name) type="number" step="1" value=(value)
                required[required] aria-describedby=(described);
            Kind::Float => input id=(id) name=(name) type="number" step="any" value=(value)
                required[required] aria-describedby=(described);
            Kind::String => input id=(id) name=(name) type="text" value=(value)
                required[required] aria-describedby=(described);
            Kind::Boolean => input id=(id) name=(name) type="checkbox"
                checked[default == Some(&Value::Bool(true))] aria-describedby=(described);
            Kind::Enum(values) => select id=(id) name=(name) required[required] aria-describedby=(described) {
                @if default.is_none() || !required {
                    option value="" selected[default.is_none()] { "— choose —" }
                }
                @for v in values {
                    option value=(v) selected[Some(v.as_str()) == default.and_then(Value::as_str)] { (v) }
                }
            },
            Kind::Datetime => input id=(id) name=(name) type="datetime-local" step="1"
                value=(datetime_local(default)) required[required] aria-describedby=(described);
            Kind::Duration => input id=(id) name=(name) type="text" pattern=(DURATION_PATTERN)
                placeholder="1h30m" value=(value) required[required] aria-describedby=(described);
            Kind::Json => textarea id=(id) name=(name) rows="4" spellcheck="false"
                required[required] aria-describedby=(described) {
                (default.map(|v| serde_json::to_string_pretty(v).unwrap_or_default()).unwrap_or_default())
            },
            Kind::File { directory } => {
                input id=(id) name=(name) type="text" value=(value) placeholder="s3://bucket/path"
                    required[required] aria-describedby=(described);
                (upload(id, name, *directory))
            },
            Kind::Dataset => {
                input id=(id) name=(name) type="text" value=(value) placeholder="s3://bucket/path"
                    required[required] aria-describedby=(described);
                (upload(id, name, true))
            },
            Kind::Nothing => input id=(id) name=(name) type="text" value="None" readonly
                aria-describedby=(described);
        }
    }
}

/// The upload beside a URI field: `launch.js` uploads through the data proxy and writes the
/// stored object's URI into the field.
fn upload(id: &str, name: &str, folder: bool) -> Markup {
    let upload_id = format!("{id}-upload");
    html! {
        span.upload {
            label for=(upload_id) {
                @if folder { "or upload files of " (name) } @else { "or upload " (name) }
            }
            input id=(upload_id) type="file" data-upload-for=(id) data-folder[folder] multiple[folder];
        }
    }
}
