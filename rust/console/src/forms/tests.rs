//! Conversions of typed-in JSON: each kind of type by example, and a property over generated
//! types and values: a conversion either fails or gives a literal of a castable type.

use alula_core::types::{are_types_castable, literal_type_of, simple};
use alula_idl::flyteidl::core::{
    blob_type::BlobDimensionality, literal, literal_type::Type, primitive, scalar, BlobType,
    EnumType, Literal, LiteralType, SimpleType, StructuredDatasetType, TypeAnnotation, UnionType,
};
use alula_idl::wkt::Struct;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::{json_of_literal, literal_from_json, literal_from_json_at};

fn list(t: LiteralType) -> LiteralType {
    LiteralType {
        r#type: Some(Type::CollectionType(Box::new(t))),
        ..Default::default()
    }
}

fn map(t: LiteralType) -> LiteralType {
    LiteralType {
        r#type: Some(Type::MapValueType(Box::new(t))),
        ..Default::default()
    }
}

fn union(variants: Vec<LiteralType>) -> LiteralType {
    LiteralType {
        r#type: Some(Type::UnionType(UnionType { variants })),
        ..Default::default()
    }
}

fn enum_of(values: &[&str]) -> LiteralType {
    LiteralType {
        r#type: Some(Type::EnumType(EnumType {
            values: values.iter().map(|v| v.to_string()).collect(),
        })),
        ..Default::default()
    }
}

fn blob(format: &str, dimensionality: BlobDimensionality) -> LiteralType {
    LiteralType {
        r#type: Some(Type::Blob(BlobType {
            format: format.into(),
            dimensionality: dimensionality as i32,
        })),
        ..Default::default()
    }
}

fn dataset(format: &str) -> LiteralType {
    LiteralType {
        r#type: Some(Type::StructuredDatasetType(StructuredDatasetType {
            format: format.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A dataclass as flytekit 1.16 declares it: STRUCT with mashumaro's JSON schema as metadata.
fn dataclass() -> LiteralType {
    let schema: Struct = serde_json::from_value(json!({
        "title": "Point",
        "type": "object",
        "required": ["x", "y"],
        "properties": {"x": {"type": "integer"}, "y": {"type": "number"}, "label": {"type": "string"}},
    }))
    .unwrap();
    LiteralType {
        metadata: Some(schema),
        ..simple(SimpleType::Struct)
    }
}

/// The same dataclass as flytekit 1.14+ and Alula's SDK declare it: values are msgpack.
fn msgpack_dataclass() -> LiteralType {
    LiteralType {
        annotation: Some(TypeAnnotation {
            annotations: Some(
                serde_json::from_value(
                    json!({"cache-key-metadata": {"serialization-format": "msgpack"}}),
                )
                .unwrap(),
            ),
        }),
        ..dataclass()
    }
}

fn primitive_of(lit: &Literal) -> &primitive::Value {
    match &lit.value {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Primitive(p)) => p.value.as_ref().unwrap(),
            other => panic!("not a primitive: {other:?}"),
        },
        other => panic!("not a scalar: {other:?}"),
    }
}

fn scalar_of(lit: &Literal) -> &scalar::Value {
    match &lit.value {
        Some(literal::Value::Scalar(s)) => s.value.as_ref().unwrap(),
        other => panic!("not a scalar: {other:?}"),
    }
}

#[test]
fn scalars() {
    let int = simple(SimpleType::Integer);
    assert_eq!(
        primitive_of(&literal_from_json(&json!(42), &int).unwrap()),
        &primitive::Value::Integer(42)
    );
    assert_eq!(
        primitive_of(&literal_from_json(&json!(3.0), &int).unwrap()),
        &primitive::Value::Integer(3)
    );
    let err = literal_from_json(&json!(3.5), &int).unwrap_err();
    assert_eq!(err, "value: expected an integer, got 3.5");
    assert!(literal_from_json(&json!("3"), &int).is_err());
    assert_eq!(
        primitive_of(&literal_from_json(&json!(2), &simple(SimpleType::Float)).unwrap()),
        &primitive::Value::FloatValue(2.0)
    );
    assert_eq!(
        primitive_of(&literal_from_json(&json!(true), &simple(SimpleType::Boolean)).unwrap()),
        &primitive::Value::Boolean(true)
    );
    assert!(literal_from_json(&json!("true"), &simple(SimpleType::Boolean)).is_err());
    let when = literal_from_json(
        &json!("2024-05-01T12:30:00Z"),
        &simple(SimpleType::Datetime),
    );
    let primitive::Value::Datetime(ts) = primitive_of(&when.unwrap()).clone() else {
        panic!("not a datetime")
    };
    assert_eq!(ts.seconds, 1_714_566_600);
    // What a datetime-local input gives: taken as UTC.
    let naive = literal_from_json(&json!("2024-05-01T12:30"), &simple(SimpleType::Datetime));
    assert_eq!(
        primitive_of(&naive.unwrap()),
        &primitive::Value::Datetime(ts)
    );
    let d = literal_from_json(&json!("1h2m"), &simple(SimpleType::Duration)).unwrap();
    let primitive::Value::Duration(d) = primitive_of(&d) else {
        panic!("not a duration")
    };
    assert_eq!((d.seconds, d.nanos), (3720, 0));
    let d = literal_from_json(&json!(90), &simple(SimpleType::Duration)).unwrap();
    assert!(matches!(primitive_of(&d), primitive::Value::Duration(d) if d.seconds == 90));
    assert!(matches!(
        scalar_of(&literal_from_json(&json!(null), &simple(SimpleType::None)).unwrap()),
        scalar::Value::NoneType(_)
    ));
}

#[test]
fn enums_must_be_one_of_the_values() {
    let colour = enum_of(&["red", "green"]);
    assert_eq!(
        primitive_of(&literal_from_json(&json!("green"), &colour).unwrap()),
        &primitive::Value::StringValue("green".into())
    );
    let err = literal_from_json(&json!("blue"), &colour).unwrap_err();
    assert_eq!(err, r#"value: expected one of "red", "green", got "blue""#);
}

#[test]
fn errors_name_the_path_inside_the_value() {
    let t = map(list(simple(SimpleType::Integer)));
    let err = literal_from_json_at(
        &json!({"a": [1, 2], "b c": [1, 2, 3, "x"]}),
        &t,
        "inputs.xs",
    )
    .unwrap_err();
    assert_eq!(err, r#"inputs.xs["b c"][3]: expected an integer, got "x""#);
    let err = literal_from_json_at(&json!({"a": 1}), &t, "inputs.xs").unwrap_err();
    assert_eq!(err, "inputs.xs.a: expected a list, got 1");
}

#[test]
fn unions_take_the_first_variant_that_fits_exact_numbers_first() {
    let t = union(vec![
        simple(SimpleType::Float),
        simple(SimpleType::Integer),
        simple(SimpleType::None),
    ]);
    let chosen = |v: Value| match scalar_of(&literal_from_json(&v, &t).unwrap()) {
        scalar::Value::Union(u) => u.r#type.clone().unwrap(),
        other => panic!("not a union: {other:?}"),
    };
    assert_eq!(chosen(json!(3)), simple(SimpleType::Integer));
    assert_eq!(chosen(json!(3.5)), simple(SimpleType::Float));
    assert_eq!(chosen(json!(null)), simple(SimpleType::None));
    let err = literal_from_json(&json!("x"), &t).unwrap_err();
    assert_eq!(err, r#"value: "x" fits none of float, int, none"#);
}

#[test]
fn dicts_and_dataclasses_are_structs_checked_against_the_schema() {
    let lit = literal_from_json(&json!({"x": 1, "y": 2.5}), &dataclass()).unwrap();
    let scalar::Value::Generic(s) = scalar_of(&lit) else {
        panic!("not a struct")
    };
    assert_eq!(
        serde_json::to_value(s).unwrap(),
        json!({"x": 1.0, "y": 2.5})
    );
    let err = literal_from_json(&json!({"x": 1}), &dataclass()).unwrap_err();
    assert_eq!(err, "value: missing field y");
    let err = literal_from_json(&json!({"x": "1", "y": 2}), &dataclass()).unwrap_err();
    assert_eq!(err, r#"value.x: expected an integer, got "1""#);
    let err = literal_from_json(&json!([1]), &simple(SimpleType::Struct)).unwrap_err();
    assert_eq!(err, "value: expected an object, got a list of 1");
}

#[test]
fn msgpack_dataclasses_are_msgpack_binary() {
    let lit = literal_from_json(&json!({"x": 1, "y": 2.5}), &msgpack_dataclass()).unwrap();
    let scalar::Value::Binary(b) = scalar_of(&lit) else {
        panic!("not binary: {lit:?}")
    };
    assert_eq!(b.tag, "msgpack");
    // Python: msgpack.packb({"x": 1, "y": 2.5})
    assert_eq!(
        b.value,
        [0x82, 0xa1, b'x', 0x01, 0xa1, b'y', 0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(json_of_literal(&lit).unwrap(), json!({"x": 1, "y": 2.5}));
    let err = literal_from_json(&json!({"y": 1}), &msgpack_dataclass()).unwrap_err();
    assert_eq!(err, "value: missing field x");
}

#[test]
fn files_and_data_frames_are_uris_with_the_declared_type() {
    let t = blob("csv", BlobDimensionality::Single);
    let lit = literal_from_json(&json!("s3://bucket/a.csv"), &t).unwrap();
    let scalar::Value::Blob(b) = scalar_of(&lit) else {
        panic!("not a blob")
    };
    assert_eq!(b.uri, "s3://bucket/a.csv");
    assert_eq!(
        b.metadata.as_ref().unwrap().r#type.as_ref().unwrap().format,
        "csv"
    );
    assert!(literal_from_json(&json!(""), &t).is_err());
    let lit = literal_from_json(&json!({"uri": "s3://b/df"}), &dataset("parquet")).unwrap();
    assert!(matches!(scalar_of(&lit), scalar::Value::StructuredDataset(d) if d.uri == "s3://b/df"));
}

#[test]
fn defaults_read_back_as_the_same_literal() {
    let cases = [
        (json!(7), simple(SimpleType::Integer)),
        (json!(1.25), simple(SimpleType::Float)),
        (json!("hi"), simple(SimpleType::String)),
        (json!(false), simple(SimpleType::Boolean)),
        (json!("2024-05-01T12:30:00Z"), simple(SimpleType::Datetime)),
        (json!("1h30m"), simple(SimpleType::Duration)),
        (json!([[1, 2], []]), list(list(simple(SimpleType::Integer)))),
        (
            json!({"a": "s3://b/f"}),
            map(blob("", BlobDimensionality::Multipart)),
        ),
        (json!({"k": [1.5, "x"]}), simple(SimpleType::Struct)),
        (
            json!(null),
            union(vec![simple(SimpleType::String), simple(SimpleType::None)]),
        ),
    ];
    for (value, ty) in cases {
        let lit = literal_from_json(&value, &ty).unwrap();
        assert_eq!(json_of_literal(&lit).unwrap(), value, "{ty:?}");
        assert_eq!(
            literal_from_json(&json_of_literal(&lit).unwrap(), &ty).unwrap(),
            lit
        );
    }
}

// ---- the property -------------------------------------------------------------------------

fn leaf_type() -> impl Strategy<Value = LiteralType> {
    prop_oneof![
        Just(simple(SimpleType::None)),
        Just(simple(SimpleType::Integer)),
        Just(simple(SimpleType::Float)),
        Just(simple(SimpleType::String)),
        Just(simple(SimpleType::Boolean)),
        Just(simple(SimpleType::Datetime)),
        Just(simple(SimpleType::Duration)),
        Just(simple(SimpleType::Struct)),
        Just(simple(SimpleType::Binary)),
        Just(dataclass()),
        Just(msgpack_dataclass()),
        Just(enum_of(&["a", "b"])),
        Just(blob("", BlobDimensionality::Single)),
        Just(blob("csv", BlobDimensionality::Multipart)),
        Just(dataset("")),
        Just(dataset("parquet")),
    ]
}

fn any_type() -> impl Strategy<Value = LiteralType> {
    leaf_type().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(list),
            inner.clone().prop_map(map),
            prop::collection::vec(inner, 1..4).prop_map(union),
        ]
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop::sample::select(vec![
            "a",
            "b",
            "x",
            "",
            "90s",
            "1h2m",
            "2024-05-01T12:30:00Z",
            "s3://bucket/f",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec!["x", "y", "label", "k"]).prop_map(String::from),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value that fits `ty`, so the property also covers successful conversions.
fn fitting_json(ty: &LiteralType) -> BoxedStrategy<Value> {
    match ty.r#type.as_ref().unwrap() {
        Type::Simple(s) => match SimpleType::try_from(*s).unwrap() {
            SimpleType::None => Just(Value::Null).boxed(),
            SimpleType::Integer => any::<i64>().prop_map(Value::from).boxed(),
            SimpleType::Float => (-1e9f64..1e9).prop_map(Value::from).boxed(),
            SimpleType::String => "[a-z ]{0,8}".prop_map(Value::from).boxed(),
            SimpleType::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
            SimpleType::Datetime => (0i64..4_000_000_000)
                .prop_map(|s| {
                    let at = chrono::DateTime::from_timestamp(s, 0).unwrap();
                    Value::from(at.to_rfc3339())
                })
                .boxed(),
            SimpleType::Duration => (0u32..100, 0u32..60, 0u32..1000)
                .prop_map(|(h, m, ms)| Value::from(format!("{h}h{m}m{ms}ms")))
                .boxed(),
            SimpleType::Struct => (any::<i32>(), -1e3f64..1e3)
                .prop_map(|(x, y)| json!({"x": x, "y": y, "label": "p"}))
                .boxed(),
            _ => Just(Value::Null).boxed(),
        },
        Type::EnumType(e) => prop::sample::select(e.values.clone())
            .prop_map(Value::from)
            .boxed(),
        Type::CollectionType(elem) => prop::collection::vec(fitting_json(elem), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        Type::MapValueType(value) => {
            prop::collection::btree_map("[a-z]{1,3}", fitting_json(value), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
                .boxed()
        }
        Type::UnionType(u) => {
            prop::strategy::Union::new(u.variants.iter().map(fitting_json)).boxed()
        }
        Type::Blob(_) | Type::StructuredDatasetType(_) | Type::Schema(_) => {
            "s3://bucket/[a-z]{1,6}".prop_map(Value::from).boxed()
        }
    }
}

/// Whether a binary type (which forms refuse) occurs in `ty`; its fitting values are bogus.
fn has_binary(ty: &LiteralType) -> bool {
    match ty.r#type.as_ref() {
        Some(Type::Simple(s)) => *s == SimpleType::Binary as i32,
        Some(Type::CollectionType(t) | Type::MapValueType(t)) => has_binary(t),
        Some(Type::UnionType(u)) => u.variants.iter().any(has_binary),
        _ => false,
    }
}

fn has_union(ty: &LiteralType) -> bool {
    match ty.r#type.as_ref() {
        Some(Type::UnionType(_)) => true,
        Some(Type::CollectionType(t) | Type::MapValueType(t)) => has_union(t),
        _ => false,
    }
}

/// `lit` fits `ty`: every scalar's inferred type casts to the type declared where it sits.
/// Walked rather than inferred whole because an empty list has no element type to infer. The
/// one exception is admin's too (`literal_fits`): msgpack `Binary` where a STRUCT declares it.
fn fits(lit: &Literal, ty: &LiteralType) -> bool {
    if let Some(literal::Value::Scalar(s)) = &lit.value {
        if let Some(scalar::Value::Binary(b)) = &s.value {
            return b.tag == "msgpack" && super::declares_msgpack(ty);
        }
    }
    match (&lit.value, &ty.r#type) {
        (Some(literal::Value::Collection(c)), Some(Type::CollectionType(elem))) => {
            c.literals.iter().all(|l| fits(l, elem))
        }
        (Some(literal::Value::Map(m)), Some(Type::MapValueType(value))) => {
            m.literals.values().all(|l| fits(l, value))
        }
        (Some(literal::Value::Scalar(s)), _) => {
            let castable = literal_type_of(lit).is_some_and(|t| are_types_castable(&t, ty));
            let inner_fits = match &s.value {
                Some(scalar::Value::Union(u)) => {
                    fits(u.value.as_deref().unwrap(), u.r#type.as_ref().unwrap())
                }
                _ => true,
            };
            castable && inner_fits
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_value_converts_to_a_castable_literal_or_is_refused(ty in any_type(), value in any_json()) {
        if let Ok(lit) = literal_from_json(&value, &ty) {
            prop_assert!(fits(&lit, &ty), "{value} as {ty:?} gave {lit:?}");
        }
    }

    #[test]
    fn fitting_values_convert_to_castable_literals(
        (ty, value) in any_type()
            .prop_filter("forms refuse binary", |t| !has_binary(t))
            .prop_flat_map(|t| (Just(t.clone()), fitting_json(&t)))
    ) {
        let lit = literal_from_json(&value, &ty);
        prop_assert!(lit.is_ok(), "{value} as {ty:?}: {lit:?}");
        let lit = lit.unwrap();
        prop_assert!(fits(&lit, &ty), "{value} as {ty:?} gave {lit:?}");
        // And what the form shows for it reads back the same, except under a union: its JSON
        // cannot say which variant it was ("0s" is a duration and a file name alike), and the
        // first variant that fits wins.
        let shown = json_of_literal(&lit);
        prop_assert!(shown.is_some());
        if !has_union(&ty) {
            prop_assert_eq!(literal_from_json(&shown.unwrap(), &ty).unwrap(), lit);
        }
    }
}
