#!/usr/bin/env bash
# Load test of gatewayd's ext_authz gRPC server alone (no Envoy), with ghz.
#
#   make loadtest                       # 16 concurrent for 20s, then 1 for 20s
#   GHZ_CONCURRENCY=32 GHZ_DURATION=60s e2e/loadtest/ghz.sh
#
# Every request is the one Envoy sends for the seed's route 9 (POST
# /api/v1/agents, JWT + RBAC + Governor) with a Governor admin's token, so
# every Check is an allow. The context_extensions are read from the
# translator's golden file, which `go test ./xds/translate` first proves
# current. The token and thus the policy input never change, so this
# measures the decision-cache hit path plus token verification, header
# building and the audit log line (LOG_LEVEL=info, written to a file).
#
# A request or two per run shows as "Unavailable" (or "Canceled"): the ones
# in flight when -z ends, which ghz cuts off.
#
# Knobs (environment): GHZ_CONCURRENCY (16), GHZ_DURATION (20s),
# GHZ_CONNECTIONS (1: Envoy multiplexes one HTTP/2 connection per worker),
# GHZ_BASELINE (1: also run at concurrency 1; 0 skips it), LOG_LEVEL (info).
set -euo pipefail
cd "$(dirname "$0")/../.."

CONCURRENCY=${GHZ_CONCURRENCY:-16}
DURATION=${GHZ_DURATION:-20s}
CONNECTIONS=${GHZ_CONNECTIONS:-1}
BASELINE=${GHZ_BASELINE:-1}
GHZ_VERSION=v0.120.0
export JWT_SECRET=${JWT_SECRET:-loadtest-secret-0123456789abcdef0123}

for tool in go jq curl python3; do
  command -v "$tool" >/dev/null || { echo "ghz.sh: $tool is required" >&2; exit 1; }
done
GHZ=$(command -v ghz || true)
if [ -z "$GHZ" ]; then
  GHZ="$(go env GOPATH)/bin/ghz"
  if [ ! -x "$GHZ" ]; then
    echo "installing ghz $GHZ_VERSION"
    go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
  fi
fi

work=$(mktemp -d -t ghz-loadtest-XXXXXX)
gw_pid=""
cleanup() {
  if [ -n "$gw_pid" ]; then
    kill "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A stale golden would send context_extensions the translator no longer emits.
go test -count=1 ./xds/translate >/dev/null
ext=$(jq -c '[.. | objects | select(.name? == "route-9")][0]
  .typedPerFilterConfig["envoy.filters.http.ext_authz"].checkSettings.contextExtensions' \
  xds/translate/testdata/out/seed_internal.json)
[ "$ext" != null ] || { echo "ghz.sh: route-9 context_extensions not found in the golden file" >&2; exit 1; }

go build -o "$work/" ./cmd/gatewayd

# All four ports are chosen while every socket is still open, so no two are
# the same; gatewayd binds them a moment later.
read -r xds_port authz_port extproc_port ops_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

XDS_ADDR=127.0.0.1:$xds_port AUTHZ_ADDR=127.0.0.1:$authz_port EXTPROC_ADDR=127.0.0.1:$extproc_port \
OPS_ADDR=127.0.0.1:$ops_port ROUTES_FILE=deploy/routes.example.yaml LOG_LEVEL=${LOG_LEVEL:-info} \
  "$work/gatewayd" -grpc-reflection >"$work/gatewayd.log" 2>&1 &
gw_pid=$!
for _ in $(seq 1 200); do
  curl -fs "http://127.0.0.1:$ops_port/readyz" >/dev/null 2>&1 && break
  kill -0 "$gw_pid" 2>/dev/null || { echo "gatewayd exited:"; tail -20 "$work/gatewayd.log"; exit 1; }
  sleep 0.05
done
curl -fs "http://127.0.0.1:$ops_port/readyz" >/dev/null || { echo "gatewayd never became ready"; exit 1; }

token=$(go run ./cmd/gatewayctl token -sub admin-123 -email admin@waooaw.com -roles admin -is-governor)
jq -n --arg auth "Bearer $token" --argjson ext "$ext" '{
  attributes: {
    request: {http: {method: "POST", path: "/api/v1/agents", host: "gateway.local", scheme: "http",
                     headers: {authorization: $auth, ":method": "POST", ":path": "/api/v1/agents"}}},
    context_extensions: $ext
  }}' >"$work/check.json"

# ghz answers "OK" for a denial too (Check returns its decision in the
# body), so the allow and deny counters are what prove the load was allowed;
# the policy cache counters show which path was measured.
decisions() {
  curl -fs "http://127.0.0.1:$ops_port/metrics" | awk '
    /^gateway_authz_decisions_total\{/ { if ($1 ~ /result="allow"/) a += $2; else d += $2 }
    /^gateway_policy_cache_hits_total/ { h += $2 }
    /^gateway_policy_cache_misses_total/ { m += $2 }
    END { printf "%d %d %d %d\n", a, d, h, m }'
}

load() {
  local c=$1 out="$work/ghz-c$1.json" conns=$CONNECTIONS
  [ "$conns" -le "$c" ] || conns=$c # ghz refuses more connections than workers
  read -r allow0 deny0 hit0 miss0 < <(decisions)
  "$GHZ" --insecure --call envoy.service.auth.v3.Authorization.Check \
    -c "$c" -z "$DURATION" --connections "$conns" \
    -D "$work/check.json" -O json -o "$out" "127.0.0.1:$authz_port"
  read -r allow1 deny1 hit1 miss1 < <(decisions)
  jq -r --arg c "$c" --arg d "$DURATION" --arg allow "$((allow1 - allow0))" --arg deny "$((deny1 - deny0))" \
    --arg hit "$((hit1 - hit0))" --arg miss "$((miss1 - miss0))" '
    def ms: . / 1e6 | . * 1000 | round / 1000 | tostring + " ms";
    def pct(p): [.latencyDistribution[] | select(.percentage == p) | .latency][0] | ms;
    "ext_authz Check, concurrency \($c), \($d): \(.count) requests, \(.rps | round) rps, " +
    "p50 \(pct(50)), p95 \(pct(95)), p99 \(pct(99)), avg \(.average | ms), slowest \(.slowest | ms); " +
    "status \(.statusCodeDistribution | tojson); decisions allow=\($allow) deny=\($deny); policy cache hits=\($hit) misses=\($miss)"' "$out"
  if [ "$((deny1 - deny0))" -ne 0 ] || [ "$((allow1 - allow0))" -eq 0 ]; then
    echo "ghz.sh: the load was not all allows; see $work/gatewayd.log" >&2
    tail -5 "$work/gatewayd.log" >&2
    exit 1
  fi
}

echo "gatewayd ext_authz on 127.0.0.1:$authz_port; ghz $("$GHZ" --version 2>&1 | head -1); $(nproc) CPUs"
load "$CONCURRENCY"
if [ "$BASELINE" != 0 ]; then
  load 1
fi
