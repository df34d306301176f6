//! The downloader and the uploader against a local folder (in process) and an S3-compatible
//! bucket (`ALULA_TEST_S3_ENDPOINT`, which scripts/test sets to a moto server), the latter through
//! the `alula-copilot` binary given flytekit's S3 settings in its environment, as a pod is: the
//! settings are the process's, and tests running in parallel must not change their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alula_copilot::download::{download, Format};
use alula_copilot::upload::{upload, Destination, Outcome};
use alula_idl::flyteidl::core::{
    blob_type::BlobDimensionality, literal, literal_type, primitive, scalar, schema_type, Blob,
    BlobMetadata, BlobType, ErrorDocument, Literal, LiteralCollection, LiteralMap, LiteralType,
    Primitive, Scalar, Schema, SchemaType, SimpleType, TypedInterface, Variable, VariableMap,
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
        (
            "table",
            LiteralType {
                r#type: Some(literal_type::Type::Schema(table_type())),
                ..Default::default()
            },
        ),
    ])
}

fn table_type() -> SchemaType {
    SchemaType {
        columns: vec![schema_type::SchemaColumn {
            name: "x".into(),
            r#type: schema_type::schema_column::SchemaColumnType::Integer as i32,
        }],
    }
}

/// What a task's container writes for [`typed_outputs`].
fn write_outputs(dir: &Path) {
    std::fs::create_dir_all(dir.join("folder/sub")).expect("test setup");
    std::fs::create_dir_all(dir.join("table")).expect("test setup");
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
        ("table/part-0.parquet", "pq"),
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
    let Some(literal::Value::Scalar(s)) = &get("table").value else {
        panic!("table")
    };
    assert_eq!(
        s.value,
        Some(scalar::Value::Schema(Schema {
            uri: format!("{raw_uri}/table"),
            r#type: Some(table_type()),
        }))
    );
}

/// Inputs of every kind a raw container takes; `data_uri` holds a file `data.csv` and a folder
/// `folder` (`a.txt`, `sub/b.txt`).
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
        "dir",
        blob(&format!("{data_uri}/folder"), BlobDimensionality::Multipart),
    );
    put(
        "table",
        scalar(scalar::Value::Schema(Schema {
            uri: format!("{data_uri}/folder/"),
            r#type: Some(table_type()),
        })),
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
    // Folders arrive whole, and only what is below them (not `folder2`).
    for folder in ["dir", "table"] {
        assert_eq!(
            files_under(&dir.join(folder)),
            ["a.txt", "sub/b.txt"],
            "{folder}"
        );
        assert_eq!(read(&format!("{folder}/sub/b.txt")), "b");
    }
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

/// The files under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&relative)).expect("read_dir") {
            let entry = entry.expect("read_dir");
            let child = relative.join(entry.file_name());
            if entry.file_type().expect("file_type").is_dir() {
                pending.push(child);
            } else {
                found.push(child.display().to_string());
            }
        }
    }
    found.sort();
    found
}

async fn error_message(storage: &Storage, key: &str) -> String {
    let bytes = storage.get(key).await.expect("get");
    let doc = ErrorDocument::decode(bytes.unwrap_or_else(|| panic!("no {key}"))).expect("error.pb");
    let err = doc.error.expect("error");
    assert_eq!(err.code, "OutputUploadFailed");
    err.message
}

/// How a test runs the copilot: its library in this process, or its binary with an environment.
enum Copilot {
    InProcess,
    Binary(Vec<(&'static str, String)>),
}

impl Copilot {
    fn command(env: &[(&'static str, String)]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_alula-copilot"));
        command.envs(env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn run(mut command: std::process::Command) -> Result<(), String> {
        let output = command.output().expect("running alula-copilot");
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    async fn download(&self, inputs: &str, to: &Path) -> Result<(), String> {
        match self {
            Copilot::InProcess => download(inputs, to, Format::Json)
                .await
                .map_err(|e| e.to_string()),
            Copilot::Binary(env) => {
                let mut command = Self::command(env);
                command
                    .args(["download", "--inputs", inputs, "--to"])
                    .arg(to);
                Self::run(command)
            }
        }
    }

    /// Ok when the sidecar did its job: outputs.pb or error.pb written.
    async fn upload(&self, from: &Path, to: &Destination) -> Result<(), String> {
        match self {
            Copilot::InProcess => {
                match upload(from, &typed_outputs(), to)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Outcome::Outputs(_) => Ok(()),
                    Outcome::Failed(e) => {
                        assert!(e.is_user_error(), "{e}");
                        Ok(())
                    }
                }
            }
            Copilot::Binary(env) => {
                let iface = base64::engine::general_purpose::STANDARD
                    .encode(typed_outputs().encode_to_vec());
                let mut command = Self::command(env);
                command.args(["upload", "--from"]).arg(from).args([
                    "--output-prefix",
                    &to.output_prefix,
                    "--raw-output-prefix",
                    &to.raw_output_prefix,
                    "--interface",
                    &iface,
                ]);
                Self::run(command)
            }
        }
    }
}

/// Downloads, "runs" the container and uploads with `storage`.
async fn exercise(copilot: &Copilot, storage: &Storage) {
    let root = storage.root_uri();
    for (key, bytes) in [
        ("data/data.csv", &b"x,y\n1,2\n"[..]),
        ("data/folder/a.txt", b"a"),
        ("data/folder/sub/b.txt", b"b"),
        ("data/folder2/x", b"not in the folder"),
    ] {
        storage
            .put(key, Bytes::copy_from_slice(bytes))
            .await
            .expect("test setup");
    }
    storage
        .put(
            "attempt/inputs.pb",
            Bytes::from(inputs(&format!("{root}/data")).encode_to_vec()),
        )
        .await
        .expect("test setup");
    let pod = tempfile::tempdir().expect("test setup");
    let input_dir = pod.path().join("inputs");
    copilot
        .download(&format!("{root}/attempt/inputs.pb"), &input_dir)
        .await
        .expect("download");
    check_downloaded(&input_dir);

    // Missing inputs, and a missing file among them, are named.
    let err = copilot
        .download(&format!("{root}/nothing/inputs.pb"), &pod.path().join("x"))
        .await
        .expect_err("no inputs");
    assert!(
        err.contains("no inputs at") && err.contains("nothing/inputs.pb"),
        "{err}"
    );
    let mut gone = LiteralMap::default();
    gone.literals.insert(
        "lost".into(),
        blob(&format!("{root}/data/lost.csv"), BlobDimensionality::Single),
    );
    storage
        .put("gone/inputs.pb", Bytes::from(gone.encode_to_vec()))
        .await
        .expect("test setup");
    let err = copilot
        .download(&format!("{root}/gone/inputs.pb"), &pod.path().join("y"))
        .await
        .expect_err("a missing file");
    assert!(
        err.contains("input [lost]") && err.contains(&format!("{root}/data/lost.csv")),
        "{err}"
    );

    let output_dir = pod.path().join("outputs");
    write_outputs(&output_dir);
    // Above one part (8 MiB): a multipart upload, streamed.
    let big = vec![7u8; 9 << 20];
    std::fs::write(output_dir.join("folder/sub/big.bin"), &big).expect("test setup");
    let to = Destination {
        output_prefix: format!("{root}/attempt/out"),
        raw_output_prefix: format!("{root}/attempt/raw"),
    };
    copilot.upload(&output_dir, &to).await.expect("upload");
    let out = LiteralMap::decode(
        storage
            .get("attempt/out/outputs.pb")
            .await
            .expect("test setup")
            .expect("outputs.pb"),
    )
    .expect("outputs.pb");
    check_outputs(&out, &format!("{root}/attempt/raw"));
    for (key, bytes) in [
        ("attempt/raw/report", &b"a report"[..]),
        ("attempt/raw/folder/one.txt", b"1"),
        ("attempt/raw/folder/sub/two.txt", b"2"),
        ("attempt/raw/table/part-0.parquet", b"pq"),
    ] {
        assert_eq!(
            storage.get(key).await.expect("get").as_deref(),
            Some(bytes),
            "{key}"
        );
    }
    assert_eq!(
        storage
            .head("attempt/raw/folder/sub/big.bin")
            .await
            .expect("head"),
        Some(big.len() as u64)
    );

    // A missing output: error.pb names it, as the user's error.
    std::fs::remove_file(output_dir.join("n")).expect("test setup");
    let to = Destination {
        output_prefix: format!("{root}/attempt2/out"),
        raw_output_prefix: String::new(),
    };
    copilot.upload(&output_dir, &to).await.expect("upload");
    let message = error_message(storage, "attempt2/out/error.pb").await;
    assert!(
        message.contains("output [n]") && message.contains("wrote no file"),
        "{message}"
    );
    assert!(storage
        .get("attempt2/out/outputs.pb")
        .await
        .expect("test setup")
        .is_none());

    // A value that does not parse names the output and the text.
    std::fs::write(output_dir.join("n"), "forty-two").expect("test setup");
    copilot.upload(&output_dir, &to).await.expect("upload");
    let message = error_message(storage, "attempt2/out/error.pb").await;
    assert!(
        message.contains("output [n]") && message.contains("\"forty-two\" is not an integer"),
        "{message}"
    );

    // The container's own `_ERROR` file wins.
    std::fs::write(output_dir.join("_ERROR"), "out of cheese\n").expect("test setup");
    copilot.upload(&output_dir, &to).await.expect("upload");
    assert_eq!(
        error_message(storage, "attempt2/out/error.pb").await,
        "the task's container reported an error: out of cheese"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_folder() {
    let root = tempfile::tempdir().expect("test setup");
    exercise(&Copilot::InProcess, &Storage::local(root.path())).await;
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

/// The test's own handle on the bucket (explicit options, no environment).
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

/// What a pod of a flytekit cluster is given: flytekit's names, a plain-http endpoint with no
/// separate switch.
fn flytekit_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("FLYTE_AWS_ENDPOINT", endpoint.to_string()),
        ("FLYTE_AWS_ACCESS_KEY_ID", "test".into()),
        ("FLYTE_AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
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

/// Everything a raw container exchanges, with an S3 bucket: files, folders (multipart blobs)
/// and schemas down from it, and up to it.
#[tokio::test(flavor = "multi_thread")]
async fn s3_bucket() {
    let Some(endpoint) = s3_endpoint() else {
        eprintln!("SKIPPED: ALULA_TEST_S3_ENDPOINT is not set");
        return;
    };
    let bucket = format!("alula-copilot-{}", std::process::id());
    make_bucket(&endpoint, &bucket).await;
    let storage = Storage::from_url_with(
        &format!("s3://{bucket}/some/prefix"),
        &s3_options(&endpoint),
    )
    .expect("test setup");
    exercise(&Copilot::Binary(flytekit_env(&endpoint)), &storage).await;
}

/// A local folder through the binary; bad arguments fail it with a message.
#[tokio::test(flavor = "multi_thread")]
async fn the_binary_downloads_and_uploads() {
    let root = tempfile::tempdir().expect("test setup");
    let storage = Storage::local(root.path());
    exercise(&Copilot::Binary(Vec::new()), &storage).await;

    let pod = tempfile::tempdir().expect("test setup");
    let inputs_dir = pod.path().join("in");
    let base = storage.root_uri();
    let status = Copilot::command(&[])
        .args([
            "download",
            "--inputs",
            &format!("file://{base}/attempt/inputs.pb"),
            "--to",
        ])
        .arg(&inputs_dir)
        .args(["--format", "yaml"])
        .status()
        .expect("test setup");
    assert!(status.success());
    assert!(inputs_dir.join("inputs.yaml").is_file());
    assert!(!inputs_dir.join("inputs.json").exists());

    let output = Copilot::command(&[])
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

    // An output prefix no store takes: named, before anything is read.
    let iface = base64::engine::general_purpose::STANDARD.encode(typed_outputs().encode_to_vec());
    let output = Copilot::command(&[])
        .args(["upload", "--from"])
        .arg(pod.path())
        .args(["--output-prefix", "ftp://host/out", "--interface", &iface])
        .output()
        .expect("test setup");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the output prefix") && stderr.contains("ftp://host/out"),
        "{stderr}"
    );
}
