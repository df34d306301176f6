//! `AdminService` and `SignalService` behind the gate. The trait impls are generated, one arm
//! per RPC: the compiler requires every trait method, so a new RPC cannot be served without
//! going through [`guarded_service!`] (which checks the table, then audits), and the table test
//! requires its entry.

use alula_idl::flyteidl::admin as a;
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::flyteidl::service::signal_service_server::SignalService;
use tonic::{Request, Response, Status};

use super::{containment, references, Admitted, Gate, Guarded};
use crate::service::AdminApi;

/// Generates `impl $trait for Guarded<$inner>`: each RPC is admitted by the gate (table and
/// scope), optionally prepared (`before`: may edit the request or refuse), answered by the
/// inner service (or `call`, when the inner service needs more than the request), optionally
/// finished (`after`: may edit the response), and audited.
macro_rules! guarded_service {
    (
        $trait:ident for $inner:ty, $service:literal;
        $(
            $method:ident $rpc:ident ($req:ty) -> $resp:ty
            $(, before $before:path)? $(, call $call:path)? $(, after $after:path)?;
        )*
    ) => {
        #[tonic::async_trait]
        impl $trait for Guarded<$inner> {
            $(
                async fn $method(
                    &self,
                    request: Request<$req>,
                ) -> Result<Response<$resp>, Status> {
                    const METHOD: &str = concat!("/", $service, "/", stringify!($rpc));
                    #[allow(unused_mut, reason = "only requests with a `before` hook change")]
                    let mut request = request;
                    let admitted = self.gate.admit(&request, METHOD).await?;
                    $(
                        if let Err(status) = $before(&self.gate, &admitted, &mut request).await {
                            self.gate.finish(&admitted, Err(&status)).await;
                            return Err(status);
                        }
                    )?
                    let answer = guarded_service!(@call self, admitted, request, $trait, $method $(, $call)?);
                    $(
                        let answer = match answer {
                            Ok(response) => $after(&self.gate, &admitted, response).await,
                            Err(status) => Err(status),
                        };
                    )?
                    self.gate
                        .finish(&admitted, answer.as_ref().map(|_| ()))
                        .await;
                    answer
                }
            )*
        }
    };
    (@call $self:ident, $admitted:ident, $request:ident, $trait:ident, $method:ident) => {
        $trait::$method(&$self.inner, $request).await
    };
    (@call $self:ident, $admitted:ident, $request:ident, $trait:ident, $method:ident, $call:path) => {
        $call(&$self.inner, &$self.gate, &$admitted, $request).await
    };
}

pub(crate) use guarded_service;

guarded_service! {
    AdminService for AdminApi, "flyteidl.service.AdminService";
    get_dynamic_node_workflow GetDynamicNodeWorkflow(a::GetDynamicNodeWorkflowRequest) -> a::DynamicNodeWorkflowResponse;
    create_task CreateTask(a::TaskCreateRequest) -> a::TaskCreateResponse, before contain_task;
    get_task GetTask(a::ObjectGetRequest) -> a::Task;
    list_task_ids ListTaskIds(a::NamedEntityIdentifierListRequest) -> a::NamedEntityIdentifierList;
    list_tasks ListTasks(a::ResourceListRequest) -> a::TaskList;
    create_workflow CreateWorkflow(a::WorkflowCreateRequest) -> a::WorkflowCreateResponse, before use_in_workflow;
    get_workflow GetWorkflow(a::ObjectGetRequest) -> a::Workflow;
    list_workflow_ids ListWorkflowIds(a::NamedEntityIdentifierListRequest) -> a::NamedEntityIdentifierList;
    list_workflows ListWorkflows(a::ResourceListRequest) -> a::WorkflowList;
    create_launch_plan CreateLaunchPlan(a::LaunchPlanCreateRequest) -> a::LaunchPlanCreateResponse, before contain_launch_plan;
    get_launch_plan GetLaunchPlan(a::ObjectGetRequest) -> a::LaunchPlan;
    get_active_launch_plan GetActiveLaunchPlan(a::ActiveLaunchPlanRequest) -> a::LaunchPlan;
    list_active_launch_plans ListActiveLaunchPlans(a::ActiveLaunchPlanListRequest) -> a::LaunchPlanList;
    list_launch_plan_ids ListLaunchPlanIds(a::NamedEntityIdentifierListRequest) -> a::NamedEntityIdentifierList;
    list_launch_plans ListLaunchPlans(a::ResourceListRequest) -> a::LaunchPlanList;
    update_launch_plan UpdateLaunchPlan(a::LaunchPlanUpdateRequest) -> a::LaunchPlanUpdateResponse;
    create_execution CreateExecution(a::ExecutionCreateRequest) -> a::ExecutionCreateResponse, before launch_as_caller;
    get_execution GetExecution(a::WorkflowExecutionGetRequest) -> a::Execution;
    get_execution_data GetExecutionData(a::WorkflowExecutionGetDataRequest) -> a::WorkflowExecutionGetDataResponse;
    list_executions ListExecutions(a::ResourceListRequest) -> a::ExecutionList;
    terminate_execution TerminateExecution(a::ExecutionTerminateRequest) -> a::ExecutionTerminateResponse;
    relaunch_execution RelaunchExecution(a::ExecutionRelaunchRequest) -> a::ExecutionCreateResponse, call relaunch_as_caller;
    recover_execution RecoverExecution(a::ExecutionRecoverRequest) -> a::ExecutionCreateResponse, call recover_as_caller;
    register_project RegisterProject(a::ProjectRegisterRequest) -> a::ProjectRegisterResponse;
    update_project UpdateProject(a::Project) -> a::ProjectUpdateResponse;
    get_project GetProject(a::ProjectGetRequest) -> a::Project;
    list_projects ListProjects(a::ProjectListRequest) -> a::Projects, after viewable_projects;
    get_domains GetDomains(a::GetDomainRequest) -> a::GetDomainsResponse;
    list_named_entities ListNamedEntities(a::NamedEntityListRequest) -> a::NamedEntityList;
    get_named_entity GetNamedEntity(a::NamedEntityGetRequest) -> a::NamedEntity;
    update_named_entity UpdateNamedEntity(a::NamedEntityUpdateRequest) -> a::NamedEntityUpdateResponse;
    get_version GetVersion(a::GetVersionRequest) -> a::GetVersionResponse;
    get_description_entity GetDescriptionEntity(a::ObjectGetRequest) -> a::DescriptionEntity;
    list_description_entities ListDescriptionEntities(a::DescriptionEntityListRequest) -> a::DescriptionEntityList;
    update_execution UpdateExecution(a::ExecutionUpdateRequest) -> a::ExecutionUpdateResponse;
    get_node_execution GetNodeExecution(a::NodeExecutionGetRequest) -> a::NodeExecution;
    list_node_executions ListNodeExecutions(a::NodeExecutionListRequest) -> a::NodeExecutionList;
    list_node_executions_for_task ListNodeExecutionsForTask(a::NodeExecutionForTaskListRequest) -> a::NodeExecutionList;
    get_node_execution_data GetNodeExecutionData(a::NodeExecutionGetDataRequest) -> a::NodeExecutionGetDataResponse;
    create_workflow_event CreateWorkflowEvent(a::WorkflowExecutionEventRequest) -> a::WorkflowExecutionEventResponse;
    create_node_event CreateNodeEvent(a::NodeExecutionEventRequest) -> a::NodeExecutionEventResponse;
    create_task_event CreateTaskEvent(a::TaskExecutionEventRequest) -> a::TaskExecutionEventResponse;
    get_task_execution GetTaskExecution(a::TaskExecutionGetRequest) -> a::TaskExecution;
    list_task_executions ListTaskExecutions(a::TaskExecutionListRequest) -> a::TaskExecutionList;
    get_task_execution_data GetTaskExecutionData(a::TaskExecutionGetDataRequest) -> a::TaskExecutionGetDataResponse;
    get_execution_metrics GetExecutionMetrics(a::WorkflowExecutionGetMetricsRequest) -> a::WorkflowExecutionGetMetricsResponse;
    update_project_domain_attributes UpdateProjectDomainAttributes(a::ProjectDomainAttributesUpdateRequest) -> a::ProjectDomainAttributesUpdateResponse;
    get_project_domain_attributes GetProjectDomainAttributes(a::ProjectDomainAttributesGetRequest) -> a::ProjectDomainAttributesGetResponse;
    delete_project_domain_attributes DeleteProjectDomainAttributes(a::ProjectDomainAttributesDeleteRequest) -> a::ProjectDomainAttributesDeleteResponse;
    update_project_attributes UpdateProjectAttributes(a::ProjectAttributesUpdateRequest) -> a::ProjectAttributesUpdateResponse;
    get_project_attributes GetProjectAttributes(a::ProjectAttributesGetRequest) -> a::ProjectAttributesGetResponse;
    delete_project_attributes DeleteProjectAttributes(a::ProjectAttributesDeleteRequest) -> a::ProjectAttributesDeleteResponse;
    update_workflow_attributes UpdateWorkflowAttributes(a::WorkflowAttributesUpdateRequest) -> a::WorkflowAttributesUpdateResponse;
    get_workflow_attributes GetWorkflowAttributes(a::WorkflowAttributesGetRequest) -> a::WorkflowAttributesGetResponse;
    delete_workflow_attributes DeleteWorkflowAttributes(a::WorkflowAttributesDeleteRequest) -> a::WorkflowAttributesDeleteResponse;
    list_matchable_attributes ListMatchableAttributes(a::ListMatchableAttributesRequest) -> a::ListMatchableAttributesResponse;
}

guarded_service! {
    SignalService for AdminApi, "flyteidl.service.SignalService";
    get_or_create_signal GetOrCreateSignal(a::SignalGetOrCreateRequest) -> a::Signal;
    list_signals ListSignals(a::SignalListRequest) -> a::SignalList;
    set_signal SetSignal(a::SignalSetRequest) -> a::SignalSetResponse;
}

/// The principal an execution records: the token's, never the client's claim. `None` when
/// authentication is off (the client's claim is all there is).
fn launcher(admitted: &Admitted) -> Option<String> {
    admitted
        .caller
        .principal()
        .map(|p| p.display_name().to_string())
}

async fn contain_task(
    gate: &Gate,
    admitted: &Admitted,
    request: &mut Request<a::TaskCreateRequest>,
) -> Result<(), Status> {
    match containment::requested_identity_of_task(request.get_ref()) {
        Some(what) => gate.require_admin(admitted, &what),
        None => Ok(()),
    }
}

async fn contain_launch_plan(
    gate: &Gate,
    admitted: &Admitted,
    request: &mut Request<a::LaunchPlanCreateRequest>,
) -> Result<(), Status> {
    if let Some(what) = containment::requested_identity_of_launch_plan(request.get_ref()) {
        gate.require_admin(admitted, &what)?;
    }
    gate.require_use(
        admitted,
        &references::used_by_launch_plan(request.get_ref()),
    )
    .await
}

async fn use_in_workflow(
    gate: &Gate,
    admitted: &Admitted,
    request: &mut Request<a::WorkflowCreateRequest>,
) -> Result<(), Status> {
    gate.require_use(admitted, &references::used_by_workflow(request.get_ref()))
        .await
}

async fn launch_as_caller(
    gate: &Gate,
    admitted: &Admitted,
    request: &mut Request<a::ExecutionCreateRequest>,
) -> Result<(), Status> {
    check_launch(gate, admitted, request.get_mut()).await
}

/// What every launch passes, a new one or a relaunch or recovery (which repeat the original's
/// request, so they ask for what it asked): an identity of the caller's choosing needs the
/// admin role, what it launches from elsewhere needs the runner role there, and the principal
/// recorded is the caller's.
async fn check_launch(
    gate: &Gate,
    admitted: &Admitted,
    launch: &mut a::ExecutionCreateRequest,
) -> Result<(), Status> {
    if let Some(what) = containment::requested_identity_of_execution(launch) {
        gate.require_admin(admitted, &what)?;
    }
    gate.require_use(admitted, &references::used_by_execution(launch))
        .await?;
    if let Some(principal) = launcher(admitted) {
        // A request without a spec is refused by the service; one without metadata gets it.
        if let Some(spec) = launch.spec.as_mut() {
            spec.metadata.get_or_insert_with(Default::default).principal = principal;
        }
    }
    Ok(())
}

async fn relaunch_as_caller(
    api: &AdminApi,
    gate: &Gate,
    admitted: &Admitted,
    request: Request<a::ExecutionRelaunchRequest>,
) -> Result<Response<a::ExecutionCreateResponse>, Status> {
    let mut launch = api.relaunch_request(request.into_inner()).await?;
    check_launch(gate, admitted, &mut launch).await?;
    Ok(Response::new(api.create_execution(launch).await?))
}

async fn recover_as_caller(
    api: &AdminApi,
    gate: &Gate,
    admitted: &Admitted,
    request: Request<a::ExecutionRecoverRequest>,
) -> Result<Response<a::ExecutionCreateResponse>, Status> {
    let mut launch = api.recover_request(request.into_inner()).await?;
    check_launch(gate, admitted, &mut launch).await?;
    Ok(Response::new(api.create_execution(launch).await?))
}

/// ListProjects answers with the projects the caller may view, unless it has a role over all
/// of them. A project counts as viewable with a role on it as a whole or on any of its domains.
async fn viewable_projects(
    gate: &Gate,
    admitted: &Admitted,
    response: Response<a::Projects>,
) -> Result<Response<a::Projects>, Status> {
    if admitted.role.is_some() {
        return Ok(response);
    }
    let mut projects = response.into_inner();
    let mut visible = Vec::with_capacity(projects.projects.len());
    for project in std::mem::take(&mut projects.projects) {
        let mut viewable = gate
            .role(&admitted.caller, Some(&project.id), None)
            .await
            .is_some();
        for domain in &project.domains {
            if viewable {
                break;
            }
            viewable = gate
                .role(&admitted.caller, Some(&project.id), Some(&domain.id))
                .await
                .is_some();
        }
        if viewable {
            visible.push(project);
        }
    }
    projects.projects = visible;
    Ok(Response::new(projects))
}
