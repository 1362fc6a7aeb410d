#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz, libFuzzer, nightly) and fails on any
# crash. Per target it prints the executions done and the crashes found.
#
#   fuzz/run.sh                        # FUZZ_RUNS executions each (default 20000)
#   FUZZ_RUNS=10000000 fuzz/run.sh     # the long run
#   FUZZ_SECONDS=30 fuzz/run.sh        # or a time budget per target
#   fuzz/run.sh json_body kz_ids       # some targets only
#
# Seeds are in fuzz/seeds/<target>; what a run discovers goes to a
# temporary corpus, and a crashing input to fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

RUNS="${FUZZ_RUNS:-20000}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "FAIL: the nightly toolchain is needed for cargo-fuzz" >&2
  exit 1
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
if ! cargo +nightly fuzz build -O >"$corpus/build.log" 2>&1; then
  cat "$corpus/build.log" >&2
  exit 1
fi

budget=(-runs="$RUNS")
[ -n "${FUZZ_SECONDS:-}" ] && budget=(-max_total_time="$FUZZ_SECONDS")

status=0
printf '%-12s %12s %8s %9s\n' target executions crashes seconds
for t in "${targets[@]}"; do
  mkdir -p "$corpus/$t"
  set +e
  cargo +nightly fuzz run -O "$t" "$corpus/$t" "seeds/$t" -- \
    "${budget[@]}" -max_len=65536 -print_final_stats=1 >"$corpus/$t.log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$corpus/$t.log" | grep -o '[0-9]*$' | tail -1)
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$corpus/$t.log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1)
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1
    status=1
  fi
  printf '%-12s %12s %8s %9s\n' "$t" "${execs:-?}" "$crashes" "${secs:-?}"
  if [ "$rc" -ne 0 ]; then
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$corpus/$t.log" | head -10 >&2
  fi
done
exit "$status"
