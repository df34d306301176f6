//! Structured values (protobuf `Struct`s, MessagePack-encoded dataclasses, both read as JSON
//! elsewhere: `wkt_json`, `forms::msgpack`) as nested tables: an object is a table of its
//! fields, an array a list, capped like literals.

use maud::{html, Markup};
use serde_json::Value;

use super::render::{MAX_DEPTH, MAX_ITEMS, MAX_STRING_CHARS};

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
