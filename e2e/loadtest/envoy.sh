#!/usr/bin/env bash
# What the gateway adds to a request, measured with wrk on GET /api/v1/agents:
#   direct   the demo backend itself;
#   envoy    a second, static Envoy with only the router filter in front of
#            it, so the proxy hop alone can be told apart from the filters;
#   gateway  Envoy as gatewayd configures it: ext_proc, ext_authz (-> gatewayd
#            over gRPC) and router, with a Governor token.
# The added p50 is reported against both. The runs are sequential, so only one
# path is under load at a time.
#
#   e2e/loadtest/envoy.sh               # 10s each, 8 connections, 2 threads
#   WRK_DURATION=30s WRK_CONNECTIONS=32 e2e/loadtest/envoy.sh
#
# Everything runs on loopback on one machine, so the load generator, Envoy,
# gatewayd and the backend share its CPUs: read the figures as a comparison
# of the two paths on this machine, not as capacity. gatewayd logs an audit
# line per decision and Envoy an access-log line per request, as in
# production; both go to files in a temporary directory.
#
# Knobs (environment): WRK_DURATION (10s), WRK_CONNECTIONS (8), WRK_THREADS
# (2), ENVOY_CONCURRENCY (2), ENVOY_BIN (bin/envoy), LOG_LEVEL (info).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${WRK_DURATION:-10s}
CONNECTIONS=${WRK_CONNECTIONS:-8}
THREADS=${WRK_THREADS:-2}
ENVOY_BIN=${ENVOY_BIN:-$PWD/bin/envoy}
export JWT_SECRET=${JWT_SECRET:-loadtest-secret-0123456789abcdef0123}

for tool in go curl python3; do
  command -v "$tool" >/dev/null || { echo "envoy.sh: $tool is required" >&2; exit 1; }
done
if ! command -v wrk >/dev/null; then
  echo "installing wrk"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get install -y -qq wrk >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null; }
fi
[ -x "$ENVOY_BIN" ] || { echo "envoy.sh: no Envoy at $ENVOY_BIN (run make deps)" >&2; exit 1; }

work=$(mktemp -d -t envoy-loadtest-XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

go build -o "$work/" ./cmd/gatewayd ./cmd/gatewayctl ./cmd/demobackend

# Chosen while every socket is still open, so no two are the same.
read -r cp pp plant sandbox xds authz extproc ops listen admin plain plain_admin < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(12)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

"$work/demobackend" -serve "cp=127.0.0.1:$cp,pp=127.0.0.1:$pp,plant=127.0.0.1:$plant,sandbox=127.0.0.1:$sandbox" \
  >"$work/demobackend.log" 2>&1 &
pids+=($!)

XDS_ADDR=127.0.0.1:$xds AUTHZ_ADDR=127.0.0.1:$authz EXTPROC_ADDR=127.0.0.1:$extproc OPS_ADDR=127.0.0.1:$ops \
LISTEN_PORT=$listen ROUTES_FILE=deploy/routes.example.yaml LOG_LEVEL=${LOG_LEVEL:-info} \
GATEWAY_USE_INTERNAL_URLS=true \
GATEWAY_INTERNAL_URLS="cp=http://127.0.0.1:$cp,pp=http://127.0.0.1:$pp,plant=http://127.0.0.1:$plant,sandbox=http://127.0.0.1:$sandbox" \
  "$work/gatewayd" >"$work/gatewayd.log" 2>&1 &
pids+=($!)

# wait_for URL STATUS PID LOG: poll until URL answers STATUS, or PID dies.
wait_for() {
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "${4:-X-Probe: 1}" "$1" 2>/dev/null)" = "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || { echo "envoy.sh: process for $1 exited" >&2; return 1; }
    sleep 0.05
  done
  echo "envoy.sh: $1 never answered $2" >&2
  return 1
}
wait_for "http://127.0.0.1:$plant/health" 200 "${pids[0]}" || { tail -20 "$work/demobackend.log"; exit 1; }
wait_for "http://127.0.0.1:$ops/readyz" 200 "${pids[1]}" || { tail -20 "$work/gatewayd.log"; exit 1; }

"$work/gatewayctl" bootstrap -admin-port "$admin" -listen-port "$listen" \
  -xds "127.0.0.1:$xds" -authz "127.0.0.1:$authz" -extproc "127.0.0.1:$extproc" >"$work/bootstrap.yaml"
"$ENVOY_BIN" -c "$work/bootstrap.yaml" --disable-hot-restart --concurrency "${ENVOY_CONCURRENCY:-2}" \
  --log-level warn >"$work/envoy.log" 2>&1 &
pids+=($!)

# Same Envoy binary, concurrency and HTTP/1.1 upstream as the gateway, but
# no xDS, no filters besides the router and no access log.
cat >"$work/plain.yaml" <<YAML
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $plain_admin}}
static_resources:
  listeners:
  - name: plain
    address: {socket_address: {address: 127.0.0.1, port_value: $plain}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: plain
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: /api/v1/agents}
                route: {cluster: plant}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: plant
    type: STATIC
    load_assignment:
      cluster_name: plant
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $plant}}}
YAML
"$ENVOY_BIN" -c "$work/plain.yaml" --disable-hot-restart --concurrency "${ENVOY_CONCURRENCY:-2}" \
  --log-level warn --base-id 1 >"$work/envoy-plain.log" 2>&1 &
pids+=($!)

token=$("$work/gatewayctl" token -sub admin-123 -email admin@waooaw.com -roles admin -is-governor)
auth="Authorization: Bearer $token"
direct="http://127.0.0.1:$plant/api/v1/agents"
gateway="http://127.0.0.1:$listen/api/v1/agents"
plain_url="http://127.0.0.1:$plain/api/v1/agents"
wait_for "$gateway" 200 "${pids[2]}" "$auth" || { tail -20 "$work/envoy.log"; exit 1; }
wait_for "$plain_url" 200 "${pids[3]}" || { tail -20 "$work/envoy-plain.log"; exit 1; }

# wrk's own summary rounds to two digits in mixed units; this prints exact
# microseconds, and fails the run if any response was not 2xx.
cat >"$work/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT requests=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.requests / secs, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

run() {
  local name=$1 url=$2 header=${3:-}
  local args=(-t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -s "$work/report.lua")
  [ -n "$header" ] && args+=(-H "$header")
  local line
  line=$(wrk "${args[@]}" "$url" | grep '^RESULT')
  echo "$name: ${line#RESULT }" >&2
  echo "$line"
}

field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) CPUs, Envoy concurrency ${ENVOY_CONCURRENCY:-2}" >&2
a=$(run "direct  GET $direct" "$direct")
e=$(run "envoy   GET $plain_url" "$plain_url")
b=$(run "gateway GET $gateway" "$gateway" "$auth")
for r in "$a" "$e" "$b"; do
  if [ "$(field "$r" non2xx)" != 0 ] || [ "$(field "$r" errors)" != 0 ]; then
    echo "envoy.sh: some requests failed: $r" >&2
    exit 1
  fi
done
added() {
  echo "$1: p50 +$(($(field "$3" p50_us) - $(field "$2" p50_us))) us," \
    "p99 +$(($(field "$3" p99_us) - $(field "$2" p99_us))) us, rps $(field "$2" rps) -> $(field "$3" rps)"
}
added "gateway vs direct      " "$a" "$b"
added "gateway vs plain Envoy " "$e" "$b"
added "plain Envoy vs direct  " "$a" "$e"
