//! Values typed by people: JSON from the console's forms (the launch form, a gate's signal)
//! converted to literals of the declared type, and literals turned back into the JSON a form
//! shows as a default ([`json_of_literal`]).
//!
//! The literals are the ones flytekit 1.16 and Alula's worker read for each type: a dataclass
//! or an untyped dict whose type declares msgpack as msgpack `Binary` (what flytekit itself
//! writes; Alula's worker reads dataclasses only that way), other dicts and structs as a
//! `google.protobuf.Struct` (`Scalar.generic`, what Flyte's console sends), an enum as a string,
//! a union as `Scalar.union` carrying the chosen variant's type, files, directories and data
//! frames as their URI.

mod defaults;
mod duration;
pub(crate) mod msgpack;
#[cfg(test)]
mod tests;

use alula_core::types::display_type;
use alula_idl::flyteidl::core::{
    literal, literal_type::Type, primitive, scalar, Binary, Blob, BlobMetadata, Literal,
    LiteralCollection, LiteralMap, LiteralType, Primitive, Scalar, Schema, SimpleType,
    StructuredDataset, StructuredDatasetMetadata, Union, Void,
};
use alula_idl::wkt::{Struct, Timestamp};
use serde_json::Value;

/// The `Binary` tag of msgpack values.
const MSGPACK_TAG: &str = "msgpack";

pub(crate) use defaults::json_of_literal;
pub(crate) use duration::{parse_duration, DURATION_PATTERN};

/// `value` as a literal of type `ty`; errors say where in the value it went wrong
/// (`value[3]: expected an integer, got "x"`).
pub(crate) fn literal_from_json(value: &Value, ty: &LiteralType) -> Result<Literal, String> {
    literal_from_json_at(value, ty, "value")
}

/// [`literal_from_json`] with errors naming positions under `path` (`inputs.xs` gives
/// `inputs.xs[3]: expected an integer`).
pub(crate) fn literal_from_json_at(
    value: &Value,
    ty: &LiteralType,
    path: &str,
) -> Result<Literal, String> {
    convert(value, ty, path, Exactness::Lenient)
}

/// Whether a number may change kind on the way: an integral JSON number into a float input,
/// `3.0` into an integer one. Union variants are tried exactly first, so `3` picks the `int`
/// of `Union[float, int]`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exactness {
    Exact,
    Lenient,
}

fn convert(
    value: &Value,
    ty: &LiteralType,
    path: &str,
    exact: Exactness,
) -> Result<Literal, String> {
    let Some(t) = &ty.r#type else {
        return Err(format!("{path}: the interface declares no type"));
    };
    match t {
        Type::Simple(simple) => {
            let simple = SimpleType::try_from(*simple).unwrap_or(SimpleType::None);
            simple_literal(value, simple, ty, path, exact)
        }
        Type::EnumType(e) => match value {
            Value::String(s) if e.values.iter().any(|v| v == s) => {
                Ok(primitive_literal(primitive::Value::StringValue(s.clone())))
            }
            _ => Err(format!(
                "{path}: expected one of {}, got {}",
                e.values
                    .iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                describe(value)
            )),
        },
        Type::CollectionType(elem) => {
            let Value::Array(items) = value else {
                return Err(expected(path, "a list", value));
            };
            let literals = items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(item, elem, &format!("{path}[{i}]"), exact))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Literal {
                value: Some(literal::Value::Collection(LiteralCollection { literals })),
                ..Default::default()
            })
        }
        Type::MapValueType(value_type) => {
            let Value::Object(entries) = value else {
                return Err(expected(path, "an object (a map)", value));
            };
            let literals = entries
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        convert(v, value_type, &key_path(path, k), exact)?,
                    ))
                })
                .collect::<Result<_, String>>()?;
            Ok(Literal {
                value: Some(literal::Value::Map(LiteralMap { literals })),
                ..Default::default()
            })
        }
        Type::UnionType(union) => union_literal(value, &union.variants, path),
        Type::Blob(blob_type) => {
            let uri = uri_of(value, path)?;
            Ok(scalar_literal(scalar::Value::Blob(Blob {
                metadata: Some(BlobMetadata {
                    r#type: Some(blob_type.clone()),
                }),
                uri,
            })))
        }
        Type::StructuredDatasetType(dataset_type) => {
            let uri = uri_of(value, path)?;
            Ok(scalar_literal(scalar::Value::StructuredDataset(
                StructuredDataset {
                    uri,
                    metadata: Some(StructuredDatasetMetadata {
                        structured_dataset_type: Some(dataset_type.clone()),
                    }),
                },
            )))
        }
        Type::Schema(schema_type) => {
            let uri = uri_of(value, path)?;
            Ok(scalar_literal(scalar::Value::Schema(Schema {
                uri,
                r#type: Some(schema_type.clone()),
            })))
        }
    }
}

fn simple_literal(
    value: &Value,
    simple: SimpleType,
    ty: &LiteralType,
    path: &str,
    exact: Exactness,
) -> Result<Literal, String> {
    use primitive::Value as P;
    let primitive = match simple {
        SimpleType::None => {
            return match value {
                Value::Null => Ok(none_literal()),
                _ => Err(expected(path, "null (none)", value)),
            }
        }
        SimpleType::Integer => {
            P::Integer(integer_of(value, exact).ok_or_else(|| expected(path, "an integer", value))?)
        }
        SimpleType::Float => match value {
            Value::Number(n) if exact == Exactness::Lenient || !n.is_i64() && !n.is_u64() => {
                P::FloatValue(
                    n.as_f64()
                        .ok_or_else(|| expected(path, "a number", value))?,
                )
            }
            _ => return Err(expected(path, "a number", value)),
        },
        SimpleType::String => match value {
            Value::String(s) => P::StringValue(s.clone()),
            _ => return Err(expected(path, "a string", value)),
        },
        SimpleType::Boolean => match value {
            Value::Bool(b) => P::Boolean(*b),
            _ => return Err(expected(path, "true or false", value)),
        },
        SimpleType::Datetime => match value {
            Value::String(s) => P::Datetime(parse_datetime(s).ok_or_else(|| {
                format!("{path}: expected a date and time like 2024-05-01T12:30:00Z, got {s:?}")
            })?),
            _ => return Err(expected(path, "a date and time (RFC 3339 text)", value)),
        },
        SimpleType::Duration => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(expected(
                        path,
                        "a duration like \"1h30m\" or \"90s\"",
                        value,
                    ))
                }
            };
            P::Duration(parse_duration(&text).map_err(|e| format!("{path}: {e}"))?)
        }
        SimpleType::Struct => return struct_literal(value, ty, path),
        SimpleType::Binary | SimpleType::Error => {
            return Err(format!(
                "{path}: a {} value cannot be typed in a form",
                display_type(ty)
            ))
        }
    };
    Ok(primitive_literal(primitive))
}

fn integer_of(value: &Value, exact: Exactness) -> Option<i64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if exact == Exactness::Exact || n.is_u64() {
        return None;
    }
    // JSON has one number type; `3.0` is an integer to a person typing it. Within ±2^53 every
    // integral f64 is exact, so the conversion cannot round.
    let f = n.as_f64()?;
    const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;
    (f.fract() == 0.0 && f.abs() <= EXACT_LIMIT).then_some(f as i64)
}

/// RFC 3339 text; a time without an offset (what `<input type="datetime-local">` gives when a
/// script does not convert it) is taken as UTC.
fn parse_datetime(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Some(ts) = Timestamp::from_rfc3339(text) {
        return Some(ts);
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    Timestamp::from_rfc3339(&naive.and_utc().to_rfc3339())
}

/// Dicts and dataclasses: a JSON object as msgpack `Binary` where the type declares msgpack,
/// else as a `Struct` (older flytekit, protobuf messages). A dataclass's JSON schema (the type's
/// metadata) is checked for the fields it requires, so a typo is reported here rather than as a
/// failed task.
fn struct_literal(value: &Value, ty: &LiteralType, path: &str) -> Result<Literal, String> {
    let Value::Object(fields) = value else {
        return Err(expected(path, "an object", value));
    };
    if let Some(schema) = &ty.metadata {
        check_against_schema(fields, schema, path)?;
    }
    if declares_msgpack(ty) {
        return Ok(scalar_literal(scalar::Value::Binary(Binary {
            value: msgpack::from_json(value),
            tag: MSGPACK_TAG.to_string(),
        })));
    }
    let generic: Struct = serde_json::from_value(value.clone())
        .map_err(|e| format!("{path}: not a JSON object: {e}"))?;
    Ok(scalar_literal(scalar::Value::Generic(generic)))
}

/// Whether the type says its values are msgpack (`{"cache-key-metadata": {"serialization-format":
/// "msgpack"}}` in its annotation, as flytekit 1.14+ and Alula's SDK declare dataclasses and
/// untyped dicts): their tasks read `Binary`, and Alula's worker reads nothing else.
pub(crate) fn declares_msgpack(ty: &LiteralType) -> bool {
    let Some(annotations) = ty.annotation.as_ref().and_then(|a| a.annotations.as_ref()) else {
        return false;
    };
    let Ok(annotations) = serde_json::to_value(annotations) else {
        return false;
    };
    annotations
        .get("cache-key-metadata")
        .and_then(|m| m.get("serialization-format"))
        .and_then(Value::as_str)
        == Some(MSGPACK_TAG)
}

/// The top level of a dataclass's JSON schema (mashumaro's or marshmallow's): the required
/// properties are present and those of a plain JSON type have that type.
fn check_against_schema(
    fields: &serde_json::Map<String, Value>,
    schema: &Struct,
    path: &str,
) -> Result<(), String> {
    let Ok(schema) = serde_json::to_value(schema) else {
        return Ok(());
    };
    // marshmallow nests the class under `definitions` and points at it with `$ref`.
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .rsplit('/')
            .next()
            .and_then(|name| schema.get("definitions").and_then(|d| d.get(name)))
            .cloned()
            .unwrap_or(schema),
        None => schema,
    };
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        let missing: Vec<&str> = required
            .iter()
            .filter_map(Value::as_str)
            .filter(|name| !fields.contains_key(*name))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{path}: missing field{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ));
        }
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, field) in fields {
        let Some(declared) = properties
            .get(name)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let fits = match declared {
            "integer" => integer_of(field, Exactness::Lenient).is_some(),
            "number" => field.is_number(),
            "string" => field.is_string(),
            "boolean" => field.is_boolean(),
            "array" => field.is_array(),
            "object" => field.is_object(),
            _ => true,
        };
        if !fits {
            let what = match declared {
                "integer" => "an integer",
                "number" => "a number",
                "string" => "a string",
                "boolean" => "true or false",
                "array" => "a list",
                _ => "an object",
            };
            return Err(expected(&key_path(path, name), what, field));
        }
    }
    Ok(())
}

/// The first variant the value converts to, exactly typed numbers first; the literal carries
/// that variant's type, which is how flytekit picks the Python type to read.
fn union_literal(value: &Value, variants: &[LiteralType], path: &str) -> Result<Literal, String> {
    let mut first_error = None;
    for exact in [Exactness::Exact, Exactness::Lenient] {
        for variant in variants {
            match convert(value, variant, path, exact) {
                Ok(inner) => {
                    return Ok(scalar_literal(scalar::Value::Union(Box::new(Union {
                        value: Some(Box::new(inner)),
                        r#type: Some(variant.clone()),
                    }))))
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    let names: Vec<String> = variants.iter().map(display_type).collect();
    match (variants.len(), first_error) {
        (1, Some(e)) => Err(e),
        _ => Err(format!(
            "{path}: {} fits none of {}",
            describe(value),
            names.join(", ")
        )),
    }
}

fn uri_of(value: &Value, path: &str) -> Result<String, String> {
    let uri = match value {
        Value::String(s) => s.trim(),
        // What a JSON form may hold for a file: `{"uri": "s3://..."}` or `{"path": ...}`.
        Value::Object(o) => o
            .get("uri")
            .or_else(|| o.get("path"))
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default(),
        _ => "",
    };
    if uri.is_empty() {
        return Err(expected(
            path,
            "a URI (s3://..., gs://..., file path) or an upload",
            value,
        ));
    }
    Ok(uri.to_string())
}

/// `path.key`, or `path["odd key"]` when the key is not a plain name.
fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{key:?}]")
    }
}

fn expected(path: &str, what: &str, got: &Value) -> String {
    format!("{path}: expected {what}, got {}", describe(got))
}

/// A short description of a JSON value for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() <= 40 => format!("{s:?}"),
        Value::String(_) => "a long string".to_string(),
        Value::Array(a) => format!("a list of {}", a.len()),
        Value::Object(_) => "an object".to_string(),
    }
}

fn scalar_literal(value: scalar::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(value),
        }))),
        ..Default::default()
    }
}

fn primitive_literal(value: primitive::Value) -> Literal {
    scalar_literal(scalar::Value::Primitive(Primitive { value: Some(value) }))
}

fn none_literal() -> Literal {
    scalar_literal(scalar::Value::NoneType(Void {}))
}
