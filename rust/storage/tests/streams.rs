//! Objects by URI: streamed transfers, ranges and listings on a local folder, memory and an
//! S3-compatible server. The S3 cases need `ALULA_TEST_S3_ENDPOINT` (scripts/test starts moto
//! and sets it) and fail without it: tasks on a cluster depend on exactly this code.

use std::io::Write;
use std::path::Path;

use alula_storage::stream;
use bytes::Bytes;

/// A bucket on the test endpoint, with the process's S3 settings pointing at it. Every test
/// sets the same values, so tests running in parallel do not disturb each other.
async fn s3_bucket(name: &str) -> String {
    let endpoint = std::env::var("ALULA_TEST_S3_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .expect(
            "ALULA_TEST_S3_ENDPOINT must name an S3-compatible server (scripts/test starts moto)",
        );
    // flytekit's names: the ones a task pod of a flytekit cluster is given.
    std::env::set_var("FLYTE_AWS_ENDPOINT", &endpoint);
    std::env::set_var("FLYTE_AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("FLYTE_AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    alula_storage::install_crypto_provider();
    let bucket = format!("alula-streams-{name}-{}", std::process::id());
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
    format!("s3://{bucket}")
}

/// A file of `len` bytes whose every 8-byte word is its offset: any misplaced byte shows.
fn patterned_file(dir: &Path, len: usize) -> std::path::PathBuf {
    let path = dir.join("big.bin");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut offset = 0u64;
    while (offset as usize) < len {
        let word = offset.to_le_bytes();
        let n = (len - offset as usize).min(8);
        file.write_all(&word[..n]).expect("write");
        offset += 8;
    }
    file.flush().expect("flush");
    path
}

async fn exercise(root: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    // Above one part (8 MiB) and not a multiple of it: a multipart upload with a short tail.
    let len = 8 * (1 << 20) * 2 + 12_345;
    let source = patterned_file(dir.path(), len);
    let uri = format!("{root}/data/big.bin");

    assert_eq!(stream::size(&uri).await.expect("size"), None, "{uri}");
    assert_eq!(
        stream::upload(&source, &uri).await.expect("upload"),
        len as u64
    );
    assert_eq!(stream::size(&uri).await.expect("size"), Some(len as u64));

    // Random access: a word in the middle of the second part.
    let at = 9 * (1 << 20) as u64;
    let word = stream::read_range(&uri, at, at + 8).await.expect("range");
    assert_eq!(&word[..], &at.to_le_bytes());

    let back = dir.path().join("down/again.bin");
    assert_eq!(
        stream::download(&uri, &back).await.expect("download"),
        len as u64
    );
    assert!(
        std::fs::read(&back).expect("read") == std::fs::read(&source).expect("read"),
        "{uri}: downloaded bytes differ"
    );

    // Small objects whole, and a missing one named.
    let small = format!("{root}/data/sub/small.txt");
    stream::put(&small, Bytes::from_static(b"hello"))
        .await
        .expect("put");
    assert_eq!(&stream::get(&small).await.expect("get")[..], b"hello");
    let missing = format!("{root}/data/nothing");
    let err = stream::get(&missing).await.expect_err("missing");
    assert!(
        matches!(err, alula_storage::uri::UriError::NotFound { .. }),
        "{err}"
    );

    // A folder: listed below its prefix (not `data2`), and copied both ways.
    stream::put(&format!("{root}/data2/x"), Bytes::from_static(b"no"))
        .await
        .expect("put");
    let listed = stream::list(&format!("{root}/data")).await.expect("list");
    let names: Vec<_> = listed.iter().map(|l| l.relative.as_str()).collect();
    assert_eq!(names, ["big.bin", "sub/small.txt"], "{root}");
    // Local objects are listed as plain paths, whichever form named the folder.
    assert_eq!(
        listed[0].uri.trim_start_matches("file://"),
        uri.trim_start_matches("file://")
    );

    let local = dir.path().join("copy");
    assert_eq!(
        stream::download_dir(&format!("{root}/data"), &local)
            .await
            .expect("download dir"),
        2
    );
    assert_eq!(
        std::fs::read(local.join("sub/small.txt")).expect("read"),
        b"hello"
    );
    let again = format!("{root}/again");
    assert_eq!(
        stream::upload_dir(&local, &again)
            .await
            .expect("upload dir"),
        2
    );
    let names: Vec<_> = stream::list(&again)
        .await
        .expect("list")
        .into_iter()
        .map(|l| (l.relative, l.size))
        .collect();
    assert_eq!(
        names,
        [
            ("big.bin".to_string(), len as u64),
            ("sub/small.txt".into(), 5)
        ]
    );
}

#[tokio::test]
async fn s3_streams() {
    let root = s3_bucket("streams").await;
    exercise(&format!("{root}/some/prefix")).await;
}

#[tokio::test]
async fn local_streams() {
    let dir = tempfile::tempdir().expect("tempdir");
    exercise(&format!("file://{}", dir.path().display())).await;
    exercise(&dir.path().join("plain").display().to_string()).await;
}

#[tokio::test]
async fn memory_streams() {
    exercise("memory:///streams").await;
}
