//! Primitives survive the trip through a file: what the downloader writes, the uploader reads
//! back as the same value.

use alula_copilot::text::{format_primitive, parse_primitive};
use alula_idl::flyteidl::core::{primitive::Value, SimpleType};
use alula_idl::wkt::{Duration, Timestamp};
use proptest::prelude::*;

fn round_trip(simple: SimpleType, value: Value) {
    let text = format_primitive(&value).expect("format");
    let back = parse_primitive(simple, &text).expect("parse");
    assert_eq!(back, value, "{text:?}");
    // A trailing newline (`echo`) changes nothing but strings.
    if simple != SimpleType::String {
        assert_eq!(
            parse_primitive(simple, &format!("{text}\n")).expect("parse"),
            value
        );
    }
}

proptest! {
    #[test]
    fn integers(i in any::<i64>()) {
        round_trip(SimpleType::Integer, Value::Integer(i));
    }

    #[test]
    fn floats(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        round_trip(SimpleType::Float, Value::FloatValue(f));
    }

    #[test]
    fn strings(s in ".*") {
        round_trip(SimpleType::String, Value::StringValue(s));
    }

    #[test]
    fn booleans(b in any::<bool>()) {
        round_trip(SimpleType::Boolean, Value::Boolean(b));
    }

    // Years 0001 to 9999: what RFC 3339 can write.
    #[test]
    fn datetimes(seconds in -62_135_596_800i64..253_402_300_799, nanos in 0i32..1_000_000_000) {
        round_trip(SimpleType::Datetime, Value::Datetime(Timestamp { seconds, nanos }));
    }

    // Go's durations: up to about 292 years, seconds and nanos of one sign.
    #[test]
    fn durations(total in -9_223_372_036_854_775_807i64..=i64::MAX) {
        let d = Duration {
            seconds: total / 1_000_000_000,
            nanos: (total % 1_000_000_000) as i32,
        };
        round_trip(SimpleType::Duration, Value::Duration(d));
    }
}

#[test]
fn special_floats_are_written_as_go_writes_them() {
    assert_eq!(format_primitive(&Value::FloatValue(1.0)).unwrap(), "1");
    assert_eq!(format_primitive(&Value::FloatValue(0.1)).unwrap(), "0.1");
    assert_eq!(
        format_primitive(&Value::FloatValue(1e21)).unwrap(),
        "1000000000000000000000"
    );
}
