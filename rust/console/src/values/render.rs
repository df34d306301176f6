//! One literal as HTML, by its kind and (where known) its declared type. Everything a task
//! returned is data: maud escapes it, and nothing here marks it as markup.

use std::collections::HashMap;

use alula_core::types::display_type;
use alula_idl::flyteidl::core::blob_type::BlobDimensionality;
use alula_idl::flyteidl::core::{
    literal, literal_type, primitive, scalar, Binary, Blob, Literal, LiteralMap, LiteralType,
    Primitive, StructuredDataset, VariableMap,
};
use alula_idl::wkt::Struct;
use maud::{html, Markup};

use super::frame::Preview;
use super::json;
use crate::format;

/// Items of a list or map rendered; the rest are counted ("and 12 more").
pub(super) const MAX_ITEMS: usize = 100;
/// Lists and maps longer than this start folded (a `<details>` the reader opens).
const FOLD_AFTER: usize = 10;
/// Characters of a string shown; the rest are counted.
pub(super) const MAX_STRING_CHARS: usize = 10_000;
/// Nesting shown before a value is summarised (a pathological or recursive structure).
pub(super) const MAX_DEPTH: usize = 12;

/// What the renderer shows of the objects values refer to, fetched beforehand.
pub(super) struct Resolved {
    /// Signed download URLs by native URI (see `sign_all`).
    pub links: HashMap<String, String>,
    /// Previews of parquet data frames by URI.
    pub frames: HashMap<String, Preview>,
}

impl Resolved {
    fn link(&self, uri: &str) -> Option<&String> {
        self.links.get(uri)
    }
}

pub(super) fn map(values: &LiteralMap, types: Option<&VariableMap>, links: &Resolved) -> Markup {
    html! {
        @if values.literals.is_empty() {
            p.muted.no-values { "None." }
        }
        // Both maps are keyed by name: flyteidl's interface keeps no other order.
        @for (name, value) in &values.literals {
            @let declared = types
                .and_then(|t| t.variables.get(name))
                .and_then(|v| v.r#type.as_ref());
            @let shown = declared.cloned().or_else(|| alula_core::types::literal_type_of(value));
            div.value data-name=(name) {
                div.value-head {
                    span.value-name { (name) }
                    @if let Some(t) = &shown {
                        " "
                        code.value-type { (display_type(t)) }
                    }
                }
                div.value-body { (literal_html(value, shown.as_ref(), links, 0)) }
            }
        }
    }
}

pub(super) fn is_single_file(blob: &Blob) -> bool {
    blob.metadata
        .as_ref()
        .and_then(|m| m.r#type.as_ref())
        .is_none_or(|t| t.dimensionality == BlobDimensionality::Single as i32)
}

fn literal_html(
    value: &Literal,
    ty: Option<&LiteralType>,
    links: &Resolved,
    depth: usize,
) -> Markup {
    if depth > MAX_DEPTH {
        return html! { span.muted data-kind="deep" { "… (nested too deep to show)" } };
    }
    let inner = |t: fn(&literal_type::Type) -> Option<&LiteralType>| {
        ty.and_then(|ty| ty.r#type.as_ref()).and_then(t)
    };
    match &value.value {
        None => html! { span.none data-kind="unset" { "unset" } },
        Some(literal::Value::Scalar(s)) => match &s.value {
            None => html! { span.none data-kind="unset" { "unset" } },
            Some(scalar::Value::Primitive(p)) => primitive_html(p, ty),
            Some(scalar::Value::NoneType(_)) => html! { span.none data-kind="none" { "None" } },
            Some(scalar::Value::Blob(b)) => blob_html(b, links),
            Some(scalar::Value::Binary(b)) => binary_html(b),
            Some(scalar::Value::Generic(s)) => struct_html(s),
            Some(scalar::Value::StructuredDataset(sd)) => dataset_html(sd, links),
            Some(scalar::Value::Schema(schema)) => html! {
                div.dataset data-kind="schema" {
                    span.muted { "schema at " } code.uri { (schema.uri) }
                }
            },
            Some(scalar::Value::Error(e)) => html! {
                div.value-error data-kind="error" role="note" {
                    @if !e.failed_node_id.is_empty() {
                        span.muted { "error from node " } code { (e.failed_node_id) } ": "
                    }
                    pre.error-message { (e.message) }
                }
            },
            Some(scalar::Value::Union(u)) => {
                let variant = u.r#type.as_ref();
                let tag = variant
                    .and_then(|t| t.structure.as_ref())
                    .map(|s| s.tag.clone())
                    .filter(|t| !t.is_empty())
                    .or_else(|| variant.map(display_type))
                    .unwrap_or_else(|| "unknown".into());
                html! {
                    div.union data-kind="union" {
                        span.variant { "variant " code { (tag) } }
                        @if let Some(inner) = &u.value {
                            div.union-value { (literal_html(inner, variant, links, depth + 1)) }
                        }
                    }
                }
            }
        },
        Some(literal::Value::Collection(c)) => {
            let item_type = inner(|t| match t {
                literal_type::Type::CollectionType(t) => Some(t),
                _ => None,
            });
            let items = c
                .literals
                .iter()
                .take(MAX_ITEMS)
                .map(|item| literal_html(item, item_type, links, depth + 1));
            let body = html! {
                ol.list start="0" {
                    @for item in items { li { (item) } }
                }
                (more(c.literals.len()))
            };
            folded("list", c.literals.len(), body)
        }
        Some(literal::Value::Map(m)) => {
            let item_type = inner(|t| match t {
                literal_type::Type::MapValueType(t) => Some(t),
                _ => None,
            });
            let body = html! {
                table.map {
                    @for (key, item) in m.literals.iter().take(MAX_ITEMS) {
                        tr {
                            th scope="row" { (key) }
                            td { (literal_html(item, item_type, links, depth + 1)) }
                        }
                    }
                }
                (more(m.literals.len()))
            };
            folded("map", m.literals.len(), body)
        }
        Some(literal::Value::OffloadedMetadata(o)) => html! {
            div.offloaded data-kind="offloaded" {
                span.muted { "stored apart (" (bytes(o.size_bytes)) ") at " }
                code.uri { (o.uri) }
                (download(links.link(&o.uri), "Download the value"))
            }
        },
    }
}

/// A list or map of `len` items: shown open when short, folded when long.
fn folded(kind: &'static str, len: usize, body: Markup) -> Markup {
    let noun = if len == 1 { "item" } else { "items" };
    html! {
        @if len == 0 {
            span.muted data-kind=(kind) { "empty " (kind) }
        } @else if len > FOLD_AFTER {
            details.collection data-kind=(kind) data-len=(len) {
                summary { (kind) " of " (len) " " (noun) }
                (body)
            }
        } @else {
            div.collection data-kind=(kind) data-len=(len) { (body) }
        }
    }
}

fn more(len: usize) -> Markup {
    html! {
        @if len > MAX_ITEMS {
            p.muted.more { "and " (len - MAX_ITEMS) " more (not shown)" }
        }
    }
}

fn primitive_html(p: &Primitive, ty: Option<&LiteralType>) -> Markup {
    let is_enum = matches!(
        ty.and_then(|t| t.r#type.as_ref()),
        Some(literal_type::Type::EnumType(_))
    );
    match &p.value {
        None => html! { span.none data-kind="unset" { "unset" } },
        Some(primitive::Value::Integer(i)) => html! { span.number data-kind="integer" { (i) } },
        Some(primitive::Value::FloatValue(f)) => {
            html! { span.number data-kind="float" { (float_text(*f)) } }
        }
        Some(primitive::Value::Boolean(b)) => {
            html! { span.boolean data-kind="boolean" { (if *b { "True" } else { "False" }) } }
        }
        Some(primitive::Value::StringValue(s)) if is_enum => {
            html! { span.enum data-kind="enum" { (s) } }
        }
        Some(primitive::Value::StringValue(s)) => string_html(s),
        Some(primitive::Value::Datetime(ts)) => match format::datetime(ts) {
            Some(at) => html! {
                time.absolute data-kind="datetime" datetime=(at.to_rfc3339()) {
                    (at.format("%Y-%m-%d %H:%M:%S%.f UTC"))
                }
            },
            None => html! { span.none data-kind="datetime" { "invalid time" } },
        },
        Some(primitive::Value::Duration(d)) => html! {
            span.duration data-kind="duration" title=(format!("{}s {}ns", d.seconds, d.nanos)) {
                (format::duration(Some(d)))
            }
        },
    }
}

/// Floats as Python prints them: a whole number keeps its `.0`.
fn float_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

fn string_html(s: &str) -> Markup {
    let total = s.chars().count();
    let shown: String = s.chars().take(MAX_STRING_CHARS).collect();
    html! {
        @if s.contains('\n') || total > 200 {
            pre.string data-kind="string" { (shown) }
        } @else {
            span.string data-kind="string" { (shown) }
        }
        @if total > MAX_STRING_CHARS {
            p.muted.more { "and " (total - MAX_STRING_CHARS) " more characters (not shown)" }
        }
    }
}

fn blob_html(blob: &Blob, links: &Resolved) -> Markup {
    let single = is_single_file(blob);
    let format = blob
        .metadata
        .as_ref()
        .and_then(|m| m.r#type.as_ref())
        .map(|t| t.format.clone())
        .filter(|f| !f.is_empty());
    let kind = if single { "file" } else { "directory" };
    html! {
        div.blob data-kind=(kind) {
            span.muted { (kind) @if let Some(f) = &format { " (" (f) ")" } " " }
            code.uri { (blob.uri) }
            @if single {
                (download(links.link(&blob.uri), "Download"))
            } @else {
                " " span.muted { "(a folder: download it with flytekit or the storage's tools)" }
            }
        }
    }
}

fn download(link: Option<&String>, label: &str) -> Markup {
    html! {
        @if let Some(url) = link {
            " " a.download href=(url) download rel="noopener" { (label) }
        }
    }
}

/// A `Struct` (older flytekit's dataclasses, protobuf messages) through its proto3 JSON form.
fn struct_html(s: &Struct) -> Markup {
    match serde_json::to_value(s) {
        Ok(value) => html! { div.struct data-kind="struct" { (json::tree(&value, 0)) } },
        // Only a number JSON has no form for (NaN, infinity) gets here.
        Err(e) => {
            html! { span.value-error data-kind="struct" { "a struct JSON cannot show: " (e) } }
        }
    }
}

/// Dataclasses, dicts and pydantic models (flytekit ≥ 1.14 sends them as MessagePack).
fn binary_html(b: &Binary) -> Markup {
    if b.tag == "msgpack" {
        match crate::forms::msgpack::decode(&b.value) {
            Ok(value) => {
                return html! { div.struct data-kind="msgpack" { (json::tree(&value, 0)) } };
            }
            Err(e) => {
                return html! {
                    span.value-error data-kind="binary" {
                        (bytes(b.value.len() as u64)) " of MessagePack that does not decode: " (e)
                    }
                }
            }
        }
    }
    html! {
        span.muted data-kind="binary" {
            (bytes(b.value.len() as u64)) " of binary data"
            @if !b.tag.is_empty() { " (" (b.tag) ")" }
        }
    }
}

/// A data frame: where it is, its format and columns, and a link when it is one object.
fn dataset_html(sd: &StructuredDataset, links: &Resolved) -> Markup {
    let sd_type = sd
        .metadata
        .as_ref()
        .and_then(|m| m.structured_dataset_type.as_ref());
    let format = sd_type.map(|t| t.format.as_str()).unwrap_or_default();
    html! {
        div.dataset data-kind="dataframe" {
            span.muted { "data frame" @if !format.is_empty() { " (" (format) ")" } " at " }
            code.uri { (sd.uri) }
            (download(links.link(&sd.uri), "Download"))
            @if let Some(preview) = links.frames.get(&sd.uri) {
                (preview_table(preview))
            } @else if let Some(t) = sd_type.filter(|t| !t.columns.is_empty()) {
                table.columns {
                    caption { "Columns" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } } }
                    tbody {
                        @for column in &t.columns {
                            tr {
                                td { (column.name) }
                                td { @if let Some(ct) = &column.literal_type {
                                    code { (display_type(ct)) }
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The first rows of a data frame.
fn preview_table(p: &Preview) -> Markup {
    let shown = p.rows.len();
    html! {
        table.frame-preview {
            caption {
                "First " (shown) " of " (p.total_rows) " rows"
                @if p.more_columns > 0 { " (" (p.more_columns) " more columns not shown)" }
            }
            thead { tr { @for c in &p.columns { th scope="col" { (c) } } } }
            tbody {
                @for row in &p.rows {
                    tr { @for cell in row { td { (cell) } } }
                }
            }
        }
    }
}

/// `512 B`, `1.5 KiB`, `3.2 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut size = n as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}
