//! Fuzzing the wire layer: the protobuf decoder and the proto3 JSON mapping of every message in
//! the descriptor set (requests of every service included), on arbitrary bytes, on random valid
//! messages and on mutations of them. No input may panic or hang, and a message that renders as
//! JSON must parse back to the same JSON (the mapping is an identity on what it produces).
//!
//! Runs `ALULA_FUZZ_CASES` cases per property (a CI-sized default otherwise) with a fixed seed
//! unless `ALULA_FUZZ_SEED` is set; see `rust/fuzz/README.md`.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::sync::OnceLock;
use std::time::Duration;

use alula_fuzz::{bounded, config, mutate, Entropy, Schema};
use alula_idl::registry;
use proptest::prelude::*;
use serde_json::Value;

/// A debug build decodes and renders a message in well under a millisecond; a second is a hang.
const LIMIT: Duration = Duration::from_secs(10);

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(Schema::load)
}

/// Every message with a Rust type (map entries and google.protobuf's are reached inside them).
fn names() -> &'static [&'static str] {
    registry::MESSAGE_NAMES
}

/// Decoding, re-encoding and rendering `bytes` as `name`: never a panic; and when the message
/// renders as JSON, that JSON parses back and renders identically.
fn check_wire(name: &str, bytes: &[u8]) {
    let Ok(reencoded) = registry::reencode(name, bytes) else {
        // Refused bytes are refused by JSON rendering too: both decode the same way.
        assert!(registry::to_json(name, bytes).is_err(), "{name}");
        return;
    };
    // Re-encoding a decoded message is stable (unknown fields dropped once and for all).
    let again = registry::reencode(name, &reencoded)
        .unwrap_or_else(|e| panic!("{name}: own encoding does not decode: {e}"));
    assert_eq!(again, reencoded, "{name}: encoding is not stable");
    check_json_round_trip(name, &reencoded);
}

fn check_json_round_trip(name: &str, bytes: &[u8]) {
    // Rendering may refuse values JSON cannot hold (a timestamp beyond year 9999, a NaN inside a
    // google.protobuf.Value): an error, never a panic.
    let Ok(json) = registry::to_json(name, bytes) else {
        return;
    };
    let parsed = registry::from_json(name, &json)
        .unwrap_or_else(|e| panic!("{name}: own JSON {json} does not parse: {e}"));
    let again = registry::to_json(name, &parsed)
        .unwrap_or_else(|e| panic!("{name}: JSON of {json} re-parsed does not render: {e}"));
    let a: Value = serde_json::from_str(&json).unwrap();
    let b: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(a, b, "{name}: JSON round trip changed the message");
}

/// Replaces some leaves of a JSON document with values that stress the mapping: numbers out of
/// range, special floats, malformed timestamps and durations, wrong types.
fn mutate_json(value: &mut Value, entropy: &mut Entropy<'_>) {
    const NASTY: &[&str] = &[
        "null",
        "\"NaN\"",
        "\"-Infinity\"",
        "1e308",
        "123456789012345678901234567890",
        "-0",
        "18446744073709551616",
        "-9223372036854775809",
        "\"9223372036854775807\"",
        "\"0000-01-01T00:00:00Z\"",
        "\"9999-12-31T23:59:60Z\"",
        "\"2024-01-01T00:00:00.1234567891Z\"",
        "\"-315576000001s\"",
        "\"1.0000000001s\"",
        "\"-.5s\"",
        "\"s\"",
        "\"%%%\"",
        "\"AAA\"",
        "[]",
        "{}",
        "{\"@type\":\"type.googleapis.com/flyteidl.core.Literal\",\"scalar\":{}}",
        "{\"@type\":\"type.googleapis.com/nope\"}",
        "{\"@type\":7}",
        "true",
        "\"é\\u0000\"",
    ];
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                mutate_json(v, entropy);
            }
            if entropy.chance(10) {
                map.insert("bogus_field".into(), Value::Bool(true));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mutate_json(v, entropy)),
        leaf => {
            if entropy.chance(60) {
                let nasty: &&str = entropy.pick(NASTY);
                *leaf = serde_json::from_str(nasty).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// Arbitrary bytes as any message.
    #[test]
    fn arbitrary_bytes_decode_or_fail_cleanly(
        index in any::<prop::sample::Index>(),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let name = index.get(names());
        bounded(LIMIT, name, move || check_wire(name, &bytes));
    }

    /// Random valid messages, some with their bytes mutated.
    #[test]
    fn random_messages_round_trip(
        index in any::<prop::sample::Index>(),
        entropy in prop::collection::vec(any::<u8>(), 0..1024),
        corrupt in any::<bool>(),
    ) {
        let name = index.get(names());
        bounded(LIMIT, name, move || {
            let mut e = Entropy::new(&entropy);
            let mut bytes = schema().generate(name, &mut e);
            if corrupt {
                mutate(&mut bytes, &mut e);
            }
            check_wire(name, &bytes);
        });
    }

    /// Random valid messages rendered as JSON, then damaged: parsing never panics, and what
    /// parses renders and parses again identically.
    #[test]
    fn damaged_json_parses_or_fails_cleanly(
        index in any::<prop::sample::Index>(),
        entropy in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let name = index.get(names());
        bounded(LIMIT, name, move || {
            let mut e = Entropy::new(&entropy);
            let bytes = schema().generate(name, &mut e);
            let Ok(json) = registry::to_json(name, &bytes) else { return };
            let mut value: Value = serde_json::from_str(&json).unwrap();
            mutate_json(&mut value, &mut e);
            if let Ok(parsed) = registry::from_json(name, &value.to_string()) {
                check_json_round_trip(name, &parsed);
            }
        });
    }
}

/// Every message, not just those the random index happens to pick: a handful of generated
/// instances each, so a message added to `proto/` is fuzzed from its first CI run.
#[test]
fn every_message_survives_generated_and_mutated_bytes() {
    for name in names() {
        for seed in 0u8..6 {
            let entropy: Vec<u8> = (0..512u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed.wrapping_mul(37))
                .collect();
            let mut e = Entropy::new(&entropy);
            let mut bytes = schema().generate(name, &mut e);
            check_wire(name, &bytes);
            mutate(&mut bytes, &mut e);
            check_wire(name, &bytes);
        }
    }
}

/// The suite reaches the requests of every served service (they are messages like any other),
/// so a new RPC is fuzzed without touching this file.
#[test]
fn every_request_type_is_in_the_registry() {
    let services = schema().services();
    assert!(services.len() >= 5, "services: {}", services.len());
    for service in services {
        for method in &service.methods {
            assert!(
                names().contains(&method.input.as_str()),
                "{}.{} takes {} which the registry lacks",
                service.full_name,
                method.name,
                method.input
            );
        }
    }
}

/// Found by `every_message_survives_generated_and_mutated_bytes`: a NaN or infinite float field
/// rendered as JSON `null`, which reads back as 0.
#[test]
fn fuzz_regression_non_finite_floats_keep_their_value() {
    use alula_idl::flyteidl::core::{primitive, Primitive};
    use prost::Message;
    for (value, text) in [
        (f64::NAN, "\"NaN\""),
        (f64::INFINITY, "\"Infinity\""),
        (f64::NEG_INFINITY, "\"-Infinity\""),
    ] {
        let p = Primitive {
            value: Some(primitive::Value::FloatValue(value)),
        };
        let json = registry::to_json("flyteidl.core.Primitive", &p.encode_to_vec()).unwrap();
        assert_eq!(json, format!("{{\"floatValue\":{text}}}"));
        check_json_round_trip("flyteidl.core.Primitive", &p.encode_to_vec());
    }
    let ratio = alula_idl::flyteidl::core::ArrayNode {
        success_criteria: Some(
            alula_idl::flyteidl::core::array_node::SuccessCriteria::MinSuccessRatio(f32::NAN),
        ),
        ..Default::default()
    };
    let json = registry::to_json("flyteidl.core.ArrayNode", &ratio.encode_to_vec()).unwrap();
    assert!(json.contains("\"minSuccessRatio\":\"NaN\""), "{json}");
}
