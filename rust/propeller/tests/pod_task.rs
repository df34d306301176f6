//! Pod tasks (`k8s_pod` targets: flytekit's `@task(pod_template=...)`) run without a cluster:
//! the process plugin runs the primary container's command with its environment and Flyte's
//! template variables, and ignores the rest of the pod (sidecars, volumes, tolerations).

mod support;

use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::admin::{NodeExecutionGetDataRequest, TaskCreateRequest, TaskSpec};
use alula_idl::flyteidl::core::{
    literal, literal_type, primitive, scalar, task_template, workflow_execution, Identifier,
    K8sPod, Literal, LiteralMap, LiteralType, NodeExecutionIdentifier, Primitive, ResourceType,
    Scalar, SimpleType, TaskMetadata, TaskTemplate, TypedInterface, Variable, VariableMap,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_idl::google::protobuf::{value::Kind, ListValue, Struct, Value};
use alula_propeller::process::{ProcessConfig, ProcessPlugin};
use prost::Message;
use serde_json::{json, Value as Json};
use support::{execution_id, id, Harness};
use tonic::Request;

fn to_value(j: Json) -> Value {
    let kind = match j {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(a) => Kind::ListValue(ListValue {
            values: a.into_iter().map(to_value).collect(),
        }),
        Json::Object(o) => Kind::StructValue(Struct {
            fields: o.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

fn int(v: i64) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(v)),
            })),
        }))),
        ..Default::default()
    }
}

/// Registers a pod task whose primary container (named in the task's config, as flytekit
/// names it, and not first in the pod) copies `outputs.pb` from `$SOURCE` into its output
/// prefix, if its environment and templated arguments are what the pod spec says.
async fn register_pod_task(h: &Harness, name: &str) -> anyhow::Result<Identifier> {
    let spec = json!({
        "containers": [
            // Would fail the attempt if it ran: sidecars need a pod.
            {"name": "sidecar", "image": "busybox", "command": ["false"]},
            {
                "name": "primary",
                "image": "img",
                "args": [
                    "sh", "-c",
                    "test \"$GREETING\" = hello && test \"$1\" = flytesnacks-development-pod1-n0-0 \
                     && cp \"$SOURCE\" \"$2/outputs.pb\"",
                    "task",
                    "{{.perRetryUniqueKey}}",
                    "{{.outputPrefix}}",
                ],
                "env": [
                    {"name": "GREETING", "value": "hello"},
                    {"name": "SOURCE", "value": h.dir.path().join("source.pb").display().to_string()},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                ],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            },
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "tolerations": [{"key": "gpu", "operator": "Exists"}],
    });
    let Some(Kind::StructValue(pod_spec)) = to_value(spec).kind else {
        anyhow::bail!("the pod spec is an object");
    };
    let task_id = id(ResourceType::Task, name);
    let output = Variable {
        r#type: Some(LiteralType {
            r#type: Some(literal_type::Type::Simple(SimpleType::Integer as i32)),
            ..Default::default()
        }),
        ..Default::default()
    };
    h.api
        .create_task(Request::new(TaskCreateRequest {
            id: Some(task_id.clone()),
            spec: Some(TaskSpec {
                template: Some(TaskTemplate {
                    id: Some(task_id.clone()),
                    r#type: "python-task".into(),
                    interface: Some(TypedInterface {
                        inputs: Some(VariableMap::default()),
                        outputs: Some(VariableMap {
                            variables: [("o".to_string(), output)].into_iter().collect(),
                        }),
                    }),
                    metadata: Some(TaskMetadata {
                        pod_template_name: "gpu-template".into(),
                        ..Default::default()
                    }),
                    config: [("primary_container_name".to_string(), "primary".to_string())]
                        .into_iter()
                        .collect(),
                    target: Some(task_template::Target::K8sPod(K8sPod {
                        pod_spec: Some(pod_spec),
                        ..Default::default()
                    })),
                    ..Default::default()
                }),
                description: None,
            }),
        }))
        .await?;
    Ok(task_id)
}

#[tokio::test]
async fn a_pod_task_runs_its_primary_container_as_a_local_process() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let outputs = LiteralMap {
        literals: [("o".to_string(), int(42))].into_iter().collect(),
    };
    std::fs::write(h.dir.path().join("source.pb"), outputs.encode_to_vec())?;
    let task = register_pod_task(&h, "pod_task").await?;
    let lp = h.fan_out("pod_wf", &task, 1).await?;
    let plugin = Arc::new(ProcessPlugin::new(ProcessConfig {
        work_root: h.dir.path().join("work"),
        ..Default::default()
    }));
    let running = h.propeller(vec![plugin], h.config());
    h.launch("pod1", &lp, 0).await?;
    let phase = h.wait_terminal("pod1", Duration::from_secs(30)).await?;
    running.stop().await?;
    let execution = h.get("pod1").await?;
    assert_eq!(
        phase,
        workflow_execution::Phase::Succeeded,
        "{:?}",
        execution.closure.and_then(|c| c.output_result)
    );
    let data = h
        .api
        .get_node_execution_data(Request::new(NodeExecutionGetDataRequest {
            id: Some(NodeExecutionIdentifier {
                node_id: "n0".into(),
                execution_id: Some(execution_id("pod1")),
            }),
        }))
        .await?
        .into_inner();
    assert_eq!(data.full_outputs, Some(outputs));
    Ok(())
}
