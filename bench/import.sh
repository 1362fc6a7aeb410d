#!/usr/bin/env bash
# Importing an existing user base against the durable single-registration
# path, in one run: `derbes dev seed` registers users one at a time through
# Engine::register (8 in flight, each its own durable transaction with its
# audit record: what the app's registrations do), then `derbes import`
# brings in a file of synthetic users (every line validated as a
# registration, batches committed with the checkpoint). Each on a fresh
# store; prints both rates and the ratio, then verifies the audit chains.
# SQLite, then PostgreSQL.
# Usage: bench/import.sh [subjects in the file] [subjects registered one at a time]   (release build)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
P="${2:-10000}"
PGURL="${DERBES_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
command -v jq >/dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 2; }
cargo build --release -q -p derbes
BIN=$PWD/target/release/derbes
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$BIN dev seed --subjects "$N" --out "$work/users.jsonl" >/dev/null

# A fresh store: a data directory (and, on PostgreSQL, a schema of its own).
fresh() {
  local name="$1" url="$2"
  mkdir -m 700 "$work/$name"
  local env="DERBES_DATA_DIR=$work/$name DERBES_LOG=warn"
  if [ -n "$url" ]; then
    local schema="bench_${name}_$$"
    psql "$PGURL" -qc "CREATE SCHEMA $schema"
    echo "$schema" >> "$work/schemas"
    env="$env DATABASE_URL=$url?options=-c%20search_path%3D$schema"
  fi
  echo "$env"
}

run() {
  local label="$1" url="$2"
  local a b
  a=$(fresh "${label}_one" "$url")
  b=$(fresh "${label}_import" "$url")
  echo "== $label"
  env $a $BIN dev seed --subjects "$P" --json > "$work/one.json"
  env $b $BIN import "$work/users.jsonl" --json > "$work/import.json" || true
  python3 - "$work/one.json" "$work/import.json" <<'PY'
import json, sys
one, imp = (json.load(open(f)) for f in sys.argv[1:3])
print(f"   one at a time (the peer: Engine::register, 8 in flight) {one['registrations_per_second']:>9,.0f} subjects/s   ({one['registered']:,} in {one['seconds']:.1f} s)")
print(f"   derbes import (batches of 10,000: the default)          {imp['subjects_per_second']:>9,.0f} subjects/s   ({imp['imported']:,} in {imp['seconds']:.1f} s; {imp['refused']:,} lines refused: minors)")
print(f"   ratio import / one at a time: {imp['subjects_per_second'] / one['registrations_per_second']:.1f}x")
PY
  env $a $BIN audit verify | sed "s/^/   audit (one at a time): /"
  env $b $BIN audit verify | sed "s/^/   audit (import): /"
}

run sqlite ""
if pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  run postgres "$PGURL"
  for s in $(cat "$work/schemas"); do psql "$PGURL" -qc "SET client_min_messages = warning; DROP SCHEMA $s CASCADE"; done
fi
