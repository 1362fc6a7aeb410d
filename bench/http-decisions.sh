#!/usr/bin/env bash
# HTTP decisions per second with every decision durably audited, on SQLite
# and then on PostgreSQL, with wrk on loopback. Prints both figures.
# Usage: bench/http-decisions.sh [seconds]   (needs wrk; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
PGURL="${DERBES_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
cargo build --release -q -p derbes
BIN=target/release/derbes
PORT=18990

run() {
  local label="$1" url="$2"
  local dir; dir=$(mktemp -d)
  local env=(DERBES_DATA_DIR="$dir" DERBES_LOG=warn)
  [ -n "$url" ] && env+=(DATABASE_URL="$url")
  local token
  token=$(env "${env[@]}" $BIN staff add --name bench --role backend_service --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
  env "${env[@]}" $BIN serve --listen 127.0.0.1:$PORT >/dev/null 2>"$dir/serve.log" &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf localhost:$PORT/healthz >/dev/null && break; sleep 0.1; done
  local subject
  subject=$(curl -sf -X POST localhost:$PORT/api/v1/subjects -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"fields":{"identity.iin":"871008401427","identity.rk_citizen":true,"full_name.surname":"Бенчмаркова","full_name.first_name":"Тест","contact.phone":"+77010000001"},"consents":[{"kind":"policy"}]}' \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["subject_id"])')
  echo "== $label: $SECS s, 2 threads, 64 connections"
  DERBES_TOKEN=$token DERBES_SUBJECT=$subject wrk -t2 -c64 -d"${SECS}s" -s bench/decisions.lua http://127.0.0.1:$PORT/api/v1/decisions | grep -E "Requests/sec|requests|Latency"
  kill -TERM $pid; wait $pid || true
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
