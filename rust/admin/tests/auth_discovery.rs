//! The discovery services per authentication mode, UserInfo per caller, and the layer that
//! finds the caller, in front of real gRPC and HTTP servers; on both backends.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod auth_support;
mod common;

use std::sync::Arc;

use alula_admin::auth::discovery::Discovery;
use alula_admin::auth::{Auth, AuthLayer, Caller, Principal, PrincipalKind};
use alula_admin::Store;
use alula_auth::secret::hash_secret;
use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataService;
use alula_idl::flyteidl::service::identity_service_server::IdentityService;
use alula_idl::flyteidl::service::{
    OAuth2MetadataRequest, PublicClientAuthConfigRequest, UserInfoRequest,
};
use auth_support::{authenticated, builtin, token_for, ISSUER};
use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use tower::ServiceExt;

async fn discovery_answers_per_mode(store: Store) {
    let off = Discovery {
        auth: Auth::off(store.clone()),
    };
    let status = off
        .get_o_auth2_metadata(tonic::Request::new(OAuth2MetadataRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let config = off
        .get_public_client_config(tonic::Request::new(PublicClientAuthConfigRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config, Default::default());

    let on = Discovery {
        auth: builtin(&store).await,
    };
    let metadata = on
        .get_o_auth2_metadata(tonic::Request::new(OAuth2MetadataRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.issuer, ISSUER);
    assert_eq!(metadata.token_endpoint, format!("{ISSUER}/oauth2/token"));
    assert_eq!(metadata.jwks_uri, format!("{ISSUER}/oauth2/jwks"));
    assert_eq!(metadata.grant_types_supported, ["client_credentials"]);
    assert_eq!(
        metadata.token_endpoint_auth_methods_supported,
        ["client_secret_basic", "client_secret_post"]
    );
    let config = on
        .get_public_client_config(tonic::Request::new(PublicClientAuthConfigRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config.client_id, "");
    assert_eq!(config.scopes, ["all"]);
    assert_eq!(config.audience, "alula");
    assert_eq!(config.authorization_metadata_key, "flyte-authorization");
    assert_eq!(config.service_http_endpoint, ISSUER);
}

async fn user_info_is_the_caller(store: Store) {
    let user_info = |discovery: Discovery, caller: Option<Caller>| async move {
        let mut request = tonic::Request::new(UserInfoRequest {});
        if let Some(caller) = caller {
            request.extensions_mut().insert(caller);
        }
        discovery.user_info(request).await
    };
    let off = Discovery {
        auth: Auth::off(store.clone()),
    };
    assert_eq!(
        user_info(off.clone(), None)
            .await
            .unwrap()
            .into_inner()
            .subject,
        "anonymous"
    );
    let on = Discovery {
        auth: builtin(&store).await,
    };
    for caller in [
        None,
        Some(Caller::Anonymous),
        Some(Caller::Refused("expired".into())),
    ] {
        let status = user_info(on.clone(), caller).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
    let alice = Principal {
        subject: "u-1".into(),
        kind: PrincipalKind::User,
        name: "Alice".into(),
        email: "alice@example.com".into(),
        preferred_username: "alice".into(),
        groups: vec!["ml".into(), "ops".into()],
        client_id: "flytectl".into(),
        issuer: "https://idp.example".into(),
        expires_at: 0,
    };
    let info = user_info(on, Some(Caller::Authenticated(Arc::new(alice))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            info.subject.as_str(),
            info.name.as_str(),
            info.preferred_username.as_str()
        ),
        ("u-1", "Alice", "alice")
    );
    assert_eq!(info.email, "alice@example.com");
    let claims = serde_json::to_value(info.additional_claims.unwrap()).unwrap();
    assert_eq!(claims, serde_json::json!({"groups": ["ml", "ops"]}));
}

async fn the_layer_inserts_the_caller(store: Store) {
    let auth = builtin(&store).await;
    store
        .create_client("ci", &hash_secret("pw"), "")
        .await
        .unwrap();
    let token = token_for(&auth, "ci", "pw").await;
    let service = tower::ServiceBuilder::new()
        .layer(AuthLayer { auth: auth.clone() })
        .service(tower::service_fn(|request: Request<Body>| async move {
            Ok::<_, std::convert::Infallible>(request.extensions().get::<Caller>().cloned())
        }));
    let seen = service
        .clone()
        .oneshot(
            Request::get("/x")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(authenticated(&seen.unwrap()).subject, "ci");
    let seen = service
        .oneshot(Request::get("/x").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(seen, Some(Caller::Anonymous));

    // Without the layer: the default of the mode.
    let bare = tonic::Request::new(());
    assert_eq!(
        alula_admin::auth::caller_of(&bare, &auth),
        Caller::Anonymous
    );
    assert_eq!(
        alula_admin::auth::caller_of(&bare, &Auth::off(store.clone())),
        Caller::Unchecked
    );
}

/// Over real gRPC and HTTP servers: tonic copies the layer's extension into the request the
/// service sees, and an axum router takes the same layer.
async fn the_layer_serves_grpc_and_http(store: Store) {
    use alula_idl::flyteidl::service::identity_service_client::IdentityServiceClient;
    use alula_idl::flyteidl::service::identity_service_server::IdentityServiceServer;

    let auth = builtin(&store).await;
    store
        .create_client("ci", &hash_secret("pw"), "")
        .await
        .unwrap();
    let token = token_for(&auth, "ci", "pw").await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .layer(AuthLayer { auth: auth.clone() })
        .add_service(IdentityServiceServer::new(Discovery { auth: auth.clone() }))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    let mut client = IdentityServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(UserInfoRequest {});
    request.metadata_mut().insert(
        "flyte-authorization",
        format!("Bearer {token}").parse().unwrap(),
    );
    let info = client.user_info(request).await.unwrap().into_inner();
    assert_eq!(info.subject, "ci");
    let status = client
        .user_info(tonic::Request::new(UserInfoRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let router = Router::new()
        .route(
            "/who",
            axum::routing::get(|request: Request<Body>| async move {
                match request.extensions().get::<Caller>() {
                    Some(Caller::Authenticated(principal)) => principal.subject.clone(),
                    other => format!("{other:?}"),
                }
            }),
        )
        .layer(AuthLayer { auth });
    let response = router
        .oneshot(
            Request::get("/who")
                .header(header::COOKIE, format!("alula_session={token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = axum::body::to_bytes(response.into_body(), 1 << 10)
        .await
        .unwrap();
    assert_eq!(body, "ci");
}

on_both_backends!(
    discovery_answers_per_mode,
    user_info_is_the_caller,
    the_layer_inserts_the_caller,
    the_layer_serves_grpc_and_http,
);
