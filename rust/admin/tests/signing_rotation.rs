//! Rotating the data-proxy signing key without downtime: URLs handed out before the rotation
//! keep working on a server that lists the old key under `previous_signing_keys`, the new key
//! signs from then on, and a URL signed with a key the server does not know is refused. Three
//! servers share one storage folder and one store, as one deployment restarted with new keys.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::path::{Path, PathBuf};

use alula_admin::{AdminConfig, Store};
use alula_idl::flyteidl::service::data_proxy_service_client::DataProxyServiceClient;
use alula_idl::flyteidl::service::{CreateDownloadLocationRequest, CreateUploadLocationRequest};
use common::http::{send, Reply};
use common::server::TestServer;
use common::TestDb;

const OLD_KEY: &[u8] = b"the key before the rotation";
const NEW_KEY: &[u8] = b"the key after the rotation";
const STRANGER_KEY: &[u8] = b"a key this deployment never had";

/// A server over `storage` that signs with `key` and also accepts `previous`.
async fn server(store: &Store, storage: &Path, key: &[u8], previous: &[&[u8]]) -> TestServer {
    let storage = storage.to_path_buf();
    let key = key.to_vec();
    let previous: Vec<Vec<u8>> = previous.iter().map(|k| k.to_vec()).collect();
    TestServer::start_with(store.clone(), move |config: &mut AdminConfig| {
        config.storage = alula_storage::Storage::local(&storage);
        config.storage_root = storage;
        config.signing_key = key;
        config.previous_signing_keys = previous;
    })
    .await
}

/// A signed upload URL (path and query only) for `filename` from `server`.
async fn upload_path(server: &TestServer, filename: &str) -> String {
    let mut proxy = DataProxyServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    let location = proxy
        .create_upload_location(CreateUploadLocationRequest {
            project: "flytesnacks".into(),
            domain: "development".into(),
            filename: filename.into(),
            filename_root: "rotation".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    path_of(&location.signed_url, server)
}

/// A signed download URL (path and query only) of `object` (a key under the storage root).
// CreateDownloadLocation is deprecated in flyteidl but still served for older clients.
#[allow(deprecated)]
async fn download_path(server: &TestServer, storage: &Path, object: &str) -> String {
    let mut proxy = DataProxyServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    let location = proxy
        .create_download_location(CreateDownloadLocationRequest {
            native_url: format!("file://{}", storage.join(object).display()),
            expires_in: None,
        })
        .await
        .unwrap()
        .into_inner();
    path_of(&location.signed_url, server)
}

fn path_of(url: &str, server: &TestServer) -> String {
    url.strip_prefix(&server.http_url)
        .unwrap_or_else(|| panic!("{url} is not a URL of the server's own endpoint"))
        .to_string()
}

async fn put(server: &TestServer, path: &str, body: &[u8]) -> Reply {
    send(&server.http_url, "PUT", path, &[], body.to_vec()).await
}

async fn get(server: &TestServer, path: &str) -> Reply {
    send(&server.http_url, "GET", path, &[], Vec::new()).await
}

/// Replaces the `signature=` of a signed path by one made with `key` over the same MAC input
/// as an upload URL (object, expiry, MD5), the way a holder of that key would forge it.
fn resigned_upload(path: &str, key: &[u8]) -> String {
    let (route, query) = path.split_once('?').unwrap();
    let object = route.strip_prefix("/upload/").unwrap();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_string()
    };
    let expires: i64 = param("expires").parse().unwrap();
    let md5 = param("md5");
    let signature = alula_admin::dataproxy::sign(key, object, expires, &md5).unwrap();
    format!("/upload/{object}?expires={expires}&md5={md5}&signature={signature}")
}

struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        // Best effort: a leftover temporary folder fails nothing.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn urls_signed_before_a_rotation_keep_working_and_strangers_do_not() {
    let db = TestDb::sqlite().await;
    let storage =
        Folder(std::env::temp_dir().join(format!("alula-rotation-{:x}", rand::random::<u64>())));
    std::fs::create_dir_all(&storage.0).unwrap();
    let object = "metadata/flytesnacks/development/e1/n0/0/deck.html";
    std::fs::create_dir_all(storage.0.join(object).parent().unwrap()).unwrap();
    std::fs::write(storage.0.join(object), b"<html>deck</html>").unwrap();

    // Before the rotation: URLs signed with the old key.
    let before = server(&db.store, &storage.0, OLD_KEY, &[]).await;
    let old_upload = upload_path(&before, "before.txt").await;
    let old_download = download_path(&before, &storage.0, object).await;
    assert_eq!(get(&before, &old_download).await.status, 200);

    // After the rotation, with the old key still accepted.
    let rotated = server(&db.store, &storage.0, NEW_KEY, &[OLD_KEY]).await;
    let reply = put(&rotated, &old_upload, b"uploaded with an old URL").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        std::fs::read(
            storage
                .0
                .join("uploads/flytesnacks/development/rotation/before.txt")
        )
        .unwrap(),
        b"uploaded with an old URL"
    );
    let reply = get(&rotated, &old_download).await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "<html>deck</html>")
    );
    // New URLs are signed with the new key: a server that knows only the old one refuses them.
    let new_upload = upload_path(&rotated, "after.txt").await;
    let new_download = download_path(&rotated, &storage.0, object).await;
    assert_eq!(put(&rotated, &new_upload, b"new").await.status, 200);
    assert_eq!(get(&rotated, &new_download).await.status, 200);
    assert_eq!(put(&before, &new_upload, b"new").await.status, 403);
    assert_eq!(get(&before, &new_download).await.status, 403);

    // A URL signed with a key the deployment never had is refused, as is tampering.
    let forged = resigned_upload(&old_upload, STRANGER_KEY);
    assert_eq!(put(&rotated, &forged, b"forged").await.status, 403);
    let genuine = resigned_upload(&old_upload, OLD_KEY);
    assert_eq!(
        genuine, old_upload,
        "the forgery helper reproduces real URLs"
    );
    let tampered = old_download.replace("signature=", "signature=00");
    assert_eq!(get(&rotated, &tampered).await.status, 403);

    // Once the old key is dropped from the previous keys, its URLs stop working.
    let retired = server(&db.store, &storage.0, NEW_KEY, &[]).await;
    assert_eq!(put(&retired, &old_upload, b"late").await.status, 403);
    assert_eq!(get(&retired, &old_download).await.status, 403);
    assert_eq!(get(&retired, &new_download).await.status, 200);

    drop((before, rotated, retired));
    db.finish().await;
}
