//! `DataProxyService`, `AgentMetadataService`, `IdentityService` and `AuthMetadataService`
//! behind the gate. The auth
//! discovery services are generic over their implementation (authentication off or on): their
//! RPCs are public or need only a caller, so nothing depends on which.

use alula_idl::flyteidl::admin as a;
use alula_idl::flyteidl::service as s;
use alula_idl::flyteidl::service::agent_metadata_service_server::AgentMetadataService;
use alula_idl::flyteidl::service::auth_metadata_service_server::AuthMetadataService;
use alula_idl::flyteidl::service::data_proxy_service_server::DataProxyService;
use alula_idl::flyteidl::service::identity_service_server::IdentityService;
use tonic::{Request, Response, Status};

use super::guarded_admin::guarded_service;
use super::Guarded;
use crate::agents::AgentMetadataProxy;
use crate::dataproxy::DataProxy;

guarded_service! {
    DataProxyService for DataProxy, "flyteidl.service.DataProxyService";
    create_upload_location CreateUploadLocation(s::CreateUploadLocationRequest) -> s::CreateUploadLocationResponse;
    create_download_location CreateDownloadLocation(s::CreateDownloadLocationRequest) -> s::CreateDownloadLocationResponse;
    create_download_link CreateDownloadLink(s::CreateDownloadLinkRequest) -> s::CreateDownloadLinkResponse;
    get_data GetData(s::GetDataRequest) -> s::GetDataResponse;
}

guarded_service! {
    AgentMetadataService for AgentMetadataProxy, "flyteidl.service.AgentMetadataService";
    get_agent GetAgent(a::GetAgentRequest) -> a::GetAgentResponse;
    list_agents ListAgents(a::ListAgentsRequest) -> a::ListAgentsResponse;
}

// Written out (not generated) because they are generic; like the generated ones, each admits
// the call by the table first. Neither service mutates anything, so there is nothing to audit.
#[tonic::async_trait]
impl<D: IdentityService> IdentityService for Guarded<D> {
    /// The inner service reads the caller from the extensions the request keeps.
    async fn user_info(
        &self,
        request: Request<s::UserInfoRequest>,
    ) -> Result<Response<s::UserInfoResponse>, Status> {
        self.gate
            .admit(&request, "/flyteidl.service.IdentityService/UserInfo")
            .await?;
        self.inner.user_info(request).await
    }
}

#[tonic::async_trait]
impl<D: AuthMetadataService> AuthMetadataService for Guarded<D> {
    async fn get_o_auth2_metadata(
        &self,
        request: Request<s::OAuth2MetadataRequest>,
    ) -> Result<Response<s::OAuth2MetadataResponse>, Status> {
        self.gate
            .admit(
                &request,
                "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata",
            )
            .await?;
        self.inner.get_o_auth2_metadata(request).await
    }

    async fn get_public_client_config(
        &self,
        request: Request<s::PublicClientAuthConfigRequest>,
    ) -> Result<Response<s::PublicClientAuthConfigResponse>, Status> {
        self.gate
            .admit(
                &request,
                "/flyteidl.service.AuthMetadataService/GetPublicClientConfig",
            )
            .await?;
        self.inner.get_public_client_config(request).await
    }
}
