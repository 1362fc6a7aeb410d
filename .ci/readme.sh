#!/usr/bin/env bash
# README.md's walk-through, followed as written: every ```bash block, in
# order, in one bash shell, in a copy of the repository with no data
# directory. The one liberty taken: `cargo build --release` is replaced by
# the binary CI already built (DERBES_BIN, default target/debug/derbes), put
# first on PATH as target/release/derbes. A failing command fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BIN="${DERBES_BIN:-$root/target/debug/derbes}"
[ -x "$BIN" ] || cargo build -q -p derbes
for tool in curl jq; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$tool is missing; installing it"
    (apt-get install -y -q "$tool" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$tool" >/dev/null; }) \
      || { echo "FAIL: $tool could not be installed" >&2; exit 1; }
  fi
done
if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
  echo "FAIL: something already listens on 127.0.0.1:8080, which the walk-through uses" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$work/repo/target/release/derbes serve" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/repo/target/release"
cp -r "$root/README.md" "$work/repo/"
ln -s "$BIN" "$work/repo/target/release/derbes"

python3 - "$root/README.md" > "$work/walk.sh" <<'PY'
import sys
lines, out, inside = open(sys.argv[1], encoding="utf-8").read().split("\n"), [], False
for line in lines:
    if line.strip() == "```bash":
        inside = True
        continue
    if inside and line.strip() == "```":
        inside = False
        continue
    if inside:
        out.append(line)
print("set -euo pipefail")
print("\n".join(l for l in out if l.strip() != "cargo build --release"))
PY
echo "== $(grep -c . "$work/walk.sh") lines of the README's walk-through"
cd "$work/repo"
if timeout 600 bash -x "$work/walk.sh" > "$work/out.log" 2>&1; then
  echo "the walk-through ran as written"
else
  echo "FAIL: the walk-through stopped:" >&2
  tail -40 "$work/out.log" >&2
  echo "-- serve.log:" >&2
  tail -20 serve.log >&2 || true
  exit 1
fi
