#!/usr/bin/env bash
# The 10-minute soak of docs/PERFORMANCE.md: avouch bench at a fixed offered
# rate (default 80 % of the maximum measured by scripts/bench.sh) against a
# server pinned to core 0, sampling the server's RSS every 30 s.
# Usage: scripts/soak.sh RATE [DURATION]   e.g. scripts/soak.sh 500 10m
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:?offered rate per second}
DUR=${2:-10m}
BIN=$(mktemp -d)/avouch
go build -trimpath -o "$BIN" ./cmd/avouch
DATA=$(mktemp -d)
export AVOUCH_ADMIN_PASSWORD=soak-admin-pw
"$BIN" user add --data-dir "$DATA" --password Soak-pw-1 --role admin \
  --claim http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress=soak@example.test soak >/dev/null
port=$((20000 + RANDOM % 20000))
GOMAXPROCS=1 taskset -c 0 "$BIN" serve --data-dir "$DATA" --listen "127.0.0.1:$port" --plain-http --log-format json >"$DATA/serve.log" 2>&1 &
SRV=$!
until grep -q "listening on" "$DATA/serve.log" 2>/dev/null; do sleep 0.05; done
( while kill -0 "$SRV" 2>/dev/null; do echo "rss_kb $(date -u +%H:%M:%S) $(awk '/VmRSS/ {print $2}' /proc/$SRV/status)"; sleep 30; done ) &
SAMPLER=$!
GOMAXPROCS=1 taskset -c 1 "$BIN" bench --url "http://127.0.0.1:$port/services/sts" --user soak --password Soak-pw-1 \
  --claim http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress \
  --scenario issue-saml2 --concurrency 16 --rate "$RATE" --duration "$DUR" --sign-every 0 --server-cpus 0 --json
rc=$?
echo "rss_kb end $(awk '/VmRSS/ {print $2}' /proc/$SRV/status)"
# The WAL must stay bounded under steady writes (background checkpoints).
echo "db_bytes $(stat -c %s "$DATA/avouch.db") wal_bytes $(stat -c %s "$DATA/avouch.db-wal" 2>/dev/null || echo 0)"
kill "$SAMPLER" "$SRV"; wait "$SRV" 2>/dev/null || true
rm -rf "$DATA"
exit $rc
