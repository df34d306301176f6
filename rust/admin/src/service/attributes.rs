//! Matchable attributes (`{Update,Get,Delete}{Project,ProjectDomain,Workflow}Attributes` and
//! `ListMatchableAttributes`): one `MatchingAttributes` per level and resource type, stored as
//! protobuf bytes. The resource type of an update is the variant of its `matching_attributes`.

use alula_idl::flyteidl::admin::{
    self as admin, matching_attributes::Target, MatchableResource, MatchingAttributes,
};
use prost::Message;

use super::{decode, require, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::store::{now_micros, AttributesKey};

/// The attributes of one resource type that apply to an execution: the most specific level
/// stored (workflow, else project-domain, else project), as flyteadmin looks them up, and the
/// project level apart (some settings merge both).
#[derive(Debug, Default)]
pub(super) struct Matched {
    pub most_specific: Option<MatchingAttributes>,
    pub project_level: Option<MatchingAttributes>,
}

/// The stored attributes that can apply to one workflow (see
/// [`AdminApi::applicable_attributes`]).
pub(super) struct Applicable {
    rows: Vec<(AttributesKey, MatchingAttributes)>,
}

impl Applicable {
    pub(super) fn of(&self, resource: MatchableResource) -> Matched {
        let at = |workflow_level: bool, project_level: bool| {
            self.rows
                .iter()
                .find(|(key, _)| {
                    key.resource_type == i64::from(resource as i32)
                        && key.domain.is_empty() == project_level
                        && key.workflow.is_empty() != workflow_level
                })
                .map(|(_, attributes)| attributes.clone())
        };
        let project_level = at(false, true);
        Matched {
            most_specific: at(true, false)
                .or_else(|| at(false, false))
                .or_else(|| project_level.clone()),
            project_level,
        }
    }
}

/// The resource type a `matching_attributes` value configures.
fn resource_of(attributes: Option<&MatchingAttributes>) -> AdminResult<MatchableResource> {
    let target = attributes
        .and_then(|a| a.target.as_ref())
        .ok_or_else(|| AdminError::invalid("missing matching_attributes"))?;
    Ok(match target {
        Target::TaskResourceAttributes(_) => MatchableResource::TaskResource,
        Target::ClusterResourceAttributes(_) => MatchableResource::ClusterResource,
        Target::ExecutionQueueAttributes(_) => MatchableResource::ExecutionQueue,
        Target::ExecutionClusterLabel(_) => MatchableResource::ExecutionClusterLabel,
        Target::QualityOfService(_) => MatchableResource::QualityOfServiceSpecification,
        Target::PluginOverrides(_) => MatchableResource::PluginOverride,
        Target::WorkflowExecutionConfig(_) => MatchableResource::WorkflowExecutionConfig,
        Target::ClusterAssignment(_) => MatchableResource::ClusterAssignment,
    })
}

/// Only what executions honour may be set: attributes that would be stored and then ignored
/// are refused, so nobody believes a queue, a QoS tier or a plugin override is in force.
fn refuse_unhonoured(resource: MatchableResource) -> AdminResult<()> {
    match resource {
        MatchableResource::TaskResource
        | MatchableResource::WorkflowExecutionConfig
        | MatchableResource::ExecutionClusterLabel => Ok(()),
        other => Err(AdminError::invalid(format!(
            "{} attributes are not supported by Alula (supported: TASK_RESOURCE, \
             WORKFLOW_EXECUTION_CONFIG, EXECUTION_CLUSTER_LABEL)",
            other.as_str_name()
        ))),
    }
}

/// A `resource_type` field of a get, delete or list request: a known `MatchableResource`.
fn requested_resource(value: i32) -> AdminResult<MatchableResource> {
    MatchableResource::try_from(value)
        .map_err(|_| AdminError::invalid(format!("unknown resource_type {value}")))
}

/// Names a key in messages: `TASK_RESOURCE attributes of project p, domain d`.
fn describe(key: &AttributesKey) -> String {
    let resource = MatchableResource::try_from(i32::try_from(key.resource_type).unwrap_or(-1))
        .map_or("unknown", |r| r.as_str_name());
    let mut text = format!("{resource} attributes of project {:?}", key.project);
    if !key.domain.is_empty() {
        text.push_str(&format!(", domain {:?}", key.domain));
    }
    if !key.workflow.is_empty() {
        text.push_str(&format!(", workflow {:?}", key.workflow));
    }
    if !key.org.is_empty() {
        text.push_str(&format!(", org {:?}", key.org));
    }
    text
}

fn key(
    resource: MatchableResource,
    org: &str,
    project: &str,
    domain: &str,
    workflow: &str,
) -> AttributesKey {
    AttributesKey {
        resource_type: i64::from(resource as i32),
        org: org.to_string(),
        project: project.to_string(),
        domain: domain.to_string(),
        workflow: workflow.to_string(),
        launch_plan: String::new(),
    }
}

impl AdminApi {
    /// Every stored attribute that can apply to `workflow` in `project`/`domain`, read at once.
    pub(super) async fn applicable_attributes(
        &self,
        org: &str,
        project: &str,
        domain: &str,
        workflow: &str,
    ) -> AdminResult<Applicable> {
        let rows = self
            .store
            .applicable_attributes(org, project, domain, workflow)
            .await?;
        let rows = rows
            .into_iter()
            .map(|(key, bytes)| {
                let attributes: MatchingAttributes = decode(&bytes, || describe(&key))?;
                Ok((key, attributes))
            })
            .collect::<AdminResult<_>>()?;
        Ok(Applicable { rows })
    }

    async fn put_attributes(
        &self,
        key: &AttributesKey,
        attributes: Option<MatchingAttributes>,
    ) -> AdminResult<()> {
        if key.domain.is_empty() {
            if self.store.get_project(&key.project).await?.is_none() {
                return Err(AdminError::invalid(format!(
                    "project {:?} is not registered",
                    key.project
                )));
            }
        } else {
            self.check_project_domain(&key.project, &key.domain).await?;
        }
        let bytes = attributes.unwrap_or_default().encode_to_vec();
        self.store.put_attributes(key, bytes, now_micros()).await?;
        Ok(())
    }

    async fn load_attributes(&self, key: &AttributesKey) -> AdminResult<MatchingAttributes> {
        let bytes = self
            .store
            .get_attributes(key)
            .await?
            .ok_or_else(|| AdminError::not_found(format!("no {} are set", describe(key))))?;
        decode(&bytes, || describe(key))
    }

    async fn remove_attributes(&self, key: &AttributesKey) -> AdminResult<()> {
        if self.store.delete_attributes(key).await? {
            Ok(())
        } else {
            Err(AdminError::not_found(format!(
                "no {} are set",
                describe(key)
            )))
        }
    }

    pub(crate) async fn update_project_attributes(
        &self,
        req: admin::ProjectAttributesUpdateRequest,
    ) -> AdminResult<admin::ProjectAttributesUpdateResponse> {
        let a = req
            .attributes
            .ok_or_else(|| AdminError::invalid("missing attributes"))?;
        require(&a.project, "attributes project")?;
        let resource = resource_of(a.matching_attributes.as_ref())?;
        refuse_unhonoured(resource)?;
        let key = key(resource, &a.org, &a.project, "", "");
        self.put_attributes(&key, a.matching_attributes).await?;
        Ok(admin::ProjectAttributesUpdateResponse {})
    }

    pub(crate) async fn get_project_attributes(
        &self,
        req: admin::ProjectAttributesGetRequest,
    ) -> AdminResult<admin::ProjectAttributesGetResponse> {
        require(&req.project, "project")?;
        let resource = requested_resource(req.resource_type)?;
        let key = key(resource, &req.org, &req.project, "", "");
        let matching = self.load_attributes(&key).await?;
        Ok(admin::ProjectAttributesGetResponse {
            attributes: Some(admin::ProjectAttributes {
                project: req.project,
                matching_attributes: Some(matching),
                org: req.org,
            }),
        })
    }

    pub(crate) async fn delete_project_attributes(
        &self,
        req: admin::ProjectAttributesDeleteRequest,
    ) -> AdminResult<admin::ProjectAttributesDeleteResponse> {
        require(&req.project, "project")?;
        let resource = requested_resource(req.resource_type)?;
        self.remove_attributes(&key(resource, &req.org, &req.project, "", ""))
            .await?;
        Ok(admin::ProjectAttributesDeleteResponse {})
    }

    pub(crate) async fn update_project_domain_attributes(
        &self,
        req: admin::ProjectDomainAttributesUpdateRequest,
    ) -> AdminResult<admin::ProjectDomainAttributesUpdateResponse> {
        let a = req
            .attributes
            .ok_or_else(|| AdminError::invalid("missing attributes"))?;
        require(&a.project, "attributes project")?;
        require(&a.domain, "attributes domain")?;
        let resource = resource_of(a.matching_attributes.as_ref())?;
        refuse_unhonoured(resource)?;
        let key = key(resource, &a.org, &a.project, &a.domain, "");
        self.put_attributes(&key, a.matching_attributes).await?;
        Ok(admin::ProjectDomainAttributesUpdateResponse {})
    }

    pub(crate) async fn get_project_domain_attributes(
        &self,
        req: admin::ProjectDomainAttributesGetRequest,
    ) -> AdminResult<admin::ProjectDomainAttributesGetResponse> {
        require(&req.project, "project")?;
        require(&req.domain, "domain")?;
        let resource = requested_resource(req.resource_type)?;
        let key = key(resource, &req.org, &req.project, &req.domain, "");
        let matching = self.load_attributes(&key).await?;
        Ok(admin::ProjectDomainAttributesGetResponse {
            attributes: Some(admin::ProjectDomainAttributes {
                project: req.project,
                domain: req.domain,
                matching_attributes: Some(matching),
                org: req.org,
            }),
        })
    }

    pub(crate) async fn delete_project_domain_attributes(
        &self,
        req: admin::ProjectDomainAttributesDeleteRequest,
    ) -> AdminResult<admin::ProjectDomainAttributesDeleteResponse> {
        require(&req.project, "project")?;
        require(&req.domain, "domain")?;
        let resource = requested_resource(req.resource_type)?;
        self.remove_attributes(&key(resource, &req.org, &req.project, &req.domain, ""))
            .await?;
        Ok(admin::ProjectDomainAttributesDeleteResponse {})
    }

    pub(crate) async fn update_workflow_attributes(
        &self,
        req: admin::WorkflowAttributesUpdateRequest,
    ) -> AdminResult<admin::WorkflowAttributesUpdateResponse> {
        let a = req
            .attributes
            .ok_or_else(|| AdminError::invalid("missing attributes"))?;
        require(&a.project, "attributes project")?;
        require(&a.domain, "attributes domain")?;
        require(&a.workflow, "attributes workflow")?;
        let resource = resource_of(a.matching_attributes.as_ref())?;
        refuse_unhonoured(resource)?;
        let key = key(resource, &a.org, &a.project, &a.domain, &a.workflow);
        self.put_attributes(&key, a.matching_attributes).await?;
        Ok(admin::WorkflowAttributesUpdateResponse {})
    }

    pub(crate) async fn get_workflow_attributes(
        &self,
        req: admin::WorkflowAttributesGetRequest,
    ) -> AdminResult<admin::WorkflowAttributesGetResponse> {
        require(&req.project, "project")?;
        require(&req.domain, "domain")?;
        require(&req.workflow, "workflow")?;
        let resource = requested_resource(req.resource_type)?;
        let key = key(resource, &req.org, &req.project, &req.domain, &req.workflow);
        let matching = self.load_attributes(&key).await?;
        Ok(admin::WorkflowAttributesGetResponse {
            attributes: Some(admin::WorkflowAttributes {
                project: req.project,
                domain: req.domain,
                workflow: req.workflow,
                matching_attributes: Some(matching),
                org: req.org,
            }),
        })
    }

    pub(crate) async fn delete_workflow_attributes(
        &self,
        req: admin::WorkflowAttributesDeleteRequest,
    ) -> AdminResult<admin::WorkflowAttributesDeleteResponse> {
        require(&req.project, "project")?;
        require(&req.domain, "domain")?;
        require(&req.workflow, "workflow")?;
        let resource = requested_resource(req.resource_type)?;
        let key = key(resource, &req.org, &req.project, &req.domain, &req.workflow);
        self.remove_attributes(&key).await?;
        Ok(admin::WorkflowAttributesDeleteResponse {})
    }

    pub(crate) async fn list_matchable_attributes(
        &self,
        req: admin::ListMatchableAttributesRequest,
    ) -> AdminResult<admin::ListMatchableAttributesResponse> {
        let resource = requested_resource(req.resource_type)?;
        let rows = self
            .store
            .list_attributes(i64::from(resource as i32), &req.org)
            .await?;
        let configurations = rows
            .into_iter()
            .map(|(key, bytes)| {
                let attributes: MatchingAttributes = decode(&bytes, || describe(&key))?;
                Ok(admin::MatchableAttributesConfiguration {
                    attributes: Some(attributes),
                    domain: key.domain,
                    project: key.project,
                    workflow: key.workflow,
                    launch_plan: key.launch_plan,
                    org: key.org,
                })
            })
            .collect::<AdminResult<_>>()?;
        Ok(admin::ListMatchableAttributesResponse { configurations })
    }
}
