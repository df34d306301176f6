//! `spark` tasks as `SparkApplication`s (sparkoperator.k8s.io/v1beta2), built from flytekit's
//! `SparkJob` as flyteplugins' `spark.go` builds them: the Spark configuration (the task's,
//! with executor path and core limits filled in), the driver (never interruptible) and executor
//! pod settings from the task's pod, and the application's file, class, type and arguments.

use std::collections::BTreeMap;

use alula_idl::flyteidl::plugins::{spark_application::Type, SparkJob};
use alula_propeller::{AttemptStatus, PluginError};
use serde_json::{json, Map, Value as Json};

use super::status::{failed, succeeded, text};
use super::{Job, Operator, Replica, ReplicaPod};

/// The driver's container, as the Spark operator names it.
const DRIVER_CONTAINER: &str = "spark-kubernetes-driver";
const EXECUTOR_CONTAINER: &str = "spark-kubernetes-executor";
/// Flyte retries submissions refused for lack of resources this often; the task's failures
/// are the engine's retries, not the operator's.
const SUBMISSION_FAILURE_RETRIES: i32 = 14;

pub struct Spark;

/// The Spark configuration Flyte hands the operator: the task's, with the executor's Python
/// and the driver's and executors' core limits (the request, else the core count).
pub fn spark_conf(job: &SparkJob) -> BTreeMap<String, String> {
    let mut conf = BTreeMap::new();
    if !job.executor_path.is_empty() {
        conf.insert("spark.pyspark.python".into(), job.executor_path.clone());
        conf.insert(
            "spark.pyspark.driver.python".into(),
            job.executor_path.clone(),
        );
    }
    conf.extend(job.spark_conf.clone());
    for role in ["driver", "executor"] {
        let limit = format!("spark.kubernetes.{role}.limit.cores");
        if conf.get(&limit).is_some_and(|v| !v.is_empty()) {
            continue;
        }
        let request = format!("spark.kubernetes.{role}.request.cores");
        let cores = format!("spark.{role}.cores");
        let value = [&request, &cores]
            .into_iter()
            .filter_map(|k| conf.get(k.as_str()))
            .find(|v| !v.is_empty())
            .cloned();
        if let Some(v) = value {
            conf.insert(limit, v);
        }
    }
    conf
}

fn application_type(t: i32) -> &'static str {
    match Type::try_from(t).unwrap_or(Type::Python) {
        Type::Python => "Python",
        Type::Java => "Java",
        Type::Scala => "Scala",
        Type::R => "R",
    }
}

/// A driver's or executor's settings (the operator's `SparkPodSpec`) from its pod.
fn spark_pod(pod: &ReplicaPod) -> Json {
    let spec = pod.spec();
    let c = pod.primary_container();
    let meta = pod.metadata();
    let mut out = Map::new();
    let mut put = |k: &str, v: Json| {
        if !v.is_null() && v != json!([]) && v != json!({}) {
            out.insert(k.into(), v);
        }
    };
    put("labels", json!(meta.labels));
    put("annotations", json!(meta.annotations));
    put("image", json!(c.image));
    put("env", json!(c.env));
    put("envFrom", json!(c.env_from));
    put("volumeMounts", json!(c.volume_mounts));
    put("affinity", json!(spec.affinity));
    put("tolerations", json!(spec.tolerations));
    put("nodeSelector", json!(spec.node_selector));
    put("podSecurityContext", json!(spec.security_context));
    put("securityContext", json!(c.security_context));
    put("dnsConfig", json!(spec.dns_config));
    put("schedulerName", json!(spec.scheduler_name));
    put("hostNetwork", json!(spec.host_network));
    put("serviceAccount", json!(spec.service_account_name));
    Json::Object(out)
}

fn set_int(target: &mut Json, key: &str, value: Option<&String>) {
    if let Some(n) = value.and_then(|v| v.parse::<i32>().ok()) {
        target[key] = json!(n);
    }
}

fn set_text(target: &mut Json, key: &str, value: Option<&String>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        target[key] = json!(v);
    }
}

impl Operator for Spark {
    fn name(&self) -> &'static str {
        "spark"
    }

    fn resource(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        (
            "sparkoperator.k8s.io",
            "v1beta2",
            "SparkApplication",
            "sparkapplications",
        )
    }

    fn spec(&self, job: &Job<'_>) -> Result<Json, PluginError> {
        let spark: SparkJob = job.custom("SparkJob")?;
        let conf = spark_conf(&spark);
        let driver = job.replica(&Replica {
            container_name: DRIVER_CONTAINER,
            k8s_pod: spark.driver_pod.as_ref(),
            // Losing the driver loses the application.
            interruptible: Some(false),
            ..Default::default()
        })?;
        let executor = job.replica(&Replica {
            container_name: EXECUTOR_CONTAINER,
            k8s_pod: spark.executor_pod.as_ref(),
            ..Default::default()
        })?;
        let mut driver_spec = spark_pod(&driver);
        if driver_spec.get("serviceAccount").is_none() {
            // Flyte's default: the operator's conventional account.
            driver_spec["serviceAccount"] = json!("spark");
        }
        set_int(&mut driver_spec, "cores", conf.get("spark.driver.cores"));
        set_text(&mut driver_spec, "memory", conf.get("spark.driver.memory"));
        let mut executor_spec = spark_pod(&executor);
        set_int(
            &mut executor_spec,
            "cores",
            conf.get("spark.executor.cores"),
        );
        set_int(
            &mut executor_spec,
            "instances",
            conf.get("spark.executor.instances"),
        );
        set_text(
            &mut executor_spec,
            "memory",
            conf.get("spark.executor.memory"),
        );
        let primary = driver.primary_container();
        let mut spec = json!({
            "type": application_type(spark.application_type),
            "mode": "cluster",
            "image": primary.image,
            "arguments": primary.args.clone().unwrap_or_default(),
            "driver": driver_spec,
            "executor": executor_spec,
            "sparkConf": conf,
            "hadoopConf": spark.hadoop_conf,
            "restartPolicy": {
                "type": "OnFailure",
                "onSubmissionFailureRetries": SUBMISSION_FAILURE_RETRIES,
            },
        });
        // The secrets' files: the operator mounts these volumes where the pods' mounts say.
        if let Some(volumes) = driver.spec().volumes.as_ref().filter(|v| !v.is_empty()) {
            spec["volumes"] = json!(volumes);
        }
        set_text(
            &mut spec,
            "batchScheduler",
            conf.get("spark.batchScheduler"),
        );
        set_text(
            &mut spec,
            "mainApplicationFile",
            Some(&spark.main_application_file),
        );
        set_text(&mut spec, "mainClass", Some(&spark.main_class));
        Ok(spec)
    }

    /// `.status.applicationState.state`: `COMPLETED` succeeds, `FAILED` and
    /// `SUBMISSION_FAILED` fail with the operator's error message; the rest (`SUBMITTED`,
    /// `RUNNING`, `PENDING_RERUN`, `FAILING`, `SUCCEEDING`...) are on the way.
    fn status(&self, object: &Json) -> AttemptStatus {
        let message = text(object, "/status/applicationState/errorMessage");
        match text(object, "/status/applicationState/state") {
            "COMPLETED" => succeeded(),
            "FAILED" => failed("SparkApplicationFailed", message),
            "SUBMISSION_FAILED" => failed("SparkSubmissionFailed", message),
            _ => AttemptStatus::Running,
        }
    }
}
