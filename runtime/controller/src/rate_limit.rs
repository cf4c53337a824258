//! Client-side rate limit for the Kubernetes API client: a token bucket (`--client-qps`,
//! `--client-burst`, ESO's flag names) as a tower layer under kube's client.
//!
//! Off by default. ESO's defaults (50 QPS, burst 100) are the reason its users wait on
//! client-side throttling at a few thousand ExternalSecrets; esox relies on the API server's
//! priority and fairness instead, and the flags exist for clusters that want a hard cap.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A token bucket: `burst` tokens at most, refilled at `qps` tokens per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `qps` must be positive; `burst` is at least 1.
    pub fn new(qps: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            qps,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token, or says how long until one is there.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}

/// The layer: `None` for no limit.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitLayer {
    qps: f64,
    burst: u32,
}

impl RateLimitLayer {
    /// `qps <= 0` means no limit (`None`); `burst` 0 defaults to twice the QPS.
    pub fn new(qps: f64, burst: u32) -> Option<Self> {
        (qps > 0.0).then(|| Self {
            qps,
            burst: if burst == 0 {
                (qps * 2.0).ceil() as u32
            } else {
                burst
            },
        })
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            bucket: TokenBucket::new(self.qps, self.burst, Instant::now()),
            holding: false,
            sleep: None,
        }
    }
}

/// A service that takes a token before each request. kube's client drives it from one task
/// (behind its buffer), so the bucket needs no lock.
pub struct RateLimited<S> {
    inner: S,
    bucket: TokenBucket,
    holding: bool,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S, Req> tower::Service<Req> for RateLimited<S>
where
    S: tower::Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        while !self.holding {
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            match self.bucket.try_take(Instant::now()) {
                Ok(()) => self.holding = true,
                Err(wait) => self.sleep = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> S::Future {
        self.holding = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_serves_its_burst_then_paces_at_qps() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(start), Ok(()));
        }
        let wait = bucket.try_take(start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // 100 ms later exactly one more token is there.
        let later = start + Duration::from_millis(100);
        assert_eq!(bucket.try_take(later), Ok(()));
        assert!(bucket.try_take(later).is_err());
    }

    #[test]
    fn an_idle_bucket_refills_only_up_to_its_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100.0, 5, start);
        let much_later = start + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(bucket.try_take(much_later), Ok(()));
        }
        assert!(bucket.try_take(much_later).is_err());
    }

    #[test]
    fn zero_qps_is_no_limit_and_zero_burst_defaults_to_twice_the_qps() {
        assert!(RateLimitLayer::new(0.0, 100).is_none());
        assert_eq!(RateLimitLayer::new(50.0, 0).unwrap().burst, 100);
        assert_eq!(RateLimitLayer::new(50.0, 7).unwrap().burst, 7);
    }

    #[tokio::test]
    async fn the_service_holds_a_request_until_a_token_is_there() {
        use tower::{Layer, Service};
        let inner =
            tower::service_fn(|_: ()| std::future::ready(Ok::<_, std::convert::Infallible>(())));
        // One token, then one per 1000 s: the second request must wait.
        let mut svc = RateLimitLayer::new(0.001, 1).unwrap().layer(inner);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
        svc.call(()).await.unwrap();
        assert!(svc.poll_ready(&mut cx).is_pending());
        assert!(
            svc.poll_ready(&mut cx).is_pending(),
            "still waiting, no token taken twice"
        );
    }
}
