#!/usr/bin/env bash
# Runs crier's tests and ends with one line "N passed, N failed".
#   tests/run.sh              every suite
#   tests/run.sh unit         C unit tests (build/test/unit/*)
#   tests/run.sh integration  node tests against build/test/crier
#   tests/run.sh browser      headless Chromium tests of web/
# Expects the binaries built (make test does that).
set -uo pipefail
cd "$(dirname "$0")/.."

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CRIER_BIN=${CRIER_BIN:-build/test/crier}

which=${1:-all}
passed=0
failed=0
artifacts=tests/artifacts
mkdir -p "$artifacts"

add_counts() { # "$label" passed failed
  echo "== $1: $2 passed, $3 failed"
  passed=$((passed + $2))
  failed=$((failed + $3))
}

run_unit() {
  for t in build/test/unit/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1)
    rc=$?
    echo "$out" | grep -v -E '^ok |^[0-9]+ passed, [0-9]+ failed$' || true
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    p=$(echo "$line" | awk '{print $1}')
    f=$(echo "$line" | awk '{print $3}')
    if [ -z "$line" ]; then p=0; f=1; echo "$t: crashed or printed no summary (exit $rc)"; fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$t: exit $rc"; fi
    add_counts "$(basename "$t")" "$p" "$f"
  done
}

run_node_suite() { # name dir
  local tap=$artifacts/$1.tap
  node --test --test-concurrency=2 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    "$2"/
  local rc=$?
  local p f
  p=$(grep -E '^# pass [0-9]+' "$tap" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$tap" | tail -1 | awk '{print $3}')
  p=${p:-0}
  f=${f:-1}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  add_counts "$1" "$p" "$f"
}

case "$which" in
  unit) run_unit ;;
  integration) run_node_suite integration tests/integration ;;
  browser) run_node_suite browser tests/browser ;;
  all)
    run_unit
    run_node_suite integration tests/integration
    [ -d tests/browser ] && run_node_suite browser tests/browser
    ;;
  *) echo "usage: $0 [unit|integration|browser|all]"; exit 2 ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
