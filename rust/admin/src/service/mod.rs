//! `AdminService`: registration (tasks, workflows, launch plans), reads, projects, named and
//! description entities, and executions. Each RPC is an inherent method returning
//! [`AdminResult`]; the trait implementation at the bottom only converts errors to statuses, so
//! there is one place where codes are chosen.

mod attributes;
mod events;
mod exec_settings;
mod executions;
mod launch_plans;
mod metrics;
mod named;
mod node_executions;
mod projects;
mod relaunch;
mod signals;
mod task_events;
mod tasks;
mod workflows;

use std::sync::Arc;

use alula_core::ids::IdDisplay;
use alula_idl::flyteidl::admin::{self as admin, NamedEntityIdentifier, Sort};
use alula_idl::flyteidl::core::{Identifier, ResourceType};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::wkt::Timestamp;
use prost::Message;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::config::AdminConfig;
use crate::diff::describe_differences;
use crate::error::{AdminError, AdminResult};
use crate::list::{FieldSet, ListParams};
use crate::store::{Entity, EntityKey, Store, StoreError, NAME_FIELDS};
use crate::validate;

pub use alula_plane::ExecutionNotice;

/// The admin service: a store and the deployment's configuration.
#[derive(Clone)]
pub struct AdminApi {
    store: Store,
    config: Arc<AdminConfig>,
    notices: tokio::sync::broadcast::Sender<ExecutionNotice>,
    /// The data plane's plugins, when a propeller runs in this process.
    served: crate::served::ServedTasksSlot,
}

impl AdminApi {
    pub fn new(store: Store, config: Arc<AdminConfig>) -> Self {
        // Notices are hints: a lagging receiver loses some and falls back to polling.
        let (notices, _) = tokio::sync::broadcast::channel(1024);
        // Propeller saves through this store too: its large values go where literals go.
        let store = store.with_spill(config.storage.clone(), config.max_inline_literal_bytes);
        Self {
            store,
            config,
            notices,
            served: Default::default(),
        }
    }

    /// Hands admin what the propeller in this process runs: tasks no plugin serves are then
    /// refused at registration and launch (every clone of this service shares it).
    pub fn serve_tasks_of(&self, served: std::sync::Arc<dyn crate::ServedTasks>) {
        self.served.set(served);
    }

    /// Notices of created and terminated executions and set signals.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ExecutionNotice> {
        self.notices.subscribe()
    }

    pub(crate) fn notify(&self, notice: ExecutionNotice) {
        // No receivers (admin without propeller) is fine.
        let _ = self.notices.send(notice);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &AdminConfig {
        &self.config
    }

    /// Fails unless `domain` is configured and `project` registered, as flyteadmin checks
    /// before every registration and execution.
    async fn check_project_domain(&self, project: &str, domain: &str) -> AdminResult<()> {
        if !self.config.domains.iter().any(|d| d == domain) {
            return Err(AdminError::invalid(format!(
                "domain {domain:?} is not one of the configured domains: {}",
                self.config.domains.join(", ")
            )));
        }
        if self.store.get_project(project).await?.is_none() {
            return Err(AdminError::invalid(format!(
                "project {project:?} is not registered"
            )));
        }
        Ok(())
    }

    /// The `ListTaskIds`/`ListWorkflowIds`/`ListLaunchPlanIds` RPCs: distinct names.
    async fn list_ids(
        &self,
        entity: Entity,
        req: admin::NamedEntityIdentifierListRequest,
    ) -> AdminResult<admin::NamedEntityIdentifierList> {
        validate::project(&req.project, "project")?;
        validate::domain(&req.domain, "domain")?;
        let list = list_params(
            &NAME_FIELDS,
            &req.filters,
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        let names = self
            .store
            .list_entity_names(entity, &req.project, &req.domain, &list)
            .await?;
        let token = list.next_token(names.len());
        Ok(admin::NamedEntityIdentifierList {
            entities: names
                .into_iter()
                .map(|name| NamedEntityIdentifier {
                    project: req.project.clone(),
                    domain: req.domain.clone(),
                    name,
                    org: req.org.clone(),
                })
                .collect(),
            token,
        })
    }
}

/// `InvalidArgument` naming the missing field.
fn require(value: &str, field: &str) -> AdminResult<()> {
    if value.is_empty() {
        Err(AdminError::invalid(format!("missing {field}")))
    } else {
        Ok(())
    }
}

/// The id of a versioned entity, with every part present and the right resource type (or
/// none: clients may leave it unset).
fn entity_id(id: Option<&Identifier>, entity: Entity) -> AdminResult<&Identifier> {
    let id = id.ok_or_else(|| AdminError::invalid(format!("missing {} id", entity.noun())))?;
    let noun = entity.noun();
    validate::project(&id.project, &format!("{noun} id project"))?;
    validate::domain(&id.domain, &format!("{noun} id domain"))?;
    validate::name(&id.name, &format!("{noun} id name"))?;
    validate::version(&id.version, &format!("{noun} id version"))?;
    let rt = id.resource_type;
    if rt != ResourceType::Unspecified as i32 && rt != entity.resource_type() as i32 {
        return Err(AdminError::invalid(format!(
            "{} id {} has resource type {}, expected {}",
            entity.noun(),
            IdDisplay(id),
            ResourceType::try_from(rt).map_or("unknown", |r| r.as_str_name()),
            entity.resource_type().as_str_name()
        )));
    }
    Ok(id)
}

/// `id` with its resource type set, as stored and returned.
fn typed_id(id: &Identifier, entity: Entity) -> Identifier {
    Identifier {
        resource_type: entity.resource_type() as i32,
        ..id.clone()
    }
}

/// A `NamedEntityIdentifier` with project and domain (and the name when `with_name`).
fn named_id(
    id: Option<&NamedEntityIdentifier>,
    with_name: bool,
) -> AdminResult<&NamedEntityIdentifier> {
    let id = id.ok_or_else(|| AdminError::invalid("missing id"))?;
    validate::project(&id.project, "id project")?;
    validate::domain(&id.domain, "id domain")?;
    if with_name {
        validate::name(&id.name, "id name")?;
    }
    Ok(id)
}

fn list_params(
    fields: &FieldSet,
    filters: &str,
    sort_by: Option<&Sort>,
    limit: u32,
    token: &str,
) -> AdminResult<ListParams> {
    ListParams::parse(fields, filters, sort_by, limit, token).map_err(AdminError::InvalidArgument)
}

fn timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Decodes a stored payload; failure means the database holds bytes admin did not write.
fn decode<M: Message + Default>(bytes: &[u8], what: impl FnOnce() -> String) -> AdminResult<M> {
    M::decode(bytes).map_err(|source| {
        AdminError::Store(StoreError::Corrupt {
            what: what(),
            source,
        })
    })
}

/// The answer to registering an id that exists: `AlreadyExists` when the definition is the
/// same (flytekit counts that as success), else `InvalidArgument` listing what changed.
fn registration_conflict<T: Serialize>(
    entity: Entity,
    key: &EntityKey,
    same_digest: bool,
    old: &T,
    new: &T,
) -> AdminError {
    let id = IdDisplay(&key.identifier(entity)).to_string();
    if same_digest {
        return AdminError::AlreadyExists(format!(
            "{} {id} is already registered with an identical definition",
            entity.noun()
        ));
    }
    let differences = describe_differences(old, new);
    AdminError::invalid(format!(
        "{} {id} is already registered with a different definition; register changes under a new version. Differences: {}",
        entity.noun(),
        if differences.is_empty() {
            "(not representable)".to_string()
        } else {
            differences.join("; ")
        }
    ))
}

/// Generates the `AdminService` impl: every RPC calls the inherent method of the same name and
/// converts its error to a status in one place.
macro_rules! admin_service {
    (
        $($method:ident($req:ident) -> $resp:ident;)*
    ) => {
        #[tonic::async_trait]
        impl AdminService for AdminApi {
            $(
                async fn $method(
                    &self,
                    request: Request<admin::$req>,
                ) -> Result<Response<admin::$resp>, Status> {
                    AdminApi::$method(self, request.into_inner())
                        .await
                        .map(Response::new)
                        .map_err(Status::from)
                }
            )*
        }
    };
}

admin_service! {
    get_dynamic_node_workflow(GetDynamicNodeWorkflowRequest) -> DynamicNodeWorkflowResponse;
    create_task(TaskCreateRequest) -> TaskCreateResponse;
    get_task(ObjectGetRequest) -> Task;
    list_task_ids(NamedEntityIdentifierListRequest) -> NamedEntityIdentifierList;
    list_tasks(ResourceListRequest) -> TaskList;
    create_workflow(WorkflowCreateRequest) -> WorkflowCreateResponse;
    get_workflow(ObjectGetRequest) -> Workflow;
    list_workflow_ids(NamedEntityIdentifierListRequest) -> NamedEntityIdentifierList;
    list_workflows(ResourceListRequest) -> WorkflowList;
    create_launch_plan(LaunchPlanCreateRequest) -> LaunchPlanCreateResponse;
    get_launch_plan(ObjectGetRequest) -> LaunchPlan;
    get_active_launch_plan(ActiveLaunchPlanRequest) -> LaunchPlan;
    list_active_launch_plans(ActiveLaunchPlanListRequest) -> LaunchPlanList;
    list_launch_plan_ids(NamedEntityIdentifierListRequest) -> NamedEntityIdentifierList;
    list_launch_plans(ResourceListRequest) -> LaunchPlanList;
    update_launch_plan(LaunchPlanUpdateRequest) -> LaunchPlanUpdateResponse;
    create_execution(ExecutionCreateRequest) -> ExecutionCreateResponse;
    get_execution(WorkflowExecutionGetRequest) -> Execution;
    get_execution_data(WorkflowExecutionGetDataRequest) -> WorkflowExecutionGetDataResponse;
    list_executions(ResourceListRequest) -> ExecutionList;
    terminate_execution(ExecutionTerminateRequest) -> ExecutionTerminateResponse;
    relaunch_execution(ExecutionRelaunchRequest) -> ExecutionCreateResponse;
    recover_execution(ExecutionRecoverRequest) -> ExecutionCreateResponse;
    register_project(ProjectRegisterRequest) -> ProjectRegisterResponse;
    update_project(Project) -> ProjectUpdateResponse;
    get_project(ProjectGetRequest) -> Project;
    list_projects(ProjectListRequest) -> Projects;
    get_domains(GetDomainRequest) -> GetDomainsResponse;
    list_named_entities(NamedEntityListRequest) -> NamedEntityList;
    get_named_entity(NamedEntityGetRequest) -> NamedEntity;
    update_named_entity(NamedEntityUpdateRequest) -> NamedEntityUpdateResponse;
    get_version(GetVersionRequest) -> GetVersionResponse;
    get_description_entity(ObjectGetRequest) -> DescriptionEntity;
    list_description_entities(DescriptionEntityListRequest) -> DescriptionEntityList;
    update_execution(ExecutionUpdateRequest) -> ExecutionUpdateResponse;
    get_node_execution(NodeExecutionGetRequest) -> NodeExecution;
    list_node_executions(NodeExecutionListRequest) -> NodeExecutionList;
    list_node_executions_for_task(NodeExecutionForTaskListRequest) -> NodeExecutionList;
    get_node_execution_data(NodeExecutionGetDataRequest) -> NodeExecutionGetDataResponse;
    create_workflow_event(WorkflowExecutionEventRequest) -> WorkflowExecutionEventResponse;
    create_node_event(NodeExecutionEventRequest) -> NodeExecutionEventResponse;
    create_task_event(TaskExecutionEventRequest) -> TaskExecutionEventResponse;
    get_task_execution(TaskExecutionGetRequest) -> TaskExecution;
    list_task_executions(TaskExecutionListRequest) -> TaskExecutionList;
    get_task_execution_data(TaskExecutionGetDataRequest) -> TaskExecutionGetDataResponse;
    get_execution_metrics(WorkflowExecutionGetMetricsRequest) -> WorkflowExecutionGetMetricsResponse;
    update_project_domain_attributes(ProjectDomainAttributesUpdateRequest) -> ProjectDomainAttributesUpdateResponse;
    get_project_domain_attributes(ProjectDomainAttributesGetRequest) -> ProjectDomainAttributesGetResponse;
    delete_project_domain_attributes(ProjectDomainAttributesDeleteRequest) -> ProjectDomainAttributesDeleteResponse;
    update_project_attributes(ProjectAttributesUpdateRequest) -> ProjectAttributesUpdateResponse;
    get_project_attributes(ProjectAttributesGetRequest) -> ProjectAttributesGetResponse;
    delete_project_attributes(ProjectAttributesDeleteRequest) -> ProjectAttributesDeleteResponse;
    update_workflow_attributes(WorkflowAttributesUpdateRequest) -> WorkflowAttributesUpdateResponse;
    get_workflow_attributes(WorkflowAttributesGetRequest) -> WorkflowAttributesGetResponse;
    delete_workflow_attributes(WorkflowAttributesDeleteRequest) -> WorkflowAttributesDeleteResponse;
    list_matchable_attributes(ListMatchableAttributesRequest) -> ListMatchableAttributesResponse;
}
