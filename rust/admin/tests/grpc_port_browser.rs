//! A browser sent to the gRPC port: flytekit prints console links on its admin endpoint when its
//! config names no `console.endpoint`. The port answers those GETs over HTTP/1.1 with a redirect
//! to the same path on the HTTP port, and still serves gRPC.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::ProjectListRequest;
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use common::http::send;
use common::server::TestServer;

#[tokio::test]
async fn console_links_on_the_grpc_port_redirect_to_the_http_port() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let server = TestServer::start(store).await;
    // Wait until the gRPC listener answers (the server starts in the background).
    let mut client = loop {
        match AdminServiceClient::connect(server.grpc_url.clone()).await {
            Ok(client) => break client,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };

    let path = "/console/projects/flytesnacks/domains/development/executions/abc?node=n0";
    let reply = send(&server.grpc_url, "GET", path, &[], Vec::new()).await;
    assert_eq!(reply.status, 307, "{}", reply.text());
    assert_eq!(
        reply.location.as_deref(),
        Some(format!("{}{path}", server.http_url).as_str())
    );
    let root = send(&server.grpc_url, "GET", "/", &[], Vec::new()).await;
    assert_eq!(root.status, 307);
    assert_eq!(root.location, Some(format!("{}/", server.http_url)));

    // Other paths are not redirected, and gRPC is unaffected.
    let other = send(&server.grpc_url, "GET", "/api/v1/projects", &[], Vec::new()).await;
    assert_ne!(other.status, 307);
    let projects = client
        .list_projects(ProjectListRequest {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!projects.projects.is_empty());
}
