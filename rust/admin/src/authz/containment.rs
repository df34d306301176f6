//! What registrations and launches may ask of the data plane. A task, launch plan or execution
//! that names its own Kubernetes service account (or IAM role) would run with that account's
//! rights, so naming one needs the project's admin role; everyone else gets the account from
//! the project's settings (matchable attributes, the server's `execution_defaults`).
//!
//! Every place flyteidl lets a request name one counts: the `security_context.run_as` of a task
//! template, launch plan spec or execution spec, the deprecated `auth_role` / `auth` / `role`
//! fields that flytekit's older versions still send, and a pod task's `serviceAccountName` (a
//! pod template runs with the account its spec names, whatever the rest of the request says).

use alula_idl::flyteidl::admin::{
    AuthRole, ExecutionCreateRequest, LaunchPlanCreateRequest, TaskCreateRequest,
};
use alula_idl::flyteidl::core::{task_template, Identity, SecurityContext};
use alula_idl::google::protobuf::value::Kind;

/// Names of the identities found so far, in words for the refusal, without repeats.
#[derive(Default)]
struct Requested(Vec<String>);

impl Requested {
    fn service_account(&mut self, name: &str) {
        self.push(format!("service account {name:?}"));
    }

    fn iam_role(&mut self, name: &str) {
        self.push(format!("IAM role {name:?}"));
    }

    fn push(&mut self, what: String) {
        if !self.0.contains(&what) {
            self.0.push(what);
        }
    }

    fn identity(&mut self, identity: Option<&Identity>) {
        if let Some(identity) = identity {
            self.non_empty(&identity.k8s_service_account, Self::service_account);
            self.non_empty(&identity.iam_role, Self::iam_role);
        }
    }

    fn security_context(&mut self, context: Option<&SecurityContext>) {
        self.identity(context.and_then(|c| c.run_as.as_ref()));
    }

    fn auth_role(&mut self, role: Option<&AuthRole>) {
        if let Some(role) = role {
            self.non_empty(&role.kubernetes_service_account, Self::service_account);
            self.non_empty(&role.assumable_iam_role, Self::iam_role);
        }
    }

    fn non_empty(&mut self, value: &str, record: fn(&mut Self, &str)) {
        let value = value.trim();
        if !value.is_empty() {
            record(self, value);
        }
    }

    fn into_words(self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.join(" and "))
    }
}

/// The identity (service account or IAM role) a request asks its pods to run as, if any, in
/// words for the refusal (`service account "root-sa"`).
pub fn requested_identity_of_task(request: &TaskCreateRequest) -> Option<String> {
    let mut requested = Requested::default();
    if let Some(template) = request.spec.as_ref().and_then(|s| s.template.as_ref()) {
        requested.security_context(template.security_context.as_ref());
        if let Some(task_template::Target::K8sPod(pod)) = &template.target {
            for key in ["serviceAccountName", "serviceAccount"] {
                let named = pod
                    .pod_spec
                    .as_ref()
                    .and_then(|spec| spec.fields.get(key))
                    .and_then(|value| match &value.kind {
                        Some(Kind::StringValue(name)) => Some(name.as_str()),
                        _ => None,
                    });
                if let Some(name) = named {
                    requested.non_empty(name, Requested::service_account);
                }
            }
        }
    }
    requested.into_words()
}

/// The same for a launch plan: its spec's `security_context.run_as` and the deprecated
/// `auth_role`, `auth` and `role` (an IAM role) fields.
// The deprecated fields are read on purpose: a client that still sends them is still obeyed.
#[allow(deprecated)]
pub fn requested_identity_of_launch_plan(request: &LaunchPlanCreateRequest) -> Option<String> {
    let mut requested = Requested::default();
    if let Some(spec) = &request.spec {
        requested.security_context(spec.security_context.as_ref());
        requested.auth_role(spec.auth_role.as_ref());
        if let Some(auth) = &spec.auth {
            requested.non_empty(&auth.kubernetes_service_account, Requested::service_account);
            requested.non_empty(&auth.assumable_iam_role, Requested::iam_role);
        }
        requested.non_empty(&spec.role, Requested::iam_role);
    }
    requested.into_words()
}

/// The same for an execution: its spec's `security_context.run_as` and deprecated `auth_role`.
// The deprecated field is read on purpose: a client that still sends it is still obeyed.
#[allow(deprecated)]
pub fn requested_identity_of_execution(request: &ExecutionCreateRequest) -> Option<String> {
    let mut requested = Requested::default();
    if let Some(spec) = &request.spec {
        requested.security_context(spec.security_context.as_ref());
        requested.auth_role(spec.auth_role.as_ref());
    }
    requested.into_words()
}

#[cfg(test)]
#[allow(deprecated)] // the deprecated fields are under test
mod tests {
    use alula_idl::flyteidl::admin::{Auth, ExecutionSpec, LaunchPlanSpec, TaskSpec};
    use alula_idl::flyteidl::core::{K8sPod, TaskTemplate};
    use alula_idl::google::protobuf::{Struct, Value};

    use super::*;

    fn run_as(service_account: &str, iam_role: &str) -> Option<SecurityContext> {
        Some(SecurityContext {
            run_as: Some(Identity {
                k8s_service_account: service_account.into(),
                iam_role: iam_role.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn task(template: TaskTemplate) -> TaskCreateRequest {
        TaskCreateRequest {
            spec: Some(TaskSpec {
                template: Some(template),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod_naming(key: &str, account: &str) -> TaskTemplate {
        let spec = Struct {
            fields: [(
                key.to_string(),
                Value {
                    kind: Some(Kind::StringValue(account.into())),
                },
            )]
            .into(),
        };
        TaskTemplate {
            target: Some(task_template::Target::K8sPod(K8sPod {
                pod_spec: Some(spec),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn a_task_names_an_identity_in_its_security_context_or_its_pod() {
        assert_eq!(
            requested_identity_of_task(&task(TaskTemplate::default())),
            None
        );
        assert_eq!(
            requested_identity_of_task(&TaskCreateRequest::default()),
            None
        );
        let template = |context| TaskTemplate {
            security_context: context,
            ..Default::default()
        };
        assert_eq!(
            requested_identity_of_task(&task(template(run_as("root-sa", "")))),
            Some(r#"service account "root-sa""#.into())
        );
        assert_eq!(
            requested_identity_of_task(&task(template(run_as("", "arn:aws:iam::1:role/r")))),
            Some(r#"IAM role "arn:aws:iam::1:role/r""#.into())
        );
        assert_eq!(
            requested_identity_of_task(&task(template(run_as("sa", "role")))),
            Some(r#"service account "sa" and IAM role "role""#.into())
        );
        // Secrets alone, or an empty run_as, name nobody.
        assert_eq!(
            requested_identity_of_task(&task(template(run_as("  ", "")))),
            None
        );
        assert_eq!(
            requested_identity_of_task(&task(template(Some(SecurityContext::default())))),
            None
        );
        assert_eq!(
            requested_identity_of_task(&task(pod_naming("serviceAccountName", "builder"))),
            Some(r#"service account "builder""#.into())
        );
        assert_eq!(
            requested_identity_of_task(&task(pod_naming("serviceAccount", "legacy"))),
            Some(r#"service account "legacy""#.into())
        );
        assert_eq!(
            requested_identity_of_task(&task(pod_naming("hostname", "h"))),
            None
        );
    }

    #[test]
    fn a_launch_plan_names_an_identity_in_any_of_its_four_fields() {
        let plan = |spec: LaunchPlanSpec| LaunchPlanCreateRequest {
            spec: Some(spec),
            ..Default::default()
        };
        assert_eq!(
            requested_identity_of_launch_plan(&plan(LaunchPlanSpec::default())),
            None
        );
        assert_eq!(
            requested_identity_of_launch_plan(&LaunchPlanCreateRequest::default()),
            None
        );
        assert_eq!(
            requested_identity_of_launch_plan(&plan(LaunchPlanSpec {
                security_context: run_as("sa", ""),
                ..Default::default()
            })),
            Some(r#"service account "sa""#.into())
        );
        assert_eq!(
            requested_identity_of_launch_plan(&plan(LaunchPlanSpec {
                auth_role: Some(AuthRole {
                    kubernetes_service_account: "old-sa".into(),
                    assumable_iam_role: "old-role".into(),
                }),
                ..Default::default()
            })),
            Some(r#"service account "old-sa" and IAM role "old-role""#.into())
        );
        assert_eq!(
            requested_identity_of_launch_plan(&plan(LaunchPlanSpec {
                auth: Some(Auth {
                    kubernetes_service_account: "older-sa".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            Some(r#"service account "older-sa""#.into())
        );
        assert_eq!(
            requested_identity_of_launch_plan(&plan(LaunchPlanSpec {
                role: "oldest-role".into(),
                ..Default::default()
            })),
            Some(r#"IAM role "oldest-role""#.into())
        );
        // The same account named twice is reported once.
        assert_eq!(
            requested_identity_of_launch_plan(&plan(LaunchPlanSpec {
                security_context: run_as("sa", ""),
                auth_role: Some(AuthRole {
                    kubernetes_service_account: "sa".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            Some(r#"service account "sa""#.into())
        );
    }

    #[test]
    fn an_execution_names_an_identity_in_its_security_context_or_auth_role() {
        let execution = |spec: ExecutionSpec| ExecutionCreateRequest {
            spec: Some(spec),
            ..Default::default()
        };
        assert_eq!(
            requested_identity_of_execution(&execution(ExecutionSpec::default())),
            None
        );
        assert_eq!(
            requested_identity_of_execution(&ExecutionCreateRequest::default()),
            None
        );
        assert_eq!(
            requested_identity_of_execution(&execution(ExecutionSpec {
                security_context: run_as("", "role"),
                ..Default::default()
            })),
            Some(r#"IAM role "role""#.into())
        );
        assert_eq!(
            requested_identity_of_execution(&execution(ExecutionSpec {
                auth_role: Some(AuthRole {
                    kubernetes_service_account: "sa".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            Some(r#"service account "sa""#.into())
        );
    }
}
