//! How the uploader learns that the task's container has ended: it watches its own pod through
//! the Kubernetes API (flytecopilot's `kubeapi` watcher). The pod's name and namespace come from
//! the downward API (`POD_NAME`, `POD_NAMESPACE`), the API server from the service account
//! folder Kubernetes mounts into every container (`KUBERNETES_SERVICE_HOST` / `_PORT`, `token`,
//! `ca.crt`; its path is an argument, so that a test kubelet can put it elsewhere), else from
//! `KUBECONFIG`. The pod's service account needs `get`, `list` and `watch` on pods in its
//! namespace (deploy/README.md).

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::await_condition;

use crate::CopilotError;

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub reason: Option<String>,
}

/// The exit of `container` in `pod`, if it has ended. A pod that ended as a whole counts too
/// (a container that never started still ended).
pub fn exit_of(pod: &Pod, container: &str) -> Option<Exit> {
    let status = pod.status.as_ref()?;
    let terminated = status
        .container_statuses
        .iter()
        .flatten()
        .find(|s| s.name == container)
        .and_then(|s| s.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    if let Some(t) = terminated {
        return Some(Exit {
            code: t.exit_code,
            reason: t.reason.clone(),
        });
    }
    match status.phase.as_deref() {
        Some("Failed") => Some(Exit {
            code: -1,
            reason: status.reason.clone(),
        }),
        Some("Succeeded") => Some(Exit {
            code: 0,
            reason: None,
        }),
        _ => None,
    }
}

/// Where Kubernetes mounts a pod's service account token.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A client for the API server: through the service account in `account_dir` when it holds a
/// token and `KUBERNETES_SERVICE_HOST` is set, else the usual inference (`KUBECONFIG`, ...).
async fn client(account_dir: &Path) -> Result<kube::Client, CopilotError> {
    let fail = |e: &dyn std::fmt::Display| {
        CopilotError::Watch(format!("no Kubernetes API configuration: {e}"))
    };
    let token = account_dir.join("token");
    let host = std::env::var("KUBERNETES_SERVICE_HOST").ok();
    let Some(host) = host.filter(|_| token.is_file()) else {
        return kube::Client::try_default().await.map_err(|e| fail(&e));
    };
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    // The in-cluster settings as a kubeconfig, so that kube reads the token and CA from files.
    let kubeconfig: Kubeconfig = serde_json::from_value(serde_json::json!({
        "clusters": [{"name": "in-cluster", "cluster": {
            "server": format!("https://{host}:{port}"),
            "certificate-authority": account_dir.join("ca.crt"),
        }}],
        "users": [{"name": "pod", "user": {"tokenFile": token}}],
        "contexts": [{"name": "pod", "context": {"cluster": "in-cluster", "user": "pod"}}],
        "current-context": "pod",
    }))
    .map_err(|e| fail(&e))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| fail(&e))?;
    kube::Client::try_from(config).map_err(|e| fail(&e))
}

/// Waits until `container` of pod `name` in `namespace` has ended.
pub async fn wait_for_container(
    account_dir: &Path,
    namespace: &str,
    name: &str,
    container: &str,
) -> Result<Exit, CopilotError> {
    alula_storage::install_crypto_provider();
    let client = client(account_dir).await?;
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let ended = |pod: Option<&Pod>| pod.is_none_or(|p| exit_of(p, container).is_some());
    let pod = await_condition(pods, name, ended)
        .await
        .map_err(|e| CopilotError::Watch(format!("watching pod {namespace}/{name}: {e}")))?
        .ok_or_else(|| CopilotError::Watch(format!("pod {namespace}/{name} was deleted")))?;
    exit_of(&pod, container)
        .ok_or_else(|| CopilotError::Watch(format!("pod {namespace}/{name} has not ended")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod")
    }

    #[test]
    fn a_terminated_container_has_ended_while_the_sidecar_runs() {
        let running = pod(
            serde_json::json!({"status": {"phase": "Running", "containerStatuses": [
            {"name": "task", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
             "state": {"running": {}}}]}}),
        );
        assert_eq!(exit_of(&running, "task"), None);
        let ended = pod(
            serde_json::json!({"status": {"phase": "Running", "containerStatuses": [
            {"name": "task", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
             "state": {"terminated": {"exitCode": 3, "reason": "Error"}}},
            {"name": "uploader", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
             "state": {"running": {}}}]}}),
        );
        assert_eq!(
            exit_of(&ended, "task"),
            Some(Exit {
                code: 3,
                reason: Some("Error".into())
            })
        );
        let failed = pod(serde_json::json!({"status": {"phase": "Failed", "reason": "Evicted"}}));
        assert_eq!(exit_of(&failed, "task").map(|e| e.code), Some(-1));
    }
}
