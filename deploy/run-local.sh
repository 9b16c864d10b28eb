#!/usr/bin/env bash
# `make run`: the demo backends, gatewayd (routes from deploy/routes.example.yaml,
# embedded policies) and Envoy on :8080, all in the foreground. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
ENVOY_BIN=${ENVOY_BIN:-$BIN/envoy}
: "${JWT_SECRET:?set JWT_SECRET (make run sets a development default)}"
export JWT_SECRET
mkdir -p .run

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$BIN/demobackend" >.run/demobackend.log 2>&1 &
pids+=($!)
"$BIN/gatewayd" >.run/gatewayd.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fs http://127.0.0.1:9090/readyz >/dev/null 2>&1 && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "gatewayd failed to start:"; tail -20 .run/gatewayd.log; exit 1; }
  sleep 0.1
done
"$ENVOY_BIN" -c envoy/bootstrap.yaml --disable-hot-restart --log-level warn >.run/envoy.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/ 2>/dev/null)" = 404 ] && break
  kill -0 "${pids[2]}" 2>/dev/null || { echo "envoy failed to start:"; tail -20 .run/envoy.log; exit 1; }
  sleep 0.1
done

ctl="$BIN/gatewayctl"
admin=$("$ctl" token -sub admin-123 -email admin@waooaw.com -roles admin -is-governor)
viewer=$("$ctl" token -sub viewer-1 -email viewer@waooaw.com -roles viewer)
trial=$("$ctl" token -sub customer-456 -email john@acmecorp.com -roles customer -agent-id abc123 -trial-mode)
cat <<TXT

Gateway up: Envoy :8080 (admin :9901), gatewayd ADS :18000, ext_authz :9001,
ext_proc :9002, ops :9090. Logs in .run/. Edit deploy/routes.example.yaml to
change routes live. Ctrl-C stops everything.

  # Governor admin creates an agent in Plant (seed test case 2) -> 200 from plant
  curl -s -X POST -H "Authorization: Bearer $admin" http://localhost:8080/api/v1/agents

  # A viewer may not -> 403 RBAC_DENIED
  curl -s -X POST -H "Authorization: Bearer $viewer" http://localhost:8080/api/v1/agents

  # Trial customer executes its agent -> 200 from the sandbox (seed test case 1)
  curl -s -X POST -H "Authorization: Bearer $trial" http://localhost:8080/api/agents/abc123/execute

  # No token -> 401; unknown path -> 404
  curl -s http://localhost:8080/api/agents
  curl -s http://localhost:8080/nope

  # Stats
  curl -s http://localhost:9090/metrics | grep ^gateway_
  curl -s http://localhost:9901/stats/prometheus | grep ext_authz

TXT
wait -n "${pids[@]}"
echo "a process exited; see .run/*.log"
