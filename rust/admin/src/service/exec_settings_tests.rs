use std::collections::BTreeMap;

use alula_idl::flyteidl::admin::{
    Annotations, AuthRole, ClusterAssignment, Envs, ExecutionClusterLabel, ExecutionSpec, Labels,
    LaunchPlanSpec, RawOutputDataConfig, WorkflowExecutionConfig,
};
use alula_idl::flyteidl::core::{Identity, KeyValuePair, SecurityContext};

use alula_idl::wkt::BoolValue;

use super::{refuse_unsupported, resolve, Layers};

fn labels(kv: &[(&str, &str)]) -> Option<Labels> {
    Some(Labels {
        values: kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    })
}

fn flag(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

fn envs(kv: &[(&str, &str)]) -> Option<Envs> {
    Some(Envs {
        values: kv
            .iter()
            .map(|(k, v)| KeyValuePair {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
    })
}

fn sa(name: &str) -> Option<SecurityContext> {
    Some(SecurityContext {
        run_as: Some(Identity {
            k8s_service_account: name.into(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn raw(prefix: &str) -> Option<RawOutputDataConfig> {
    Some(RawOutputDataConfig {
        output_location_prefix: prefix.into(),
    })
}

fn config(tag: &str, parallelism: i32) -> WorkflowExecutionConfig {
    WorkflowExecutionConfig {
        max_parallelism: parallelism,
        security_context: sa(&format!("{tag}-sa")),
        raw_output_data_config: raw(&format!("s3://{tag}")),
        labels: labels(&[("from", tag)]),
        annotations: Some(Annotations {
            values: [("note".to_string(), tag.to_string())].into(),
        }),
        interruptible: flag(tag.len() % 2 == 0),
        overwrite_cache: false,
        envs: envs(&[("LEVEL", tag)]),
        execution_env_assignments: Vec::new(),
    }
}

fn launch_plan() -> LaunchPlanSpec {
    LaunchPlanSpec {
        labels: labels(&[("from", "lp")]),
        envs: envs(&[("LEVEL", "lp")]),
        max_parallelism: 7,
        // A launch plan serialized by flytekit carries empty messages, not none.
        annotations: Some(Annotations::default()),
        raw_output_data_config: raw(""),
        security_context: Some(SecurityContext {
            run_as: Some(Identity::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn the_request_wins_over_every_other_level() {
    let defaults = config("server", 25);
    let lp = launch_plan();
    let spec = resolve(Layers {
        request: ExecutionSpec {
            labels: labels(&[("from", "request")]),
            envs: envs(&[("LEVEL", "request")]),
            max_parallelism: 3,
            security_context: sa("request-sa"),
            raw_output_data_config: raw("s3://request"),
            interruptible: flag(false),
            ..Default::default()
        },
        launch_plan: Some(&lp),
        matchable: Some(config("workflow", 11)),
        project: Some(config("project", 12)),
        defaults: defaults.clone(),
        ..Default::default()
    });
    assert_eq!(spec.labels, labels(&[("from", "request")]));
    assert_eq!(spec.envs, envs(&[("LEVEL", "request")]));
    assert_eq!(spec.max_parallelism, 3);
    assert_eq!(spec.security_context, sa("request-sa"));
    assert_eq!(spec.raw_output_data_config, raw("s3://request"));
    assert_eq!(spec.interruptible, flag(false));
    // Not set anywhere above: from the most specific matchable level.
    assert_eq!(
        spec.annotations.unwrap().values.get("note").cloned(),
        Some("workflow".into())
    );
}

#[test]
fn the_launch_plan_wins_over_matchable_attributes_and_empty_values_do_not_count() {
    let defaults = WorkflowExecutionConfig::default();
    let lp = launch_plan();
    let spec = resolve(Layers {
        launch_plan: Some(&lp),
        matchable: Some(config("domain", 11)),
        project: Some(config("project", 12)),
        defaults: defaults.clone(),
        ..Default::default()
    });
    assert_eq!(spec.labels, labels(&[("from", "lp")]));
    assert_eq!(spec.envs, envs(&[("LEVEL", "lp")]));
    assert_eq!(spec.max_parallelism, 7);
    // The launch plan's empty annotations, prefix and run-as do not hide the attributes'.
    assert_eq!(
        spec.annotations.unwrap().values.get("note").cloned(),
        Some("domain".into())
    );
    assert_eq!(spec.raw_output_data_config, raw("s3://domain"));
    assert_eq!(spec.security_context, sa("domain-sa"));
}

#[test]
fn project_level_and_server_defaults_fill_what_the_rest_leave_empty() {
    let defaults = config("server", 25);
    let spec = resolve(Layers {
        matchable: Some(WorkflowExecutionConfig {
            envs: envs(&[("LEVEL", "domain")]),
            ..Default::default()
        }),
        project: Some(WorkflowExecutionConfig {
            labels: labels(&[("from", "project")]),
            ..Default::default()
        }),
        defaults: defaults.clone(),
        ..Default::default()
    });
    assert_eq!(spec.envs, envs(&[("LEVEL", "domain")]));
    assert_eq!(spec.labels, labels(&[("from", "project")]));
    assert_eq!(spec.max_parallelism, 25);
    assert_eq!(spec.security_context, sa("server-sa"));
    assert_eq!(spec.raw_output_data_config, raw("s3://server"));
}

#[test]
fn maps_are_taken_whole_from_one_level_and_project_labels_fill_missing_keys() {
    let defaults = WorkflowExecutionConfig::default();
    let lp = launch_plan();
    let spec = resolve(Layers {
        request: ExecutionSpec {
            envs: envs(&[("ONLY", "request")]),
            ..Default::default()
        },
        launch_plan: Some(&lp),
        project_labels: vec![
            ("team".into(), "data".into()),
            ("from".into(), "project".into()),
        ],
        defaults: defaults.clone(),
        ..Default::default()
    });
    // The launch plan's LEVEL is not merged into the request's envs.
    assert_eq!(spec.envs, envs(&[("ONLY", "request")]));
    assert_eq!(spec.labels, labels(&[("from", "lp"), ("team", "data")]));
}

#[test]
fn nothing_set_anywhere_leaves_the_spec_unset() {
    let defaults = WorkflowExecutionConfig::default();
    let spec = resolve(Layers {
        defaults: defaults.clone(),
        ..Default::default()
    });
    assert_eq!(spec, ExecutionSpec::default());
}

#[test]
fn overwrite_cache_from_any_level_and_interruptible_false_is_a_value() {
    let defaults = WorkflowExecutionConfig::default();
    let lp = LaunchPlanSpec {
        overwrite_cache: true,
        interruptible: flag(false),
        ..Default::default()
    };
    let spec = resolve(Layers {
        launch_plan: Some(&lp),
        matchable: Some(WorkflowExecutionConfig {
            interruptible: flag(true),
            ..Default::default()
        }),
        defaults: defaults.clone(),
        ..Default::default()
    });
    assert!(spec.overwrite_cache);
    assert_eq!(spec.interruptible, flag(false));
}

#[test]
fn deprecated_auth_roles_come_before_server_defaults() {
    let defaults = config("server", 0);
    #[allow(deprecated)]
    let request = ExecutionSpec {
        auth_role: Some(AuthRole {
            kubernetes_service_account: "legacy".into(),
            assumable_iam_role: String::new(),
        }),
        ..Default::default()
    };
    let spec = resolve(Layers {
        request,
        defaults: defaults.clone(),
        ..Default::default()
    });
    assert_eq!(spec.security_context, sa("legacy"));
}

#[test]
fn the_cluster_label_comes_from_the_request_else_the_attributes() {
    let defaults = WorkflowExecutionConfig::default();
    let label = |v: &str| {
        Some(ExecutionClusterLabel {
            value: v.to_string(),
        })
    };
    let from_attributes = resolve(Layers {
        cluster_label: label("gpu"),
        defaults: defaults.clone(),
        ..Default::default()
    });
    assert_eq!(from_attributes.execution_cluster_label, label("gpu"));
    let from_request = resolve(Layers {
        request: ExecutionSpec {
            execution_cluster_label: label("cpu"),
            ..Default::default()
        },
        cluster_label: label("gpu"),
        defaults: defaults.clone(),
        ..Default::default()
    });
    assert_eq!(from_request.execution_cluster_label, label("cpu"));
}

#[test]
fn quality_of_service_and_cluster_pools_are_refused() {
    let qos = ExecutionSpec {
        quality_of_service: Some(Default::default()),
        ..Default::default()
    };
    assert!(refuse_unsupported(&qos)
        .unwrap_err()
        .to_string()
        .contains("quality_of_service"));
    let pool = ExecutionSpec {
        cluster_assignment: Some(ClusterAssignment {
            cluster_pool_name: "big".into(),
        }),
        ..Default::default()
    };
    assert!(refuse_unsupported(&pool)
        .unwrap_err()
        .to_string()
        .contains("cluster_assignment"));
    refuse_unsupported(&ExecutionSpec::default()).unwrap();
}
