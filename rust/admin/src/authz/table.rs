//! The one table from RPC to what it needs of its caller. Every method of every service the
//! server serves has an entry (the tests below walk the embedded descriptors and fail on any
//! without one), and a method missing here is refused at run time, never let through.

use super::Permission;

/// What an RPC needs of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Anyone, without credentials: how clients find out how to authenticate, and probes.
    Public,
    /// Any authenticated caller, whatever its roles: calls about no project.
    Authenticated,
    /// `Permission` on the project (and domain) the request names.
    Scoped(Permission),
    /// The data plane's calls (`alula.plane.v1.ControlPlaneService`): the admin role on every
    /// project, since a propeller acts on all of them. Not audited call by call (a propeller
    /// saves many times a second; what it does is recorded as execution events).
    DataPlane,
}

impl Need {
    /// Whether calls with this need land in the audit log: the ones that change something.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Self::Scoped(Permission::Launch | Permission::Register | Permission::Administer)
        )
    }
}

/// The services the server serves, by full protobuf name (the tests walk exactly these).
pub const SERVED_SERVICES: [&str; 9] = [
    "alula.plane.v1.ControlPlaneService",
    "flyteidl.service.AdminService",
    "flyteidl.service.AgentMetadataService",
    "flyteidl.service.DataProxyService",
    "flyteidl.service.SignalService",
    "flyteidl.service.IdentityService",
    "flyteidl.service.AuthMetadataService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
];

/// The table: for each service, groups of methods with what they need. One place, so a
/// reviewer sees every decision together; [`permission_of`] only looks things up.
static TABLE: &[(&str, Need, &[&str])] = &[
    // The data plane (a propeller in another process): all of it, only to admins of everything.
    (
        "alula.plane.v1.ControlPlaneService",
        Need::DataPlane,
        &[
            "ClaimRuns",
            "RenewRun",
            "SaveRun",
            "GetOutbox",
            "AckOutbox",
            "FinishRun",
            "ReleaseRuns",
            "CountOpenRuns",
            "GetLaunch",
            "GetStatus",
            "GetOutputs",
            "GetRecoverableOutputs",
            "CreateExecution",
            "TerminateExecution",
            "RecordEvent",
            "CreateSignal",
            "GetSignalValue",
            "GetCachedOutputs",
            "PutCachedOutputs",
            "Reserve",
            "ReleaseReservation",
        ],
    ),
    // How a client learns how to authenticate, and whether the server is up: asked before
    // any token exists.
    (
        "flyteidl.service.AuthMetadataService",
        Need::Public,
        &["GetOAuth2Metadata", "GetPublicClientConfig"],
    ),
    ("grpc.health.v1.Health", Need::Public, &["Check", "Watch"]),
    (
        "grpc.reflection.v1.ServerReflection",
        Need::Public,
        &["ServerReflectionInfo"],
    ),
    // About the caller or the server, not about any project: who am I, what version, which
    // domains exist. ListProjects answers with the projects the caller may view.
    (
        "flyteidl.service.IdentityService",
        Need::Authenticated,
        &["UserInfo"],
    ),
    (
        "flyteidl.service.AdminService",
        Need::Authenticated,
        &["GetVersion", "GetDomains", "ListProjects"],
    ),
    // Which task agents the deployment has (a proxy of their ListAgents): about no project.
    (
        "flyteidl.service.AgentMetadataService",
        Need::Authenticated,
        &["GetAgent", "ListAgents"],
    ),
    // Reads: definitions, executions, their data and metrics, projects and their settings.
    (
        "flyteidl.service.AdminService",
        Need::Scoped(Permission::View),
        &[
            "GetTask",
            "ListTaskIds",
            "ListTasks",
            "GetWorkflow",
            "ListWorkflowIds",
            "ListWorkflows",
            "GetLaunchPlan",
            "GetActiveLaunchPlan",
            "ListActiveLaunchPlans",
            "ListLaunchPlanIds",
            "ListLaunchPlans",
            "GetExecution",
            "GetExecutionData",
            "ListExecutions",
            "GetExecutionMetrics",
            "GetNodeExecution",
            "GetDynamicNodeWorkflow",
            "ListNodeExecutions",
            "ListNodeExecutionsForTask",
            "GetNodeExecutionData",
            "GetTaskExecution",
            "ListTaskExecutions",
            "GetTaskExecutionData",
            "GetProject",
            "GetProjectDomainAttributes",
            "GetProjectAttributes",
            "GetWorkflowAttributes",
            "ListNamedEntities",
            "GetNamedEntity",
            "GetDescriptionEntity",
            "ListDescriptionEntities",
        ],
    ),
    // A gate's signals are read like the execution they belong to.
    (
        "flyteidl.service.SignalService",
        Need::Scoped(Permission::View),
        &["ListSignals"],
    ),
    // Downloads hand out the project's data, which is reading it.
    (
        "flyteidl.service.DataProxyService",
        Need::Scoped(Permission::View),
        &["CreateDownloadLocation", "CreateDownloadLink", "GetData"],
    ),
    // Starting, steering and stopping executions.
    (
        "flyteidl.service.AdminService",
        Need::Scoped(Permission::Launch),
        &[
            "CreateExecution",
            "RelaunchExecution",
            "RecoverExecution",
            "TerminateExecution",
            "UpdateExecution",
        ],
    ),
    // Answering a gate (approve, give an input) steers the execution.
    (
        "flyteidl.service.SignalService",
        Need::Scoped(Permission::Launch),
        &["SetSignal"],
    ),
    // Registration: definitions, which launch plan is active, what an entity says about
    // itself, and the code they run (uploads).
    (
        "flyteidl.service.AdminService",
        Need::Scoped(Permission::Register),
        &[
            "CreateTask",
            "CreateWorkflow",
            "CreateLaunchPlan",
            "UpdateLaunchPlan",
            "UpdateNamedEntity",
        ],
    ),
    (
        "flyteidl.service.DataProxyService",
        Need::Scoped(Permission::Register),
        &["CreateUploadLocation"],
    ),
    // Projects and their settings: matchable attributes pick service accounts, resources and
    // queues for everyone's runs, so they are the project admin's, and listing them across
    // projects needs admin over all. Events move executions' states: only the data plane sends
    // them (the propeller in this process calls the services unguarded).
    (
        "flyteidl.service.AdminService",
        Need::Scoped(Permission::Administer),
        &[
            "RegisterProject",
            "UpdateProject",
            "UpdateProjectDomainAttributes",
            "DeleteProjectDomainAttributes",
            "UpdateProjectAttributes",
            "DeleteProjectAttributes",
            "UpdateWorkflowAttributes",
            "DeleteWorkflowAttributes",
            "ListMatchableAttributes",
            "CreateWorkflowEvent",
            "CreateNodeEvent",
            "CreateTaskEvent",
        ],
    ),
    // Creating a gate's signal is the propeller's, like events.
    (
        "flyteidl.service.SignalService",
        Need::Scoped(Permission::Administer),
        &["GetOrCreateSignal"],
    ),
];

/// What `full_method` (`/flyteidl.service.AdminService/CreateTask`) needs; `None` for a method
/// the table does not know, which the gate refuses.
pub fn permission_of(full_method: &str) -> Option<Need> {
    let (service, method) = full_method.strip_prefix('/')?.split_once('/')?;
    TABLE
        .iter()
        .find(|(s, _, methods)| *s == service && methods.contains(&method))
        .map(|(_, need, _)| *need)
}

/// The short name of a full method (`CreateTask`), for messages.
pub fn method_name(full_method: &str) -> &str {
    full_method.rsplit('/').next().unwrap_or(full_method)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use std::collections::BTreeSet;

    use alula_idl::wkt::FileDescriptorSet;
    use prost::Message;

    use super::*;

    /// Every method of every served service, as `/package.Service/Method`. flyteidl's come from
    /// the embedded descriptor set; health and reflection from their crates' descriptor sets.
    fn served_methods() -> BTreeSet<String> {
        let mut sets = vec![FileDescriptorSet::decode(alula_idl::FILE_DESCRIPTOR_SET).unwrap()];
        sets.push(
            FileDescriptorSet::decode(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .expect("health descriptors"),
        );
        sets.push(
            FileDescriptorSet::decode(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .expect("reflection descriptors"),
        );
        let mut methods = BTreeSet::new();
        for set in sets {
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let full = format!("{package}.{}", service.name.unwrap_or_default());
                    if !SERVED_SERVICES.contains(&full.as_str()) {
                        continue;
                    }
                    for method in service.method {
                        methods.insert(format!("/{full}/{}", method.name.unwrap_or_default()));
                    }
                }
            }
        }
        methods
    }

    #[test]
    fn every_served_method_has_an_entry() {
        let methods = served_methods();
        // Each served service was found (a descriptor set that lost one would make the walk
        // vacuous for it).
        for service in SERVED_SERVICES {
            assert!(
                methods
                    .iter()
                    .any(|m| m.starts_with(&format!("/{service}/"))),
                "no methods found for {service}"
            );
        }
        let missing: Vec<_> = methods
            .iter()
            .filter(|m| permission_of(m).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "methods without an entry in the authorization table: {missing:?}"
        );
    }

    #[test]
    fn no_entry_is_a_typo() {
        let methods = served_methods();
        let mut named = BTreeSet::new();
        for (service, _, names) in TABLE {
            for name in *names {
                let full = format!("/{service}/{name}");
                assert!(
                    methods.contains(&full),
                    "table entry naming no method: {full}"
                );
                assert!(named.insert(full.clone()), "{full} is in the table twice");
            }
        }
        assert_eq!(named.len(), methods.len());
        // Lookups take the exact full name only.
        assert_eq!(
            permission_of("/flyteidl.service.AdminService/CreateTasks"),
            None
        );
        assert_eq!(
            permission_of("flyteidl.service.AdminService/CreateTask"),
            None
        );
        assert_eq!(
            permission_of("/flyteidl.service.SignalService/CreateTask"),
            None
        );
    }

    #[test]
    fn roles_line_up_with_the_issue() {
        let need = |m: &str| permission_of(&format!("/flyteidl.service.AdminService/{m}"));
        assert_eq!(need("ListExecutions"), Some(Need::Scoped(Permission::View)));
        assert_eq!(
            need("CreateExecution"),
            Some(Need::Scoped(Permission::Launch))
        );
        assert_eq!(need("CreateTask"), Some(Need::Scoped(Permission::Register)));
        assert_eq!(
            need("UpdateProjectAttributes"),
            Some(Need::Scoped(Permission::Administer))
        );
        assert_eq!(need("ListProjects"), Some(Need::Authenticated));
        assert_eq!(
            permission_of("/flyteidl.service.AuthMetadataService/GetOAuth2Metadata"),
            Some(Need::Public)
        );
        assert!(Need::Scoped(Permission::Launch).is_mutating());
        assert!(!Need::Scoped(Permission::View).is_mutating());
        assert!(!Need::Public.is_mutating());
    }
}
