//! The project and domain each request touches, which is where the caller needs its role. A
//! request that names no project (or no domain) where one is expected is scoped to all of them:
//! only a binding over `*` grants it. Never "no check".

use alula_core::ids::IdDisplay;
use alula_idl::flyteidl::admin as a;
use alula_idl::flyteidl::core::{
    Identifier, NodeExecutionIdentifier, SignalIdentifier, TaskExecutionIdentifier,
    WorkflowExecutionIdentifier,
};
use alula_idl::flyteidl::service as s;

/// Where a request acts, and what it acts on (for the audit log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope<'a> {
    /// `None`: every project (the request names none).
    pub project: Option<&'a str>,
    /// `None`: every domain of the project.
    pub domain: Option<&'a str>,
    /// What the call is about, in words (`task flytesnacks/development/t0@v1`).
    pub resource: String,
    /// A read about the project as a whole that a role on any one of its domains allows
    /// (GetProject: whoever may see something of a project may see the project).
    pub any_domain: bool,
}

impl<'a> Scope<'a> {
    /// A request about no project at all (it is answered for every project).
    pub fn everywhere(resource: impl Into<String>) -> Self {
        Self {
            project: None,
            domain: None,
            resource: resource.into(),
            any_domain: false,
        }
    }

    pub fn of(project: &'a str, domain: &'a str, resource: impl Into<String>) -> Self {
        Self {
            project: named(project),
            domain: named(domain),
            resource: resource.into(),
            any_domain: false,
        }
    }

    /// The project as a whole, readable with a role on any of its domains.
    pub fn project_seen_from_any_domain(project: &'a str, resource: impl Into<String>) -> Self {
        Self {
            any_domain: true,
            ..Self::of(project, "", resource)
        }
    }
}

/// An empty name is no name: the request then touches all of them.
fn named(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// The project and domain a request names.
pub trait Scoped {
    fn scope(&self) -> Scope<'_>;
}

fn identifier(id: Option<&Identifier>) -> Scope<'_> {
    match id {
        Some(id) => Scope::of(&id.project, &id.domain, IdDisplay(id).to_string()),
        None => Scope::everywhere(""),
    }
}

fn execution(id: Option<&WorkflowExecutionIdentifier>) -> Scope<'_> {
    match id {
        Some(id) => Scope::of(
            &id.project,
            &id.domain,
            format!("execution {}/{}/{}", id.project, id.domain, id.name),
        ),
        None => Scope::everywhere(""),
    }
}

fn node_execution(id: Option<&NodeExecutionIdentifier>) -> Scope<'_> {
    let Some(id) = id else {
        return Scope::everywhere("");
    };
    let mut scope = execution(id.execution_id.as_ref());
    scope.resource = format!("{} node {}", scope.resource, id.node_id);
    scope
}

fn task_execution(id: Option<&TaskExecutionIdentifier>) -> Scope<'_> {
    let Some(id) = id else {
        return Scope::everywhere("");
    };
    let mut scope = node_execution(id.node_execution_id.as_ref());
    scope.resource = format!("{} attempt {}", scope.resource, id.retry_attempt);
    scope
}

fn signal(id: Option<&SignalIdentifier>) -> Scope<'_> {
    let Some(id) = id else {
        return Scope::everywhere("");
    };
    let mut scope = execution(id.execution_id.as_ref());
    scope.resource = format!("{} signal {}", scope.resource, id.signal_id);
    scope
}

fn named_entity(id: Option<&a::NamedEntityIdentifier>) -> Scope<'_> {
    match id {
        Some(id) => Scope::of(
            &id.project,
            &id.domain,
            format!("{}/{}/{}", id.project, id.domain, id.name),
        ),
        None => Scope::everywhere(""),
    }
}

fn project_domain<'a>(project: &'a str, domain: &'a str) -> Scope<'a> {
    Scope::of(project, domain, format!("{project}/{domain}"))
}

/// `Scoped` for request types whose scope is one expression of `self`.
macro_rules! scoped {
    ($($request:ty => |$this:ident| $scope:expr;)*) => {
        $(
            impl Scoped for $request {
                fn scope(&self) -> Scope<'_> {
                    let $this = self;
                    $scope
                }
            }
        )*
    };
}

scoped! {
    // Definitions by identifier.
    a::TaskCreateRequest => |r| identifier(r.id.as_ref());
    a::WorkflowCreateRequest => |r| identifier(r.id.as_ref());
    a::LaunchPlanCreateRequest => |r| identifier(r.id.as_ref());
    a::LaunchPlanUpdateRequest => |r| identifier(r.id.as_ref());
    a::ObjectGetRequest => |r| identifier(r.id.as_ref());
    a::ResourceListRequest => |r| named_entity(r.id.as_ref());
    a::ActiveLaunchPlanRequest => |r| named_entity(r.id.as_ref());
    a::NamedEntityGetRequest => |r| named_entity(r.id.as_ref());
    a::NamedEntityUpdateRequest => |r| named_entity(r.id.as_ref());
    a::DescriptionEntityListRequest => |r| named_entity(r.id.as_ref());
    a::NamedEntityIdentifierListRequest => |r| project_domain(&r.project, &r.domain);
    a::ActiveLaunchPlanListRequest => |r| project_domain(&r.project, &r.domain);
    a::NamedEntityListRequest => |r| project_domain(&r.project, &r.domain);
    // Executions.
    a::ExecutionCreateRequest => |r| Scope::of(
        &r.project,
        &r.domain,
        format!("execution {}/{}/{}", r.project, r.domain, r.name),
    );
    a::WorkflowExecutionGetRequest => |r| execution(r.id.as_ref());
    a::WorkflowExecutionGetDataRequest => |r| execution(r.id.as_ref());
    a::WorkflowExecutionGetMetricsRequest => |r| execution(r.id.as_ref());
    a::ExecutionTerminateRequest => |r| execution(r.id.as_ref());
    a::ExecutionRelaunchRequest => |r| execution(r.id.as_ref());
    a::ExecutionRecoverRequest => |r| execution(r.id.as_ref());
    a::ExecutionUpdateRequest => |r| execution(r.id.as_ref());
    a::NodeExecutionGetRequest => |r| node_execution(r.id.as_ref());
    a::NodeExecutionGetDataRequest => |r| node_execution(r.id.as_ref());
    a::GetDynamicNodeWorkflowRequest => |r| node_execution(r.id.as_ref());
    a::NodeExecutionListRequest => |r| execution(r.workflow_execution_id.as_ref());
    a::NodeExecutionForTaskListRequest => |r| task_execution(r.task_execution_id.as_ref());
    a::TaskExecutionGetRequest => |r| task_execution(r.id.as_ref());
    a::TaskExecutionGetDataRequest => |r| task_execution(r.id.as_ref());
    a::TaskExecutionListRequest => |r| node_execution(r.node_execution_id.as_ref());
    // The data plane's events.
    a::WorkflowExecutionEventRequest => |r| execution(
        r.event.as_ref().and_then(|e| e.execution_id.as_ref()),
    );
    a::NodeExecutionEventRequest => |r| node_execution(r.event.as_ref().and_then(|e| e.id.as_ref()));
    a::TaskExecutionEventRequest => |r| node_execution(
        r.event.as_ref().and_then(|e| e.parent_node_execution_id.as_ref()),
    );
    // Projects and their settings. Project-level requests name no domain: they need a role
    // over all of the project's domains.
    a::ProjectRegisterRequest => |r| match &r.project {
        Some(p) => Scope::of(&p.id, "", format!("project {}", p.id)),
        None => Scope::everywhere("project"),
    };
    a::Project => |r| Scope::of(&r.id, "", format!("project {}", r.id));
    a::ProjectGetRequest => |r| Scope::project_seen_from_any_domain(&r.id, format!("project {}", r.id));
    a::ProjectListRequest => |_r| Scope::everywhere("projects");
    a::GetDomainRequest => |_r| Scope::everywhere("domains");
    a::GetVersionRequest => |_r| Scope::everywhere("version");
    a::ProjectDomainAttributesUpdateRequest => |r| match &r.attributes {
        Some(x) => Scope::of(
            &x.project,
            &x.domain,
            format!("attributes of {}/{}", x.project, x.domain),
        ),
        None => Scope::everywhere("attributes"),
    };
    a::ProjectDomainAttributesGetRequest => |r| project_domain(&r.project, &r.domain);
    a::ProjectDomainAttributesDeleteRequest => |r| Scope::of(
        &r.project,
        &r.domain,
        format!("attributes of {}/{}", r.project, r.domain),
    );
    a::ProjectAttributesUpdateRequest => |r| match &r.attributes {
        Some(x) => Scope::of(&x.project, "", format!("attributes of {}", x.project)),
        None => Scope::everywhere("attributes"),
    };
    a::ProjectAttributesGetRequest => |r| Scope::of(&r.project, "", format!("attributes of {}", r.project));
    a::ProjectAttributesDeleteRequest => |r| Scope::of(
        &r.project,
        "",
        format!("attributes of {}", r.project),
    );
    a::WorkflowAttributesUpdateRequest => |r| match &r.attributes {
        Some(x) => Scope::of(
            &x.project,
            &x.domain,
            format!("attributes of {}/{}/{}", x.project, x.domain, x.workflow),
        ),
        None => Scope::everywhere("attributes"),
    };
    a::WorkflowAttributesGetRequest => |r| Scope::of(
        &r.project,
        &r.domain,
        format!("attributes of {}/{}/{}", r.project, r.domain, r.workflow),
    );
    a::WorkflowAttributesDeleteRequest => |r| Scope::of(
        &r.project,
        &r.domain,
        format!("attributes of {}/{}/{}", r.project, r.domain, r.workflow),
    );
    // Lists every project's attributes of a kind.
    a::ListMatchableAttributesRequest => |_r| Scope::everywhere("matchable attributes");
    // Signals.
    a::SignalGetOrCreateRequest => |r| signal(r.id.as_ref());
    a::SignalSetRequest => |r| signal(r.id.as_ref());
    a::SignalListRequest => |r| execution(r.workflow_execution_id.as_ref());
    // DataProxy.
    s::CreateUploadLocationRequest => |r| Scope::of(
        &r.project,
        &r.domain,
        format!("upload {}/{}/{}", r.project, r.domain, r.filename),
    );
    s::CreateDownloadLinkRequest => |r| match &r.source {
        Some(s::create_download_link_request::Source::NodeExecutionId(id)) => {
            node_execution(Some(id))
        }
        None => Scope::everywhere("download link"),
    };
    s::GetDataRequest => |r| flyte_url(&r.flyte_url);
    // A storage URL says nothing dependable about its project (any layout may be
    // configured): only a role over all projects may sign one.
    s::CreateDownloadLocationRequest => |r| Scope::everywhere(format!("download {}", r.native_url));
    // Public or about the caller.
    s::UserInfoRequest => |_r| Scope::everywhere("");
    s::OAuth2MetadataRequest => |_r| Scope::everywhere("");
    s::PublicClientAuthConfigRequest => |_r| Scope::everywhere("");
    // Which task agents the deployment has: about no project.
    a::GetAgentRequest => |r| Scope::everywhere(format!("agent {}", r.name));
    a::ListAgentsRequest => |_r| Scope::everywhere("agents");
}

/// `flyte://v1/<project>/<domain>/<execution>/...`: GetData checks the rest of the form; a URL
/// of another form names no project and needs a role over all.
fn flyte_url(url: &str) -> Scope<'_> {
    let mut parts = url
        .strip_prefix("flyte://v1/")
        .map(|rest| rest.split('/'))
        .into_iter()
        .flatten();
    match (parts.next(), parts.next()) {
        (Some(project), Some(domain)) => Scope::of(project, domain, url.to_string()),
        _ => Scope::everywhere(url.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_give_project_and_domain() {
        let request = a::TaskCreateRequest {
            id: Some(Identifier {
                project: "flytesnacks".into(),
                domain: "development".into(),
                name: "t0".into(),
                version: "v1".into(),
                ..Default::default()
            }),
            spec: None,
        };
        let scope = request.scope();
        assert_eq!(scope.project, Some("flytesnacks"));
        assert_eq!(scope.domain, Some("development"));
        assert!(scope.resource.contains("t0"), "{}", scope.resource);
    }

    #[test]
    fn a_request_naming_no_project_is_about_all_of_them() {
        assert_eq!(a::TaskCreateRequest::default().scope().project, None);
        let list = a::ResourceListRequest {
            id: Some(a::NamedEntityIdentifier {
                project: "flytesnacks".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(list.scope().project, Some("flytesnacks"));
        assert_eq!(list.scope().domain, None);
        let download = s::CreateDownloadLocationRequest {
            native_url: "s3://bucket/flytesnacks/x".into(),
            expires_in: None,
        };
        assert_eq!(download.scope().project, None);
    }

    #[test]
    fn flyte_urls_name_their_project() {
        let get = s::GetDataRequest {
            flyte_url: "flyte://v1/p/d/exec/n0/o".into(),
        };
        assert_eq!(get.scope().project, Some("p"));
        assert_eq!(get.scope().domain, Some("d"));
        let odd = s::GetDataRequest {
            flyte_url: "s3://p/d".into(),
        };
        assert_eq!(odd.scope().project, None);
        let nested = a::TaskExecutionGetRequest {
            id: Some(TaskExecutionIdentifier {
                node_execution_id: Some(NodeExecutionIdentifier {
                    node_id: "n0".into(),
                    execution_id: Some(WorkflowExecutionIdentifier {
                        project: "p".into(),
                        domain: "d".into(),
                        name: "e".into(),
                        org: String::new(),
                    }),
                }),
                ..Default::default()
            }),
        };
        assert_eq!(nested.scope().project, Some("p"));
        assert_eq!(nested.scope().domain, Some("d"));
    }
}
