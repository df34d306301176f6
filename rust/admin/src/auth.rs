//! AuthMetadataService and IdentityService for a deployment without authentication, which is
//! the only mode Alula has: nothing is asked of clients, so nothing is advertised.

use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataService;
use alula_idl::flyteidl::service::identity_service_server::IdentityService;
use alula_idl::flyteidl::service::{
    OAuth2MetadataRequest, OAuth2MetadataResponse, PublicClientAuthConfigRequest,
    PublicClientAuthConfigResponse, UserInfoRequest, UserInfoResponse,
};
use tonic::{Request, Response, Status};

/// The subject every caller is when no one authenticates.
pub const ANONYMOUS_SUBJECT: &str = "anonymous";

/// Answers the auth discovery RPCs of a server that does not authenticate.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAuth;

#[tonic::async_trait]
impl AuthMetadataService for NoAuth {
    /// There is no authorization server to describe, so NOT_FOUND. Clients start an auth flow
    /// only on UNAUTHENTICATED (flytekit and flytectl refresh credentials on it; flytekit also
    /// on UNKNOWN), never on NOT_FOUND; and through the REST gateway NOT_FOUND is a 404 on
    /// `/.well-known/oauth-authorization-server`, which is how RFC 8414 says a server without
    /// metadata answers. An empty-but-OK metadata document would instead look like an
    /// authorization server with no endpoints, which clients would try to use.
    async fn get_o_auth2_metadata(
        &self,
        _request: Request<OAuth2MetadataRequest>,
    ) -> Result<Response<OAuth2MetadataResponse>, Status> {
        Err(Status::not_found(
            "this Alula server has authentication disabled: there is no OAuth2 authorization server",
        ))
    }

    /// An empty client config: no client id, scopes, audience or header to use. Clients that
    /// fetch it (the console does) read "no auth"; they are not told to authenticate.
    async fn get_public_client_config(
        &self,
        _request: Request<PublicClientAuthConfigRequest>,
    ) -> Result<Response<PublicClientAuthConfigResponse>, Status> {
        Ok(Response::new(PublicClientAuthConfigResponse::default()))
    }
}

#[tonic::async_trait]
impl IdentityService for NoAuth {
    /// Everyone is the anonymous user, as flyteadmin's console shows without auth.
    async fn user_info(
        &self,
        _request: Request<UserInfoRequest>,
    ) -> Result<Response<UserInfoResponse>, Status> {
        Ok(Response::new(UserInfoResponse {
            subject: ANONYMOUS_SUBJECT.to_string(),
            name: "Anonymous".to_string(),
            preferred_username: ANONYMOUS_SUBJECT.to_string(),
            ..Default::default()
        }))
    }
}
