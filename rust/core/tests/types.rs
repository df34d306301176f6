//! Table-driven tests of castability, literal type inference and the type display.

use alula_core::types::{
    are_types_castable, display_type, is_optional_type, literal_type_of, simple,
};
use alula_idl::flyteidl::core::blob_type::BlobDimensionality;
use alula_idl::flyteidl::core::schema_type::schema_column::SchemaColumnType;
use alula_idl::flyteidl::core::schema_type::SchemaColumn;
use alula_idl::flyteidl::core::structured_dataset_type::DatasetColumn;
use alula_idl::flyteidl::core::{
    literal, literal_type::Type, primitive, scalar, Blob, BlobMetadata, BlobType, EnumType,
    Literal, LiteralCollection, LiteralMap, LiteralType, Primitive, Scalar, SchemaType, SimpleType,
    StructuredDatasetType, TypeStructure, UnionType, Void,
};
use alula_idl::wkt::{value::Kind, Struct, Value};

fn int() -> LiteralType {
    simple(SimpleType::Integer)
}
fn float() -> LiteralType {
    simple(SimpleType::Float)
}
fn string() -> LiteralType {
    simple(SimpleType::String)
}
fn none() -> LiteralType {
    simple(SimpleType::None)
}
fn of(t: Type) -> LiteralType {
    LiteralType {
        r#type: Some(t),
        ..Default::default()
    }
}
fn list(t: LiteralType) -> LiteralType {
    of(Type::CollectionType(Box::new(t)))
}
fn map(t: LiteralType) -> LiteralType {
    of(Type::MapValueType(Box::new(t)))
}
fn union(vs: &[LiteralType]) -> LiteralType {
    of(Type::UnionType(UnionType {
        variants: vs.to_vec(),
    }))
}
fn enum_of(vs: &[&str]) -> LiteralType {
    of(Type::EnumType(EnumType {
        values: vs.iter().map(|s| s.to_string()).collect(),
    }))
}
fn blob(format: &str, dim: BlobDimensionality) -> LiteralType {
    of(Type::Blob(BlobType {
        format: format.into(),
        dimensionality: dim as i32,
    }))
}
fn tagged(mut t: LiteralType, tag: &str) -> LiteralType {
    t.structure = Some(TypeStructure {
        tag: tag.into(),
        ..Default::default()
    });
    t
}
fn str_value(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}
fn struct_value(fields: &[(&str, Value)]) -> Value {
    Value {
        kind: Some(Kind::StructValue(Struct {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        })),
    }
}
/// A dataclass type whose JSON schema has the given `properties` (each `name: type-name`).
fn dataclass(title: &str, props: &[(&str, &str)]) -> LiteralType {
    let properties: Vec<(&str, Value)> = props
        .iter()
        .map(|(n, t)| (*n, struct_value(&[("type", str_value(t))])))
        .collect();
    let mut t = simple(SimpleType::Struct);
    t.metadata = Some(Struct {
        fields: [
            ("title".to_string(), str_value(title)),
            ("properties".to_string(), struct_value(&properties)),
        ]
        .into_iter()
        .collect(),
    });
    t
}
fn schema(cols: &[(&str, SchemaColumnType)]) -> LiteralType {
    of(Type::Schema(SchemaType {
        columns: cols
            .iter()
            .map(|(n, t)| SchemaColumn {
                name: n.to_string(),
                r#type: *t as i32,
            })
            .collect(),
    }))
}
fn dataset(format: &str, cols: &[(&str, LiteralType)]) -> LiteralType {
    of(Type::StructuredDatasetType(StructuredDatasetType {
        format: format.into(),
        columns: cols
            .iter()
            .map(|(n, t)| DatasetColumn {
                name: n.to_string(),
                literal_type: Some(t.clone()),
            })
            .collect(),
        ..Default::default()
    }))
}

#[test]
fn castability_table() {
    use BlobDimensionality::{Multipart, Single};
    use SchemaColumnType as C;
    let mut with_metadata = int();
    with_metadata.metadata = Some(Struct::default());
    let cases: Vec<(&str, LiteralType, LiteralType, bool)> = vec![
        // trivial types
        ("int -> int", int(), int(), true),
        ("int -> float", int(), float(), false),
        ("metadata is ignored", with_metadata.clone(), int(), true),
        ("metadata is ignored downstream", int(), with_metadata, true),
        ("enum -> str", enum_of(&["a"]), string(), true),
        ("str -> enum", string(), enum_of(&["a"]), true),
        (
            "enum -> same enum",
            enum_of(&["a", "b"]),
            enum_of(&["a", "b"]),
            true,
        ),
        (
            "enum -> other enum",
            enum_of(&["a"]),
            enum_of(&["b"]),
            false,
        ),
        ("int -> enum", int(), enum_of(&["a"]), false),
        (
            "tag mismatch",
            tagged(int(), "x"),
            tagged(int(), "y"),
            false,
        ),
        ("tag match", tagged(int(), "x"), tagged(int(), "x"), true),
        ("untagged upstream", int(), tagged(int(), "x"), true),
        (
            "tagged upstream, untagged downstream",
            tagged(int(), "x"),
            int(),
            false,
        ),
        // struct / dataclass JSON schemas
        (
            "bare struct",
            simple(SimpleType::Struct),
            simple(SimpleType::Struct),
            true,
        ),
        (
            "struct without schema upstream",
            simple(SimpleType::Struct),
            dataclass("P", &[("x", "number")]),
            true,
        ),
        (
            "same schema",
            dataclass("P", &[("x", "number")]),
            dataclass("P", &[("x", "number")]),
            true,
        ),
        (
            "upstream superset",
            dataclass("P", &[("x", "number"), ("y", "number")]),
            dataclass("Q", &[("x", "number")]),
            true,
        ),
        (
            "upstream subset",
            dataclass("P", &[("x", "number")]),
            dataclass("Q", &[("x", "number"), ("y", "number")]),
            false,
        ),
        (
            "property type differs",
            dataclass("P", &[("x", "number")]),
            dataclass("P", &[("x", "string")]),
            false,
        ),
        // none
        ("none -> none", none(), none(), true),
        ("int -> none", int(), none(), false),
        ("none -> int", none(), int(), false),
        // collections and maps
        ("list[int] -> list[int]", list(int()), list(int()), true),
        (
            "list[int] -> list[float]",
            list(int()),
            list(float()),
            false,
        ),
        (
            "list[enum] -> list[str]",
            list(enum_of(&["a"])),
            list(string()),
            true,
        ),
        ("int -> list[int]", int(), list(int()), false),
        ("list[int] -> int", list(int()), int(), false),
        ("map[int] -> map[int]", map(int()), map(int()), true),
        ("map[int] -> map[str]", map(int()), map(string()), false),
        ("list -> map", list(int()), map(int()), false),
        (
            "nested",
            list(map(list(int()))),
            list(map(list(int()))),
            true,
        ),
        // blobs
        ("blob same", blob("csv", Single), blob("csv", Single), true),
        (
            "blob any format downstream",
            blob("csv", Single),
            blob("", Single),
            true,
        ),
        (
            "blob any format accepts multipart",
            blob("csv", Multipart),
            blob("", Single),
            true,
        ),
        (
            "blob format differs",
            blob("csv", Single),
            blob("parquet", Single),
            false,
        ),
        (
            "blob dimensionality differs",
            blob("csv", Single),
            blob("csv", Multipart),
            false,
        ),
        (
            "blob upstream without format",
            blob("", Single),
            blob("csv", Single),
            false,
        ),
        ("int -> blob", int(), blob("", Single), false),
        // schemas and structured datasets
        (
            "generic schema",
            schema(&[("a", C::Integer)]),
            schema(&[]),
            true,
        ),
        (
            "schema subset",
            schema(&[("a", C::Integer), ("b", C::String)]),
            schema(&[("a", C::Integer)]),
            true,
        ),
        (
            "schema missing column",
            schema(&[("a", C::Integer)]),
            schema(&[("b", C::Integer)]),
            false,
        ),
        (
            "schema column type",
            schema(&[("a", C::Integer)]),
            schema(&[("a", C::Float)]),
            false,
        ),
        (
            "sd generic",
            dataset("parquet", &[("a", int())]),
            dataset("", &[]),
            true,
        ),
        (
            "sd subset",
            dataset("", &[("a", int()), ("b", string())]),
            dataset("", &[("b", string())]),
            true,
        ),
        (
            "sd missing column",
            dataset("", &[("a", int())]),
            dataset("", &[("b", int())]),
            false,
        ),
        (
            "sd column type",
            dataset("", &[("a", int())]),
            dataset("", &[("a", string())]),
            false,
        ),
        (
            "sd format differs",
            dataset("csv", &[]),
            dataset("parquet", &[]),
            false,
        ),
        (
            "sd format case-insensitive",
            dataset("PARQUET", &[]),
            dataset("parquet", &[]),
            true,
        ),
        (
            "sd empty upstream format",
            dataset("", &[]),
            dataset("csv", &[]),
            true,
        ),
        ("sd accepts none", none(), dataset("", &[]), true),
        (
            "schema -> sd (parquet)",
            schema(&[("a", C::Integer)]),
            dataset("parquet", &[("a", int())]),
            true,
        ),
        (
            "schema -> sd (csv)",
            schema(&[]),
            dataset("csv", &[]),
            false,
        ),
        (
            "schema -> sd column type",
            schema(&[("a", C::Integer)]),
            dataset("", &[("a", string())]),
            false,
        ),
        (
            "sd -> schema",
            dataset("parquet", &[("a", int())]),
            schema(&[("a", C::Integer)]),
            true,
        ),
        (
            "sd (csv) -> schema",
            dataset("csv", &[]),
            schema(&[]),
            false,
        ),
        (
            "sd -> schema column type",
            dataset("", &[("a", int())]),
            schema(&[("a", C::String)]),
            false,
        ),
        ("int -> sd", int(), dataset("", &[]), false),
        // unions
        ("int -> optional int", int(), union(&[int(), none()]), true),
        (
            "none -> optional int",
            none(),
            union(&[int(), none()]),
            true,
        ),
        (
            "str -> optional int",
            string(),
            union(&[int(), none()]),
            false,
        ),
        ("ambiguous", int(), union(&[int(), int()]), false),
        (
            "enum into union[str, enum] is ambiguous",
            enum_of(&["a"]),
            union(&[string(), enum_of(&["a"])]),
            false,
        ),
        (
            "union subset",
            union(&[int(), none()]),
            union(&[int(), string(), none()]),
            true,
        ),
        (
            "union not covered",
            union(&[int(), float()]),
            union(&[int(), none()]),
            false,
        ),
        ("single-variant union unwraps", union(&[int()]), int(), true),
        (
            "single-variant union mismatch",
            union(&[string()]),
            int(),
            false,
        ),
        (
            "two-variant union -> int",
            union(&[int(), none()]),
            int(),
            false,
        ),
        (
            "list into union of lists",
            list(int()),
            union(&[list(int()), list(string())]),
            true,
        ),
    ];
    let mut failures = Vec::new();
    for (name, up, down, want) in &cases {
        if are_types_castable(up, down) != *want {
            failures.push(format!(
                "{name}: {} -> {} expected {want}",
                display_type(up),
                display_type(down)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn optional_types() {
    assert!(is_optional_type(&union(&[int(), none()])));
    assert!(!is_optional_type(&union(&[int(), string()])));
    assert!(!is_optional_type(&none()));
    assert!(!is_optional_type(&int()));
}

fn prim(v: primitive::Value) -> Literal {
    scalar_lit(scalar::Value::Primitive(Primitive { value: Some(v) }))
}
fn scalar_lit(v: scalar::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar { value: Some(v) }))),
        ..Default::default()
    }
}
fn coll(ls: Vec<Literal>) -> Literal {
    Literal {
        value: Some(literal::Value::Collection(LiteralCollection {
            literals: ls,
        })),
        ..Default::default()
    }
}

#[test]
fn literal_type_inference_table() {
    let i = || prim(primitive::Value::Integer(1));
    let s = || prim(primitive::Value::StringValue("x".into()));
    let csv = BlobType {
        format: "csv".into(),
        dimensionality: 0,
    };
    let cases: Vec<(&str, Literal, Option<LiteralType>)> = vec![
        ("int", i(), Some(int())),
        (
            "float",
            prim(primitive::Value::FloatValue(1.5)),
            Some(float()),
        ),
        ("str", s(), Some(string())),
        (
            "bool",
            prim(primitive::Value::Boolean(true)),
            Some(simple(SimpleType::Boolean)),
        ),
        (
            "datetime",
            prim(primitive::Value::Datetime(Default::default())),
            Some(simple(SimpleType::Datetime)),
        ),
        (
            "duration",
            prim(primitive::Value::Duration(Default::default())),
            Some(simple(SimpleType::Duration)),
        ),
        (
            "none",
            scalar_lit(scalar::Value::NoneType(Void {})),
            Some(none()),
        ),
        (
            "generic",
            scalar_lit(scalar::Value::Generic(Struct::default())),
            Some(simple(SimpleType::Struct)),
        ),
        (
            "binary",
            scalar_lit(scalar::Value::Binary(Default::default())),
            Some(simple(SimpleType::Binary)),
        ),
        (
            "blob",
            scalar_lit(scalar::Value::Blob(Blob {
                metadata: Some(BlobMetadata {
                    r#type: Some(csv.clone()),
                }),
                uri: "s3://x".into(),
            })),
            Some(of(Type::Blob(csv))),
        ),
        (
            "blob without metadata",
            scalar_lit(scalar::Value::Blob(Blob::default())),
            None,
        ),
        ("empty literal", Literal::default(), None),
        ("list[int]", coll(vec![i(), i()]), Some(list(int()))),
        (
            "mixed list",
            coll(vec![s(), i()]),
            Some(list(union(&[int(), string()]))),
        ),
        ("empty list", coll(vec![]), Some(list(none()))),
        (
            "list of lists with an empty one",
            coll(vec![coll(vec![]), coll(vec![i()])]),
            Some(list(list(int()))),
        ),
        (
            "map[str]",
            Literal {
                value: Some(literal::Value::Map(LiteralMap {
                    literals: [("a".to_string(), s()), ("b".to_string(), s())]
                        .into_iter()
                        .collect(),
                })),
                ..Default::default()
            },
            Some(map(string())),
        ),
    ];
    for (name, lit, want) in cases {
        assert_eq!(literal_type_of(&lit), want, "{name}");
    }
}

#[test]
fn display_table() {
    use BlobDimensionality::{Multipart, Single};
    let cases: Vec<(LiteralType, &str)> = vec![
        (int(), "int"),
        (list(int()), "list[int]"),
        (map(float()), "map[str, float]"),
        (union(&[int(), none()]), "union[int, none]"),
        (blob("csv", Single), "blob(single, csv)"),
        (blob("", Multipart), "blob(multipart)"),
        (simple(SimpleType::Struct), "struct"),
        (dataclass("Point", &[]), "struct(Point)"),
        (enum_of(&["a", "b"]), "enum{a,b}"),
        (
            schema(&[("a", SchemaColumnType::Integer)]),
            "schema(a: int)",
        ),
        (
            dataset("parquet", &[("a", int())]),
            "structured_dataset(parquet, a: int)",
        ),
        (dataset("", &[]), "structured_dataset"),
        (simple(SimpleType::Duration), "timedelta"),
        (LiteralType::default(), "unset"),
    ];
    for (t, want) in cases {
        assert_eq!(display_type(&t), want);
    }
}
