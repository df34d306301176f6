//! The proto3 JSON mapping of the well-known types that flyteidl uses.
//!
//! pbjson generates the mapping of ordinary messages; these types have special forms in the
//! proto3 JSON spec (a timestamp is an RFC 3339 string, a `Struct` is a bare JSON object, a
//! wrapper is its bare value, an `Any` embeds its message with an `@type` key). Written here
//! rather than taken from `pbjson-types`, whose timestamps end in `+00:00` instead of `Z` and
//! whose `Value` loses JSON `null`: both differ from what protobuf's own runtimes produce.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Datelike, Utc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::wkt::{
    value::Kind, Any, BoolValue, BytesValue, DoubleValue, Duration, FloatValue, Int32Value,
    Int64Value, ListValue, NullValue, StringValue, Struct, Timestamp, UInt32Value, UInt64Value,
    Value,
};

/// Fraction digits as protobuf runtimes print them: none, or 3, 6 or 9 digits.
fn fraction(nanos: u32) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    }
}

// ---- Timestamp: "1972-01-01T10:00:20.021Z" ------------------------------------------------

const NANOS_PER_SECOND: u32 = 1_000_000_000;

impl Timestamp {
    /// The RFC 3339 form used by the JSON mapping, or `None` outside years 1..=9999.
    pub fn to_rfc3339(&self) -> Option<String> {
        // chrono takes nanos of 1e9 and more as a leap second; a Timestamp never holds one.
        let nanos = u32::try_from(self.nanos)
            .ok()
            .filter(|n| *n < NANOS_PER_SECOND)?;
        let dt = DateTime::<Utc>::from_timestamp(self.seconds, nanos)?;
        if !(1..=9999).contains(&dt.year()) {
            return None;
        }
        Some(format!(
            "{}{}Z",
            dt.format("%Y-%m-%dT%H:%M:%S"),
            fraction(nanos)
        ))
    }

    /// Parses any RFC 3339 timestamp (with `Z` or an offset). A leap second (`23:59:60.5`) is
    /// read as the next second's start plus its fraction: chrono reports it as nanos past 1e9,
    /// which no Timestamp may hold (and which rendered as `60.1500Z`).
    pub fn from_rfc3339(text: &str) -> Option<Self> {
        let dt = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
        let nanos = dt.timestamp_subsec_nanos();
        let (carry, nanos) = (nanos / NANOS_PER_SECOND, nanos % NANOS_PER_SECOND);
        Some(Timestamp {
            seconds: dt.timestamp().checked_add(i64::from(carry))?,
            nanos: i32::try_from(nanos).ok()?,
        })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.to_rfc3339().ok_or_else(|| {
            S::Error::custom(format!(
                "Timestamp {{seconds: {}, nanos: {}}} is out of the JSON range",
                self.seconds, self.nanos
            ))
        })?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::from_rfc3339(&text)
            .ok_or_else(|| de::Error::custom(format!("invalid RFC 3339 timestamp {text:?}")))
    }
}

// ---- float and double fields: "NaN", "Infinity", "-Infinity" ------------------------------

/// A float field as the proto3 JSON mapping writes it (`build.rs` routes pbjson's output of
/// every float field through this): serde_json would write a non-finite value as `null`, which
/// reads back as 0.
pub(crate) struct ProtoFloat<'a, T>(pub &'a T);

macro_rules! proto_float {
    ($t:ty, $serialize:ident) => {
        impl Serialize for ProtoFloat<'_, $t> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let v = *self.0;
                if v.is_nan() {
                    s.serialize_str("NaN")
                } else if v.is_infinite() {
                    s.serialize_str(if v > 0.0 { "Infinity" } else { "-Infinity" })
                } else {
                    s.$serialize(v)
                }
            }
        }
    };
}
proto_float!(f32, serialize_f32);
proto_float!(f64, serialize_f64);

// ---- Duration: "-1.500s" ------------------------------------------------------------------

impl Duration {
    /// The JSON form: seconds with 0, 3, 6 or 9 fraction digits and an `s` suffix.
    pub fn to_json_string(&self) -> String {
        let negative = self.seconds < 0 || self.nanos < 0;
        format!(
            "{}{}{}s",
            if negative { "-" } else { "" },
            self.seconds.unsigned_abs(),
            fraction(self.nanos.unsigned_abs())
        )
    }

    /// Whether the JSON mapping can render it: protobuf's range (about ±10,000 years), nanos
    /// below a second and of the same sign as the seconds. Others are refused as protobuf's
    /// runtimes refuse them; rendering them anyway gave text that did not parse back.
    pub fn is_valid(&self) -> bool {
        self.seconds.unsigned_abs() <= MAX_DURATION_SECONDS
            && self.nanos.unsigned_abs() < NANOS_PER_SECOND
            && !(self.seconds < 0 && self.nanos > 0 || self.seconds > 0 && self.nanos < 0)
    }

    /// Parses the JSON form (`"3s"`, `"-0.000001s"`).
    pub fn from_json_string(text: &str) -> Option<Self> {
        let body = text.strip_suffix('s')?;
        let (negative, body) = match body.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, body),
        };
        let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
        if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seconds: i64 = secs.parse().ok()?;
        let nanos: i32 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().ok()?
        };
        let sign = if negative { -1 } else { 1 };
        let duration = Duration {
            seconds: sign * seconds,
            nanos: sign as i32 * nanos,
        };
        duration.is_valid().then_some(duration)
    }
}

/// protobuf's `Duration` bound: 10,000 years of 365.25 days.
const MAX_DURATION_SECONDS: u64 = 315_576_000_000;

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.is_valid() {
            return Err(S::Error::custom(format!(
                "Duration {{seconds: {}, nanos: {}}} is out of the JSON range",
                self.seconds, self.nanos
            )));
        }
        s.serialize_str(&self.to_json_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Duration::from_json_string(&text)
            .ok_or_else(|| de::Error::custom(format!("invalid duration {text:?}")))
    }
}

// ---- Struct / Value / ListValue: plain JSON ------------------------------------------------

impl Serialize for Struct {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for ListValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.values.len()))?;
        for v in &self.values {
            seq.serialize_element(v)?;
        }
        seq.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.kind {
            None | Some(Kind::NullValue(_)) => s.serialize_unit(),
            Some(Kind::NumberValue(n)) if n.is_finite() => s.serialize_f64(*n),
            Some(Kind::NumberValue(n)) => Err(S::Error::custom(format!(
                "google.protobuf.Value cannot hold {n} in JSON"
            ))),
            Some(Kind::StringValue(v)) => s.serialize_str(v),
            Some(Kind::BoolValue(b)) => s.serialize_bool(*b),
            Some(Kind::StructValue(v)) => v.serialize(s),
            Some(Kind::ListValue(v)) => v.serialize(s),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(kind(Kind::NullValue(NullValue::NullValue as i32)))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(kind(Kind::BoolValue(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(kind(Kind::NumberValue(v as f64)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(kind(Kind::NumberValue(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(kind(Kind::NumberValue(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(kind(Kind::StringValue(v.to_string())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            values.push(v);
        }
        Ok(kind(Kind::ListValue(ListValue { values })))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = std::collections::BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            fields.insert(k, v);
        }
        Ok(kind(Kind::StructValue(Struct { fields })))
    }
}

fn kind(k: Kind) -> Value {
    Value { kind: Some(k) }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Struct {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)?.kind {
            Some(Kind::StructValue(s)) => Ok(s),
            _ => Err(de::Error::custom(
                "google.protobuf.Struct must be a JSON object",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for ListValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)?.kind {
            Some(Kind::ListValue(l)) => Ok(l),
            _ => Err(de::Error::custom(
                "google.protobuf.ListValue must be a JSON array",
            )),
        }
    }
}

impl Serialize for NullValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for NullValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _ = Option::<serde::de::IgnoredAny>::deserialize(d)?;
        Ok(NullValue::NullValue)
    }
}

// ---- Wrappers: the bare value ----------------------------------------------------------------

/// A JSON number, or a string holding one (the mapping accepts both for every numeric type).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
}

impl NumberOrString {
    fn into_f64<E: de::Error>(self) -> Result<f64, E> {
        match self {
            NumberOrString::Int(i) => Ok(i as f64),
            NumberOrString::UInt(u) => Ok(u as f64),
            NumberOrString::Float(f) => Ok(f),
            NumberOrString::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => t
                    .parse()
                    .map_err(|_| E::custom(format!("invalid number {t:?}"))),
            },
        }
    }

    fn into_integer<T, E>(self) -> Result<T, E>
    where
        T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
        E: de::Error,
    {
        let out_of_range = || E::custom("integer out of range");
        match self {
            NumberOrString::Int(i) => T::try_from(i).map_err(|_| out_of_range()),
            NumberOrString::UInt(u) => T::try_from(u).map_err(|_| out_of_range()),
            NumberOrString::Float(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                T::try_from(f as i64).map_err(|_| out_of_range())
            }
            NumberOrString::Float(f) => Err(E::custom(format!("{f} is not an integer"))),
            NumberOrString::Text(t) => t
                .parse()
                .map_err(|_| E::custom(format!("invalid integer {t:?}"))),
        }
    }
}

fn serialize_float<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        s.serialize_str("NaN")
    } else if v.is_infinite() {
        s.serialize_str(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        s.serialize_f64(v)
    }
}

macro_rules! float_wrapper {
    ($ty:ty, $prim:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_float(f64::from(self.value), s)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = NumberOrString::deserialize(d)?.into_f64::<D::Error>()?;
                Ok(Self { value: v as $prim })
            }
        }
    };
}

float_wrapper!(DoubleValue, f64);
float_wrapper!(FloatValue, f32);

macro_rules! int_wrapper {
    ($ty:ty, $prim:ty, $as_string:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if $as_string {
                    s.serialize_str(&self.value.to_string())
                } else {
                    self.value.serialize(s)
                }
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value: $prim =
                    NumberOrString::deserialize(d)?.into_integer::<$prim, D::Error>()?;
                Ok(Self { value })
            }
        }
    };
}

// 64-bit integers are strings in JSON (doubles cannot hold them exactly).
int_wrapper!(Int64Value, i64, true);
int_wrapper!(UInt64Value, u64, true);
int_wrapper!(Int32Value, i32, false);
int_wrapper!(UInt32Value, u32, false);

impl Serialize for BoolValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(self.value)
    }
}

impl<'de> Deserialize<'de> for BoolValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BoolValue {
            value: bool::deserialize(d)?,
        })
    }
}

impl Serialize for StringValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

impl<'de> Deserialize<'de> for StringValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(StringValue {
            value: String::deserialize(d)?,
        })
    }
}

/// Standard base64 with padding on output; standard or URL-safe, padded or not, on input.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

impl Serialize for BytesValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.value))
    }
}

impl<'de> Deserialize<'de> for BytesValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let value = decode_base64(&text).ok_or_else(|| de::Error::custom("invalid base64"))?;
        Ok(BytesValue { value })
    }
}

// ---- Any: the embedded message's JSON plus "@type" -------------------------------------------

/// Well-known types nest their special JSON form under `"value"` inside an `Any`.
fn wkt_to_json(name: &str, bytes: &[u8]) -> Option<Result<serde_json::Value, String>> {
    fn conv<M: prost::Message + Default + Serialize>(
        bytes: &[u8],
    ) -> Result<serde_json::Value, String> {
        let m = M::decode(bytes).map_err(|e| e.to_string())?;
        serde_json::to_value(&m).map_err(|e| e.to_string())
    }
    Some(match name {
        "google.protobuf.Timestamp" => conv::<Timestamp>(bytes),
        "google.protobuf.Duration" => conv::<Duration>(bytes),
        "google.protobuf.Struct" => conv::<Struct>(bytes),
        "google.protobuf.Value" => conv::<Value>(bytes),
        "google.protobuf.ListValue" => conv::<ListValue>(bytes),
        "google.protobuf.DoubleValue" => conv::<DoubleValue>(bytes),
        "google.protobuf.FloatValue" => conv::<FloatValue>(bytes),
        "google.protobuf.Int64Value" => conv::<Int64Value>(bytes),
        "google.protobuf.UInt64Value" => conv::<UInt64Value>(bytes),
        "google.protobuf.Int32Value" => conv::<Int32Value>(bytes),
        "google.protobuf.UInt32Value" => conv::<UInt32Value>(bytes),
        "google.protobuf.BoolValue" => conv::<BoolValue>(bytes),
        "google.protobuf.StringValue" => conv::<StringValue>(bytes),
        "google.protobuf.BytesValue" => conv::<BytesValue>(bytes),
        _ => return None,
    })
}

fn wkt_from_json(name: &str, json: serde_json::Value) -> Option<Result<Vec<u8>, String>> {
    fn conv<M: prost::Message + for<'de> Deserialize<'de>>(
        json: serde_json::Value,
    ) -> Result<Vec<u8>, String> {
        let m: M = serde_json::from_value(json).map_err(|e| e.to_string())?;
        Ok(m.encode_to_vec())
    }
    Some(match name {
        "google.protobuf.Timestamp" => conv::<Timestamp>(json),
        "google.protobuf.Duration" => conv::<Duration>(json),
        "google.protobuf.Struct" => conv::<Struct>(json),
        "google.protobuf.Value" => conv::<Value>(json),
        "google.protobuf.ListValue" => conv::<ListValue>(json),
        "google.protobuf.DoubleValue" => conv::<DoubleValue>(json),
        "google.protobuf.FloatValue" => conv::<FloatValue>(json),
        "google.protobuf.Int64Value" => conv::<Int64Value>(json),
        "google.protobuf.UInt64Value" => conv::<UInt64Value>(json),
        "google.protobuf.Int32Value" => conv::<Int32Value>(json),
        "google.protobuf.UInt32Value" => conv::<UInt32Value>(json),
        "google.protobuf.BoolValue" => conv::<BoolValue>(json),
        "google.protobuf.StringValue" => conv::<StringValue>(json),
        "google.protobuf.BytesValue" => conv::<BytesValue>(json),
        _ => return None,
    })
}

fn type_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

impl Serialize for Any {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let name = type_name(&self.type_url);
        let body = match wkt_to_json(name, &self.value) {
            Some(v) => serde_json::json!({ "value": v.map_err(S::Error::custom)? }),
            None => {
                let text = crate::registry::to_json(name, &self.value).map_err(S::Error::custom)?;
                serde_json::from_str(&text).map_err(S::Error::custom)?
            }
        };
        let serde_json::Value::Object(fields) = body else {
            return Err(S::Error::custom(
                "Any: embedded message is not a JSON object",
            ));
        };
        let mut map = s.serialize_map(Some(fields.len() + 1))?;
        map.serialize_entry("@type", &self.type_url)?;
        for (k, v) in &fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut fields = serde_json::Map::deserialize(d)?;
        let Some(serde_json::Value::String(type_url)) = fields.remove("@type") else {
            return Err(de::Error::custom(
                "google.protobuf.Any needs a string \"@type\"",
            ));
        };
        let name = type_name(&type_url).to_string();
        let value = match wkt_from_json(&name, fields.remove("value").unwrap_or_default()) {
            Some(bytes) => bytes.map_err(de::Error::custom)?,
            None => {
                let text = serde_json::Value::Object(fields).to_string();
                crate::registry::from_json(&name, &text).map_err(de::Error::custom)?
            }
        };
        Ok(Any { type_url, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_use_z_and_3_6_9_fraction_digits() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00Z"),
            (1_700_000_000, 5, "2023-11-14T22:13:20.000000005Z"),
            (1_700_000_000, 120_000_000, "2023-11-14T22:13:20.120Z"),
            (-1, 999_000, "1969-12-31T23:59:59.000999Z"),
        ];
        for (seconds, nanos, text) in cases {
            let ts = Timestamp { seconds, nanos };
            assert_eq!(serde_json::to_value(ts).unwrap(), serde_json::json!(text));
            assert_eq!(
                serde_json::from_value::<Timestamp>(text.into()).unwrap(),
                ts
            );
        }
        let offset: Timestamp = serde_json::from_str("\"1970-01-01T01:00:00+01:00\"").unwrap();
        assert_eq!(
            offset,
            Timestamp {
                seconds: 0,
                nanos: 0
            }
        );
        assert!(serde_json::to_value(Timestamp {
            seconds: i64::MAX,
            nanos: 0
        })
        .is_err());
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    /// Found by `fuzz_wire` (`damaged_json_parses_or_fails_cleanly`): a leap second parsed to
    /// nanos of 1.1e9 and rendered as `23:59:60.1100Z`, a different instant.
    #[test]
    fn fuzz_regression_leap_second_is_the_next_second() {
        let ts = Timestamp::from_rfc3339("2016-12-31T23:59:60.1Z").unwrap();
        assert_eq!(ts.nanos, 100_000_000);
        assert_eq!(ts.to_rfc3339().unwrap(), "2017-01-01T00:00:00.100Z");
        let leap = Timestamp {
            seconds: ts.seconds - 1,
            nanos: 1_100_000_000,
        };
        assert_eq!(leap.to_rfc3339(), None);
        // The last leap second of year 9999 would fall in year 10000: refused when rendered.
        let last = Timestamp::from_rfc3339("9999-12-31T23:59:60.1Z").unwrap();
        assert!(serde_json::to_string(&last).is_err());
    }

    /// Found by `fuzz_wire` (`random_messages_round_trip`): a Duration with nanos past a second
    /// (or of the other sign than its seconds) rendered as text that does not parse back.
    #[test]
    fn fuzz_regression_invalid_durations_are_refused() {
        for (seconds, nanos) in [
            (0, i32::MAX),
            (0, 1_000_000_000),
            (1, -5),
            (-1, 5),
            (315_576_000_001, 0),
            (i64::MIN, 0),
        ] {
            let d = Duration { seconds, nanos };
            assert!(!d.is_valid(), "{d:?}");
            assert!(serde_json::to_string(&d).is_err(), "{d:?}");
        }
        assert_eq!(Duration::from_json_string("315576000001s"), None);
        let max = Duration {
            seconds: -315_576_000_000,
            nanos: -999_999_999,
        };
        assert_eq!(Duration::from_json_string(&max.to_json_string()), Some(max));
    }

    #[test]
    fn durations_round_trip() {
        for (seconds, nanos, text) in [
            (0, 0, "0s"),
            (90, 0, "90s"),
            (12, 500_000_000, "12.500s"),
            (-1, -500, "-1.000000500s"),
            (0, -1_000, "-0.000001s"),
        ] {
            let d = Duration { seconds, nanos };
            assert_eq!(d.to_json_string(), text);
            assert_eq!(Duration::from_json_string(text), Some(d));
        }
        for bad in ["1", "s", "1.0000000001s", "--1s", "1.x s"] {
            assert_eq!(Duration::from_json_string(bad), None, "{bad}");
        }
    }

    #[test]
    fn struct_keeps_nulls_and_nesting() {
        let json = serde_json::json!({"a": null, "b": [1.5, "x", true, {"c": null}]});
        let s: Struct = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(s.fields["a"].kind, Some(Kind::NullValue(0)));
        assert_eq!(serde_json::to_value(&s).unwrap(), json);
    }

    #[test]
    fn wrappers_are_bare_values() {
        assert_eq!(
            serde_json::to_string(&Int64Value { value: -7 }).unwrap(),
            "\"-7\""
        );
        assert_eq!(serde_json::from_str::<Int64Value>("12").unwrap().value, 12);
        assert_eq!(
            serde_json::from_str::<UInt32Value>("\"12\"").unwrap().value,
            12
        );
        assert!(serde_json::from_str::<Int32Value>("3000000000").is_err());
        assert_eq!(
            serde_json::to_string(&DoubleValue { value: f64::NAN }).unwrap(),
            "\"NaN\""
        );
        assert_eq!(
            serde_json::to_string(&BoolValue { value: true }).unwrap(),
            "true"
        );
        let b = BytesValue {
            value: vec![0, 255, 1],
        };
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"AP8B\"");
        assert_eq!(serde_json::from_str::<BytesValue>("\"AP8B\"").unwrap(), b);
    }

    #[test]
    fn any_embeds_flyteidl_and_well_known_messages() {
        use prost::Message as _;
        let id = crate::flyteidl::core::Identifier {
            name: "wf".into(),
            version: "v1".into(),
            ..Default::default()
        };
        let any = Any {
            type_url: "type.googleapis.com/flyteidl.core.Identifier".into(),
            value: id.encode_to_vec(),
        };
        let json = serde_json::to_value(&any).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"@type": "type.googleapis.com/flyteidl.core.Identifier", "name": "wf", "version": "v1"})
        );
        assert_eq!(serde_json::from_value::<Any>(json).unwrap(), any);

        let ts = Any {
            type_url: "type.googleapis.com/google.protobuf.Timestamp".into(),
            value: Timestamp {
                seconds: 1,
                nanos: 0,
            }
            .encode_to_vec(),
        };
        let json = serde_json::to_value(&ts).unwrap();
        assert_eq!(json["value"], "1970-01-01T00:00:01Z");
        assert_eq!(serde_json::from_value::<Any>(json).unwrap(), ts);

        let unknown = serde_json::json!({"@type": "type.googleapis.com/acme.Nope"});
        assert!(serde_json::from_value::<Any>(unknown).is_err());
    }
}
