//! The downloader and the uploader against a local folder and an S3-compatible bucket
//! (`ALULA_TEST_S3_ENDPOINT`, which scripts/test sets to a moto server), in process and through
//! the `alula-copilot` binary.

use std::collections::BTreeMap;
use std::path::Path;

use alula_copilot::download::{download, Format};
use alula_copilot::upload::{upload, Destination, Outcome};
use alula_copilot::Stores;
use alula_idl::flyteidl::core::{
    blob_type::BlobDimensionality, literal, literal_type, primitive, scalar, Blob, BlobMetadata,
    BlobType, ErrorDocument, Literal, LiteralCollection, LiteralMap, LiteralType, Primitive,
    Scalar, SimpleType, TypedInterface, Variable, VariableMap,
};
use alula_idl::wkt::{Duration, Timestamp};
use alula_storage::Storage;
use base64::Engine;
use bytes::Bytes;
use prost::Message;

fn prim(v: primitive::Value) -> Literal {
    scalar(scalar::Value::Primitive(Primitive { value: Some(v) }))
}

fn scalar(v: scalar::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar { value: Some(v) }))),
        ..Default::default()
    }
}

fn blob(uri: &str, dimensionality: BlobDimensionality) -> Literal {
    scalar(scalar::Value::Blob(Blob {
        metadata: Some(BlobMetadata {
            r#type: Some(BlobType {
                format: "csv".into(),
                dimensionality: dimensionality as i32,
            }),
        }),
        uri: uri.into(),
    }))
}

fn simple(t: SimpleType) -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::Simple(t as i32)),
        ..Default::default()
    }
}

fn outputs(vars: &[(&str, LiteralType)]) -> TypedInterface {
    TypedInterface {
        inputs: None,
        outputs: Some(VariableMap {
            variables: vars
                .iter()
                .map(|(n, t)| {
                    (
                        n.to_string(),
                        Variable {
                            r#type: Some(t.clone()),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        }),
    }
}

fn typed_outputs() -> TypedInterface {
    outputs(&[
        ("n", simple(SimpleType::Integer)),
        ("f", simple(SimpleType::Float)),
        ("s", simple(SimpleType::String)),
        ("b", simple(SimpleType::Boolean)),
        ("t", simple(SimpleType::Datetime)),
        ("d", simple(SimpleType::Duration)),
        (
            "report",
            LiteralType {
                r#type: Some(literal_type::Type::Blob(BlobType {
                    format: "txt".into(),
                    dimensionality: BlobDimensionality::Single as i32,
                })),
                ..Default::default()
            },
        ),
        (
            "folder",
            LiteralType {
                r#type: Some(literal_type::Type::Blob(BlobType {
                    format: String::new(),
                    dimensionality: BlobDimensionality::Multipart as i32,
                })),
                ..Default::default()
            },
        ),
    ])
}

/// What a task's container writes for [`typed_outputs`].
fn write_outputs(dir: &Path) {
    std::fs::create_dir_all(dir.join("folder/sub")).expect("test setup");
    for (name, text) in [
        ("n", "42\n"),
        ("f", "2.5"),
        ("s", "hello\n"),
        ("b", "true\n"),
        ("t", "2024-01-02T03:04:05.5Z"),
        ("d", "1h30m"),
        ("report", "a report"),
        ("folder/one.txt", "1"),
        ("folder/sub/two.txt", "2"),
    ] {
        std::fs::write(dir.join(name), text).expect("test setup");
    }
}

fn check_outputs(out: &LiteralMap, raw_uri: &str) {
    let get = |k: &str| out.literals.get(k).unwrap_or_else(|| panic!("no {k}"));
    assert_eq!(get("n"), &prim(primitive::Value::Integer(42)));
    assert_eq!(get("f"), &prim(primitive::Value::FloatValue(2.5)));
    assert_eq!(
        get("s"),
        &prim(primitive::Value::StringValue("hello\n".into()))
    );
    assert_eq!(get("b"), &prim(primitive::Value::Boolean(true)));
    assert_eq!(
        get("t"),
        &prim(primitive::Value::Datetime(Timestamp {
            seconds: 1_704_164_645,
            nanos: 500_000_000
        }))
    );
    assert_eq!(
        get("d"),
        &prim(primitive::Value::Duration(Duration {
            seconds: 5400,
            nanos: 0
        }))
    );
    let Some(literal::Value::Scalar(s)) = &get("report").value else {
        panic!("report")
    };
    let Some(scalar::Value::Blob(b)) = &s.value else {
        panic!("report blob")
    };
    assert_eq!(b.uri, format!("{raw_uri}/report"));
    let Some(literal::Value::Scalar(s)) = &get("folder").value else {
        panic!("folder")
    };
    let Some(scalar::Value::Blob(b)) = &s.value else {
        panic!("folder blob")
    };
    assert_eq!(b.uri, format!("{raw_uri}/folder"));
    assert_eq!(
        b.metadata
            .as_ref()
            .and_then(|m| m.r#type.as_ref())
            .map(|t| t.dimensionality),
        Some(BlobDimensionality::Multipart as i32)
    );
}

/// Inputs of every kind a raw container takes; `data_uri` holds a file `data.csv`.
fn inputs(data_uri: &str) -> LiteralMap {
    let mut m = LiteralMap::default();
    let mut put = |k: &str, v: Literal| {
        m.literals.insert(k.to_string(), v);
    };
    put("n", prim(primitive::Value::Integer(-7)));
    put("f", prim(primitive::Value::FloatValue(0.25)));
    put("s", prim(primitive::Value::StringValue("a b\nc".into())));
    put("b", prim(primitive::Value::Boolean(false)));
    put(
        "t",
        prim(primitive::Value::Datetime(Timestamp {
            seconds: 0,
            nanos: 1000,
        })),
    );
    put(
        "d",
        prim(primitive::Value::Duration(Duration {
            seconds: 3,
            nanos: 500_000_000,
        })),
    );
    put(
        "data",
        blob(&format!("{data_uri}/data.csv"), BlobDimensionality::Single),
    );
    put(
        "xs",
        Literal {
            value: Some(literal::Value::Collection(LiteralCollection {
                literals: vec![
                    prim(primitive::Value::Integer(1)),
                    prim(primitive::Value::Integer(2)),
                ],
            })),
            ..Default::default()
        },
    );
    m
}

fn check_downloaded(dir: &Path) {
    let read =
        |k: &str| std::fs::read_to_string(dir.join(k)).unwrap_or_else(|e| panic!("{k}: {e}"));
    assert_eq!(read("n"), "-7");
    assert_eq!(read("f"), "0.25");
    assert_eq!(read("s"), "a b\nc");
    assert_eq!(read("b"), "false");
    assert_eq!(read("t"), "1970-01-01T00:00:00.000001Z");
    assert_eq!(read("d"), "3.5s");
    assert_eq!(read("data"), "x,y\n1,2\n");
    assert_eq!(read("xs/0"), "1");
    assert_eq!(read("xs/1"), "2");
    let json: serde_json::Value = serde_json::from_str(&read("inputs.json")).expect("json");
    assert_eq!(json["n"], -7);
    assert_eq!(json["d"], 3_500_000_000u64);
    assert_eq!(json["xs"], serde_json::json!([1, 2]));
    assert_eq!(json["data"], dir.join("data").display().to_string());
    // inputs.pb points at the local copies.
    let pb = LiteralMap::decode(
        std::fs::read(dir.join("inputs.pb"))
            .expect("test setup")
            .as_slice(),
    )
    .expect("test setup");
    let Some(literal::Value::Scalar(s)) = &pb.literals["data"].value else {
        panic!()
    };
    let Some(scalar::Value::Blob(b)) = &s.value else {
        panic!()
    };
    assert_eq!(b.uri, dir.join("data").display().to_string());
}

async fn error_document(storage: &Storage, key: &str) -> ErrorDocument {
    let bytes = storage.get(key).await.expect("get");
    ErrorDocument::decode(bytes.unwrap_or_else(|| panic!("no {key}"))).expect("error.pb")
}

/// Downloads, "runs" the container and uploads with storage at `root` (a path or s3 URI).
async fn exercise(stores: &Stores, storage: &Storage) {
    let root = storage.root_uri();
    storage
        .put("data/data.csv", Bytes::from_static(b"x,y\n1,2\n"))
        .await
        .expect("test setup");
    storage
        .put(
            "attempt/inputs.pb",
            Bytes::from(inputs(&format!("{root}/data")).encode_to_vec()),
        )
        .await
        .expect("test setup");
    let pod = tempfile::tempdir().expect("test setup");
    let input_dir = pod.path().join("inputs");
    download(
        stores,
        &format!("{root}/attempt/inputs.pb"),
        &input_dir,
        Format::Json,
    )
    .await
    .expect("download");
    check_downloaded(&input_dir);

    let output_dir = pod.path().join("outputs");
    write_outputs(&output_dir);
    let to = Destination {
        output_prefix: format!("{root}/attempt/out"),
        raw_output_prefix: format!("{root}/attempt/raw"),
    };
    let Outcome::Outputs(out) = upload(stores, &output_dir, &typed_outputs(), &to)
        .await
        .expect("upload")
    else {
        panic!("upload failed")
    };
    check_outputs(&out, &format!("{root}/attempt/raw"));
    let stored = storage
        .get("attempt/out/outputs.pb")
        .await
        .expect("test setup")
        .expect("outputs.pb");
    assert_eq!(LiteralMap::decode(stored).expect("test setup"), out);
    assert_eq!(
        storage
            .get("attempt/raw/report")
            .await
            .expect("test setup")
            .as_deref(),
        Some(&b"a report"[..])
    );
    assert_eq!(
        storage
            .get("attempt/raw/folder/sub/two.txt")
            .await
            .expect("test setup")
            .as_deref(),
        Some(&b"2"[..])
    );

    // A missing output: error.pb names it, as the user's error.
    std::fs::remove_file(output_dir.join("n")).expect("test setup");
    let to = Destination {
        output_prefix: format!("{root}/attempt2/out"),
        raw_output_prefix: String::new(),
    };
    let Outcome::Failed(e) = upload(stores, &output_dir, &typed_outputs(), &to)
        .await
        .expect("test setup")
    else {
        panic!("a missing output must fail")
    };
    assert!(e.to_string().contains("output [n]"), "{e}");
    let doc = error_document(storage, "attempt2/out/error.pb").await;
    let err = doc.error.expect("error");
    assert_eq!(err.code, "OutputUploadFailed");
    assert!(
        err.message.contains("output [n]") && err.message.contains("wrote no file"),
        "{}",
        err.message
    );
    assert_eq!(
        err.origin,
        alula_idl::flyteidl::core::execution_error::ErrorKind::User as i32
    );
    assert!(storage
        .get("attempt2/out/outputs.pb")
        .await
        .expect("test setup")
        .is_none());

    // A value that does not parse names the output and the text.
    std::fs::write(output_dir.join("n"), "forty-two").expect("test setup");
    let Outcome::Failed(e) = upload(stores, &output_dir, &typed_outputs(), &to)
        .await
        .expect("test setup")
    else {
        panic!("a bad value must fail")
    };
    assert!(
        e.to_string().contains("output [n]")
            && e.to_string().contains("\"forty-two\" is not an integer"),
        "{e}"
    );

    // The container's own `_ERROR` file wins.
    std::fs::write(output_dir.join("_ERROR"), "out of cheese\n").expect("test setup");
    let Outcome::Failed(e) = upload(stores, &output_dir, &typed_outputs(), &to)
        .await
        .expect("test setup")
    else {
        panic!("_ERROR must fail")
    };
    assert_eq!(
        e.to_string(),
        "the task's container reported an error: out of cheese"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_folder() {
    let root = tempfile::tempdir().expect("test setup");
    exercise(&Stores::default(), &Storage::local(root.path())).await;
}

fn s3_endpoint() -> Option<String> {
    let endpoint = std::env::var("ALULA_TEST_S3_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    // scripts/test always starts moto: in CI a missing endpoint is a broken setup, not a skip.
    if endpoint.is_none() && std::env::var_os("CI").is_some() {
        panic!("ALULA_TEST_S3_ENDPOINT is not set (scripts/test starts moto and sets it)");
    }
    endpoint
}

fn s3_options(endpoint: &str) -> BTreeMap<String, String> {
    [
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn make_bucket(endpoint: &str, bucket: &str) {
    alula_storage::install_crypto_provider();
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("creating the bucket");
    assert!(
        response.status().is_success() || response.status().as_u16() == 409,
        "creating bucket: {}",
        response.status()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_bucket() {
    let Some(endpoint) = s3_endpoint() else {
        eprintln!("SKIPPED: ALULA_TEST_S3_ENDPOINT is not set");
        return;
    };
    let bucket = format!("alula-copilot-{}", std::process::id());
    make_bucket(&endpoint, &bucket).await;
    let options = s3_options(&endpoint);
    let storage = Storage::from_url_with(&format!("s3://{bucket}/some/prefix"), &options)
        .expect("test setup");
    exercise(
        &Stores {
            s3_options: options,
        },
        &storage,
    )
    .await;
}

/// The binary as the pod runs it: S3 settings from the environment, the interface in base64.
#[tokio::test(flavor = "multi_thread")]
async fn the_binary_downloads_and_uploads() {
    let bin = env!("CARGO_BIN_EXE_alula-copilot");
    let root = tempfile::tempdir().expect("test setup");
    let storage = Storage::local(root.path());
    let base = storage.root_uri();
    storage
        .put(
            "a/inputs.pb",
            Bytes::from(inputs(&format!("{base}/d")).encode_to_vec()),
        )
        .await
        .expect("test setup");
    storage
        .put("d/data.csv", Bytes::from_static(b"x,y\n1,2\n"))
        .await
        .expect("test setup");
    let pod = tempfile::tempdir().expect("test setup");
    let inputs_dir = pod.path().join("in");
    let status = std::process::Command::new(bin)
        .args([
            "download",
            "--inputs",
            &format!("{base}/a/inputs.pb"),
            "--to",
        ])
        .arg(&inputs_dir)
        .args(["--format", "yaml"])
        .status()
        .expect("test setup");
    assert!(status.success());
    assert!(inputs_dir.join("inputs.yaml").is_file());
    assert_eq!(
        std::fs::read_to_string(inputs_dir.join("n")).expect("test setup"),
        "-7"
    );

    let out_dir = pod.path().join("out");
    write_outputs(&out_dir);
    let iface = base64::engine::general_purpose::STANDARD.encode(typed_outputs().encode_to_vec());
    let run = |prefix: &str| {
        std::process::Command::new(bin)
            .args(["upload", "--from"])
            .arg(&out_dir)
            .args([
                "--output-prefix",
                prefix,
                "--interface",
                &iface,
                "--wait-for",
                "none",
            ])
            .output()
            .expect("test setup")
    };
    let output = run(&format!("{base}/a/out"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = LiteralMap::decode(
        storage
            .get("a/out/outputs.pb")
            .await
            .expect("test setup")
            .expect("test setup"),
    )
    .expect("test setup");
    check_outputs(&out, &format!("{base}/a/out"));

    // A missing output is the task's failure, reported in error.pb; the sidecar succeeds.
    std::fs::remove_file(out_dir.join("report")).expect("test setup");
    let output = run(&format!("{base}/b/out"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc = ErrorDocument::decode(
        storage
            .get("b/out/error.pb")
            .await
            .expect("test setup")
            .expect("test setup"),
    )
    .expect("test setup");
    assert!(doc
        .error
        .expect("test setup")
        .message
        .contains("output [report]"));

    // Unusable arguments fail the container with a message.
    let output = std::process::Command::new(bin)
        .args([
            "upload",
            "--from",
            "/x",
            "--output-prefix",
            "/y",
            "--interface",
            "%%%",
        ])
        .output()
        .expect("test setup");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--interface is not base64"));
}
