//! The pod plugin's Prometheus series: pods created, failed and deleted, the operator plugins'
//! custom resources the same by kind, and API server calls by verb and response code. Counting
//! goes through a fixed table of counter handles, each made on its (verb, code)'s first call:
//! after that it never allocates or looks a series up.

use alula_metrics::{register_total, CollectFuture, Family, MetricsSource, Registry, TotalCounter};

/// The calls the plugin makes (the watch is a stream, counted by neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Get,
    Delete,
}

impl Verb {
    const ALL: [Self; 3] = [Self::Create, Self::Get, Self::Delete];

    fn label(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Get => "get",
            Self::Delete => "delete",
        }
    }
}

/// Response codes with a series of their own; others count as `other`, and calls that got no
/// response (connection refused, timeout) as `error`.
const CODES: [u16; 12] = [200, 201, 202, 400, 403, 404, 409, 422, 429, 500, 503, 504];
const OTHER: usize = CODES.len();
const NO_RESPONSE: usize = CODES.len() + 1;
const CODE_SLOTS: usize = CODES.len() + 2;

/// What a call to the API server came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    Status(u16),
    /// No HTTP response at all.
    NoResponse,
}

impl Response {
    /// The response of a call that returned `result`.
    pub fn of<T>(result: &Result<T, kube::Error>, ok: u16) -> Self {
        match result {
            Ok(_) => Self::Status(ok),
            Err(kube::Error::Api(status)) => Self::Status(status.code),
            Err(_) => Self::NoResponse,
        }
    }

    /// The response of a `get_opt` that returned `result` (absent: 404).
    pub fn of_lookup<T>(result: &Result<Option<T>, kube::Error>) -> Self {
        match result {
            Ok(None) => Self::Status(404),
            other => Self::of(other, 200),
        }
    }

    fn slot(self) -> usize {
        match self {
            Self::Status(code) => CODES.iter().position(|&c| c == code).unwrap_or(OTHER),
            Self::NoResponse => NO_RESPONSE,
        }
    }
}

fn slot_label(slot: usize) -> String {
    match CODES.get(slot) {
        Some(code) => code.to_string(),
        None if slot == OTHER => "other".into(),
        None => "error".into(),
    }
}

/// `verb`, `code`.
type RequestLabels = [(&'static str, String); 2];
/// `kind` (an operator's resource: `PyTorchJob`, `SparkApplication`...).
type KindLabel = [(&'static str, String); 1];

#[derive(Debug, Default)]
pub struct PodMetrics {
    pods_created: TotalCounter,
    pods_failed: TotalCounter,
    pods_deleted: TotalCounter,
    /// Only the (verb, code) series counted at least once: the family gets a series on a
    /// code's first call, so a dozen zero series per verb stay out of the scrape.
    requests_family: Family<RequestLabels, TotalCounter>,
    /// Handles onto the family's counters by verb and code slot, made on first use.
    requests: [[std::sync::OnceLock<TotalCounter>; CODE_SLOTS]; Verb::ALL.len()],
    /// Operator plugins' resources by kind (a handful of kinds, each a series on first use).
    resources_created: Family<KindLabel, TotalCounter>,
    resources_failed: Family<KindLabel, TotalCounter>,
    resources_deleted: Family<KindLabel, TotalCounter>,
}

impl PodMetrics {
    pub fn pod_created(&self) {
        self.pods_created.inc();
    }

    /// A pod's attempt ended in failure (the task failed, the pod could not run or was lost).
    pub fn pod_failed(&self) {
        self.pods_failed.inc();
    }

    pub fn pod_deleted(&self) {
        self.pods_deleted.inc();
    }

    /// An operator plugin created a resource of `kind` for an attempt.
    pub fn resource_created(&self, kind: &str) {
        self.resources_created
            .get_or_create_owned(&[("kind", kind.to_string())])
            .inc();
    }

    /// A resource's attempt failed (the operator gave the job up, or it was lost).
    pub fn resource_failed(&self, kind: &str) {
        self.resources_failed
            .get_or_create_owned(&[("kind", kind.to_string())])
            .inc();
    }

    pub fn resource_deleted(&self, kind: &str) {
        self.resources_deleted
            .get_or_create_owned(&[("kind", kind.to_string())])
            .inc();
    }

    pub fn request(&self, verb: Verb, response: Response) {
        let slot = response.slot();
        self.requests[verb as usize][slot]
            .get_or_init(|| {
                self.requests_family.get_or_create_owned(&[
                    ("verb", verb.label().to_string()),
                    ("code", slot_label(slot)),
                ])
            })
            .inc();
    }

    pub fn requests(&self, verb: Verb, response: Response) -> u64 {
        self.requests[verb as usize][response.slot()]
            .get()
            .map_or(0, TotalCounter::get)
    }

    fn register(&self, registry: &mut Registry) {
        for (name, help, counter) in [
            (
                "alula_k8s_pods_created_total",
                "Pods the plugin created for task attempts.",
                &self.pods_created,
            ),
            (
                "alula_k8s_pods_failed_total",
                "Pods whose attempt failed (the task failed, the pod could not run or was lost).",
                &self.pods_failed,
            ),
            (
                "alula_k8s_pods_deleted_total",
                "Pods the plugin deleted (aborts and clean-up after completion).",
                &self.pods_deleted,
            ),
        ] {
            register_total(registry, name, help, counter.clone());
        }
        for (name, help, family) in [
            (
                "alula_k8s_operator_resources_created_total",
                "Custom resources the operator plugins created for task attempts, by kind.",
                &self.resources_created,
            ),
            (
                "alula_k8s_operator_resources_failed_total",
                "Custom resources whose attempt failed (the operator gave up, or the resource was lost), by kind.",
                &self.resources_failed,
            ),
            (
                "alula_k8s_operator_resources_deleted_total",
                "Custom resources the operator plugins deleted (aborts and clean-up), by kind.",
                &self.resources_deleted,
            ),
        ] {
            register_total(registry, name, help, family.clone());
        }
        register_total(
            registry,
            "alula_k8s_api_requests_total",
            "Calls to the Kubernetes API server, by verb and HTTP status (error: no response).",
            self.requests_family.clone(),
        );
    }
}

impl MetricsSource for PodMetrics {
    fn collect<'a>(&'a self, registry: &'a mut Registry) -> CollectFuture<'a> {
        self.register(registry);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_by_verb_and_code() {
        let m = PodMetrics::default();
        m.pod_created();
        m.pod_created();
        m.pod_deleted();
        m.request(Verb::Create, Response::Status(201));
        m.request(Verb::Create, Response::Status(201));
        m.request(Verb::Create, Response::Status(409));
        m.request(Verb::Get, Response::Status(418));
        m.request(Verb::Delete, Response::NoResponse);
        m.resource_created("PyTorchJob");
        m.resource_created("PyTorchJob");
        m.resource_created("RayJob");
        m.resource_failed("RayJob");
        m.resource_deleted("PyTorchJob");
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        alula_metrics::prometheus_client::encoding::text::encode_registry(&mut out, &registry)
            .expect("writing to a String");
        let has = |line: &str| out.lines().any(|l| l == line);
        assert!(has("alula_k8s_pods_created_total 2"), "{out}");
        assert!(has("alula_k8s_pods_failed_total 0"), "{out}");
        assert!(has("alula_k8s_pods_deleted_total 1"), "{out}");
        assert!(
            has(r#"alula_k8s_api_requests_total{verb="create",code="201"} 2"#),
            "{out}"
        );
        assert!(
            has(r#"alula_k8s_api_requests_total{verb="create",code="409"} 1"#),
            "{out}"
        );
        assert!(
            has(r#"alula_k8s_api_requests_total{verb="get",code="other"} 1"#),
            "{out}"
        );
        assert!(
            has(r#"alula_k8s_api_requests_total{verb="delete",code="error"} 1"#),
            "{out}"
        );
        assert!(!out.contains(r#"verb="get",code="200""#), "{out}");
        for line in [
            r#"alula_k8s_operator_resources_created_total{kind="PyTorchJob"} 2"#,
            r#"alula_k8s_operator_resources_created_total{kind="RayJob"} 1"#,
            r#"alula_k8s_operator_resources_failed_total{kind="RayJob"} 1"#,
            r#"alula_k8s_operator_resources_deleted_total{kind="PyTorchJob"} 1"#,
        ] {
            assert!(has(line), "{line} in {out}");
        }
        assert!(
            !out.contains(r#"resources_failed_total{kind="PyTorchJob"}"#),
            "{out}"
        );
        assert_eq!(m.requests(Verb::Create, Response::Status(201)), 2);
        assert_eq!(m.requests(Verb::Get, Response::Status(200)), 0);
    }
}
