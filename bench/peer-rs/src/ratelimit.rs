//! client-go's client-side rate limit as a tower layer: a token bucket of `burst` tokens, full at start, refilled
//! at `qps` per second; every request takes one token and waits for it when the bucket is empty
//! (flowcontrol.NewTokenBucketRateLimiter, i.e. golang.org/x/time/rate's Wait: a reservation in arrival order).
//!
//! The layer sits in front of kube's service stack, behind the `tower::buffer::Buffer` that `kube::Client` puts
//! around it: the buffer's worker takes one request at a time, polls `poll_ready` (which waits for the token) and
//! then calls, so requests leave in arrival order at the bucket's rate, watches and Lease renewals included, as
//! every request of a client-go RESTClient does.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::time::Sleep;
use tower::{Layer, Service};

#[derive(Debug)]
struct Bucket {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>, // tokens (negative: reserved ahead), last refill
}

impl Bucket {
    /// Takes one token; returns how long to wait until it is there.
    fn reserve(&self) -> Duration {
        let mut st = self.state.lock().unwrap();
        let now = Instant::now();
        let refill = now.saturating_duration_since(st.1).as_secs_f64() * self.qps;
        st.0 = (st.0 + refill).min(self.burst) - 1.0;
        st.1 = now;
        if st.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-st.0 / self.qps)
        }
    }
}

#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    bucket: Option<Arc<Bucket>>,
}

impl RateLimitLayer {
    /// client-go's rules (rest.RESTClientFor): QPS 0 means 5 and burst 0 means 10; a negative QPS means no limit.
    pub fn new(qps: f64, burst: i64) -> Self {
        let qps = if qps == 0.0 { 5.0 } else { qps };
        let burst = if burst == 0 { 10 } else { burst };
        let bucket = (qps > 0.0).then(|| {
            let burst = burst.max(0) as f64;
            Arc::new(Bucket {
                qps,
                burst,
                state: Mutex::new((burst, Instant::now())),
            })
        });
        Self { bucket }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            bucket: self.bucket.clone(),
            wait: None,
            permitted: false,
        }
    }
}

pub struct RateLimit<S> {
    inner: S,
    bucket: Option<Arc<Bucket>>,
    wait: Option<Pin<Box<Sleep>>>,
    permitted: bool,
}

impl<S, Req> Service<Req> for RateLimit<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if let Some(bucket) = &self.bucket
            && !self.permitted
        {
            if self.wait.is_none() {
                let d = bucket.reserve();
                if d.is_zero() {
                    self.permitted = true;
                } else {
                    self.wait = Some(Box::pin(tokio::time::sleep(d)));
                }
            }
            if let Some(w) = self.wait.as_mut() {
                if w.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.wait = None;
                self.permitted = true;
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> S::Future {
        self.permitted = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let l = RateLimitLayer::new(2.0, 3);
        let b = l.bucket.unwrap();
        for _ in 0..3 {
            assert_eq!(b.reserve(), Duration::ZERO);
        }
        let d = b.reserve();
        assert!(
            d > Duration::from_millis(450) && d <= Duration::from_millis(500),
            "{d:?}"
        );
        let d = b.reserve();
        assert!(
            d > Duration::from_millis(950) && d <= Duration::from_millis(1000),
            "{d:?}"
        );
    }

    #[test]
    fn client_go_defaults() {
        assert!(RateLimitLayer::new(-1.0, 5).bucket.is_none());
        let b = RateLimitLayer::new(0.0, 0).bucket.unwrap();
        assert_eq!((b.qps, b.burst), (5.0, 10.0));
    }
}
