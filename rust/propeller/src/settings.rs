//! The execution settings every attempt carries ([`AttemptSettings`]), read from the execution's
//! spec. Admin resolves the spec with Flyte's precedence when the execution is created (launch
//! plan and matchable attributes merged in), so propeller reads one place.

use alula_idl::flyteidl::admin::ExecutionSpec;

use crate::plugin::AttemptSettings;

/// The settings of an execution whose (resolved) spec is `spec`.
pub fn attempt_settings(spec: &ExecutionSpec) -> AttemptSettings {
    AttemptSettings {
        labels: spec
            .labels
            .as_ref()
            .map(|l| l.values.clone().into_iter().collect())
            .unwrap_or_default(),
        annotations: spec
            .annotations
            .as_ref()
            .map(|a| a.values.clone().into_iter().collect())
            .unwrap_or_default(),
        envs: spec
            .envs
            .as_ref()
            .map(|e| {
                e.values
                    .iter()
                    .map(|kv| (kv.key.clone(), kv.value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        security_context: spec.security_context.clone(),
        interruptible: spec.interruptible.map(|b| b.value),
        cluster_label: spec
            .execution_cluster_label
            .as_ref()
            .map(|l| l.value.clone())
            .filter(|v| !v.is_empty()),
        raw_output_prefix: spec
            .raw_output_data_config
            .as_ref()
            .map(|c| c.output_location_prefix.trim_end_matches('/').to_string())
            .filter(|p| !p.is_empty()),
    }
}
