//! Machine clients with tokens from the test server's built-in authorization server.

use tonic::Request;

use super::http::send;
use super::server::TestServer;

/// Creates client `id` in the store and returns a token the server issued it.
pub async fn token_of(server: &TestServer, store: &alula_admin::Store, id: &str) -> String {
    let secret = alula_auth::secret::new_client_secret();
    let hash = alula_auth::secret::hash_secret(secret.expose());
    assert!(store
        .create_client(id, &hash, "test")
        .await
        .expect("the store creates the client"));
    let form = format!(
        "grant_type=client_credentials&client_id={id}&client_secret={}",
        secret.expose()
    );
    let reply = send(
        &server.http_url,
        "POST",
        "/oauth2/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        form.into_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["access_token"]
        .as_str()
        .expect("a token in the reply")
        .to_string()
}

pub fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .expect("a token is a valid header value"),
    );
    request
}
