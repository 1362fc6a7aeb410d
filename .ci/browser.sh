#!/usr/bin/env bash
# The pages people work in, in a real browser: the system's Chromium (Debian
# package `chromium`) driven by playwright-core, with axe-core (both from
# npm, pinned in tests/browser/package-lock.json). Installs what is missing;
# screenshots land in target/browser/ (FAILED-*.png on a failure).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${DERBES_BIN:-target/debug/derbes}"
[ -x "$BIN" ] || cargo build -q -p derbes

if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium is missing; installing it"
  (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) \
    || { echo "FAIL: chromium could not be installed" >&2; exit 1; }
fi
if ! command -v node >/dev/null 2>&1; then
  echo "node is missing; installing it"
  (apt-get install -y -q nodejs npm >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q nodejs npm >/dev/null; }) \
    || { echo "FAIL: node could not be installed" >&2; exit 1; }
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)

status=0
for t in tests/browser/*.mjs; do
  echo "-- $t"
  DERBES_BIN="$BIN" node "$t" || status=1
done
exit "$status"
