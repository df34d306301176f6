//! Structured values (protobuf `Struct`s, MessagePack-encoded dataclasses) as JSON, and JSON as
//! nested tables: an object is a table of its fields, an array a list, capped like literals.

use alula_idl::wkt::{value::Kind, Struct, Value as ProtoValue};
use maud::{html, Markup};
use serde_json::{Map, Number, Value};

use super::render::{MAX_ITEMS, MAX_STRING_CHARS};

/// Nesting shown before the rest is summarised.
const MAX_DEPTH: usize = 12;

pub(super) fn from_struct(s: &Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), from_proto_value(v)))
            .collect(),
    )
}

fn from_proto_value(v: &ProtoValue) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StructValue(s)) => from_struct(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(from_proto_value).collect()),
    }
}

/// Decodes one MessagePack value (what flytekit's `MessagePackEncoder` writes) as JSON. Binary
/// and extension values, which JSON has no form for, become a note of their size.
pub(super) fn from_msgpack(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = bytes;
    let value = rmpv::decode::read_value(&mut reader).map_err(|e| e.to_string())?;
    Ok(msgpack_to_json(value))
}

fn msgpack_to_json(v: rmpv::Value) -> Value {
    use rmpv::Value as M;
    match v {
        M::Nil => Value::Null,
        M::Boolean(b) => Value::Bool(b),
        M::Integer(i) => i
            .as_i64()
            .map(Value::from)
            .or_else(|| i.as_u64().map(Value::from))
            .unwrap_or(Value::Null),
        M::F32(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
        M::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        M::String(s) => Value::String(s.into_str().unwrap_or_else(|| "(not UTF-8)".into())),
        M::Binary(b) => Value::String(format!("({} bytes)", b.len())),
        M::Array(items) => Value::Array(items.into_iter().map(msgpack_to_json).collect()),
        M::Map(entries) => {
            let mut object = Map::new();
            for (k, v) in entries {
                let key = match k {
                    M::String(s) => s.into_str().unwrap_or_default(),
                    other => other.to_string(),
                };
                object.insert(key, msgpack_to_json(v));
            }
            Value::Object(object)
        }
        M::Ext(kind, data) => Value::String(format!("(extension {kind}, {} bytes)", data.len())),
    }
}

/// A JSON value as nested tables and lists.
pub(super) fn tree(v: &Value, depth: usize) -> Markup {
    if depth > MAX_DEPTH {
        return html! { span.muted { "… (nested too deep to show)" } };
    }
    match v {
        Value::Null => html! { span.none { "null" } },
        Value::Bool(b) => html! { span.boolean { (b) } },
        Value::Number(n) => html! { span.number { (n) } },
        Value::String(s) => {
            let total = s.chars().count();
            let shown: String = s.chars().take(MAX_STRING_CHARS).collect();
            html! {
                span.string { (shown) }
                @if total > MAX_STRING_CHARS {
                    " " span.muted { "(and " (total - MAX_STRING_CHARS) " more characters)" }
                }
            }
        }
        Value::Array(items) if items.is_empty() => html! { span.muted { "[]" } },
        Value::Array(items) => html! {
            ol.list start="0" {
                @for item in items.iter().take(MAX_ITEMS) { li { (tree(item, depth + 1)) } }
            }
            @if items.len() > MAX_ITEMS {
                p.muted.more { "and " (items.len() - MAX_ITEMS) " more (not shown)" }
            }
        },
        Value::Object(fields) if fields.is_empty() => html! { span.muted { "{}" } },
        Value::Object(fields) => html! {
            table.fields {
                @for (key, value) in fields.iter().take(MAX_ITEMS) {
                    tr data-field=(key) {
                        th scope="row" { (key) }
                        td { (tree(value, depth + 1)) }
                    }
                }
            }
            @if fields.len() > MAX_ITEMS {
                p.muted.more { "and " (fields.len() - MAX_ITEMS) " more fields (not shown)" }
            }
        },
    }
}
