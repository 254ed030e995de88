//! peer-rs: bench/peer (controller-runtime) written the kube-rs way, for the benchmark's comparison. It delivers
//! a ConnectionPoolPolicy's pool settings as env entries (the Env delivery of the Generic profile) to the
//! Deployments its spec.selector.matchLabels picks, with server-side apply under the field manager "peer". No
//! budget, validation, status or usage checks: a lower bound of the cost, tuned as a careful kube-rs team would
//! tune it (kube-rs is the memory reference among controller runtimes):
//!
//! - One reflector per kind, started at once (so /readyz means "caches synced", before leadership, as the Go
//!   peer's): ConnectionPoolPolicies as a small typed resource decoded straight from the wire (policy.rs; kube's
//!   shared streams need a static type, which `DynamicObject` is not) and Deployments (k8s-openapi). Both use streaming lists (WatchList, `sendInitialEvents`: the initial state
//!   arrives as watch events, never as one list response held whole) and each object is stripped before it is
//!   stored (`.modify`): no managedFields, annotations, status, and of a Deployment only its name, namespace,
//!   labels, generation, uid and each container's name with the env entries the reconcile compares.
//! - A `Controller` on the policies, started once this process leads, subscribed to the same stores (kube's shared
//!   reflector streams), with `--workers` concurrent reconciles. A Deployment event enqueues the policies of its
//!   namespace that select it (the Go peer's policiesOfNamespace, narrowed to the selecting ones as the tuned Go
//!   peer does) when what the reconcile reads of it changed (uid, labels, containers' names and env entries):
//!   status, replicas or image updates enqueue nothing.
//! - The reconcile reads Deployments from the store, skips those in sync and applies the others with the Go
//!   peer's body; of the apply's answer only the generation is decoded, so that a reconcile that runs before the
//!   store saw its previous write does not apply the same body again.
//! - client-go's client-side token bucket (`--qps`, `--burst`) as a tower layer on every request; User-Agent
//!   `poolguard-bench-peer-rs` on every request.
//! - Leader election on the Lease `peer-rs-leader` (lease.rs), released on SIGTERM/SIGINT.
//! - A tokio runtime of 2 worker threads (one would serve the I/O; the second lets a reconcile's serialization run
//!   beside the watch decoding on the 2-core bench machine) and at most 2 blocking threads (only start-up file
//!   reads use them). glibc malloc: with 2 workers there are few arenas.

mod env;
mod health;
mod lease;
mod policy;
mod ratelimit;

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    pin::Pin,
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::{StreamExt, future, stream};
use k8s_openapi::api::{
    apps::v1::{Deployment, DeploymentSpec},
    coordination::v1::Lease,
    core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec},
};
use kube::{
    Client, Config, Resource, ResourceExt,
    api::{Api, ObjectMeta},
    client::ClientBuilder,
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        reflector::{ObjectRef, ReflectHandle, Store, store::Writer},
        watcher,
    },
};
use policy::Policy;
use serde_json::{Map, Value};

const USER_AGENT: &str = "poolguard-bench-peer-rs";
const FIELD_MANAGER: &str = "peer";
const LEASE_NAME: &str = "peer-rs-leader";
/// Buffer of each shared reflector stream (events the Controller has not taken yet).
const SUBSCRIBE_BUFFER: usize = 256;

struct Args {
    probe_addr: String,
    lease_namespace: String,
    workers: u16,
    qps: f64,
    burst: i64,
}

const USAGE: &str = "Usage of peer-rs:
  -burst int
    \tclient-side request burst (default 30)
  -health-probe-bind-address string
    \taddress of /healthz and /readyz (default \"127.0.0.1:8081\")
  -leader-election-namespace string
    \tnamespace of the leader-election Lease (default \"default\")
  -qps float
    \tclient-side request rate limit (default 20)
  -workers int
    \tconcurrent reconciles (default 4)
The kubeconfig is read from $KUBECONFIG (else ~/.kube/config, else the in-cluster service account).
";

/// The Go peer's command line, parsed as Go's flag package does: -flag or --flag, with the value after '=' or
/// as the next argument; parsing stops at "--" or the first non-flag argument; -h/-help prints the usage.
fn parse_args() -> Result<Args, ExitCode> {
    let mut a = Args {
        probe_addr: "127.0.0.1:8081".into(),
        lease_namespace: "default".into(),
        workers: 4,
        qps: 20.0,
        burst: 30,
    };
    let fail = |msg: String| {
        eprint!("{msg}\n{USAGE}");
        Err(ExitCode::from(2))
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            break;
        }
        let flag = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if name == "h" || name == "help" {
            eprint!("{USAGE}");
            return Err(ExitCode::SUCCESS);
        }
        if !matches!(
            name,
            "health-probe-bind-address" | "leader-election-namespace" | "workers" | "qps" | "burst"
        ) {
            return fail(format!("flag provided but not defined: -{name}"));
        }
        let Some(value) = inline.or_else(|| it.next()) else {
            return fail(format!("flag needs an argument: -{name}"));
        };
        let bad = |v: &str| format!("invalid value \"{v}\" for flag -{name}: parse error");
        match name {
            "health-probe-bind-address" => a.probe_addr = value,
            "leader-election-namespace" => a.lease_namespace = value,
            "workers" => match value.parse::<u16>() {
                Ok(n) if n > 0 => a.workers = n,
                _ => return fail(bad(&value)),
            },
            "qps" => match value.parse::<f64>() {
                Ok(q) if q.is_finite() => a.qps = q,
                _ => return fail(bad(&value)),
            },
            _ => match value.parse::<i64>() {
                Ok(b) => a.burst = b,
                _ => return fail(bad(&value)),
            },
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => {
            // Leave at once: the watches' tasks need no orderly end.
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("peer-rs: {e}");
            std::process::exit(1)
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A namespace and a name.
type NsName = (String, String);

struct Ctx {
    client: Client,
    deployments: Store<Deployment>,
    /// The generation each of this process's applies gave a Deployment, until the store shows it (client-go's
    /// "expectations"): a reconcile that runs before the watch event of its previous write arrived (the write's
    /// own event enqueues the policy again while it runs, and a Rust reconcile is quick enough to start within the
    /// event's few milliseconds of lag) skips that Deployment instead of applying the same body twice; the
    /// event, when it comes, enqueues the policy again.
    /// Keyed by namespace and name; the uid tells a Deployment recreated under the same name apart.
    written: Mutex<HashMap<NsName, (Option<String>, i64)>>,
}

/// Of an apply's answer, only the generation and uid are decoded (serde skips the rest of the document while
/// reading it).
#[derive(serde::Deserialize)]
struct Applied {
    metadata: AppliedMeta,
}
#[derive(serde::Deserialize)]
struct AppliedMeta {
    generation: Option<i64>,
    uid: Option<String>,
}

/// Keeps of a Deployment what the reconcile and the trigger filter read: name, namespace, labels, generation,
/// uid, and each container's name with its env entries of the names the policies render (literal values only).
fn strip_deployment(d: &mut Deployment) {
    let m = &mut d.metadata;
    d.metadata = ObjectMeta {
        name: m.name.take(),
        namespace: m.namespace.take(),
        labels: m.labels.take(),
        generation: m.generation,
        uid: m.uid.take(),
        ..ObjectMeta::default()
    };
    d.status = None;
    let containers = d
        .spec
        .take()
        .and_then(|s| s.template.spec)
        .map(|s| s.containers)
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let env: Vec<EnvVar> = c
                .env
                .unwrap_or_default()
                .into_iter()
                .filter(|e| env::ENV_NAMES.contains(&e.name.as_str()))
                .map(|e| EnvVar {
                    name: e.name,
                    value: e.value,
                    value_from: None,
                })
                .collect();
            Container {
                name: c.name,
                env: (!env.is_empty()).then_some(env),
                ..Container::default()
            }
        })
        .collect();
    d.spec = Some(DeploymentSpec {
        template: PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers,
                ..PodSpec::default()
            }),
        },
        ..DeploymentSpec::default()
    });
}

fn labels_match(d: &Deployment, want: &Map<String, Value>) -> bool {
    let have = d.labels();
    want.iter()
        .all(|(k, v)| have.get(k).map(String::as_str) == v.as_str())
}

async fn reconcile(pol: Arc<Policy>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let ns = pol.namespace().unwrap_or_default();
    let name = pol.name_any();
    let Some(want) = env::match_labels(pol.spec.selector.as_ref()).filter(|m| !m.is_empty()) else {
        return Ok(Action::await_change());
    };
    let pool = pol.spec.pool.as_ref();
    let picked = ctx.deployments.state_filter(|d| {
        d.metadata.namespace.as_deref() == Some(ns.as_str()) && labels_match(d, want)
    });
    for d in picked {
        let dname = d.name_any();
        let key = (ns.clone(), dname.clone());
        {
            let mut written = ctx.written.lock().unwrap();
            if let Some((uid, g)) = written.get(&key) {
                if *uid == d.metadata.uid && d.metadata.generation.unwrap_or(0) < *g {
                    continue; // the store has not seen this process's last write yet
                }
                written.remove(&key);
            }
        }
        let env = env::desired_env(pool, &ns, &dname);
        if env::in_sync(&d, &env) {
            continue;
        }
        let body = serde_json::to_vec(&env::apply_body(&d, &ns, &dname, &name, &env))
            .map_err(kube::Error::SerdeError)?;
        let req = http::Request::patch(format!(
            "/apis/apps/v1/namespaces/{ns}/deployments/{dname}?fieldManager={FIELD_MANAGER}&force=true"
        ))
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::CONTENT_TYPE, "application/apply-patch+yaml")
        .body(body)
        .map_err(kube::Error::HttpError)?;
        // The answer is the whole Deployment, managedFields included: only its generation and uid are decoded.
        let text = ctx.client.request_text(req).await?;
        if let Ok(Applied {
            metadata:
                AppliedMeta {
                    generation: Some(g),
                    uid,
                },
        }) = serde_json::from_str(&text)
        {
            let mut written = ctx.written.lock().unwrap();
            written.insert(key, (uid, g));
            if written.len() > 2 * ctx.deployments.len() + 64 {
                // Forget Deployments deleted before their write was seen.
                let live: std::collections::HashSet<NsName> = ctx
                    .deployments
                    .state()
                    .iter()
                    .map(|d| (d.namespace().unwrap_or_default(), d.name_any()))
                    .collect();
                written.retain(|k, _| live.contains(k));
            }
        }
    }
    Ok(Action::await_change())
}

fn error_policy(pol: Arc<Policy>, err: &kube::Error, _: Arc<Ctx>) -> Action {
    eprintln!(
        "reconcile {}/{}: {err}",
        pol.namespace().unwrap_or_default(),
        pol.name_any()
    );
    Action::requeue(Duration::from_secs(1))
}

/// What of a Deployment the reconcile reads: its uid (a Deployment recreated under the same name), labels and
/// each container's name and kept env entries. An event that changes none of these enqueues nothing (status
/// updates, replicas, images, ...).
fn deployment_fingerprint(d: &Deployment) -> u64 {
    let mut h = DefaultHasher::new();
    d.metadata.uid.hash(&mut h);
    d.metadata.labels.hash(&mut h);
    if let Some(pod) = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()) {
        for c in &pod.containers {
            c.name.hash(&mut h);
            for e in c.env.as_deref().unwrap_or_default() {
                (&e.name, &e.value).hash(&mut h);
            }
        }
    }
    h.finish()
}

fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "peer-rs".into());
    let mut rnd = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut rnd);
    }
    format!("{host}_{}", hex::encode(rnd))
}

async fn run(args: Args) -> Result<(), BoxError> {
    // SIGTERM / SIGINT -> stop = true.
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            let _ = stop_tx.send(true);
        });
    }

    let mut config = Config::infer().await?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    let client = ClientBuilder::try_from(config)?
        .with_layer(&ratelimit::RateLimitLayer::new(args.qps, args.burst))
        .build();

    // The probes first, so a slow start shows as 503, not as a refused connection.
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(&args.probe_addr).await?;
    tokio::spawn(health::serve(listener, ready.clone()));

    // Reflectors: started now, before leadership.
    let wc = watcher::Config::default().streaming_lists();
    let pol_writer: Writer<Policy> = Writer::new_shared(SUBSCRIBE_BUFFER, ());
    let policies = pol_writer.as_reader();
    let mut pol_events = Box::pin(pol_writer.subscribe().expect("shared writer"));
    tokio::spawn(
        watcher(Api::<Policy>::all(client.clone()), wc.clone())
            .default_backoff()
            .modify(policy::strip)
            .reflect_shared(pol_writer)
            .for_each(|ev| {
                if let Err(e) = ev {
                    eprintln!("policy watch: {e}");
                }
                future::ready(())
            }),
    );
    let dep_writer: Writer<Deployment> = Writer::new_shared(SUBSCRIBE_BUFFER, ());
    let deployments = dep_writer.as_reader();
    let mut dep_events = Box::pin(dep_writer.subscribe().expect("shared writer"));
    tokio::spawn(
        watcher(Api::<Deployment>::all(client.clone()), wc)
            .default_backoff()
            .modify(strip_deployment)
            .reflect_shared(dep_writer)
            .for_each(|ev| {
                if let Err(e) = ev {
                    eprintln!("deployment watch: {e}");
                }
                future::ready(())
            }),
    );
    // This task is the only waiter on the stores' readiness: kube-runtime 5.0's `Store::wait_until_ready` wakes
    // only the last of several concurrent waiters (one oneshot receiver shared by all of them), so everything
    // else waits on `synced`, and the Controller (whose applier waits on its store too) starts after it.
    let (synced_tx, mut synced) = tokio::sync::watch::channel(false);
    {
        let (policies, deployments, ready) = (policies.clone(), deployments.clone(), ready.clone());
        tokio::spawn(async move {
            if policies.wait_until_ready().await.is_ok()
                && deployments.wait_until_ready().await.is_ok()
            {
                ready.store(true, Ordering::Release);
                let _ = synced_tx.send(true);
                eprintln!(
                    "caches synced: {} policies, {} deployments",
                    policies.len(),
                    deployments.len()
                );
            }
        });
    }

    // Leader election. Until this process leads, the shared streams' events are taken and dropped (the
    // reflectors must not wait for a Controller that does not run yet).
    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.lease_namespace);
    let mut elector = lease::Elector::new(leases, LEASE_NAME, identity());
    eprintln!(
        "starting; leader election on {}/{LEASE_NAME} as {}",
        args.lease_namespace,
        elector.identity()
    );
    {
        let acquire = elector.acquire();
        tokio::pin!(acquire);
        loop {
            tokio::select! {
                _ = &mut acquire => break,
                _ = stop.wait_for(|s| *s) => return Ok(()),
                Some(_) = pol_events.next() => {}
                Some(_) = dep_events.next() => {}
            }
        }
    }
    eprintln!("leading");

    {
        let renew = elector.renew_until_lost();
        tokio::pin!(renew);
        // Caches first (renewing and draining meanwhile), as controller-runtime's controllers wait for theirs.
        let stopped = loop {
            tokio::select! {
                _ = &mut renew => lost_leadership(),
                _ = synced.wait_for(|s| *s) => break false,
                _ = stop.wait_for(|s| *s) => break true,
                Some(_) = pol_events.next() => {}
                Some(_) = dep_events.next() => {}
            }
        };
        if !stopped {
            let (p, d) = (pol_events, dep_events);
            run_controller(
                args.workers,
                client,
                policies,
                deployments,
                p,
                d,
                renew.as_mut(),
                stop,
            )
            .await;
        }
    }

    eprintln!("stopping");
    let _ = tokio::time::timeout(Duration::from_secs(3), elector.release()).await;
    Ok(())
}

fn lost_leadership() -> ! {
    eprintln!("leader election lost");
    std::process::exit(1);
}

/// Runs the Controller on synced stores until a stop (then in-flight reconciles get 3 s) or a lost Lease (exit 1).
#[allow(clippy::too_many_arguments)]
async fn run_controller(
    workers: u16,
    client: Client,
    policies: Store<Policy>,
    deployments: Store<Deployment>,
    pol_events: Pin<Box<ReflectHandle<Policy>>>,
    dep_events: Pin<Box<ReflectHandle<Deployment>>>,
    mut renew: Pin<&mut impl Future<Output = ()>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // The Controller: every policy in the store now, then every later event of the policies; the policies of a
    // namespace on a change of one of its Deployments that the reconcile can see.
    let policy_trigger = stream::iter(policies.state()).chain(pol_events);
    let seen: Mutex<HashMap<NsName, u64>> = Mutex::default();
    let deps_for_prune = deployments.clone();
    let dep_trigger = dep_events.filter(move |d| {
        let key = (d.namespace().unwrap_or_default(), d.name_any());
        let fp = deployment_fingerprint(d);
        let mut seen = seen.lock().unwrap();
        let changed = seen.insert(key, fp) != Some(fp);
        if seen.len() > 2 * deps_for_prune.len() + 64 {
            // Forget deleted Deployments (the shared stream carries no deletions).
            let live: std::collections::HashSet<NsName> = deps_for_prune
                .state()
                .iter()
                .map(|d| (d.namespace().unwrap_or_default(), d.name_any()))
                .collect();
            seen.retain(|k, _| live.contains(k));
        }
        future::ready(changed)
    });
    let pols = policies.clone();
    let selecting_policies = move |d: Arc<Deployment>| {
        let ns = d.meta().namespace.clone();
        pols.state_filter(|p| {
            p.metadata.namespace == ns
                && env::match_labels(p.spec.selector.as_ref())
                    .is_some_and(|want| !want.is_empty() && labels_match(&d, want))
        })
        .into_iter()
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect::<Vec<_>>()
    };
    let (ctl_stop_tx, ctl_stop_rx) = futures::channel::oneshot::channel::<()>();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        deployments: deployments.clone(),
        written: Mutex::default(),
    });
    let controller = Controller::for_shared_stream(policy_trigger, policies.clone())
        .watches_shared_stream(dep_trigger, selecting_policies)
        .with_config(controller::Config::default().concurrency(workers))
        .graceful_shutdown_on(futures::FutureExt::map(ctl_stop_rx, |_| ()))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| future::ready(()));

    {
        tokio::pin!(controller);
        let mut ctl_stop_tx = Some(ctl_stop_tx);
        // After a stop, in-flight reconciles get this long to finish before they are dropped.
        let force = tokio::time::sleep(Duration::from_secs(86400 * 365));
        tokio::pin!(force);
        loop {
            tokio::select! {
                _ = &mut controller => break,
                _ = &mut renew => lost_leadership(),
                _ = stop.wait_for(|s| *s), if ctl_stop_tx.is_some() => {
                    let _ = ctl_stop_tx.take().unwrap().send(());
                    force.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(3));
                }
                _ = &mut force => break,
            }
        }
    }
}
