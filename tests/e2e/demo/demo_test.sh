#!/usr/bin/env bash
# The demo as a test: scripts/demo-scenario on a local cluster of its own, with the kubectl of the control plane's
# version, as scripts/demo runs it. Fails when the scenario fails, when anything in its output warns about version
# skew, or when the outage is not named (LeakSuspected, poolguard status), contained (sessions ended) and over
# (Ready True).
set -euo pipefail
root=${POOLGUARD_SOURCE_DIR:?}
dir=$(mktemp -d /tmp/poolguard-demo-test-XXXXXX)
trap '"$root/scripts/local-cluster" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$root/scripts/local-cluster" start "$dir" --max-connections 40 --with-kubectl
if ! out=$("$root/scripts/demo-scenario" "$dir" 2>&1); then
  echo "$out"
  echo "FAIL: demo-scenario failed"
  exit 1
fi
echo "$out"
fail=0
if grep -qiE "version difference|version skew" <<<"$out"; then
  echo "FAIL: the output warns about version skew"
  fail=1
fi
for expected in "UsageHealthy +False +LeakSuspected" "DATABASE orders: NOT READY" "ended session [0-9]+ of workload shop/checkout" \
  "Ready +True +Ready"; do
  grep -qE "$expected" <<<"$out" || { echo "FAIL: the output lacks /$expected/"; fail=1; }
done
exit $fail
