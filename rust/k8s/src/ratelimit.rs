//! A token bucket in front of the pod plugin's calls to the API server, with client-go's
//! settings (`qps`, `burst`): a thousand attempts starting at once must not flood the API
//! server, which would throttle every client of the cluster, not only us.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Lets `burst` calls through at once, then `qps` per second. Waiters are served in the
/// order they asked: each takes the next free slot, so none starves.
#[derive(Debug)]
pub struct RateLimiter {
    /// `None`: no limit (`qps` ≤ 0).
    bucket: Option<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    per_token: Duration,
    capacity: f64,
    /// May go negative: tokens promised to callers that are still waiting for them.
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    /// `qps` ≤ 0 disables the limit; `burst` 0 counts as 1 (one call must always get through).
    pub fn new(qps: f32, burst: u32) -> Self {
        if qps.is_nan() || qps <= 0.0 {
            return Self { bucket: None };
        }
        let capacity = f64::from(burst.max(1));
        Self {
            bucket: Some(Mutex::new(Bucket {
                per_token: Duration::from_secs_f64(1.0 / f64::from(qps)),
                capacity,
                tokens: capacity,
                refilled_at: Instant::now(),
            })),
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        let Some(bucket) = &self.bucket else {
            return;
        };
        let wait = {
            // The lock is held only for arithmetic, never across the wait.
            let mut b = bucket.lock().unwrap_or_else(PoisonError::into_inner);
            b.take(Instant::now())
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl Bucket {
    /// Takes a token (reserving a future one when the bucket is empty) and returns how long the
    /// caller must wait for it.
    fn take(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() / self.per_token.as_secs_f64()).min(self.capacity);
        self.refilled_at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            self.per_token.mul_f64(-self.tokens)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_passes_then_qps_paces() {
        let limiter = RateLimiter::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the burst waits for nothing"
        );
        for _ in 0..10 {
            limiter.acquire().await;
        }
        // Ten more at 10 per second.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(999) && elapsed < Duration::from_millis(1100),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_refills_up_to_the_burst() {
        let limiter = RateLimiter::new(2.0, 3);
        for _ in 0..3 {
            limiter.acquire().await;
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        // The fourth finds the bucket empty: a minute of idling saved no more than the burst.
        limiter.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_millis(499),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(4.0, 1));
        let start = Instant::now();
        let calls: Vec<_> = (0..9)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.acquire().await })
            })
            .collect();
        for call in calls {
            call.await.expect("caller");
        }
        // One at once, eight more at 4 per second.
        assert!(
            start.elapsed() >= Duration::from_millis(1999),
            "{:?}",
            start.elapsed()
        );
    }

    /// The plugin's calls go through the bucket: against an API server that answers at once,
    /// N calls still take (N - burst) / qps.
    #[tokio::test(start_paused = true)]
    async fn plugin_calls_are_paced() {
        use alula_propeller::{AttemptStatus, Plugin, Waker};
        use http::{Request, Response};
        use kube::client::Body;

        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let config = crate::PodPluginConfig {
            api_qps: 5.0,
            api_burst: 2,
            ..crate::testutil::config()
        };
        let plugin = crate::PodPlugin::new(kube::Client::new(service, "flyte"), config);
        let server = tokio::spawn(async move {
            let mut served = 0;
            while let Some((_, send)) = handle.next_request().await {
                let body = serde_json::json!({"kind": "Status", "apiVersion": "v1",
                    "status": "Failure", "reason": "NotFound", "code": 404});
                send.send_response(
                    Response::builder()
                        .status(404)
                        .body(Body::from(serde_json::to_vec(&body).expect("json")))
                        .expect("response"),
                );
                served += 1;
            }
            served
        });
        let attempt = crate::testutil::attempt(crate::testutil::task(&["run"], &[]));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        for _ in 0..7 {
            let status = plugin.check(&attempt, Waker::new(tx.clone(), 1)).await;
            assert_eq!(status.expect("check"), AttemptStatus::NotStarted);
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(999) && elapsed < Duration::from_millis(1100),
            "{elapsed:?}"
        );
        let metrics = plugin.metrics();
        drop(plugin);
        assert_eq!(server.await.expect("server"), 7);
        assert_eq!(
            metrics.requests(
                crate::metrics::Verb::Get,
                crate::metrics::Response::Status(404)
            ),
            7
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_qps_means_no_limit() {
        let limiter = RateLimiter::new(0.0, 0);
        let start = Instant::now();
        for _ in 0..1000 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
