//! One suite over every backend: a local folder, memory, and an S3-compatible server when
//! `ALULA_TEST_S3_ENDPOINT` names one (scripts/test starts moto's server and sets it).

use std::time::Duration;

use alula_storage::{SignedMethod, Storage};
use bytes::Bytes;

fn s3_endpoint() -> Option<String> {
    std::env::var("ALULA_TEST_S3_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
}

/// A fresh bucket on the test endpoint (moto accepts unsigned requests with fake credentials).
async fn s3_storage(endpoint: &str, prefix: &str) -> Storage {
    alula_storage::install_crypto_provider();
    let bucket = format!("alula-test-{}", std::process::id());
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
    Storage::from_url_with(
        &format!("s3://{bucket}/{prefix}"),
        [
            ("aws_endpoint", endpoint),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
        ],
    )
    .expect("s3 storage")
}

async fn exercise(storage: &Storage, name: &str) {
    let key = format!("{name}/metadata/p/d/x/n0/inputs.pb");
    assert_eq!(
        storage.get(&key).await.expect("get"),
        None,
        "{name}: missing"
    );
    assert_eq!(storage.head(&key).await.expect("head"), None);

    storage
        .put(&key, Bytes::from_static(b"first"))
        .await
        .expect("put");
    storage
        .put(&key, Bytes::from_static(b"second!"))
        .await
        .expect("overwrite");
    assert_eq!(
        storage.get(&key).await.expect("get").as_deref(),
        Some(&b"second!"[..]),
        "{name}: read back"
    );
    assert_eq!(storage.head(&key).await.expect("head"), Some(7));

    let uri = storage.uri(&key);
    assert_eq!(storage.key_of(&uri), Some(key.clone()), "{name}: {uri}");
    assert_eq!(
        storage.get_uri(&uri).await.expect("by uri").as_deref(),
        Some(&b"second!"[..])
    );
    assert!(storage.get_uri("s3://elsewhere/x").await.is_err());

    storage.delete(&key).await.expect("delete");
    storage.delete(&key).await.expect("delete again");
    assert_eq!(storage.get(&key).await.expect("get"), None);
}

#[tokio::test]
async fn local_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage =
        Storage::from_url(&format!("file://{}", dir.path().display())).expect("local storage");
    exercise(&storage, "local").await;

    // Tasks read local objects as plain files at the URI.
    storage
        .put("a/b.txt", Bytes::from_static(b"hi"))
        .await
        .expect("put");
    let path = storage.uri("a/b.txt");
    assert_eq!(std::fs::read(&path).expect("plain file"), b"hi");
    assert_eq!(
        storage.key_of(&format!("file://{path}")),
        Some("a/b.txt".into())
    );
    assert!(storage
        .signed_url(SignedMethod::Put, "a/b.txt", Duration::from_secs(60))
        .await
        .expect("sign")
        .is_none());
}

#[tokio::test]
async fn memory() {
    exercise(&Storage::memory(), "memory").await;
}

#[tokio::test]
async fn s3_compatible() {
    let Some(endpoint) = s3_endpoint() else {
        eprintln!("SKIPPED: ALULA_TEST_S3_ENDPOINT is not set");
        return;
    };
    let storage = s3_storage(&endpoint, "some/prefix").await;
    exercise(&storage, "s3").await;

    // A presigned PUT then GET, as a client given an upload location would use them.
    let put = storage
        .signed_url(SignedMethod::Put, "up/bundle.tgz", Duration::from_secs(300))
        .await
        .expect("sign put")
        .expect("s3 signs");
    let client = reqwest::Client::new();
    let status = client
        .put(put)
        .body("bundle bytes")
        .send()
        .await
        .expect("presigned put")
        .status();
    assert!(status.is_success(), "presigned put: {status}");
    assert_eq!(
        storage.get("up/bundle.tgz").await.expect("get").as_deref(),
        Some(&b"bundle bytes"[..])
    );
    let get = storage
        .signed_url(SignedMethod::Get, "up/bundle.tgz", Duration::from_secs(300))
        .await
        .expect("sign get")
        .expect("s3 signs");
    let body = client
        .get(get)
        .send()
        .await
        .expect("presigned get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&body[..], b"bundle bytes");
}
