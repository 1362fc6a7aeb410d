#!/usr/bin/env bash
# An audience at once against the same audience one decision at a time, in
# one run on one server: 100,000 synthetic users brought in with
# `derbes import`, then `POST /api/v1/audiences` with their 100,000 ids,
# asked three times (the median printed)
# (every decision audited, all durable before the answer) and, as the peer,
# `POST /api/v1/decisions` for the same question cycling over the same ids
# with wrk. Prints subject decisions per second for both and the ratio, then
# verifies the audit chain. SQLite, then PostgreSQL.
# Usage: bench/audience.sh [subjects] [seconds] [connections]   (needs wrk, curl, jq; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-107000}"   # about 100,000 adults (the rest are minors, whom the import refuses)
SECS="${2:-10}"
CONNS="${3:-64}"
PGURL="${DERBES_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
for tool in wrk curl jq; do command -v $tool >/dev/null || { echo "$tool is needed (apt-get install $tool)" >&2; exit 2; }; done
cargo build --release -q -p derbes
BIN=$PWD/target/release/derbes
PORT=18991
QUESTION='"operation":"use","purpose":"marketing","categories":["contact"],"channel":"sms"'

run() {
  local label="$1" url="$2"
  local dir; dir=$(mktemp -d)
  mkdir -m 700 "$dir/data"
  local env=(DERBES_DATA_DIR="$dir/data" DERBES_LOG=warn)
  [ -n "$url" ] && env+=(DATABASE_URL="$url")
  $BIN dev seed --subjects "$N" --out "$dir/users.jsonl" >/dev/null
  env "${env[@]}" $BIN import "$dir/users.jsonl" --json > "$dir/import.json" || true
  local token backend
  token=$(env "${env[@]}" $BIN staff add --name bench --role marketing --json | jq -r .token)
  backend=$(env "${env[@]}" $BIN staff add --name ids --role backend_service --json | jq -r .token)
  if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
    echo "something already listens on 127.0.0.1:$PORT" >&2; exit 1
  fi
  env "${env[@]}" $BIN serve --listen 127.0.0.1:$PORT >/dev/null 2>"$dir/serve.log" &
  local pid=$!
  trap "kill $pid 2>/dev/null || true" EXIT
  for _ in $(seq 1 100); do curl -sf localhost:$PORT/healthz >/dev/null && break; sleep 0.1; done
  # Every active subject's id (a question each of them passes), at most 100,000.
  curl -s -X POST localhost:$PORT/api/v1/audiences -H "Authorization: Bearer $backend" -H 'content-type: application/json' \
    -d '{"operation":"use","purpose":"identification","categories":["identity"],"every_active_subject":true}' > "$dir/all.json"
  jq -c '.subject_ids[:100000]' "$dir/all.json" > "$dir/ids.json" || { cat "$dir/all.json" "$dir/serve.log" >&2; exit 1; }
  jq -r '.[]' "$dir/ids.json" > "$dir/ids.txt"
  local ids; ids=$(jq length "$dir/ids.json")
  jq -c "{$QUESTION, subject_ids: .}" "$dir/ids.json" > "$dir/ask.json"
  echo "== $label: $(jq .imported "$dir/import.json") users imported; marketing by SMS asked for $ids of them"
  # Three audiences in a row, each answered in full before the next: the
  # median is printed (a shared machine's speed drifts within a minute).
  local t=""
  for _ in 1 2 3; do
    t="$t $(curl -s -o "$dir/answer.json" -w '%{time_total}' -X POST localhost:$PORT/api/v1/audiences \
        -H "Authorization: Bearer $token" -H 'content-type: application/json' --data-binary @"$dir/ask.json")"
  done
  local asked; asked=$(jq .asked "$dir/answer.json")
  local one
  one=$(DERBES_TOKEN=$token DERBES_IDS="$dir/ids.txt" wrk -t2 -c"$CONNS" -d"${SECS}s" -s bench/audience.lua \
        http://127.0.0.1:$PORT/api/v1/decisions | grep '^rate')
  kill -TERM $pid; wait $pid || true
  python3 - "$asked" "$t" "$one" <<'PY'
import sys
asked = int(sys.argv[1])
times = sorted(float(x) for x in sys.argv[2].split())
t = times[len(times) // 2]
w = sys.argv[3].split()
one = {w[i]: float(w[i + 1]) for i in range(0, len(w), 2)}
rate = asked / t
print(f"   one at a time (the peer: POST /decisions, wrk) {one['rate']:>10,.0f} decisions/s   p99 {one['p99'] / 1000:.2f} ms   non-2xx {one['non2xx']:.0f}")
print(f"   one audience (POST /audiences, {asked:,} ids)   {rate:>10,.0f} decisions/s   ({t:.2f} s, the median of {', '.join(f'{x:.2f}' for x in times)} s; every decision audited)")
print(f"   ratio audience / one at a time: {rate / one['rate']:.1f}x")
PY
  env "${env[@]}" $BIN audit verify | sed "s/^/   audit: /"
  rm -rf "$dir"
}

run sqlite ""
if pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  schema="bench_$$"
  psql "$PGURL" -qc "CREATE SCHEMA $schema"
  run postgres "$PGURL?options=-c%20search_path%3D$schema"
  psql "$PGURL" -qc "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE"
fi
