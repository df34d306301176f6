//! The pod plugin's Prometheus series: pods created, failed and deleted, and API server calls
//! by verb and response code. Fixed tables of atomics: counting never allocates or locks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use alula_admin::metrics::{MetricsSource, RenderFuture};

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

#[derive(Debug, Default)]
pub struct PodMetrics {
    pods_created: AtomicU64,
    pods_failed: AtomicU64,
    pods_deleted: AtomicU64,
    requests: [[AtomicU64; CODE_SLOTS]; Verb::ALL.len()],
}

impl PodMetrics {
    pub fn pod_created(&self) {
        self.pods_created.fetch_add(1, Relaxed);
    }

    /// A pod's attempt ended in failure (the task failed, the pod could not run or was lost).
    pub fn pod_failed(&self) {
        self.pods_failed.fetch_add(1, Relaxed);
    }

    pub fn pod_deleted(&self) {
        self.pods_deleted.fetch_add(1, Relaxed);
    }

    pub fn request(&self, verb: Verb, response: Response) {
        self.requests[verb as usize][response.slot()].fetch_add(1, Relaxed);
    }

    pub fn requests(&self, verb: Verb, response: Response) -> u64 {
        self.requests[verb as usize][response.slot()].load(Relaxed)
    }

    fn render_now(&self, out: &mut String) {
        for (name, help, value) in [
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
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Relaxed));
        }
        out.push_str("# HELP alula_k8s_api_requests_total Calls to the Kubernetes API server, by verb and HTTP status (error: no response).\n");
        out.push_str("# TYPE alula_k8s_api_requests_total counter\n");
        for verb in Verb::ALL {
            for (slot, count) in self.requests[verb as usize].iter().enumerate() {
                let n = count.load(Relaxed);
                // Codes never seen stay out: a dozen zero series per verb would be noise.
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "alula_k8s_api_requests_total{{verb=\"{}\",code=\"{}\"}} {n}",
                        verb.label(),
                        slot_label(slot)
                    );
                }
            }
        }
    }
}

impl MetricsSource for PodMetrics {
    fn render<'a>(&'a self, out: &'a mut String) -> RenderFuture<'a> {
        self.render_now(out);
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
        let mut out = String::new();
        m.render_now(&mut out);
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
    }
}
