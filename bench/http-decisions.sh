#!/usr/bin/env bash
# Decisions over HTTP against the server's own ceiling, in one run on one
# server: wrk on loopback against GET /healthz (the HTTP stack alone), then
# against POST /api/v1/decisions (authentication, the subject's facts, the
# decision, its audit record durably committed, the answer) — on SQLite and
# then on PostgreSQL. Prints both rates, their ratio and the decisions' p99,
# then verifies the audit chain the run wrote. The two alternate for ROUNDS
# rounds (3 unless set) on the same server, and the ratio printed is the
# median of the rounds' ratios: a shared machine's speed drifts by more than
# the difference being measured, and a peer measured beside each round
# drifts with it.
# Usage: bench/http-decisions.sh [seconds] [connections]   (needs wrk; release build)
# BACKENDS="sqlite postgres" (the default) names the backends to run;
# DERBES_BIN runs another build than target/release/derbes (to alternate two).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
CONNS="${2:-64}"
ROUNDS="${ROUNDS:-3}"
PGURL="${DERBES_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
cargo build --release -q -p derbes
BIN="${DERBES_BIN:-target/release/derbes}"
PORT=18990

field() { python3 -c "import json,sys;print(json.load(sys.stdin)[\"$1\"])"; }

# PostgreSQL's checkpoints so far (timed and requested; -1 on SQLite): one
# that begins during a round can stretch the commits' WAL syncs, and the
# round's p99 with them.
checkpoints() {
  [ -n "$1" ] || { echo -1; return; }
  psql "$PGURL" -Atc "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter" 2>/dev/null \
    || psql "$PGURL" -Atc "SELECT num_timed + num_requested FROM pg_stat_checkpointer"
}

run() {
  local label="$1" url="$2"
  # The data directory holds only derbes' own files (it refuses others).
  local dir; dir=$(mktemp -d)
  mkdir -m 700 "$dir/data"
  local env=(DERBES_DATA_DIR="$dir/data" DERBES_LOG=warn)
  [ -n "$url" ] && env+=(DATABASE_URL="$url")
  local token
  token=$(env "${env[@]}" $BIN staff add --name bench --role backend_service --json | field token)
  env "${env[@]}" $BIN serve --listen 127.0.0.1:$PORT >/dev/null 2>"$dir/serve.log" &
  local pid=$!
  trap "kill $pid 2>/dev/null || true" EXIT
  for _ in $(seq 1 100); do curl -sf localhost:$PORT/healthz >/dev/null && break; sleep 0.1; done
  local subject
  subject=$(curl -s -X POST localhost:$PORT/api/v1/subjects -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"fields":{"identity.iin":"871008401427","identity.rk_citizen":true,"full_name.surname":"Бенчмаркова","full_name.first_name":"Тест","contact.phone":"+77010000001"},"consents":[{"kind":"policy"}]}' \
    | tee "$dir/subject.json" | field subject_id) || { cat "$dir/subject.json" "$dir/serve.log" >&2; exit 1; }
  echo "== $label: $ROUNDS rounds of $SECS s each, wrk 2 threads, $CONNS connections, one server"
  local rounds=()
  for _ in $(seq 1 "$ROUNDS"); do
    rounds+=("$(DERBES_SUBJECT="" wrk -t2 -c"$CONNS" -d"${SECS}s" -s bench/decisions.lua http://127.0.0.1:$PORT/healthz | grep '^rate')")
    local before; before=$(checkpoints "$url")
    local line; line=$(DERBES_TOKEN=$token DERBES_SUBJECT=$subject wrk -t2 -c"$CONNS" -d"${SECS}s" -s bench/decisions.lua http://127.0.0.1:$PORT/api/v1/decisions | grep '^rate')
    rounds+=("$line checkpoints $(( $(checkpoints "$url") - before ))")
  done
  kill -TERM $pid; wait $pid || true
  python3 - "${rounds[@]}" <<'PY'
import statistics, sys
def parse(line):
    w = line.split()
    return {w[i]: float(w[i + 1]) for i in range(0, len(w), 2)}
runs = [parse(l) for l in sys.argv[1:]]
pairs = list(zip(runs[0::2], runs[1::2]))
for i, (c, d) in enumerate(pairs, 1):
    print(f"   round {i}: GET /healthz (the peer: the HTTP stack alone) {c['rate']:>9,.0f} req/s   p99 {c['p99'] / 1000:6.2f} ms")
    print(f"            POST /api/v1/decisions (audited, durable)     {d['rate']:>9,.0f} req/s   p99 {d['p99'] / 1000:6.2f} ms   p50 {d['p50'] / 1000:.2f} ms   non-2xx {d['non2xx']:.0f}   ratio {100 * d['rate'] / c['rate']:.1f} %")
    if d['checkpoints'] > 0:
        print(f"            (PostgreSQL checkpoints begun during the decisions: {d['checkpoints']:.0f})")
ratios = [d['rate'] / c['rate'] for c, d in pairs]
print(f"   decisions {statistics.median(d['rate'] for _, d in pairs):,.0f} req/s (median), p99 {max(d['p99'] for _, d in pairs) / 1000:.2f} ms (worst round)")
print(f"   ratio decisions / healthz: {100 * statistics.median(ratios):.1f} % (median of {len(ratios)} rounds)")
PY
  env "${env[@]}" $BIN audit verify | sed "s/^/   audit: /"
  rm -rf "$dir"
}

BACKENDS="${BACKENDS:-sqlite postgres}"
[[ " $BACKENDS " == *" sqlite "* ]] && run sqlite ""
if [[ " $BACKENDS " == *" postgres "* ]] && pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  schema="bench_$$"
  psql "$PGURL" -qc "CREATE SCHEMA $schema"
  run postgres "$PGURL?options=-c%20search_path%3D$schema"
  psql "$PGURL" -qc "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE"
fi
