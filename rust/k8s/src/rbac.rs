//! The Kubernetes permissions the pod plugin needs: what a deployment must grant propeller's
//! service account in the tasks namespace, and no more. Secrets are not among them: the
//! kubelet reads the secrets a pod refers to, never propeller.
//!
//! The Helm chart's Role (`deploy/helm/alula/templates/rbac.yaml`) is checked against these
//! constants (`tests/deploy_chart.rs`), and the constants against the plugin's real API calls
//! (the test below), so the chart, this file and the code cannot drift apart.

/// The API group of pods: the core group, written `""` in RBAC rules.
pub const POD_API_GROUP: &str = "";

/// The resource the plugin runs attempts as.
pub const POD_RESOURCE: &str = "pods";

/// Pod templates a task names (or the configured default), read with `get` only.
pub const POD_TEMPLATE_RESOURCE: &str = "podtemplates";
pub const REQUIRED_POD_TEMPLATE_VERBS: &[&str] = &["get"];

/// A pod's log (a subresource), read with `get` once the attempt ended so that the log
/// outlives the pod, and for admin's live log route while it runs.
pub const POD_LOG_RESOURCE: &str = "pods/log";
pub const REQUIRED_POD_LOG_VERBS: &[&str] = &["get"];

/// The verbs the plugin uses on pods: `create` to start an attempt, `get` to check (and adopt)
/// it, `delete` to abort or finalize it, `list` + `watch` for the watcher that wakes drivers.
pub const REQUIRED_POD_VERBS: &[&str] = &["create", "get", "list", "watch", "delete"];

/// Every rule the plugin needs, as (API group, resource, verbs): the chart's Role has exactly
/// these.
pub const REQUIRED_RULES: &[(&str, &str, &[&str])] = &[
    (POD_API_GROUP, POD_RESOURCE, REQUIRED_POD_VERBS),
    (
        POD_API_GROUP,
        POD_TEMPLATE_RESOURCE,
        REQUIRED_POD_TEMPLATE_VERBS,
    ),
    (POD_API_GROUP, POD_LOG_RESOURCE, REQUIRED_POD_LOG_VERBS),
];

/// A rule: (API group, resource, verbs).
pub type Rule = (&'static str, &'static str, &'static [&'static str]);

/// The verbs an operator plugin uses on its custom resources: as on pods (`create`, `get`,
/// `delete`, and `list` + `watch` for its watcher). Its pods are the operator's, not ours.
pub const REQUIRED_OPERATOR_VERBS: &[&str] = &["create", "get", "list", "watch", "delete"];

/// The rules the operator plugins `names` need besides [`REQUIRED_RULES`], as (API group,
/// resource, verbs); an unknown name is refused (see [`crate::operators::operator`]).
pub fn operator_rules(names: &[&str]) -> Result<Vec<Rule>, alula_propeller::PluginError> {
    names
        .iter()
        .map(|name| {
            let (group, _version, _kind, plural) = crate::operators::operator(name)?.resource();
            Ok((group, plural, REQUIRED_OPERATOR_VERBS))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! Drives every API call of the plugin against a mock API server that answers whatever it
    //! is asked, records each request as the RBAC (group, resource, verb) the API server would
    //! authorize, and compares them with [`REQUIRED_RULES`].

    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use alula_propeller::{Plugin, PluginError, Waker};
    use http::{Method, Request, Response};
    use kube::client::Body;
    use serde_json::json;
    use tokio::sync::mpsc;

    use super::*;
    use crate::testutil::{attempt, config, task};
    use crate::PodPlugin;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    /// What the API server's authorizer sees of one request.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    struct Access {
        group: String,
        resource: String,
        verb: &'static str,
    }

    /// The authorizer's view of a request: `/api/v1/namespaces/{ns}/{resource}[/{name}]` (core)
    /// or `/apis/{group}/{version}/namespaces/{ns}/{resource}[/{name}]`, and the verb its method
    /// means on a collection or on one named object.
    fn access(method: &Method, path: &str, query: &str) -> Access {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (group, rest) = match parts.as_slice() {
            ["api", _version, rest @ ..] => (String::new(), rest),
            ["apis", group, _version, rest @ ..] => (group.to_string(), rest),
            _ => panic!("not a Kubernetes API path: {path}"),
        };
        let (resource, named) = match rest {
            ["namespaces", _ns, resource] => (resource.to_string(), false),
            ["namespaces", _ns, resource, _name] => (resource.to_string(), true),
            ["namespaces", _ns, resource, _name, sub] => (format!("{resource}/{sub}"), true),
            _ => panic!("not a namespaced resource path (subresources included): {path}"),
        };
        let watch = query
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1");
        let verb = match (method.as_str(), named, watch) {
            ("GET", _, true) => "watch",
            ("GET", false, false) => "list",
            ("GET", true, false) => "get",
            ("POST", false, _) => "create",
            ("PUT", true, _) => "update",
            ("PATCH", true, _) => "patch",
            ("DELETE", true, _) => "delete",
            ("DELETE", false, _) => "deletecollection",
            _ => panic!("unexpected request {method} {path}?{query}"),
        };
        Access {
            group,
            resource,
            verb,
        }
    }

    /// Answers every request with a plausible success (the first create with 201, later ones
    /// with 409 so that the adopt path runs too), records its access, and reports each one on
    /// `seen`.
    async fn serve_everything(
        mut handle: Handle,
        log: Arc<Mutex<BTreeSet<Access>>>,
        seen: mpsc::UnboundedSender<Access>,
    ) {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p-d-e1-n0-0", "namespace": "flyte", "resourceVersion": "11"},
            "spec": {"containers": [{"name": "task", "image": "python:3.12"}]},
            "status": {"phase": "Running"}});
        let mut creates = 0;
        while let Some((request, send)) = handle.next_request().await {
            let query = request.uri().query().unwrap_or_default().to_string();
            let access = access(request.method(), request.uri().path(), &query);
            let (status, body) = match access.verb {
                "create" => {
                    creates += 1;
                    if creates == 1 {
                        (201, pod.clone())
                    } else {
                        (
                            409,
                            json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Failure", "reason": "AlreadyExists", "code": 409}),
                        )
                    }
                }
                "list" => (
                    200,
                    json!({"apiVersion": "v1", "kind": "PodList",
                           "metadata": {"resourceVersion": "10"}, "items": []}),
                ),
                "watch" => (200, json!({"type": "MODIFIED", "object": pod})),
                "get" if access.resource == POD_TEMPLATE_RESOURCE => (
                    200,
                    json!({"apiVersion": "v1", "kind": "PodTemplate",
                           "metadata": {"name": "gpu", "namespace": "flyte"},
                           "template": {"spec": {"containers": [{"name": "default"}]}}}),
                ),
                _ => (200, pod.clone()),
            };
            log.lock().expect("access log").insert(access.clone());
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&body).expect("json")))
                    .expect("response"),
            );
            if seen.send(access).is_err() {
                return;
            }
        }
    }

    #[tokio::test]
    async fn the_plugin_uses_exactly_the_required_rules() {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let plugin = PodPlugin::new(kube::Client::new(service, "flyte"), config());
        let log = Arc::new(Mutex::new(BTreeSet::new()));
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let server = tokio::spawn(serve_everything(handle, log.clone(), seen_tx));

        let a = attempt(task(&["run"], &[]));
        let (wake_tx, _wakes) = mpsc::unbounded_channel();
        let waker = Waker::new(wake_tx, 1);
        plugin.start(&a, waker.clone()).await.expect("create");
        match plugin.start(&a, waker.clone()).await {
            Err(PluginError::AlreadyStarted(_)) => {}
            other => panic!("a second start adopts the pod, got {other:?}"),
        }
        plugin.check(&a, waker.clone()).await.expect("get");
        // The attempt's log, stored before the pod goes (the mock answers it with a pod's JSON,
        // which is as good a log as any).
        assert!(!plugin.logs(&a).await.is_empty(), "the pod's log is read");
        plugin.abort(&a).await.expect("delete");
        plugin.finalize(&a).await.expect("delete again");
        // A task naming a pod template: the template is read (then its pod created, refused
        // with 409 by the mock, which is adoption).
        let mut t = task(&["run"], &[]);
        t.metadata = Some(alula_idl::flyteidl::core::TaskMetadata {
            pod_template_name: "gpu".into(),
            ..Default::default()
        });
        let mut b = attempt(t);
        b.node_id = "n1".into();
        match plugin.start(&b, waker).await {
            Err(PluginError::AlreadyStarted(_)) => {}
            other => panic!("a templated pod is created, got {other:?}"),
        }

        let watcher = plugin.spawn_watcher();
        while let Some(access) = seen.recv().await {
            if access.verb == "watch" {
                break;
            }
        }
        watcher.abort();
        server.abort();

        let log = log.lock().expect("access log").clone();
        let used: BTreeSet<(&str, &str, &str)> = log
            .iter()
            .map(|a| (a.group.as_str(), a.resource.as_str(), a.verb))
            .collect();
        let required: BTreeSet<(&str, &str, &str)> = REQUIRED_RULES
            .iter()
            .flat_map(|(g, r, verbs)| verbs.iter().map(move |v| (*g, *r, *v)))
            .collect();
        assert_eq!(
            used, required,
            "REQUIRED_RULES (and the chart's Role) must match the plugin's calls"
        );
    }

    /// Each operator plugin's calls (create, adopt, check, abort, finalize, watch) are exactly
    /// its rule from [`operator_rules`].
    #[tokio::test]
    async fn the_operator_plugins_use_exactly_their_rules() {
        use crate::operators::{OperatorPlugin, OPERATORS};
        for name in OPERATORS {
            let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
            let client = kube::Client::new(service, "flyte");
            let pods = Arc::new(PodPlugin::new(client.clone(), config()));
            let plugin = OperatorPlugin::named(name, client, pods).expect("operator");
            let log = Arc::new(Mutex::new(BTreeSet::new()));
            let (seen_tx, mut seen) = mpsc::unbounded_channel();
            let server = tokio::spawn(serve_everything(handle, log.clone(), seen_tx));

            let mut t = task(&[], &["pyflyte-execute", "--inputs", "{{.input}}"]);
            t.r#type = name.to_string();
            // The smallest message each kind accepts: one worker for the training jobs.
            t.custom = Some(
                serde_json::from_value(json!({"workerReplicas": {"common": {"replicas": 1}}}))
                    .expect("struct"),
            );
            if matches!(*name, "spark" | "ray") {
                t.custom = None;
            }
            let a = attempt(t);
            let (wake_tx, _wakes) = mpsc::unbounded_channel();
            let waker = Waker::new(wake_tx, 1);
            plugin.start(&a, waker.clone()).await.expect("create");
            match plugin.start(&a, waker.clone()).await {
                Err(PluginError::AlreadyStarted(_)) => {}
                other => panic!("{name}: a second start adopts the resource, got {other:?}"),
            }
            plugin.check(&a, waker.clone()).await.expect("get");
            plugin.abort(&a).await.expect("delete");
            plugin.finalize(&a).await.expect("delete again");
            let watcher = plugin.spawn_watcher();
            while let Some(access) = seen.recv().await {
                if access.verb == "watch" {
                    break;
                }
            }
            watcher.abort();
            server.abort();

            let used: BTreeSet<(String, String, &str)> = log
                .lock()
                .expect("access log")
                .iter()
                .map(|a| (a.group.clone(), a.resource.clone(), a.verb))
                .collect();
            let required: BTreeSet<(String, String, &str)> = operator_rules(&[name])
                .expect("rules")
                .into_iter()
                .flat_map(|(g, r, verbs)| {
                    verbs
                        .iter()
                        .map(move |v| (g.to_string(), r.to_string(), *v))
                })
                .collect();
            assert_eq!(
                used, required,
                "{name}: operator_rules must match its calls"
            );
        }
    }

    #[test]
    fn requests_map_to_rbac_verbs() {
        let pods = "/api/v1/namespaces/flyte/pods";
        let one = "/api/v1/namespaces/flyte/pods/x";
        let verb = |m: Method, p: &str, q: &str| access(&m, p, q).verb;
        assert_eq!(
            verb(Method::GET, pods, "watch=true&labelSelector=a"),
            "watch"
        );
        assert_eq!(verb(Method::GET, pods, "labelSelector=a"), "list");
        assert_eq!(verb(Method::GET, one, ""), "get");
        assert_eq!(verb(Method::POST, pods, ""), "create");
        assert_eq!(verb(Method::DELETE, one, ""), "delete");
        assert_eq!(verb(Method::DELETE, pods, ""), "deletecollection");
        assert_eq!(verb(Method::PATCH, one, ""), "patch");
        let jobs = access(&Method::GET, "/apis/batch/v1/namespaces/n/jobs", "");
        assert_eq!(
            (jobs.group.as_str(), jobs.resource.as_str()),
            ("batch", "jobs")
        );
    }
}
