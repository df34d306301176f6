//! Attempts for unit tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use alula_idl::flyteidl::core::{
    task_template::Target, Container, Identifier, KeyValuePair, LiteralMap, TaskTemplate,
    WorkflowExecutionIdentifier,
};
use alula_propeller::Attempt;

use crate::config::PodPluginConfig;

pub fn config() -> PodPluginConfig {
    PodPluginConfig {
        namespace: "flyte".into(),
        storage_root: "/data".into(),
        pod_storage_prefix: "s3://bucket/root".into(),
        ..Default::default()
    }
}

pub fn task(command: &[&str], args: &[&str]) -> TaskTemplate {
    TaskTemplate {
        id: Some(Identifier {
            project: "p".into(),
            domain: "d".into(),
            name: "wf.my_task".into(),
            version: "v1".into(),
            ..Default::default()
        }),
        r#type: "python-task".into(),
        target: Some(Target::Container(Container {
            image: "python:3.12".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![KeyValuePair {
                key: "A".into(),
                value: "template".into(),
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn attempt(task: TaskTemplate) -> Attempt {
    let base = PathBuf::from("/data/p/d/e1/n0/0");
    Attempt {
        execution: WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: "e1".into(),
            ..Default::default()
        },
        node_id: "n0".into(),
        retry_attempt: 0,
        array_index: None,
        task: Arc::new(task),
        overrides: None,
        inputs: Arc::new(LiteralMap::default()),
        inputs_path: base.join("inputs.pb"),
        output_prefix: base.join("out"),
        raw_output_prefix: base.join("raw"),
        checkpoint_prefix: base.join("ck"),
        prev_checkpoint_prefix: None,
        env: BTreeMap::from([
            ("A".into(), "attempt".into()),
            ("FLYTE_ATTEMPT_NUMBER".into(), "0".into()),
        ]),
        settings: Default::default(),
    }
}
