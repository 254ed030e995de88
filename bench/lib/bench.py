#!/usr/bin/env python3
"""The poolguard benchmark: memory, CPU, API writes and convergence time of `poolguard run` against a local
control plane, next to the floor (bench/floor: the same writes from a bare HTTP client) and peer operators doing
the same Env delivery: controller-runtime as a team would write it (bench/peer), the same tuned (bench/peer
--tuned) and kube-rs (bench/peer-rs). Every actor runs in the same run, in alternating order, from the same object
state, several times; the JSON holds medians and the min-max of each figure. Run through bench/run; see
docs/benchmarks.md for what each figure means and how it is taken."""

import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
POLICY_LABEL = "bench.poolguard.dev/policy"
TOUCH_LABEL = "bench.poolguard.dev/touch"
LEASE_NAMESPACE = "poolguard-bench"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
# controller-runtime names its leader-election client "<binary>/<version> ... /leader-election" whatever the config says.
# One actor runs at a time, so a prefix shared by the two Go peers (their binary) still names the one running.
UA = {"poolguard": ("poolguard/",), "peer": ("poolguard-bench-peer", "peer/"),
      "peer_tuned": ("poolguard-bench-peer-tuned", "peer/"), "peer_rs": ("poolguard-bench-peer-rs",),
      "floor": ("poolguard-bench-floor",)}
# Every operator the bench measures, in the order of the first run (later runs alternate it).
ACTORS = ("poolguard", "peer", "peer_tuned", "peer_rs")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse_ts(ts):
    # RFC 3339 with microseconds, always UTC in audit events.
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


# ---------------------------------------------------------------------------------------------------------------
# The API server, over one keep-alive connection per thread.


class Api:
    def __init__(self, server, ca, cert, key):
        u = urllib.parse.urlparse(server)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=120)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, ctype="application/json"):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Accept": "application/json", "User-Agent": "poolguard-bench"}
        if data is not None:
            headers["Content-Type"] = ctype
        for attempt in range(4):
            try:
                c = self._conn()
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, OSError):
                self.local.conn = None
                if attempt == 3:
                    raise
                time.sleep(0.3)

    def ok(self, method, path, body=None, ctype="application/json", expect=(200, 201)):
        status, obj = self.request(method, path, body, ctype)
        if status not in expect:
            msg = obj.get("message") if isinstance(obj, dict) else obj
            raise RuntimeError(f"{method} {path}: HTTP {status}: {msg}")
        return obj

    def apply(self, path, obj, manager="bench-setup"):
        return self.ok("PATCH", f"{path}?fieldManager={manager}&force=true", obj, "application/apply-patch+yaml")

    def merge(self, path, obj):
        return self.ok("PATCH", path, obj, "application/merge-patch+json")

    def list_all(self, path):
        items, cont = [], ""
        while True:
            sep = "&" if "?" in path else "?"
            q = f"{path}{sep}limit=500" + (f"&continue={urllib.parse.quote(cont)}" if cont else "")
            obj = self.ok("GET", q)
            items.extend(obj.get("items", []))
            cont = obj.get("metadata", {}).get("continue", "")
            if not cont:
                return items


# ---------------------------------------------------------------------------------------------------------------
# The audit log (Metadata level), followed incrementally: only what the figures need is kept.


class Audit:
    def __init__(self, path):
        self.path = path
        self.events = []  # (ts, ua, verb, resource, subresource, ns, name, code)
        self.pos = os.path.getsize(path) if os.path.exists(path) else 0
        self.inode = os.stat(path).st_ino if os.path.exists(path) else None
        self.partial = b""

    def poll(self):
        if not os.path.exists(self.path):
            return
        st = os.stat(self.path)
        if st.st_ino != self.inode or st.st_size < self.pos:
            log("the audit log rotated; counting restarts from the new file")
            self.inode, self.pos, self.partial = st.st_ino, 0, b""
        if st.st_size == self.pos:
            return
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            chunk = f.read()
            self.pos += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("stage") != "ResponseComplete":
                continue
            ref = ev.get("objectRef") or {}
            self.events.append((parse_ts(ev["stageTimestamp"]), ev.get("userAgent", ""), ev.get("verb", ""),
                                ref.get("resource", ""), ref.get("subresource", ""), ref.get("namespace", ""),
                                ref.get("name", ""), (ev.get("responseStatus") or {}).get("code", 0)))

    def mark(self):
        self.poll()
        return len(self.events)

    def since(self, mark, ua_prefix):
        self.poll()
        return [e for e in self.events[mark:] if e[1].startswith(ua_prefix)]

    @staticmethod
    def writes(events, exclude=("leases",)):
        return [e for e in events if e[2] in WRITE_VERBS and e[3] not in exclude]

    @staticmethod
    def deployment_patches(events):
        return [e for e in events if e[2] == "patch" and e[3] == "deployments" and not e[4] and e[7] == 200]

    @staticmethod
    def breakdown(events):
        out = {}
        for e in events:
            key = f"{e[2]} {e[3]}" + (f"/{e[4]}" if e[4] else "")
            out[key] = out.get(key, 0) + 1
        return out


# ---------------------------------------------------------------------------------------------------------------
# An operator process and what /proc says about it.


class Proc:
    def __init__(self, name, argv, env, logpath):
        self.name = name
        self.logpath = logpath
        self.logf = open(logpath, "wb")
        self.started = time.time()
        self.p = subprocess.Popen(argv, env=env, stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def cpu(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads

    def status(self):
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(v.split()[0])  # KiB
                elif k == "Threads":
                    out[k] = int(v)
        return out

    def stop(self, timeout=20):
        if not self.alive():
            return self.p.returncode
        t0 = time.time()
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop within {timeout}s of SIGTERM; killing it")
            self.p.kill()
            rc = self.p.wait()
        self.logf.close()
        self.stop_seconds = time.time() - t0
        return rc


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def wait_for(cond, timeout, interval=0.2, what="condition", proc=None):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited while waiting for {what} (log: {proc.logpath})")
        if time.time() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def mib(kib):
    return round(kib / 1024, 2) if kib is not None else None


def aggregate(samples):
    """The median of every numeric figure over `samples` (dicts of one actor's runs), and its [min, max]; other
    values from the first sample."""
    median, spread = {}, {}
    for key, first in samples[0].items():
        values = [s.get(key) for s in samples]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            m = statistics.median(values)
            median[key] = int(m) if float(m).is_integer() and all(isinstance(v, int) for v in values) else round(m, 3)
            spread[key] = [min(values), max(values)]
        else:
            median[key] = first
    return median, spread


# ---------------------------------------------------------------------------------------------------------------
# The benchmark.


class Bench:
    def __init__(self, args):
        self.a = args
        self.n = args.workloads
        self.m = args.policies
        self.ns_count = min(args.namespaces, args.policies)
        self.namespaces = [f"bench-{i}" for i in range(self.ns_count)]
        self.value = 10  # the policies' current maxSize
        self.touch = 0
        self.owned_cluster = False
        self.work = tempfile.mkdtemp(prefix="poolguard-bench-")
        os.chmod(self.work, 0o755)  # PostgreSQL runs as the postgres user when the bench runs as root
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs)
        self.results = {"raw": {}}

    # --- cluster ------------------------------------------------------------------------------------------------

    def start_cluster(self):
        d = os.environ.get("POOLGUARD_BENCH_CLUSTER")
        if d:
            self.dir = os.path.abspath(d)
            log(f"using the control plane in {self.dir}")
        else:
            self.dir = os.path.join(self.work, "cluster")
            log(f"starting a local control plane in {self.dir}")
            subprocess.run([os.path.join(self.a.source_dir, "scripts/local-cluster"), "start", self.dir], check=True,
                           stdout=sys.stderr)
            self.owned_cluster = True
        env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                k, _, v = line.strip().removeprefix("export ").partition("=")
                env[k] = v
        self.kubeconfig = env["KUBECONFIG"]
        self.server = env["KUBE_APISERVER"]
        c = os.path.join(self.dir, "certs")
        self.certs = (os.path.join(c, "ca.crt"), os.path.join(c, "admin.crt"), os.path.join(c, "admin.key"))
        self.api = Api(self.server, *self.certs)
        self.audit = Audit(os.path.join(self.dir, "logs", "audit.log"))
        stop_kcm = self.a.stop_controller_manager if self.a.stop_controller_manager is not None else self.owned_cluster
        self.kcm_stopped = False
        pidfile = os.path.join(self.dir, "pids", "kube-controller-manager")
        self.kcm_argv = None
        if stop_kcm and os.path.exists(pidfile):
            pid = int(open(pidfile).read().strip())
            try:  # a stale pidfile, or a pid now someone else's: nothing to start again for the churn phase
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = [a.decode() for a in f.read().split(b"\0") if a]
                if argv and argv[0].endswith("kube-controller-manager"):
                    self.kcm_argv = argv
            except OSError:
                pass
            try:
                os.killpg(pid, signal.SIGTERM)  # local-cluster starts each component in its own session
            except ProcessLookupError:
                pass
            wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z",
                     30, what="kube-controller-manager to stop")
            os.remove(pidfile)
            self.kcm_stopped = True
            log("stopped kube-controller-manager (no ReplicaSets, HPA or namespace controllers during the bench)")

    def stop_cluster(self):
        if self.owned_cluster and not self.a.keep:
            subprocess.run([os.path.join(self.a.source_dir, "scripts/local-cluster"), "stop", self.dir],
                           stdout=sys.stderr, check=False)

    def install_crd(self):
        subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, "apply", "--server-side", "-f",
                        os.path.join(self.a.source_dir, "crds")], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, "wait", "--for=condition=Established",
                        "crd/connectionpoolpolicies.poolguard.dev", "--timeout=60s"], check=True,
                       stdout=subprocess.DEVNULL)
        self.api.apply(f"/api/v1/namespaces/{LEASE_NAMESPACE}",
                       {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}})

    def cleanup_objects(self, wait=True):
        """Removes what an earlier run left in a reused cluster (policies lose their finalizers first)."""
        found = False
        for ns in self.existing_bench_namespaces():
            found = True
            for p in self.api.list_all(f"/apis/poolguard.dev/v1alpha1/namespaces/{ns}/connectionpoolpolicies"):
                if p["metadata"].get("finalizers"):
                    self.api.merge(f"/apis/poolguard.dev/v1alpha1/namespaces/{ns}/connectionpoolpolicies/"
                                   f"{p['metadata']['name']}", {"metadata": {"finalizers": None}})
            for path in (f"/apis/poolguard.dev/v1alpha1/namespaces/{ns}/connectionpoolpolicies",
                         f"/apis/apps/v1/namespaces/{ns}/deployments",
                         f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers"):
                self.api.request("DELETE", path)
            self.api.request("DELETE", f"/api/v1/namespaces/{ns}")
        if found and wait and not self.kcm_stopped:
            wait_for(lambda: not self.existing_bench_namespaces(), 300, 1, "the bench namespaces to go")
        return found

    def existing_bench_namespaces(self):
        return [n["metadata"]["name"] for n in self.api.list_all("/api/v1/namespaces")
                if n["metadata"]["name"].startswith("bench-")]

    # --- objects ------------------------------------------------------------------------------------------------

    def workload(self, k):
        j = k % self.m
        ns = self.namespaces[j % self.ns_count]
        name = f"w{k:05d}"
        return ns, name, f"p{j}"

    def deployment(self, k):
        ns, name, pol = self.workload(k)
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {POLICY_LABEL: pol, "app.kubernetes.io/name": name,
                                    "app.kubernetes.io/part-of": "bench", "team": f"team-{k % 7}"},
                         "annotations": {"bench.poolguard.dev/owner": "bench", "deployment.kubernetes.io/note": "x" * 40}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "bench"},
                                 "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
                    "spec": {"containers": [{
                        "name": "app", "image": f"registry.invalid/bench/app:1.{k % 13}",
                        "args": ["--listen=:8080", "--log-level=info"],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "env": [{"name": "DATABASE_HOST", "value": "db.bench.svc"},
                                {"name": "LOG_FORMAT", "value": "json"}],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 10},
                    }]},
                },
            },
        }

    def hpa(self, k):
        ns, name, _ = self.workload(k)
        return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                         "minReplicas": 1, "maxReplicas": 3,
                         "metrics": [{"type": "Resource", "resource": {
                             "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}

    def policy(self, j):
        return {"apiVersion": "poolguard.dev/v1alpha1", "kind": "ConnectionPoolPolicy",
                "metadata": {"name": f"p{j}", "namespace": self.namespaces[j % self.ns_count]},
                "spec": {"selector": {"matchLabels": {POLICY_LABEL: f"p{j}"}},
                         "kinds": ["Deployment"],
                         "pool": {"maxSize": self.value},
                         "database": {"name": "bench", "maxConnections": 262143},
                         "budget": {"onExceeded": "Warn"}}}

    def policy_path(self, j):
        return f"/apis/poolguard.dev/v1alpha1/namespaces/{self.namespaces[j % self.ns_count]}/connectionpoolpolicies/p{j}"

    def seed(self):
        t0 = time.time()
        for ns in self.namespaces:
            self.api.apply(f"/api/v1/namespaces/{ns}", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

        def one(k):
            ns, name, _ = self.workload(k)
            self.api.apply(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}", self.deployment(k))
            if k % 10 == 0:
                self.api.apply(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/{name}", self.hpa(k))

        with concurrent.futures.ThreadPoolExecutor(self.a.setup_concurrency) as ex:
            list(ex.map(one, range(self.n)))
        for j in range(self.m):
            self.api.apply(self.policy_path(j), self.policy(j))
        secs = time.time() - t0
        log(f"created {self.n} Deployments, {(self.n + 9) // 10} HPAs and {self.m} policies in "
            f"{len(self.namespaces)} namespaces in {secs:.1f}s")
        self.results["raw"]["setup_seconds"] = round(secs, 2)

    def set_max_size(self, value):
        self.value = value
        for j in range(self.m):
            self.api.merge(self.policy_path(j), {"spec": {"pool": {"maxSize": value}}})

    def touch_policies(self):
        self.touch += 1
        for j in range(self.m):
            self.api.merge(self.policy_path(j), {"metadata": {"labels": {TOUCH_LABEL: str(self.touch)}}})

    def deployments_at(self, value):
        """How many bench Deployments carry POOL_MAX_SIZE=value on every container (one LIST per namespace)."""
        want, count = str(value), 0
        for ns in self.namespaces:
            for d in self.api.list_all(f"/apis/apps/v1/namespaces/{ns}/deployments"):
                cs = d["spec"]["template"]["spec"]["containers"]
                if all(any(e.get("name") == "POOL_MAX_SIZE" and e.get("value") == want for e in c.get("env", []))
                       for c in cs):
                    count += 1
        return count

    def policies_ready(self):
        ready = 0
        for ns in self.namespaces:
            for p in self.api.list_all(f"/apis/poolguard.dev/v1alpha1/namespaces/{ns}/connectionpoolpolicies"):
                gen = p["metadata"].get("generation")
                for c in (p.get("status") or {}).get("conditions", []):
                    if c.get("type") == "Ready" and c.get("status") == "True" and c.get("observedGeneration") == gen:
                        ready += 1
        return ready == self.m

    # --- measuring one operator ---------------------------------------------------------------------------------

    def start_actor(self, kind, tag, qps, burst, extra_env=None):
        health = free_port()
        env = dict(os.environ)
        env["KUBECONFIG"] = self.kubeconfig
        env.update(extra_env or {})
        if kind == "poolguard":
            metrics = free_port()
            argv = [self.a.poolguard, "run", "--kubeconfig", self.kubeconfig, "--leader-elect",
                    "--leader-election-namespace", LEASE_NAMESPACE, "--leader-election-id", "poolguard-bench",
                    "--health-probe-bind-address", f"127.0.0.1:{health}",
                    "--metrics-bind-address", f"127.0.0.1:{metrics}",
                    "--workers", str(self.a.workers), "--qps", str(qps), "--burst", str(burst)]
        else:
            metrics = None
            binary = {"peer": [self.a.peer], "peer_tuned": [self.a.peer, "--tuned"], "peer_rs": [self.a.peer_rs]}[kind]
            argv = binary + ["--health-probe-bind-address", f"127.0.0.1:{health}",
                             "--leader-election-namespace", LEASE_NAMESPACE, "--workers", str(self.a.workers),
                             "--qps", str(qps), "--burst", str(burst)]
        p = Proc(f"{kind}-{tag}", argv, env, os.path.join(self.logs, f"{kind}-{tag}.log"))
        p.health = health
        p.metrics = metrics
        return p

    def wait_ready(self, p):
        wait_for(lambda: http_ok(f"http://127.0.0.1:{p.health}/readyz"), 600, 0.02, f"{p.name} /readyz", p)
        return time.time()

    def reconcile_count(self, p):
        if not p.metrics:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{p.metrics}/metrics", timeout=2) as r:
                text = r.read().decode()
        except Exception:
            return None
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("poolguard_reconcile_total{"))

    def settle(self, kind, p, quiet):
        """Waits until the operator has written nothing but its Lease for `quiet` seconds (counted from now)."""
        start = time.time()
        mark = self.audit.mark()
        deadline = start + max(120, self.n / 10)
        while time.time() < deadline:
            last = [e[0] for e in Audit.writes(self.audit.since(mark, UA[kind]))]
            newest = max(last + [start])
            if time.time() - newest >= quiet:
                return
            if not p.alive():
                raise RuntimeError(f"{p.name} exited (log: {p.logpath})")
            time.sleep(1)
        log(f"{p.name} still writing after the settle timeout")

    def converge(self, kind, p, mark, t0, value):
        """Waits until every Deployment carries `value`; returns seconds from t0 to the operator's last write."""
        def done():
            if len({(e[5], e[6]) for e in Audit.deployment_patches(self.audit.since(mark, UA[kind]))}) < self.n:
                return False
            return self.deployments_at(value) == self.n
        wait_for(done, max(600, self.n), 0.25, f"{p.name} to write {self.n} Deployments", p)
        patches = Audit.deployment_patches(self.audit.since(mark, UA[kind]))
        return max(e[0] for e in patches) - t0, len(patches)

    def measure_empty(self, kind, extra_env=None, tag="empty"):
        p = self.start_actor(kind, tag, self.a.qps, self.a.burst, extra_env)
        try:
            ready = self.wait_ready(p)
            time.sleep(self.a.quiet)
            st = p.status()
            return {"sync_seconds": round(ready - p.started, 3), "idle_rss_kib": st["VmRSS"], "peak_rss_kib": st["VmHWM"],
                    "rss_anon_kib": st.get("RssAnon"), "rss_file_kib": st.get("RssFile"), "threads": st["Threads"],
                    "cpu_seconds": round(p.cpu(), 2)}
        finally:
            p.stop()

    def measure_full(self, kind):
        r = {}
        mark0 = self.audit.mark()
        p = self.start_actor(kind, "main", self.a.qps, self.a.burst)
        try:
            ready = self.wait_ready(p)
            st = p.status()
            r["sync_seconds"] = round(ready - p.started, 3)
            r["startup_peak_rss_kib"] = st["VmHWM"]
            r["cpu_at_sync"] = round(p.cpu(), 2)
            r["decode_us_per_object"] = round((ready - p.started) / max(self.n, 1) * 1e6, 1)
            # Initial convergence: the policies exist; every Deployment differs.
            secs, writes = self.converge(kind, p, mark0, p.started, self.value)
            r["initial_converge_seconds"] = round(secs, 2)
            r["initial_writes"] = writes
            if kind == "poolguard":
                wait_for(self.policies_ready, 300, 0.5, "every policy to be Ready", p)
                r["initial_ready_seconds"] = round(time.time() - p.started, 2)
            self.settle(kind, p, self.a.quiet)
            r["cpu_startup_and_initial"] = round(p.cpu(), 2)

            # Idle: leader election only.
            mark = self.audit.mark()
            c0, t0 = p.cpu(), time.time()
            time.sleep(self.a.idle_seconds)
            events = self.audit.since(mark, UA[kind])
            minutes = (time.time() - t0) / 60
            st = p.status()
            r["idle_rss_kib"] = st["VmRSS"]
            r["rss_anon_kib"] = st.get("RssAnon")
            r["rss_file_kib"] = st.get("RssFile")
            r["threads"] = st["Threads"]
            r["idle_cpu_seconds_per_minute"] = round((p.cpu() - c0) / minutes, 3)
            r["idle_writes_per_minute"] = round(len(Audit.writes(events)) / minutes, 2)
            r["idle_lease_writes_per_minute"] = round(
                len([e for e in events if e[2] in WRITE_VERBS and e[3] == "leases"]) / minutes, 2)
            r["idle_requests_per_minute"] = round(len(events) / minutes, 2)
            r["idle_writes_breakdown"] = Audit.breakdown(Audit.writes(events))

            # No-op reconcile: a label on every policy changes nothing the operator renders.
            mark = self.audit.mark()
            before = self.reconcile_count(p)
            self.touch_policies()
            if before is not None:
                wait_for(lambda: (self.reconcile_count(p) or 0) >= before + self.m, 60, 0.2, "the no-op reconciles", p)
            time.sleep(self.a.noop_wait)
            events = Audit.writes(self.audit.since(mark, UA[kind]))
            r["noop_reconciles"] = None if before is None else int(self.reconcile_count(p) - before)
            r["noop_writes"] = len(events)
            r["noop_deployment_writes"] = len([e for e in events if e[3] == "deployments"])
            r["noop_writes_breakdown"] = Audit.breakdown(events)

            # A policy change: maxSize on every policy; every Deployment changes.
            r.update(self.change(kind, p, self.value + 10))
            st = p.status()
            r["peak_rss_kib"] = st["VmHWM"]
            r["cpu_seconds_total"] = round(p.cpu(), 2)
            r["work_cpu_seconds"] = round(r["cpu_startup_and_initial"] + r["change_cpu_seconds"], 2)
        finally:
            r["exit_code"] = p.stop()
            r["stop_seconds"] = round(getattr(p, "stop_seconds", 0), 2)
        return r

    def change(self, kind, p, value):
        r = {}
        mark = self.audit.mark()
        c0 = p.cpu()
        reconciles0 = self.reconcile_count(p)
        t0 = time.time()
        self.set_max_size(value)
        secs, writes = self.converge(kind, p, mark, t0, value)
        r["converge_seconds"] = round(secs, 2)
        r["change_deployment_writes"] = writes
        r["writes_per_changed_workload"] = round(writes / self.n, 3)
        if kind == "poolguard":
            wait_for(self.policies_ready, 300, 0.25, "every policy to be Ready", p)
            r["ready_seconds"] = round(time.time() - t0, 2)
        self.settle(kind, p, self.a.quiet)
        events = Audit.writes(self.audit.since(mark, UA[kind]))
        r["change_writes_breakdown"] = Audit.breakdown(events)
        r["change_cpu_seconds"] = round(p.cpu() - c0, 2)
        if reconciles0 is not None:
            # Reconciles the change took, per changed policy (1 is one pass; the policies of one database also
            # enqueue each other when its totals move).
            r["reconciles_per_policy_change"] = round((self.reconcile_count(p) - reconciles0) / self.m, 2)
        return r

    def measure_change_only(self, kind, qps, burst, tag):
        p = self.start_actor(kind, tag, qps, burst)
        try:
            self.wait_ready(p)
            self.settle(kind, p, 5)
            r = self.change(kind, p, self.value + 10)
            r["qps"], r["burst"] = qps, burst
            return r
        finally:
            p.stop()

    def measure_idle_variant(self, kind, extra_env, tag):
        p = self.start_actor(kind, tag, self.a.qps, self.a.burst, extra_env)
        try:
            ready = self.wait_ready(p)
            hwm = p.status()["VmHWM"]
            self.settle(kind, p, self.a.quiet)
            st = p.status()
            return {"sync_seconds": round(ready - p.started, 3), "startup_peak_rss_kib": hwm, "idle_rss_kib": st["VmRSS"],
                    "peak_rss_kib": st["VmHWM"], "rss_anon_kib": st.get("RssAnon"), "threads": st["Threads"]}
        finally:
            p.stop()

    def run_floor(self, value):
        ca, cert, key = self.certs
        mark = self.audit.mark()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([self.a.floor, "-server", self.server, "-ca", ca, "-cert", cert, "-key", key,
                              "-namespaces", ",".join(self.namespaces), "-max-size", str(value),
                              "-concurrency", str(self.a.workers)], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        r["cpu_seconds"] = round(children.ru_utime + children.ru_stime - children0.ru_utime - children0.ru_stime, 2)
        patches = Audit.deployment_patches(self.audit.since(mark, UA["floor"]))
        r["audit_writes"] = len(patches)
        if r["writes"] != self.n or self.deployments_at(value) != self.n:
            raise RuntimeError(f"the floor wrote {r['writes']} of {self.n} Deployments")
        return r

    def strip_managed_fields(self):
        """Removes every Deployment's managedFields (a patch with `[{}]`), so each actor caches the same objects."""
        def one(k):
            ns, name, _ = self.workload(k)
            self.api.merge(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}", {"metadata": {"managedFields": [{}]}})

        with concurrent.futures.ThreadPoolExecutor(self.a.setup_concurrency) as ex:
            list(ex.map(one, range(self.n)))

    def reset_objects(self):
        """The state every actor starts from: the floor's write (so the actor's first apply changes every
        Deployment; the floor is measured on it), then no managedFields at all (whoever wrote before)."""
        self.strip_managed_fields()
        floor = self.run_floor(self.value + 5)
        self.strip_managed_fields()
        return floor

    def start_controller_manager(self):
        """Starts kube-controller-manager again (as local-cluster did) for the churn phase."""
        if not self.kcm_argv:
            return False
        with open(os.path.join(self.logs, "kube-controller-manager-churn.log"), "wb") as logf:
            p = subprocess.Popen(self.kcm_argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        with open(os.path.join(self.dir, "pids", "kube-controller-manager"), "w") as f:
            f.write(str(p.pid))  # local-cluster stop ends it with the rest
        self.kcm_stopped = False
        return True

    def replica_sets(self):
        return sum(len(self.api.list_all(f"/apis/apps/v1/namespaces/{ns}/replicasets")) for ns in self.namespaces)

    def measure_churn(self, kind, rollout):
        """CPU and reconciles per minute while kube-controller-manager rewrites Deployment and HPA status and
        `rollout` restarts 10% of the Deployments (a pod-template annotation, as `kubectl rollout restart`)."""
        p = self.start_actor(kind, "churn", self.a.qps, self.a.burst)
        try:
            self.wait_ready(p)
            self.settle(kind, p, self.a.quiet)
            mark = self.audit.mark()
            c0, r0, t0 = p.cpu(), self.reconcile_count(p), time.time()
            rollout()
            time.sleep(self.a.churn_seconds)
            minutes = (time.time() - t0) / 60
            events = self.audit.since(mark, UA[kind])
            churn = Audit.writes(self.audit.since(mark, "kube-controller-manager"))
            r = {"cpu_seconds_per_minute": round((p.cpu() - c0) / minutes, 3),
                 "writes_per_minute": round(len(Audit.writes(events)) / minutes, 2),
                 "requests_per_minute": round(len(events) / minutes, 2),
                 "rss_kib": p.status()["VmRSS"],
                 # The churn this actor met: kube-controller-manager's writes in its window.
                 "controller_manager_writes_per_minute": round(len(churn) / minutes, 1)}
            if r0 is not None:
                r["reconciles_per_minute"] = round((self.reconcile_count(p) - r0) / minutes, 1)
            return r
        finally:
            p.stop()

    def churn(self, actors):
        """The churn phase: kube-controller-manager running, one rollout of 10% of the workloads per actor."""
        if self.kcm_stopped and not self.start_controller_manager():
            log("churn: kube-controller-manager cannot be started again; skipped")
            return {}
        # Its first pass creates a ReplicaSet per Deployment: wait for it, so every actor meets the same steady churn.
        wait_for(lambda: self.replica_sets() >= self.n, max(300, self.n / 5), 2, "a ReplicaSet per Deployment")
        time.sleep(10)
        out = {}
        # The reverse of the first run's order: poolguard meets the churn last, after the others' rollouts.
        for i, kind in enumerate(reversed(actors)):
            stamp = f"{kind}-{i}"

            def rollout(stamp=stamp):
                def one(k):
                    ns, name, _ = self.workload(k)
                    self.api.merge(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}",
                                   {"spec": {"template": {"metadata": {"annotations": {
                                       "bench.poolguard.dev/restartedAt": stamp}}}}})

                with concurrent.futures.ThreadPoolExecutor(self.a.setup_concurrency) as ex:
                    list(ex.map(one, range(0, self.n, 10)))

            log(f"churn: {kind}")
            out[kind] = self.measure_churn(kind, rollout)
        return out

    # --- the whole run ------------------------------------------------------------------------------------------

    def run(self):
        a = self.a
        raw = self.results["raw"]
        actors = [k for k in a.actors if k in ACTORS]
        self.start_cluster()
        try:
            self.install_crd()
            if self.cleanup_objects():
                log("removed the objects of an earlier run")
            log("idle RSS with no workloads")
            raw["poolguard_empty_arena2"] = self.measure_empty("poolguard", {"MALLOC_ARENA_MAX": "2"}, "empty-arena2")
            for kind in actors:
                raw[f"{kind}_empty"] = self.measure_empty(kind)
            self.seed()
            runs = []
            for i in range(a.runs):
                # Every actor starts from the same objects; the order alternates, so no actor always goes first.
                order = actors if i % 2 == 0 else list(reversed(actors))
                run = {"order": order, "floor": []}
                for kind in order:
                    run["floor"].append(self.reset_objects())
                    log(f"run {i + 1}/{a.runs}: {kind}: sync, initial convergence, idle, no-op reconcile, policy change")
                    run[kind] = self.measure_full(kind)
                    log(f"run {i + 1}/{a.runs}: {kind} with qps {a.fast_qps}: policy change")
                    run[f"{kind}_unthrottled"] = self.measure_change_only(kind, a.fast_qps, a.fast_qps, "unthrottled")
                runs.append(run)
            raw["runs"] = runs
            for kind in actors:
                for key in (kind, f"{kind}_unthrottled"):
                    raw[key], raw.setdefault("spread", {})[key] = aggregate([r[key] for r in runs])
            raw["floor"], raw["spread"]["floor"] = aggregate([f for r in runs for f in r["floor"]])
            if "poolguard" in actors:
                log("poolguard with MALLOC_ARENA_MAX=2: sync and idle")
                raw["poolguard_arena2"] = self.measure_idle_variant("poolguard", {"MALLOC_ARENA_MAX": "2"}, "arena2")
            if a.churn_seconds > 0:
                log("churn: kube-controller-manager running, a rollout of 10% of the workloads per actor")
                raw["churn"] = self.churn(actors)
        finally:
            if a.keep:
                log(f"kept the control plane in {self.dir} and the logs in {self.logs}")
            else:
                if not self.owned_cluster:
                    self.cleanup_objects(wait=False)
                self.stop_cluster()
        self.summarize()

    def summarize(self):
        a, raw = self.a, self.results["raw"]
        pg, peer, floor = raw["poolguard"], raw["peer"], raw["floor"]
        empty, empty2, arena2 = raw["poolguard_empty"], raw["poolguard_empty_arena2"], raw["poolguard_arena2"]
        fast = raw["poolguard_unthrottled"]
        r = self.results
        r["workloads"], r["policies"], r["namespaces"], r["runs"] = self.n, self.m, self.ns_count, a.runs
        r["idle_rss_mib"] = mib(pg["idle_rss_kib"])
        r["idle_anon_rss_mib"] = mib(pg.get("rss_anon_kib"))
        r["idle_file_rss_mib"] = mib(pg.get("rss_file_kib"))
        r["idle_rss_empty_mib"] = mib(empty["idle_rss_kib"])
        r["rss_per_workload_kib"] = round((pg["idle_rss_kib"] - empty["idle_rss_kib"]) / self.n, 3)
        r["initial_list_peak_over_steady"] = round(pg["startup_peak_rss_kib"] / pg["idle_rss_kib"], 3)
        r["peak_rss_mib"] = mib(pg["peak_rss_kib"])
        r["sync_seconds"] = pg["sync_seconds"]
        r["converge_seconds"] = pg["converge_seconds"]
        r["ready_seconds"] = pg.get("ready_seconds")
        r["floor_seconds"] = round(floor["seconds"], 3)
        r["floor_cpu_seconds"] = floor.get("cpu_seconds")
        r["converge_ratio_vs_floor"] = round(pg["converge_seconds"] / floor["seconds"], 2)
        r["converge_seconds_unthrottled"] = fast["converge_seconds"]
        # The floor writes with --workers writers, the operators with --workers reconcile workers.
        r["converge_ratio_vs_floor_unthrottled"] = round(fast["converge_seconds"] / floor["seconds"], 2)
        r["writes_per_changed_workload"] = pg["writes_per_changed_workload"]
        r["reconciles_per_policy_change"] = pg.get("reconciles_per_policy_change")
        r["noop_writes"] = pg["noop_writes"]
        r["idle_writes_per_minute"] = pg["idle_writes_per_minute"]
        r["idle_lease_writes_per_minute"] = pg["idle_lease_writes_per_minute"]
        r["idle_requests_per_minute"] = pg["idle_requests_per_minute"]
        r["cpu_seconds"] = pg["work_cpu_seconds"]
        r["change_cpu_seconds"] = pg["change_cpu_seconds"]
        r["idle_rss_arena2_mib"] = mib(arena2["idle_rss_kib"])
        r["rss_per_workload_arena2_kib"] = round((arena2["idle_rss_kib"] - empty2["idle_rss_kib"]) / self.n, 3)
        r["peer_rss_ratio"] = round(pg["idle_rss_kib"] / peer["idle_rss_kib"], 3)
        r["peer_peak_rss_ratio"] = round(pg["peak_rss_kib"] / peer["peak_rss_kib"], 3)
        r["peer_cpu_ratio"] = round(pg["work_cpu_seconds"] / peer["work_cpu_seconds"], 3)
        r["peer_converge_ratio"] = round(pg["converge_seconds"] / peer["converge_seconds"], 3)
        r["peer_converge_ratio_unthrottled"] = round(
            fast["converge_seconds"] / raw["peer_unthrottled"]["converge_seconds"], 3)
        for kind, prefix in (("peer_tuned", "peer_tuned"), ("peer_rs", "kube_rs")):
            other = raw.get(kind)
            if not other:
                continue
            r[f"{prefix}_rss_ratio"] = round(pg["idle_rss_kib"] / other["idle_rss_kib"], 3)
            r[f"{prefix}_cpu_ratio"] = round(pg["work_cpu_seconds"] / other["work_cpu_seconds"], 3)
            r[f"{prefix}_converge_ratio"] = round(pg["converge_seconds"] / other["converge_seconds"], 3)
        churn = raw.get("churn") or {}
        if "poolguard" in churn and "peer_tuned" in churn:
            r["churn_cpu_seconds_per_minute"] = churn["poolguard"]["cpu_seconds_per_minute"]
            r["churn_cpu_ratio_vs_peer_tuned"] = round(
                churn["poolguard"]["cpu_seconds_per_minute"] / max(churn["peer_tuned"]["cpu_seconds_per_minute"], 1e-3), 3)
            r["churn_reconciles_per_minute"] = churn["poolguard"].get("reconciles_per_minute")
        # The min-max over the runs of the figures above that come from one actor's samples.
        spread = raw.get("spread", {})
        r["spread"] = {
            "idle_rss_kib": spread.get("poolguard", {}).get("idle_rss_kib"),
            "work_cpu_seconds": spread.get("poolguard", {}).get("work_cpu_seconds"),
            "converge_seconds": spread.get("poolguard", {}).get("converge_seconds"),
            "converge_seconds_unthrottled": spread.get("poolguard_unthrottled", {}).get("converge_seconds"),
            "floor_seconds": spread.get("floor", {}).get("seconds"),
            **{f"{k}_idle_rss_kib": spread.get(k, {}).get("idle_rss_kib") for k in ("peer", "peer_tuned", "peer_rs")},
            **{f"{k}_work_cpu_seconds": spread.get(k, {}).get("work_cpu_seconds") for k in ("peer", "peer_tuned", "peer_rs")},
        }
        def target(value, limit):
            return None if value is None else value <= limit  # None: not measured in this run
        r["targets"] = {
            "idle_rss_mib <= 15": target(r["idle_rss_mib"], 15),
            "rss_per_workload_kib <= 1": target(r["rss_per_workload_kib"], 1),
            "initial_list_peak_over_steady <= 1.5": target(r["initial_list_peak_over_steady"], 1.5),
            "peer_tuned_rss_ratio <= 0.333": target(r.get("peer_tuned_rss_ratio"), 1 / 3),
            "peer_tuned_cpu_ratio <= 0.333": target(r.get("peer_tuned_cpu_ratio"), 1 / 3),
            "kube_rs_rss_ratio <= 1": target(r.get("kube_rs_rss_ratio"), 1),
            "kube_rs_cpu_ratio <= 1": target(r.get("kube_rs_cpu_ratio"), 1),
            "converge_ratio_vs_floor_unthrottled <= 1.1": target(r["converge_ratio_vs_floor_unthrottled"], 1.1),
            "churn_cpu_ratio_vs_peer_tuned <= 0.333": target(r.get("churn_cpu_ratio_vs_peer_tuned"), 1 / 3),
            "idle_requests_per_minute <= the tuned peer's": None if raw.get("peer_tuned") is None else
            r["idle_requests_per_minute"] <= raw["peer_tuned"]["idle_requests_per_minute"],
            "noop_writes == 0": r["noop_writes"] == 0,
            "idle_writes_per_minute == 0 (leases excluded)": r["idle_writes_per_minute"] == 0,
        }
        r["environment"] = {
            "poolguard_version": subprocess.run([a.poolguard, "version"], capture_output=True, text=True).stdout.strip(),
            "kernel": platform.release(), "cpus": os.cpu_count(), "workers": a.workers, "qps": a.qps, "burst": a.burst,
            "fast_qps": a.fast_qps, "idle_seconds": a.idle_seconds, "quiet_seconds": a.quiet,
            "churn_seconds": a.churn_seconds, "actors": list(a.actors),
            "kube_controller_manager_stopped": "for every phase but churn" if self.kcm_argv else self.kcm_stopped,
            "cluster": "reused" if not self.owned_cluster else "started by the bench",
        }
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out_dir = a.results_dir or os.path.join(a.source_dir, "bench", "results")
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"{stamp}-N{self.n}.json")
        with open(path, "w") as f:
            json.dump(r, f, indent=2, sort_keys=True)
            f.write("\n")
        self.print_table(path)

    def print_table(self, path):
        r, raw = self.results, self.results["raw"]
        actors = [k for k in ("poolguard", "peer", "peer_tuned", "peer_rs") if raw.get(k)]
        heads = {"poolguard": "poolguard", "peer": "peer", "peer_tuned": "peer tuned", "peer_rs": "kube-rs"}

        def cell(v):
            return "-" if v is None else str(v)

        def row(name, values, target="", met=None):
            values = list(values) + [None] * (len(actors) - len(values))
            cells = "".join(f" {('' if v is None and i >= 1 and name.startswith('poolguard /') else cell(v)):>11} |"
                            for i, v in enumerate(values))
            verdict = "" if not target else "-" if met is None else "yes" if met else "NO"
            print(f"| {name:<46} |{cells} {target:<14} | {verdict:<4} |")

        def each(f):
            return [f(raw[k], k) for k in actors]

        t = r["targets"]
        print(f"\npoolguard benchmark: {self.n} Deployments, {self.m} policies, {self.ns_count} namespaces, "
              f"medians of {self.a.runs} runs\n")
        print(f"| {'figure':<46} |" + "".join(f" {heads[k]:>11} |" for k in actors) + f" {'target':<14} | met  |")
        print(f"|{'-' * 48}|" + "".join(f"{'-' * 13}|" for _ in actors) + f"{'-' * 16}|{'-' * 6}|")
        row("cache sync, s", each(lambda x, k: x["sync_seconds"]))
        row("idle RSS, MiB", each(lambda x, k: mib(x["idle_rss_kib"])), "<= 15", t["idle_rss_mib <= 15"])
        row("idle RSS, anonymous, MiB", each(lambda x, k: mib(x.get("rss_anon_kib"))))
        row("idle RSS, file-backed, MiB", each(lambda x, k: mib(x.get("rss_file_kib"))))
        row("idle RSS with no workloads, MiB", each(lambda x, k: mib(raw[f"{k}_empty"]["idle_rss_kib"])))
        row("RSS per cached workload, KiB",
            each(lambda x, k: round((x["idle_rss_kib"] - raw[f"{k}_empty"]["idle_rss_kib"]) / self.n, 3)), "<= 1",
            t["rss_per_workload_kib <= 1"])
        row("startup peak / steady RSS", each(lambda x, k: round(x["startup_peak_rss_kib"] / x["idle_rss_kib"], 3)),
            "<= 1.5", t["initial_list_peak_over_steady <= 1.5"])
        row("peak RSS, MiB", each(lambda x, k: mib(x["peak_rss_kib"])))
        row("threads", each(lambda x, k: x["threads"]))
        row("initial convergence (start to last write), s", each(lambda x, k: x["initial_converge_seconds"]))
        row("policy change: converged, s", each(lambda x, k: x["converge_seconds"]))
        row("policy change: every policy Ready, s", [r["ready_seconds"]] + [None] * (len(actors) - 1))
        row(f"converged with qps {self.a.fast_qps}, s", each(lambda x, k: raw[f"{k}_unthrottled"]["converge_seconds"]))
        row(f"converged with qps {self.a.fast_qps} / floor ({r['floor_seconds']} s)",
            each(lambda x, k: round(raw[f"{k}_unthrottled"]["converge_seconds"] / r["floor_seconds"], 2)), "<= 1.1",
            t["converge_ratio_vs_floor_unthrottled <= 1.1"])
        row("writes per changed workload", each(lambda x, k: x["writes_per_changed_workload"]))
        row("reconciles per policy change", [r["reconciles_per_policy_change"]] + [None] * (len(actors) - 1))
        row("writes on a no-op reconcile", each(lambda x, k: x["noop_writes"]), "0", t["noop_writes == 0"])
        row("writes per idle minute (leases excluded)", each(lambda x, k: x["idle_writes_per_minute"]), "0",
            t["idle_writes_per_minute == 0 (leases excluded)"])
        row("API requests per idle minute", each(lambda x, k: x["idle_requests_per_minute"]), "<= tuned peer",
            t["idle_requests_per_minute <= the tuned peer's"])
        row("CPU: sync + initial + change, s", each(lambda x, k: x["work_cpu_seconds"]))
        row("CPU: policy change, s", each(lambda x, k: x["change_cpu_seconds"]))
        row("CPU idle, s per minute", each(lambda x, k: x["idle_cpu_seconds_per_minute"]))
        churn = raw.get("churn") or {}
        if churn:
            row("churn: CPU, s per minute", [churn.get(k, {}).get("cpu_seconds_per_minute") for k in actors])
            row("churn: reconciles per minute", [churn.get(k, {}).get("reconciles_per_minute") for k in actors])
        row("poolguard / tuned peer: idle RSS", [r.get("peer_tuned_rss_ratio")], "<= 0.333",
            t["peer_tuned_rss_ratio <= 0.333"])
        row("poolguard / tuned peer: CPU", [r.get("peer_tuned_cpu_ratio")], "<= 0.333", t["peer_tuned_cpu_ratio <= 0.333"])
        row("poolguard / kube-rs: idle RSS", [r.get("kube_rs_rss_ratio")], "<= 1", t["kube_rs_rss_ratio <= 1"])
        row("poolguard / kube-rs: CPU", [r.get("kube_rs_cpu_ratio")], "<= 1", t["kube_rs_cpu_ratio <= 1"])
        row("poolguard / tuned peer: CPU under churn", [r.get("churn_cpu_ratio_vs_peer_tuned")], "<= 0.333",
            t["churn_cpu_ratio_vs_peer_tuned <= 0.333"])
        row("poolguard / naive peer: idle RSS, CPU", [r["peer_rss_ratio"], r["peer_cpu_ratio"]])
        print(f"\nresults: {path}")


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    ap.add_argument("--workloads", type=int, default=1000, help="Deployments to create (default 1000)")
    ap.add_argument("--policies", type=int, default=10, help="ConnectionPoolPolicies (default 10)")
    ap.add_argument("--namespaces", type=int, default=10, help="namespaces to spread them over (default 10)")
    ap.add_argument("--keep", action="store_true", help="leave the control plane, its objects and the logs")
    ap.add_argument("--workers", type=int, default=4, help="reconcile workers of both operators and the floor's writers")
    ap.add_argument("--qps", type=float, default=20, help="client QPS of both operators (their default: 20)")
    ap.add_argument("--burst", type=int, default=30, help="client burst of both operators (their default: 30)")
    ap.add_argument("--fast-qps", type=int, default=1000, help="QPS and burst of the unthrottled change run")
    ap.add_argument("--idle-seconds", type=float, default=60, help="length of the idle window")
    ap.add_argument("--quiet", type=float, default=10, help="seconds without writes that count as settled")
    ap.add_argument("--noop-wait", type=float, default=3, help="seconds to wait for writes after the no-op reconciles")
    ap.add_argument("--setup-concurrency", type=int, default=8, help="parallel requests while creating objects")
    ap.add_argument("--stop-controller-manager", dest="stop_controller_manager", action="store_true", default=None,
                    help="stop kube-controller-manager (default: only in a control plane the bench started)")
    ap.add_argument("--keep-controller-manager", dest="stop_controller_manager", action="store_false")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs of every actor; medians are reported (default 3)")
    ap.add_argument("--churn-seconds", type=float, default=60,
                    help="length of each actor's churn window with kube-controller-manager running; 0 skips it")
    ap.add_argument("--actors", default=",".join(ACTORS), type=lambda v: [x for x in v.split(",") if x],
                    help="the operators to measure, comma-separated (default: all; poolguard and peer are required)")
    ap.add_argument("--results-dir", help="where the JSON goes (default bench/results)")
    ap.add_argument("--poolguard", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--floor", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--peer", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--peer-rs", dest="peer_rs", help=argparse.SUPPRESS)
    ap.add_argument("--source-dir", required=True, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.workloads < 1 or args.policies < 1:
        ap.error("--workloads and --policies must be at least 1")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    unknown = [k for k in args.actors if k not in ACTORS]
    if unknown or "poolguard" not in args.actors or "peer" not in args.actors:
        ap.error(f"--actors takes {', '.join(ACTORS)} and needs poolguard and peer (got {','.join(args.actors)})")
    if "peer_rs" in args.actors and not args.peer_rs:
        ap.error("the kube-rs peer was not built (bench/run builds it with cargo)")
    b = Bench(args)
    try:
        b.run()
    finally:
        if not args.keep:
            shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
