//! The settings an execution runs with, resolved once when it is created and stored in its spec
//! (so GetExecution shows what applies and propeller reads one place). Flyte's precedence, field
//! by field, the first non-empty value winning: the request's spec, the launch plan's spec, the
//! most specific `WORKFLOW_EXECUTION_CONFIG` matchable attributes (workflow, else project-domain,
//! else project), the project-level ones, the deprecated auth role, then the server's defaults.
//! Maps (labels, annotations, envs) are taken whole from one level, not merged across levels, as
//! flyteadmin does; only the project's own labels are added under keys not already set.

use alula_idl::flyteidl::admin::{
    matching_attributes::Target, AuthRole, ExecutionClusterLabel, ExecutionSpec, LaunchPlanSpec,
    MatchableResource, MatchingAttributes, TaskResourceAttributes, WorkflowExecutionConfig,
};
use alula_idl::flyteidl::core::{Identity, SecurityContext};

use super::AdminApi;
use crate::error::{AdminError, AdminResult};

/// Where an execution runs, for looking its matchable attributes up.
pub(crate) struct Scope<'a> {
    pub org: &'a str,
    pub project: &'a str,
    pub domain: &'a str,
    /// The workflow's name (a single task's wrapper workflow is named after the task).
    pub workflow: &'a str,
}

impl AdminApi {
    /// The request's spec with its settings resolved, and the task resource defaults and
    /// limits that apply to the execution's tasks.
    pub(crate) async fn resolve_settings(
        &self,
        scope: &Scope<'_>,
        request: ExecutionSpec,
        launch_plan: Option<&LaunchPlanSpec>,
    ) -> AdminResult<(ExecutionSpec, TaskResourceAttributes)> {
        refuse_unsupported(&request)?;
        let applicable = self
            .applicable_attributes(scope.org, scope.project, scope.domain, scope.workflow)
            .await?;
        let config = applicable.of(MatchableResource::WorkflowExecutionConfig);
        let wec = |m: Option<MatchingAttributes>| match m?.target? {
            Target::WorkflowExecutionConfig(c) => Some(c),
            _ => None,
        };
        let label = applicable.of(MatchableResource::ExecutionClusterLabel);
        let resources = applicable.of(MatchableResource::TaskResource);
        let resources = match resources.most_specific.and_then(|m| m.target) {
            Some(Target::TaskResourceAttributes(r)) => Some(r),
            _ => None,
        };
        let project_labels = self
            .store
            .get_project(scope.project)
            .await?
            .and_then(|p| p.labels)
            .map(|l| l.values.into_iter().collect())
            .unwrap_or_default();
        let spec = resolve(Layers {
            request,
            launch_plan,
            matchable: wec(config.most_specific),
            project: wec(config.project_level),
            cluster_label: match label.most_specific.and_then(|m| m.target) {
                Some(Target::ExecutionClusterLabel(l)) => Some(l),
                _ => None,
            },
            project_labels,
            defaults: self.config.execution_defaults.clone(),
        });
        let platform = crate::task_resources::platform_resources(
            resources.as_ref(),
            &self.config.task_resources,
        );
        Ok((spec, platform))
    }
}

/// Everything the settings of one execution are resolved from.
#[derive(Debug, Default)]
pub(crate) struct Layers<'a> {
    /// The spec the caller sent (CreateExecution, a relaunch, a child launched by propeller).
    pub request: ExecutionSpec,
    /// The launch plan's spec (none for a single-task execution).
    pub launch_plan: Option<&'a LaunchPlanSpec>,
    /// The most specific `WORKFLOW_EXECUTION_CONFIG` attributes: workflow, else project-domain,
    /// else project level.
    pub matchable: Option<WorkflowExecutionConfig>,
    /// The project-level `WORKFLOW_EXECUTION_CONFIG`, merged after the most specific one.
    pub project: Option<WorkflowExecutionConfig>,
    /// The most specific `EXECUTION_CLUSTER_LABEL` attributes, used when the request has none.
    pub cluster_label: Option<ExecutionClusterLabel>,
    /// The project's labels: added to the execution's under keys it does not set.
    pub project_labels: Vec<(String, String)>,
    /// The server's defaults, the last level.
    pub defaults: WorkflowExecutionConfig,
}

/// The request's spec with every setting resolved.
pub(crate) fn resolve(layers: Layers<'_>) -> ExecutionSpec {
    let mut spec = layers.request;
    let mut config = WorkflowExecutionConfig::default();
    merge(&mut config, of_spec(&spec));
    if let Some(lp) = layers.launch_plan {
        merge(&mut config, of_launch_plan(lp));
    }
    for level in [layers.matchable, layers.project].into_iter().flatten() {
        merge(&mut config, level);
    }
    if is_empty_security_context(config.security_context.as_ref()) {
        #[allow(deprecated)]
        let role = spec
            .auth_role
            .as_ref()
            .and_then(from_auth_role)
            .or_else(|| layers.launch_plan.and_then(launch_plan_role));
        if role.is_some() {
            config.security_context = role;
        }
    }
    merge(&mut config, layers.defaults);

    spec.max_parallelism = config.max_parallelism;
    spec.security_context = config.security_context;
    spec.raw_output_data_config = config.raw_output_data_config;
    let mut labels = config.labels.unwrap_or_default();
    for (key, value) in layers.project_labels {
        labels.values.entry(key).or_insert(value);
    }
    spec.labels = (!labels.values.is_empty()).then_some(labels);
    spec.annotations = config.annotations;
    spec.interruptible = config.interruptible;
    spec.overwrite_cache = config.overwrite_cache;
    spec.envs = config.envs;
    if spec
        .execution_cluster_label
        .as_ref()
        .is_none_or(|l| l.value.is_empty())
    {
        spec.execution_cluster_label = layers.cluster_label.filter(|l| !l.value.is_empty());
    }
    spec
}

/// What Alula cannot honour in a spec is refused rather than silently ignored.
pub(crate) fn refuse_unsupported(spec: &ExecutionSpec) -> AdminResult<()> {
    if spec.quality_of_service.is_some() {
        return Err(AdminError::invalid(
            "spec.quality_of_service is not supported by Alula: leave it unset",
        ));
    }
    if spec
        .cluster_assignment
        .as_ref()
        .is_some_and(|c| !c.cluster_pool_name.is_empty())
    {
        return Err(AdminError::invalid(
            "spec.cluster_assignment is not supported by Alula (one cluster): leave it unset",
        ));
    }
    Ok(())
}

fn of_spec(spec: &ExecutionSpec) -> WorkflowExecutionConfig {
    WorkflowExecutionConfig {
        max_parallelism: spec.max_parallelism,
        security_context: spec.security_context.clone(),
        raw_output_data_config: spec.raw_output_data_config.clone(),
        labels: spec.labels.clone(),
        annotations: spec.annotations.clone(),
        interruptible: spec.interruptible,
        overwrite_cache: spec.overwrite_cache,
        envs: spec.envs.clone(),
        execution_env_assignments: Vec::new(),
    }
}

fn of_launch_plan(spec: &LaunchPlanSpec) -> WorkflowExecutionConfig {
    WorkflowExecutionConfig {
        max_parallelism: spec.max_parallelism,
        security_context: spec.security_context.clone(),
        raw_output_data_config: spec.raw_output_data_config.clone(),
        labels: spec.labels.clone(),
        annotations: spec.annotations.clone(),
        interruptible: spec.interruptible,
        overwrite_cache: spec.overwrite_cache,
        envs: spec.envs.clone(),
        execution_env_assignments: Vec::new(),
    }
}

/// Fills each field of `into` still empty from `from` (flyteadmin's `MergeIntoExecConfig`).
/// Launch plans carry empty labels and prefixes rather than none, so emptiness is checked deep.
fn merge(into: &mut WorkflowExecutionConfig, from: WorkflowExecutionConfig) {
    if into.max_parallelism == 0 && from.max_parallelism > 0 {
        into.max_parallelism = from.max_parallelism;
    }
    if is_empty_security_context(into.security_context.as_ref())
        && !is_empty_security_context(from.security_context.as_ref())
    {
        into.security_context = from.security_context;
    }
    let no_prefix = |c: &Option<alula_idl::flyteidl::admin::RawOutputDataConfig>| {
        c.as_ref()
            .is_none_or(|c| c.output_location_prefix.is_empty())
    };
    if no_prefix(&into.raw_output_data_config) && !no_prefix(&from.raw_output_data_config) {
        into.raw_output_data_config = from.raw_output_data_config;
    }
    if into.labels.as_ref().is_none_or(|l| l.values.is_empty())
        && from.labels.as_ref().is_some_and(|l| !l.values.is_empty())
    {
        into.labels = from.labels;
    }
    if into
        .annotations
        .as_ref()
        .is_none_or(|a| a.values.is_empty())
        && from
            .annotations
            .as_ref()
            .is_some_and(|a| !a.values.is_empty())
    {
        into.annotations = from.annotations;
    }
    if into.interruptible.is_none() {
        into.interruptible = from.interruptible;
    }
    into.overwrite_cache |= from.overwrite_cache;
    if into.envs.as_ref().is_none_or(|e| e.values.is_empty())
        && from.envs.as_ref().is_some_and(|e| !e.values.is_empty())
    {
        into.envs = from.envs;
    }
}

/// A security context with nothing in it (the console sends `{runAs: {}}`).
fn is_empty_security_context(sc: Option<&SecurityContext>) -> bool {
    let Some(sc) = sc else { return true };
    let run_as_empty = sc.run_as.as_ref().is_none_or(|r| {
        r.iam_role.is_empty()
            && r.k8s_service_account.is_empty()
            && r.oauth2_client.is_none()
            && r.execution_identity.is_empty()
    });
    run_as_empty && sc.secrets.is_empty() && sc.tokens.is_empty()
}

fn role(iam_role: &str, service_account: &str) -> Option<SecurityContext> {
    (!iam_role.is_empty() || !service_account.is_empty()).then(|| SecurityContext {
        run_as: Some(Identity {
            iam_role: iam_role.to_string(),
            k8s_service_account: service_account.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn from_auth_role(a: &AuthRole) -> Option<SecurityContext> {
    role(&a.assumable_iam_role, &a.kubernetes_service_account)
}

/// Older launch plans name the identity in `auth_role` or `auth`.
#[allow(deprecated)]
fn launch_plan_role(lp: &LaunchPlanSpec) -> Option<SecurityContext> {
    lp.auth_role.as_ref().and_then(from_auth_role).or_else(|| {
        lp.auth
            .as_ref()
            .and_then(|a| role(&a.assumable_iam_role, &a.kubernetes_service_account))
    })
}

#[cfg(test)]
#[path = "exec_settings_tests.rs"]
mod tests;
