//! AuthMetadataService (what flytekit and flytectl discover before they authenticate) and
//! IdentityService (who the caller is), per authentication mode.

use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataService;
use alula_idl::flyteidl::service::identity_service_server::IdentityService;
use alula_idl::flyteidl::service::{
    OAuth2MetadataRequest, OAuth2MetadataResponse, PublicClientAuthConfigRequest,
    PublicClientAuthConfigResponse, UserInfoRequest, UserInfoResponse,
};
use alula_idl::wkt;
use tonic::{Request, Response, Status};

use super::{caller_of, Auth, AuthMode, Caller, ANONYMOUS_SUBJECT, TOKEN_SCOPE};

/// Answers the auth discovery RPCs and UserInfo.
#[derive(Clone, Debug)]
pub struct Discovery {
    pub auth: Auth,
}

impl Discovery {
    fn builtin_metadata(&self) -> OAuth2MetadataResponse {
        let issuer = self.auth.issuer().to_string();
        OAuth2MetadataResponse {
            token_endpoint: format!("{issuer}/oauth2/token"),
            jwks_uri: format!("{issuer}/oauth2/jwks"),
            issuer,
            grant_types_supported: vec!["client_credentials".into()],
            token_endpoint_auth_methods_supported: vec![
                "client_secret_basic".into(),
                "client_secret_post".into(),
            ],
            scopes_supported: vec![TOKEN_SCOPE.into()],
            response_types_supported: vec!["token".into()],
            ..Default::default()
        }
    }
}

#[tonic::async_trait]
impl AuthMetadataService for Discovery {
    /// Without authentication there is no authorization server to describe, so NOT_FOUND.
    /// Clients start an auth flow only on UNAUTHENTICATED (flytekit and flytectl refresh
    /// credentials on it; flytekit also on UNKNOWN), never on NOT_FOUND; and through the REST
    /// gateway NOT_FOUND is a 404 on `/.well-known/oauth-authorization-server`, which is how
    /// RFC 8414 says a server without metadata answers. An empty-but-OK metadata document
    /// would instead look like an authorization server with no endpoints.
    async fn get_o_auth2_metadata(
        &self,
        _request: Request<OAuth2MetadataRequest>,
    ) -> Result<Response<OAuth2MetadataResponse>, Status> {
        let metadata = match self.auth.mode() {
            AuthMode::Off => {
                return Err(Status::not_found(
                    "this Alula server has authentication disabled: there is no OAuth2 \
                     authorization server",
                ))
            }
            AuthMode::Builtin => self.builtin_metadata(),
            AuthMode::Oidc => {
                let provider = self.auth.provider_metadata().cloned().unwrap_or_default();
                OAuth2MetadataResponse {
                    issuer: provider.issuer,
                    authorization_endpoint: provider.authorization_endpoint,
                    token_endpoint: provider.token_endpoint,
                    response_types_supported: provider.response_types_supported,
                    scopes_supported: provider.scopes_supported,
                    token_endpoint_auth_methods_supported: provider
                        .token_endpoint_auth_methods_supported,
                    jwks_uri: provider.jwks_uri,
                    code_challenge_methods_supported: provider.code_challenge_methods_supported,
                    grant_types_supported: provider.grant_types_supported,
                    device_authorization_endpoint: provider.device_authorization_endpoint,
                }
            }
        };
        Ok(Response::new(metadata))
    }

    /// Off: an empty config (no client id, scopes, audience or header), which clients read as
    /// "no auth". Built-in: machine clients bring their own id; OIDC: the public client that
    /// flytekit's `Pkce` and `DeviceFlow` use.
    async fn get_public_client_config(
        &self,
        _request: Request<PublicClientAuthConfigRequest>,
    ) -> Result<Response<PublicClientAuthConfigResponse>, Status> {
        let settings = self.auth.settings();
        let config = match self.auth.mode() {
            AuthMode::Off => PublicClientAuthConfigResponse::default(),
            AuthMode::Builtin => PublicClientAuthConfigResponse {
                client_id: String::new(),
                redirect_uri: settings.redirect_uri.clone(),
                scopes: vec![TOKEN_SCOPE.into()],
                authorization_metadata_key: settings.authorization_metadata_key.clone(),
                service_http_endpoint: self.auth.issuer().to_string(),
                audience: settings.audience.clone(),
            },
            AuthMode::Oidc => PublicClientAuthConfigResponse {
                client_id: settings.cli_client_id.clone(),
                redirect_uri: settings.redirect_uri.clone(),
                scopes: settings.scopes.clone(),
                authorization_metadata_key: settings.authorization_metadata_key.clone(),
                service_http_endpoint: String::new(),
                audience: settings.audience.clone(),
            },
        };
        Ok(Response::new(config))
    }
}

#[tonic::async_trait]
impl IdentityService for Discovery {
    /// The caller as its token says. Without authentication everyone is the anonymous user, as
    /// flyteadmin's console shows.
    async fn user_info(
        &self,
        request: Request<UserInfoRequest>,
    ) -> Result<Response<UserInfoResponse>, Status> {
        let info = match caller_of(&request, &self.auth) {
            Caller::Unchecked => UserInfoResponse {
                subject: ANONYMOUS_SUBJECT.to_string(),
                name: "Anonymous".to_string(),
                preferred_username: ANONYMOUS_SUBJECT.to_string(),
                ..Default::default()
            },
            Caller::Anonymous => {
                return Err(Status::unauthenticated(
                    "no credentials: send an access token (authorization: Bearer <token>)",
                ))
            }
            Caller::Refused(reason) => return Err(Status::unauthenticated(reason)),
            Caller::Authenticated(principal) => UserInfoResponse {
                subject: principal.subject.clone(),
                name: principal.name.clone(),
                preferred_username: principal.preferred_username.clone(),
                email: principal.email.clone(),
                additional_claims: Some(groups_claims(&principal.groups)),
                ..Default::default()
            },
        };
        Ok(Response::new(info))
    }
}

/// `{"groups": [...]}`.
fn groups_claims(groups: &[String]) -> wkt::Struct {
    let values = groups
        .iter()
        .map(|group| wkt::Value {
            kind: Some(wkt::value::Kind::StringValue(group.clone())),
        })
        .collect();
    let groups = wkt::Value {
        kind: Some(wkt::value::Kind::ListValue(wkt::ListValue { values })),
    };
    wkt::Struct {
        fields: [("groups".to_string(), groups)].into_iter().collect(),
    }
}
