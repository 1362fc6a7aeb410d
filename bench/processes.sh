#!/usr/bin/env bash
# More than one process on one PostgreSQL database: 1, 2 and 4 `derbes
# serve` processes (each its own port) over the same database, wrk spread
# across them (one wrk per process, the connections split evenly), for
# audited decisions and for registrations; every process appends to the one
# audit chain (PostgreSQL advisory lock), verified intact after each step.
# The peer is one process: the ratio says what the extra processes add.
# Usage: bench/processes.sh [seconds] [connections]   (needs wrk, PostgreSQL; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
CONNS="${2:-64}"
PGURL="${DERBES_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
pg_isready -h 127.0.0.1 -q || { echo "PostgreSQL is not running at 127.0.0.1:5432" >&2; exit 2; }
cargo build --release -q -p derbes
BIN=$PWD/target/release/derbes
schema="bench_proc_$$"
psql "$PGURL" -qc "CREATE SCHEMA $schema"
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; psql "$PGURL" -qc "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE" || true; rm -rf "$dir"' EXIT
mkdir -m 700 "$dir/data"
export DERBES_DATA_DIR="$dir/data" DERBES_LOG=warn DATABASE_URL="$PGURL?options=-c%20search_path%3D$schema"
$BIN migrate >/dev/null
token=$($BIN staff add --name bench --role backend_service --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')

start() {  # start N servers on 19001..
  local n=$1
  pids=()
  for i in $(seq 1 "$n"); do
    $BIN serve --listen 127.0.0.1:$((19000 + i)) >/dev/null 2>"$dir/serve$i.log" &
    pids+=($!)
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 100); do curl -sf localhost:$((19000 + i))/healthz >/dev/null && break; sleep 0.1; done
  done
}
stop() { kill -TERM "${pids[@]}"; wait "${pids[@]}" || true; }

start 1
subject=$(curl -s -X POST localhost:19001/api/v1/subjects -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"fields":{"identity.iin":"871008401427","identity.rk_citizen":true,"full_name.surname":"Бенчмаркова","full_name.first_name":"Тест","contact.phone":"+77010000001"},"consents":[{"kind":"policy"}]}' \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["subject_id"])')
stop

# One wrk per process, the connections split; the sum of their rates.
spread() {
  local n=$1 what=$2 base=$3
  local out=() tag="$dir/$what-$n"
  for i in $(seq 1 "$n"); do
    if [ "$what" = decisions ]; then
      DERBES_TOKEN=$token DERBES_SUBJECT=$subject wrk -t1 -c$((CONNS / n)) -d"${SECS}s" -s bench/decisions.lua \
        http://127.0.0.1:$((19000 + i))/api/v1/decisions > "$tag-wrk$i" &
    else
      DERBES_TOKEN=$token DERBES_BASE=$((base + i * 200000)) wrk -t1 -c$((CONNS / n)) -d"${SECS}s" -s bench/register.lua \
        http://127.0.0.1:$((19000 + i)) > "$tag-wrk$i" &
    fi
    out+=($!)
  done
  wait "${out[@]}"
  cat "$tag"-wrk* | grep '^rate' | python3 -c '
import sys
rates = [dict(zip(l.split()[0::2], map(float, l.split()[1::2]))) for l in sys.stdin]
print(sum(r["rate"] for r in rates), max(r["p99"] for r in rates) / 1000, sum(r["non2xx"] for r in rates))'
}

echo "== PostgreSQL, $SECS s each, $CONNS connections in all, every decision and registration audited"
declare -A dec reg
round=0
for n in 1 2 4; do
  start "$n"
  read -r rate p99 bad < <(spread "$n" decisions 0)
  dec[$n]=$rate
  printf '   %d process(es): decisions     %9.0f /s   p99 %6.2f ms   non-2xx %.0f\n' "$n" "$rate" "$p99" "$bad"
  round=$((round + 1))
  read -r rate p99 bad < <(spread "$n" registrations $((round * 1000000)))
  reg[$n]=$rate
  printf '   %d process(es): registrations %9.0f /s   p99 %6.2f ms   non-2xx %.0f\n' "$n" "$rate" "$p99" "$bad"
  stop
  $BIN audit verify | sed 's/^/      audit: /'
done
python3 - "${dec[1]}" "${dec[2]}" "${dec[4]}" "${reg[1]}" "${reg[2]}" "${reg[4]}" <<'PY'
import sys
d1, d2, d4, r1, r2, r4 = map(float, sys.argv[1:])
print(f"   ratio to one process (the peer): decisions 2: {d2 / d1:.2f}x  4: {d4 / d1:.2f}x;  registrations 2: {r2 / r1:.2f}x  4: {r4 / r1:.2f}x")
PY
