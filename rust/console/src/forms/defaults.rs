//! Literals back to the JSON a form holds: a launch plan's defaults and fixed inputs, in the
//! same shapes [`super::literal_from_json`] reads, so an untouched form launches with them.

use alula_idl::flyteidl::core::{literal, primitive, scalar, Literal};
use serde_json::{Map, Number, Value};

use super::duration::duration_text;
use super::msgpack;

/// The form value of `literal`; `None` for what a form cannot show (offloaded values, errors,
/// bytes other than msgpack).
pub(crate) fn json_of_literal(literal: &Literal) -> Option<Value> {
    match literal.value.as_ref()? {
        literal::Value::Scalar(s) => json_of_scalar(s.value.as_ref()?),
        literal::Value::Collection(c) => c
            .literals
            .iter()
            .map(json_of_literal)
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        literal::Value::Map(m) => m
            .literals
            .iter()
            .map(|(k, v)| Some((k.clone(), json_of_literal(v)?)))
            .collect::<Option<Map<_, _>>>()
            .map(Value::Object),
        literal::Value::OffloadedMetadata(_) => None,
    }
}

fn json_of_scalar(value: &scalar::Value) -> Option<Value> {
    use primitive::Value as P;
    Some(match value {
        scalar::Value::Primitive(p) => match p.value.as_ref()? {
            P::Integer(i) => Value::from(*i),
            P::FloatValue(f) => Value::Number(Number::from_f64(*f)?),
            P::StringValue(s) => Value::String(s.clone()),
            P::Boolean(b) => Value::Bool(*b),
            P::Datetime(ts) => Value::String(ts.to_rfc3339()?),
            P::Duration(d) => Value::String(duration_text(d)),
        },
        scalar::Value::Blob(b) => Value::String(b.uri.clone()),
        scalar::Value::StructuredDataset(d) => Value::String(d.uri.clone()),
        scalar::Value::Schema(s) => Value::String(s.uri.clone()),
        scalar::Value::NoneType(_) => Value::Null,
        scalar::Value::Generic(g) => serde_json::to_value(g).ok()?,
        scalar::Value::Union(u) => json_of_literal(u.value.as_deref()?)?,
        scalar::Value::Binary(b) if b.tag == "msgpack" => msgpack::to_json(&b.value)?,
        scalar::Value::Binary(_) | scalar::Value::Error(_) => return None,
    })
}
