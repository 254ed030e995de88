//! Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm and controller-runtime's
//! defaults (kube-rs ships no elector; this is the usual hand-written one): lease 15 s, renew deadline 10 s,
//! retry period 2 s.
//!
//! - A renewal is ONE optimistic PUT of the Lease last written or read (its resourceVersion is the
//!   precondition). Only when that fails (a conflict, or any error) does it GET and decide again, as client-go's
//!   tryAcquireOrRenew falls back to its slow path.
//! - Another holder's Lease is expired when its record has not changed for leaseDurationSeconds as seen by this
//!   process's clock (client-go's observedTime), so clock skew with the holder does not matter.
//! - Leadership is lost when no renewal succeeds for the renew deadline; the caller exits then, as
//!   controller-runtime's manager does.
//! - `release` (controller-runtime's LeaderElectionReleaseOnCancel) writes an empty holder with a 1 s duration, so
//!   a successor takes over at once.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::api::{Api, PostParams};

pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

pub struct Elector {
    api: Api<Lease>,
    name: String,
    id: String,
    /// The Lease as last read or written (with its resourceVersion).
    last: Option<Lease>,
    /// When the observed record (holder, renewTime, ...) last changed, on this process's clock.
    observed_at: Instant,
}

fn holder(l: &Lease) -> &str {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or_default()
}

impl Elector {
    pub fn new(api: Api<Lease>, name: &str, id: String) -> Self {
        Self {
            api,
            name: name.to_string(),
            id,
            last: None,
            observed_at: Instant::now(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.id
    }

    fn is_leader(&self) -> bool {
        self.last.as_ref().is_some_and(|l| holder(l) == self.id)
    }

    fn observe(&mut self, l: Lease) {
        if self.last.as_ref().map(|o| &o.spec) != Some(&l.spec) {
            self.observed_at = Instant::now();
        }
        self.last = Some(l);
    }

    fn spec(&self, now: Timestamp, old: Option<&LeaseSpec>) -> LeaseSpec {
        let ours = old.and_then(|s| s.holder_identity.as_deref()) == Some(self.id.as_str());
        let transitions = old.and_then(|s| s.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.id.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: if ours {
                old.and_then(|s| s.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours || old.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }
    }

    /// client-go's tryAcquireOrRenew: true when this process holds the Lease after the call.
    pub async fn try_acquire_or_renew(&mut self) -> bool {
        let now = Timestamp::now();
        // Fast path: the leader renews the Lease it last wrote with one PUT.
        if self.is_leader() {
            let mut l = self.last.clone().unwrap();
            l.spec.as_mut().unwrap().renew_time = Some(MicroTime(now));
            match self.put(&l).await {
                Ok(()) => return true,
                Err(e) => eprintln!("lease: optimistic renewal failed ({e}), reading the Lease"),
            }
        }
        // Slow path: read, then take the Lease if it is free, expired or ours.
        let cur = match self.api.get_opt(&self.name).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                let l = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now, None)),
                };
                return match self.api.create(&PostParams::default(), &l).await {
                    Ok(l) => {
                        self.observe(l);
                        true
                    }
                    Err(e) => {
                        eprintln!("lease: create failed: {e}");
                        false
                    }
                };
            }
            Err(e) => {
                eprintln!("lease: get failed: {e}");
                return false;
            }
        };
        let duration = cur
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .unwrap_or(0)
            .max(0) as u64;
        self.observe(cur);
        let cur = self.last.as_ref().unwrap();
        let h = holder(cur);
        if !h.is_empty()
            && h != self.id
            && self.observed_at.elapsed() < Duration::from_secs(duration)
        {
            return false; // held by another, not expired
        }
        let mut l = cur.clone();
        l.spec = Some(self.spec(now, cur.spec.as_ref()));
        match self.put(&l).await {
            Ok(()) => true,
            Err(e) => {
                eprintln!("lease: update failed: {e}");
                false
            }
        }
    }

    /// One optimistic PUT (the resourceVersion of `l` is the precondition); what the server answers is observed.
    async fn put(&mut self, l: &Lease) -> Result<(), kube::Error> {
        let written = self
            .api
            .replace(&self.name, &PostParams::default(), l)
            .await?;
        self.observe(written);
        Ok(())
    }

    /// Waits until this process holds the Lease (client-go's acquire loop, every retry period).
    pub async fn acquire(&mut self) {
        while !self.try_acquire_or_renew().await {
            tokio::time::sleep(RETRY_PERIOD).await;
        }
    }

    /// Renews every retry period; returns when leadership is lost (no renewal for the renew deadline).
    pub async fn renew_until_lost(&mut self) {
        loop {
            tokio::time::sleep(RETRY_PERIOD).await;
            let deadline = Instant::now() + RENEW_DEADLINE;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                    Ok(true) => break,
                    Ok(false) if Instant::now() + RETRY_PERIOD < deadline => {
                        tokio::time::sleep(RETRY_PERIOD).await
                    }
                    _ => return,
                }
            }
        }
    }

    /// Gives the Lease up if this process holds it: an empty holder with a 1 s duration (client-go's release).
    pub async fn release(&mut self) {
        for _ in 0..2 {
            if !self.is_leader() {
                return;
            }
            let mut l = self.last.clone().unwrap();
            let now = Timestamp::now();
            let spec = l.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = Some(String::new());
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(now));
            spec.acquire_time = Some(MicroTime(now));
            match self.put(&l).await {
                Ok(()) => {
                    eprintln!("lease: released {}", self.name);
                    return;
                }
                Err(e) => {
                    // A renewal cancelled by the shutdown may have changed the resourceVersion: read and retry once.
                    eprintln!("lease: release failed ({e}), reading the Lease");
                    match self.api.get_opt(&self.name).await {
                        Ok(Some(cur)) => self.last = Some(cur),
                        _ => return,
                    }
                }
            }
        }
    }
}
