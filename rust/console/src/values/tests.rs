//! Each kind of literal rendered through a real `AdminApi` (whose data proxy signs links).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::core::blob_type::BlobDimensionality;
use alula_idl::flyteidl::core::{
    literal, literal_type, primitive, scalar, Binary, Blob, BlobMetadata, BlobType, EnumType,
    Literal, LiteralCollection, LiteralMap, LiteralOffloadedMetadata, LiteralType, Primitive,
    Scalar, SimpleType, StructuredDataset, StructuredDatasetMetadata, StructuredDatasetType,
    TypeStructure, Union, Variable, VariableMap, Void,
};
use alula_idl::wkt;

use alula_admin::auth::Auth;
use alula_admin::authz::Gate;

use super::literal_map;
use crate::Api;

async fn api() -> (Api, PathBuf) {
    let root = std::env::temp_dir().join(format!("alula-values-{:x}", std::process::id()));
    let config = Arc::new(AdminConfig::new(
        root.clone(),
        "http://console.test".into(),
        b"test signing key".to_vec(),
    ));
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let gate = Gate::new(Auth::off(store.clone()), store.clone());
    (
        Api::new(AdminApi::new(store, config.clone()), gate, config),
        root,
    )
}

fn scalar(value: scalar::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(value),
        }))),
        ..Default::default()
    }
}

fn prim(value: primitive::Value) -> Literal {
    scalar(scalar::Value::Primitive(Primitive { value: Some(value) }))
}

fn simple(t: SimpleType) -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::Simple(t as i32)),
        ..Default::default()
    }
}

async fn render(values: Vec<(&str, Literal)>, types: Option<&VariableMap>) -> String {
    let (api, _) = api().await;
    let map = LiteralMap {
        literals: values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    };
    literal_map(&api, &map, types).await.into_string()
}

/// The `<div class="value">` of `name` in `html`.
fn value_of<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!("<div class=\"value\" data-name=\"{name}\">"))
        .unwrap_or_else(|| panic!("no value {name} in {html}"));
    let rest = &html[start + 1..];
    let end = rest
        .find("<div class=\"value\" ")
        .map_or(html.len(), |e| start + 1 + e);
    &html[start..end]
}

#[tokio::test]
async fn primitives_render_by_kind_with_their_types() {
    let types = VariableMap {
        variables: BTreeMap::from([(
            "n".to_string(),
            Variable {
                r#type: Some(simple(SimpleType::Integer)),
                ..Default::default()
            },
        )]),
    };
    let html = render(
        vec![
            ("n", prim(primitive::Value::Integer(42))),
            ("f", prim(primitive::Value::FloatValue(2.0))),
            ("ok", prim(primitive::Value::Boolean(true))),
            ("s", prim(primitive::Value::StringValue("hello".into()))),
            (
                "at",
                prim(primitive::Value::Datetime(wkt::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                })),
            ),
            (
                "d",
                prim(primitive::Value::Duration(wkt::Duration {
                    seconds: 184,
                    nanos: 0,
                })),
            ),
            ("nothing", scalar(scalar::Value::NoneType(Void {}))),
        ],
        Some(&types),
    )
    .await;
    let n = value_of(&html, "n");
    assert!(n.contains(r#"<code class="value-type">int</code>"#), "{n}");
    assert!(n.contains(r#"data-kind="integer">42<"#), "{n}");
    assert!(value_of(&html, "f").contains(r#"data-kind="float">2.0<"#));
    assert!(value_of(&html, "ok").contains(r#"data-kind="boolean">True<"#));
    assert!(value_of(&html, "s").contains(r#"data-kind="string">hello<"#));
    let at = value_of(&html, "at");
    assert!(
        at.contains(r#"datetime="2023-11-14T22:13:20+00:00""#),
        "{at}"
    );
    assert!(value_of(&html, "d").contains(">3m 04s<"));
    assert!(value_of(&html, "nothing").contains(r#"data-kind="none">None<"#));
    // Sorted by name.
    assert!(html.find("data-name=\"at\"").unwrap() < html.find("data-name=\"s\"").unwrap());
}

#[tokio::test]
async fn strings_are_escaped_and_long_ones_cut() {
    let long = "x".repeat(super::render::MAX_STRING_CHARS + 5);
    let html = render(
        vec![
            (
                "evil",
                prim(primitive::Value::StringValue(
                    "<script>alert(1)</script>".into(),
                )),
            ),
            ("long", prim(primitive::Value::StringValue(long))),
        ],
        None,
    )
    .await;
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(value_of(&html, "long").contains("and 5 more characters"));
}

#[tokio::test]
async fn long_lists_fold_and_are_capped() {
    let items = (0..150)
        .map(|i| prim(primitive::Value::Integer(i)))
        .collect();
    let short = vec![prim(primitive::Value::Integer(7))];
    let html = render(
        vec![
            (
                "many",
                Literal {
                    value: Some(literal::Value::Collection(LiteralCollection {
                        literals: items,
                    })),
                    ..Default::default()
                },
            ),
            (
                "few",
                Literal {
                    value: Some(literal::Value::Collection(LiteralCollection {
                        literals: short,
                    })),
                    ..Default::default()
                },
            ),
            (
                "m",
                Literal {
                    value: Some(literal::Value::Map(LiteralMap {
                        literals: BTreeMap::from([(
                            "k<".to_string(),
                            prim(primitive::Value::Boolean(false)),
                        )]),
                    })),
                    ..Default::default()
                },
            ),
        ],
        None,
    )
    .await;
    let many = value_of(&html, "many");
    assert!(many.contains(r#"<details class="collection" data-kind="list" data-len="150">"#));
    assert_eq!(many.matches("<li>").count(), 100);
    assert!(many.contains("and 50 more"));
    assert!(
        many.contains("<code class=\"value-type\">list[int]</code>"),
        "{many}"
    );
    let few = value_of(&html, "few");
    assert!(!few.contains("<details") && few.contains(">7<"), "{few}");
    let m = value_of(&html, "m");
    assert!(m.contains(r#"<th scope="row">k&lt;</th>"#), "{m}");
}

#[tokio::test]
async fn a_msgpack_dataclass_becomes_a_table_of_its_fields() {
    // flytekit's MessagePackEncoder for `@dataclass class Point: x: int; label: str; tags: list`.
    let mut bytes = Vec::new();
    let point = rmpv::Value::Map(vec![
        ("x".into(), 3.into()),
        ("label".into(), "<b>origin</b>".into()),
        ("tags".into(), rmpv::Value::Array(vec!["a".into()])),
    ]);
    rmpv::encode::write_value(&mut bytes, &point).unwrap();
    let html = render(
        vec![
            (
                "p",
                scalar(scalar::Value::Binary(Binary {
                    value: bytes,
                    tag: "msgpack".into(),
                })),
            ),
            (
                "broken",
                scalar(scalar::Value::Binary(Binary {
                    // An array of two items holding one.
                    value: vec![0x92, 0x01],
                    tag: "msgpack".into(),
                })),
            ),
        ],
        None,
    )
    .await;
    let p = value_of(&html, "p");
    assert!(p.contains(r#"data-kind="msgpack""#), "{p}");
    assert!(
        p.contains(r#"<tr data-field="x"><th scope="row">x</th><td><span class="number">3</span>"#),
        "{p}"
    );
    assert!(p.contains("&lt;b&gt;origin&lt;/b&gt;"), "{p}");
    assert!(p.contains(r#"<tr data-field="tags">"#), "{p}");
    assert!(value_of(&html, "broken").contains("does not decode"));
}

#[tokio::test]
async fn files_get_a_signed_link_never_their_raw_uri() {
    let (api, root) = api().await;
    let file_uri = format!("{}/raw/ab/report.csv", root.display());
    let outside = "s3://elsewhere/secret.csv".to_string();
    let blob = |uri: &str, dim: BlobDimensionality| {
        scalar(scalar::Value::Blob(Blob {
            uri: uri.into(),
            metadata: Some(BlobMetadata {
                r#type: Some(BlobType {
                    format: "csv".into(),
                    dimensionality: dim as i32,
                }),
            }),
        }))
    };
    let map = LiteralMap {
        literals: BTreeMap::from([
            ("f".to_string(), blob(&file_uri, BlobDimensionality::Single)),
            (
                "dir".to_string(),
                blob(&file_uri, BlobDimensionality::Multipart),
            ),
            (
                "other".to_string(),
                blob(&outside, BlobDimensionality::Single),
            ),
        ]),
    };
    let html = literal_map(&api, &map, None).await.into_string();
    let f = value_of(&html, "f");
    let href = f
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no link in {f}"));
    assert!(href.starts_with("http://console.test/"), "{href}");
    assert!(
        href.contains("raw/ab/report.csv") && href.contains("signature"),
        "{href}"
    );
    // The URI is shown, as text only.
    assert!(
        f.contains(&format!("<code class=\"uri\">{file_uri}</code>")),
        "{f}"
    );
    assert_eq!(
        html.matches("href=\"/").count() + html.matches("href=\"file").count(),
        0
    );
    assert!(!html.contains("href=\"s3:"), "{html}");
    // A folder and an object outside the storage have no link.
    assert!(!value_of(&html, "dir").contains("href="));
    assert!(value_of(&html, "dir").contains(r#"data-kind="directory""#));
    assert!(!value_of(&html, "other").contains("href="));
}

#[tokio::test]
async fn enums_unions_datasets_offloaded_and_errors() {
    let enum_type = LiteralType {
        r#type: Some(literal_type::Type::EnumType(EnumType {
            values: vec!["RED".into(), "GREEN".into()],
        })),
        ..Default::default()
    };
    let types = VariableMap {
        variables: BTreeMap::from([(
            "colour".to_string(),
            Variable {
                r#type: Some(enum_type),
                ..Default::default()
            },
        )]),
    };
    let variant = LiteralType {
        structure: Some(TypeStructure {
            tag: "int".into(),
            ..Default::default()
        }),
        ..simple(SimpleType::Integer)
    };
    let frame = StructuredDataset {
        uri: "/nowhere/frame".into(),
        metadata: Some(StructuredDatasetMetadata {
            structured_dataset_type: Some(StructuredDatasetType {
                format: "parquet".into(),
                columns: vec![
                    alula_idl::flyteidl::core::structured_dataset_type::DatasetColumn {
                        name: "age".into(),
                        literal_type: Some(simple(SimpleType::Integer)),
                    },
                ],
                ..Default::default()
            }),
        }),
    };
    let html = render(
        vec![
            (
                "colour",
                prim(primitive::Value::StringValue("GREEN".into())),
            ),
            (
                "u",
                scalar(scalar::Value::Union(Box::new(Union {
                    value: Some(Box::new(prim(primitive::Value::Integer(5)))),
                    r#type: Some(variant),
                }))),
            ),
            ("df", scalar(scalar::Value::StructuredDataset(frame))),
            (
                "big",
                Literal {
                    value: Some(literal::Value::OffloadedMetadata(
                        LiteralOffloadedMetadata {
                            uri: "/nowhere/big.pb".into(),
                            size_bytes: 3 << 20,
                            inferred_type: None,
                        },
                    )),
                    ..Default::default()
                },
            ),
            (
                "err",
                scalar(scalar::Value::Error(alula_idl::flyteidl::core::Error {
                    failed_node_id: "n1".into(),
                    message: "boom <here>".into(),
                })),
            ),
        ],
        Some(&types),
    )
    .await;
    assert!(value_of(&html, "colour").contains(r#"data-kind="enum">GREEN<"#));
    let u = value_of(&html, "u");
    assert!(
        u.contains("variant <code>int</code>") && u.contains(">5<"),
        "{u}"
    );
    let df = value_of(&html, "df");
    assert!(
        df.contains(r#"data-kind="dataframe""#) && df.contains("(parquet)"),
        "{df}"
    );
    assert!(df.contains("<td>age</td>"), "{df}");
    assert!(value_of(&html, "big").contains("3.0 MiB"));
    let err = value_of(&html, "err");
    assert!(
        err.contains("boom &lt;here&gt;") && err.contains("<code>n1</code>"),
        "{err}"
    );
}

/// Writes a Snappy-compressed parquet file (pandas' default) of `ages` and `names`.
fn write_parquet(path: &std::path::Path, ages: &[i64], names: &[&str]) {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(
            "message schema { REQUIRED INT64 age; REQUIRED BYTE_ARRAY name (UTF8); }",
        )
        .unwrap(),
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<Int64Type>()
        .write_batch(ages, None, None)
        .unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    let names: Vec<ByteArray> = names.iter().map(|n| ByteArray::from(*n)).collect();
    column
        .typed::<ByteArrayType>()
        .write_batch(&names, None, None)
        .unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

#[tokio::test]
async fn a_parquet_data_frame_shows_its_first_rows() {
    let (api, root) = api().await;
    let ages: Vec<i64> = (0..25).collect();
    let names: Vec<String> = (0..25).map(|i| format!("<b>p{i}</b>")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // flytekit writes a frame as a folder holding one `00000` file.
    let folder = root.join("raw/frames/df1");
    write_parquet(&folder.join("00000"), &ages, &names);
    // Outside the data prefixes: never read for a page.
    let private = root.join("work/df2");
    write_parquet(&private.join("00000"), &ages, &names);
    let frame = |uri: &std::path::Path| {
        scalar(scalar::Value::StructuredDataset(StructuredDataset {
            uri: uri.display().to_string(),
            metadata: None,
        }))
    };
    let map = LiteralMap {
        literals: BTreeMap::from([
            ("df".to_string(), frame(&folder)),
            ("hidden".to_string(), frame(&private)),
        ]),
    };
    let html = literal_map(&api, &map, None).await.into_string();
    let df = value_of(&html, "df");
    assert!(df.contains("First 10 of 25 rows"), "{df}");
    assert!(
        df.contains(r#"<th scope="col">age</th><th scope="col">name</th>"#),
        "{df}"
    );
    assert!(
        df.contains("<td>9</td>") && !df.contains("<td>10</td>"),
        "{df}"
    );
    assert!(
        df.contains("&lt;b&gt;p3&lt;/b&gt;") && !df.contains("<b>"),
        "{df}"
    );
    assert!(
        !value_of(&html, "hidden").contains("frame-preview"),
        "{html}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
