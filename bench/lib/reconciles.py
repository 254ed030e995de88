#!/usr/bin/env python3
"""How many reconciles poolguard needs: 2 policies over 30 Deployments, each with an HPA, on a local control plane
whose kube-controller-manager runs (so Deployments and HPAs get their status rewritten all along). Prints one JSON
object: the reconciles until both policies are Ready with every workload applied, and those in the quiet period
after it (when nothing changes but status). See docs/benchmarks.md."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def log(msg):
    print(f"reconciles: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--binary", default=os.environ.get("POOLGUARD_BINARY", os.path.join(root, "build/bin/poolguard")))
    ap.add_argument("--quiet-seconds", type=int, default=120, help="how long to count after convergence")
    ap.add_argument("--workloads", type=int, default=30)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="poolguard-reconciles-")
    os.chmod(work, 0o755)  # PostgreSQL runs as its own user and must reach its data directory
    cluster = os.environ.get("POOLGUARD_BENCH_CLUSTER")
    owned = not cluster
    if owned:
        cluster = os.path.join(work, "cluster")
        log(f"starting a local control plane in {cluster}")
        subprocess.run([os.path.join(root, "scripts/local-cluster"), "start", cluster], check=True, stdout=sys.stderr)
    env = {}
    with open(os.path.join(cluster, "env")) as f:
        for line in f:
            k, _, v = line.strip().removeprefix("export ").partition("=")
            env[k] = v
    kubeconfig = env["KUBECONFIG"]
    kubectl = ["kubectl", "--kubeconfig", kubeconfig]
    op = None
    try:
        subprocess.run(kubectl + ["apply", "--server-side", "-f", os.path.join(root, "crds")], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(kubectl + ["wait", "--for=condition=Established", "crd/connectionpoolpolicies.poolguard.dev",
                                  "--timeout=60s"], check=True, stdout=subprocess.DEVNULL)
        ns = f"reconciles-{int(time.time())}"
        subprocess.run(kubectl + ["create", "namespace", ns], check=True, stdout=subprocess.DEVNULL)
        docs = []
        for i in range(a.workloads):
            group = "a" if i % 2 == 0 else "b"
            name = f"w{i:02d}"
            docs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": name, "namespace": ns, "labels": {"group": group}},
                         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                                  "template": {"metadata": {"labels": {"app": name, "group": group}},
                                               "spec": {"containers": [{"name": "app",
                                                                        "image": "example.invalid/app:1"}]}}}})
            docs.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                         "metadata": {"name": name, "namespace": ns},
                         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                                  "minReplicas": 1, "maxReplicas": 10,
                                  "metrics": [{"type": "Resource", "resource": {
                                      "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}})
        for group in ("a", "b"):
            docs.append({"apiVersion": "poolguard.dev/v1alpha1", "kind": "ConnectionPoolPolicy",
                         "metadata": {"name": f"group-{group}", "namespace": ns},
                         "spec": {"selector": {"matchLabels": {"group": group}}, "pool": {"maxSize": 5},
                                  "database": {"name": "orders", "maxConnections": 10000}}})
        subprocess.run(kubectl + ["apply", "-f", "-"], input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                          "items": docs}).encode(),
                       check=True, stdout=subprocess.DEVNULL)

        metrics, health = free_port(), free_port()
        oplog = open(os.path.join(work, "poolguard.log"), "w")
        op = subprocess.Popen([a.binary, "run", "--kubeconfig", kubeconfig, "--namespace", ns,
                               "--metrics-bind-address", f"127.0.0.1:{metrics}",
                               "--health-probe-bind-address", f"127.0.0.1:{health}"],
                              stdout=oplog, stderr=subprocess.STDOUT, start_new_session=True)

        def reconciles():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except Exception:
                return 0.0
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("poolguard_reconcile_total{"))

        def converged():
            out = subprocess.run(kubectl + ["-n", ns, "get", "cpol", "-o", "json"], capture_output=True, text=True)
            if out.returncode != 0:
                return False
            for p in json.loads(out.stdout)["items"]:
                st = p.get("status", {})
                ready = [c for c in st.get("conditions", []) if c["type"] == "Ready" and c["status"] == "True"]
                if not ready or st.get("workloads", {}).get("applied", 0) != a.workloads // 2:
                    return False
            return True

        start = time.time()
        while not converged():
            if time.time() - start > 300:
                raise SystemExit("reconciles: no convergence within 300 s; log in " + oplog.name)
            time.sleep(0.2)
        converged_at = time.time()
        to_converge = reconciles()
        log(f"converged after {converged_at - start:.1f} s; counting for {a.quiet_seconds} s more")
        time.sleep(a.quiet_seconds)
        after = reconciles() - to_converge
        print(json.dumps({"binary": a.binary, "workloads": a.workloads, "policies": 2,
                          "secondsToConverge": round(converged_at - start, 1),
                          "reconcilesToConverge": int(to_converge), "quietSeconds": a.quiet_seconds,
                          "reconcilesWhileQuiet": int(after)}))
    finally:
        if op:
            os.killpg(op.pid, signal.SIGTERM)
            op.wait(30)
        if owned:
            subprocess.run([os.path.join(root, "scripts/local-cluster"), "stop", cluster], stdout=sys.stderr,
                           check=False)


if __name__ == "__main__":
    main()
