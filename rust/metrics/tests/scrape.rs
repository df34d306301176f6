//! A scrape of two sources: every series in the Prometheus text format, and a family whose
//! labels strangers choose staying within its cap.

use std::sync::Arc;

use alula_metrics::{
    register_total, scrape, BoundedFamily, CollectFuture, Family, Gauge, Histogram, MetricsSource,
    Registry, TotalCounter,
};

type PathLabels = [(&'static str, String); 1];

/// Requests by path (capped), and a histogram.
#[derive(Debug)]
struct Requests {
    by_path: BoundedFamily<PathLabels, TotalCounter>,
    latency: Histogram,
}

impl Requests {
    fn record(&self, path: &str) {
        self.by_path
            .get_or_overflow(&[("path", path.to_string())], || {
                [("path", "other".to_string())]
            })
            .inc();
    }
}

impl MetricsSource for Requests {
    fn collect<'a>(&'a self, registry: &'a mut Registry) -> CollectFuture<'a> {
        Box::pin(async move {
            register_total(
                registry,
                "test_requests_total",
                "Requests by path.",
                self.by_path.family().clone(),
            );
            registry.register(
                "test_latency_seconds",
                "Request latency",
                self.latency.clone(),
            );
        })
    }
}

/// A gauge read at scrape time.
struct Phases;

impl MetricsSource for Phases {
    fn collect<'a>(&'a self, registry: &'a mut Registry) -> CollectFuture<'a> {
        Box::pin(async move {
            let phases = Family::<[(&'static str, String); 1], Gauge>::default();
            phases.get_or_create(&[("phase", "QUEUED".into())]).set(3);
            phases
                .get_or_create(&[("phase", "with \"quotes\"\n".into())])
                .set(1);
            registry.register("test_phases", "Things by phase", phases);
        })
    }
}

fn requests(max_series: usize) -> Arc<Requests> {
    Arc::new(Requests {
        by_path: BoundedFamily::new(max_series),
        latency: Histogram::new([0.1, 1.0]),
    })
}

#[tokio::test]
async fn scrape_renders_every_source_in_the_text_format() {
    let requests = requests(10);
    requests.record("/a");
    requests.record("/a");
    requests.record("/b");
    requests.latency.observe(0.05);
    requests.latency.observe(2.0);
    let sources: Vec<Arc<dyn MetricsSource>> = vec![requests, Arc::new(Phases)];
    let text = scrape(&sources).await;
    let has = |line: &str| text.lines().any(|l| l == line);
    for line in [
        "# HELP test_requests_total Requests by path.",
        "# TYPE test_requests_total counter",
        r#"test_requests_total{path="/a"} 2"#,
        r#"test_requests_total{path="/b"} 1"#,
        "# TYPE test_latency_seconds histogram",
        r#"test_latency_seconds_bucket{le="0.1"} 1"#,
        r#"test_latency_seconds_bucket{le="1.0"} 1"#,
        r#"test_latency_seconds_bucket{le="+Inf"} 2"#,
        "test_latency_seconds_count 2",
        "# HELP test_phases Things by phase.",
        "# TYPE test_phases gauge",
        r#"test_phases{phase="QUEUED"} 3"#,
        // Label values are escaped.
        r#"test_phases{phase="with \"quotes\"\n"} 1"#,
    ] {
        assert!(has(line), "{line} missing from\n{text}");
    }
    // The 0.0.4 text format: no OpenMetrics end marker, no doubled suffix.
    assert!(!text.contains("# EOF"), "{text}");
    assert!(!text.contains("_total_total"), "{text}");
}

#[tokio::test]
async fn a_bounded_family_counts_label_sets_past_its_cap_as_other() {
    let requests = requests(3);
    for i in 0..100 {
        requests.record(&format!("/bogus/{i}"));
    }
    // A label set admitted before the cap keeps its own series.
    requests.record("/bogus/1");
    let sources: Vec<Arc<dyn MetricsSource>> = vec![requests];
    let text = scrape(&sources).await;
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("test_requests_total{"))
        .collect();
    assert_eq!(series.len(), 4, "{text}");
    assert!(
        series.contains(&r#"test_requests_total{path="/bogus/1"} 2"#),
        "{text}"
    );
    assert!(
        series.contains(&r#"test_requests_total{path="other"} 97"#),
        "{text}"
    );
}
