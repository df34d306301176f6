//! MessagePack (through rmpv) for what flytekit (since 1.14) and Alula's SDK store as msgpack
//! `Binary` (dataclasses, dicts, pydantic models): decoding shows a stored value (or a launch
//! plan's dataclass default) as JSON; bytes and extension values, which JSON cannot hold, come
//! out as a note of their size. Encoding turns a typed-in JSON object into the bytes their
//! readers expect. The one decoder of the console: value pages and launch forms both use it.

use rmpv::Value as Msgpack;
use serde_json::{Map, Number, Value};

/// The JSON form of one msgpack value filling `bytes`; `None` if they are not that.
pub(crate) fn to_json(bytes: &[u8]) -> Option<Value> {
    decode(bytes).ok()
}

/// The JSON form of one msgpack value filling `bytes`, or why they are not one.
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, String> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value(&mut rest).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the value", rest.len()));
    }
    Ok(json_of(value))
}

fn json_of(value: Msgpack) -> Value {
    match value {
        Msgpack::Nil => Value::Null,
        Msgpack::Binary(b) => Value::String(format!("({} bytes)", b.len())),
        Msgpack::Ext(kind, data) => {
            Value::String(format!("(extension {kind}, {} bytes)", data.len()))
        }
        Msgpack::Boolean(b) => Value::Bool(b),
        Msgpack::Integer(i) => i
            .as_i64()
            .map(Value::from)
            .or_else(|| i.as_u64().map(Value::from))
            .unwrap_or(Value::Null),
        Msgpack::F32(f) => float(f64::from(f)),
        Msgpack::F64(f) => float(f),
        Msgpack::String(s) => Value::String(s.into_str().unwrap_or_else(|| "(not UTF-8)".into())),
        Msgpack::Array(items) => Value::Array(items.into_iter().map(json_of).collect()),
        Msgpack::Map(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = match json_of(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, json_of(v))
                })
                .collect::<Map<_, _>>(),
        ),
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `value` as msgpack, as Python's `msgpack.packb` writes the same data: the smallest form of
/// each integer, floats as float64, strings and maps by length.
pub(crate) fn from_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &msgpack_of(value));
    out
}

fn msgpack_of(value: &Value) -> Msgpack {
    match value {
        Value::Null => Msgpack::Nil,
        Value::Bool(b) => Msgpack::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Msgpack::from(i),
            (None, Some(u)) => Msgpack::from(u),
            _ => Msgpack::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Msgpack::from(s.as_str()),
        Value::Array(items) => Msgpack::Array(items.iter().map(msgpack_of).collect()),
        Value::Object(entries) => Msgpack::Map(
            entries
                .iter()
                .map(|(k, v)| (Msgpack::from(k.as_str()), msgpack_of(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_flytekit_writes_for_a_dataclass() {
        // msgpack.dumps({"a": 1, "b": [1.5, "x", None, True], "c": -3, "d": 300})
        let bytes = [
            0x84, 0xa1, b'a', 0x01, 0xa1, b'b', 0x94, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xa1,
            b'x', 0xc0, 0xc3, 0xa1, b'c', 0xfd, 0xa1, b'd', 0xcd, 0x01, 0x2c,
        ];
        assert_eq!(
            to_json(&bytes).unwrap(),
            serde_json::json!({"a": 1, "b": [1.5, "x", null, true], "c": -3, "d": 300})
        );
        assert_eq!(
            to_json(&[0xd1, 0xff, 0x38]).unwrap(),
            serde_json::json!(-200)
        );
    }

    #[test]
    fn encodes_as_python_msgpack_does_and_reads_back() {
        let value = serde_json::json!({"a": 1, "b": [1.5, "x", null, true], "c": -3, "d": 300});
        // Python: msgpack.packb(...) of the same dict.
        let python = [
            0x84, 0xa1, b'a', 0x01, 0xa1, b'b', 0x94, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xa1,
            b'x', 0xc0, 0xc3, 0xa1, b'c', 0xfd, 0xa1, b'd', 0xcd, 0x01, 0x2c,
        ];
        assert_eq!(from_json(&value), python);
        for v in [
            serde_json::json!(-200),
            serde_json::json!(i64::MIN),
            serde_json::json!(u64::MAX),
            serde_json::json!(-33),
            serde_json::json!(70_000),
            serde_json::json!("x".repeat(40)),
            serde_json::json!("y".repeat(300)),
            serde_json::json!((0..20).collect::<Vec<_>>()),
            serde_json::json!((0..20)
                .map(|i| (i.to_string(), Value::from(i)))
                .collect::<Map<String, Value>>()),
        ] {
            assert_eq!(to_json(&from_json(&v)).unwrap(), v, "{v}");
        }
    }

    #[test]
    fn refuses_truncated_and_trailing_bytes() {
        assert!(to_json(&[0x92, 0x01]).is_none());
        assert!(to_json(&[0x01, 0x02]).is_none());
        assert!(to_json(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(to_json(&[]).is_none());
    }
}
