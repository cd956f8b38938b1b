#!/usr/bin/env bash
# Runs crier's tests and ends with one line "N passed, N failed".
#   tests/run.sh              every suite
#   tests/run.sh unit         C unit tests (build/test/unit/*)
#   tests/run.sh layers       the folders point down only (tests/layers.sh: no
#                             #include of an upper layer), no build needed
#   tests/run.sh format       every C file as .clang-format says (tests/format.sh)
#   tests/run.sh integration  node tests against build/test/crier, twice: on the
#                             memory backplane, then on a Redis one (a
#                             redis-server started here for that pass)
#   tests/run.sh tsan         the threaded unit tests (build/tsan/unit/*), the
#                             integration suite (memory; on Redis the files in
#                             TSAN_REDIS_FILES) and the scale-out suite against
#                             the ThreadSanitizer build build/tsan/crier
#   tests/run.sh scaleout     several crier nodes on Redis, with nginx in front
#   tests/run.sh browser      headless Chromium tests of web/
#   tests/run.sh ops          install, package and deploy (tests/ops/): make
#                             install into a DESTDIR, the systemd unit (systemd-
#                             analyze verify), make deb + dpkg -i/--purge (needs
#                             root or sudo -n), deploy/nginx-site.conf in nginx
#   tests/run.sh smoke        a 10-second load-generator run against build/crier
#   tests/run.sh fuzz         each libFuzzer harness (build/fuzz/) for FUZZ_SMOKE_SECONDS
#                             (default 5): one pass per harness that ran clean
# Expects the binaries built (make test does that).
set -uo pipefail
cd "$(dirname "$0")/.."

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CRIER_BIN=${CRIER_BIN:-build/test/crier}

which=${1:-all}
passed=0
failed=0
failures=() # "suite: test: error", printed again just above the last line
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
    if [ "$f" -ne 0 ]; then
      while IFS= read -r l; do failures+=("$(basename "$t"): $l"); done \
        < <(echo "$out" | grep -E '^(not ok|FAIL)' || echo "exit $rc")
    fi
    add_counts "$(basename "$t")" "$p" "$f"
  done
}

# TEST_FILES: a space-separated list of file stems in dir (default: all).
run_node_suite() { # name dir
  local tap=$artifacts/$1.tap targets=("$2"/) f
  if [ -n "${TEST_FILES:-}" ] && [ "$TEST_FILES" != all ]; then
    targets=()
    for f in $TEST_FILES; do targets+=("$2/$f.test.js"); done
  fi
  node --test --test-concurrency=2 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    "${targets[@]}"
  local rc=$?
  local p f
  p=$(grep -E '^# pass [0-9]+' "$tap" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$tap" | tail -1 | awk '{print $3}')
  p=${p:-0}
  f=${f:-1}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$f" -ne 0 ]; then
    while IFS= read -r l; do failures+=("$1: $l"); done \
      < <(awk -f tests/lib/tap-failures.awk "$tap"; [ "$rc" -ne 0 ] && echo "node --test exited $rc")
  fi
  add_counts "$1" "$p" "$f"
}

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# The integration suite again, every crier on the Redis backplane of one
# redis-server (each with a key prefix of its own: tests/lib/server.js).
run_integration_redis() { # [suite name]
  local name=${1:-integration-redis}
  local port dir pid
  port=$(free_port)
  dir=$(mktemp -d)
  /usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    >"$artifacts/$name-server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  CRIER_TEST_BACKPLANE=redis CRIER_TEST_REDIS_URL="redis://127.0.0.1:$port/0" \
    run_node_suite "$name" tests/integration
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -rf "$dir"
}

# The load generator against the release build, on a free loopback port.
run_smoke() {
  local port log pid rc out
  port=$(free_port)
  log=$artifacts/smoke-crier.log
  build/crier --listen "127.0.0.1:$port" --config tests/bench/crier.json >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  out=$(bash tests/bench/smoke.sh "$port" 2>&1)
  rc=$?
  echo "$out"
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  local p f
  p=$(echo "$out" | sed -n 's/^smoke: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
  f=$(echo "$out" | sed -n 's/^smoke: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
  p=${p:-0}
  f=${f:-1}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$f" -ne 0 ]; then
    while IFS= read -r l; do failures+=("smoke: $l"); done < <(echo "$out" | grep -v ' ok ' | tail -3)
  fi
  add_counts smoke "$p" "$f"
}

# --- ThreadSanitizer suites (issue #11) -----------------------------------
# The integration suite against build/tsan/crier (make tsan), on the memory
# backplane and on Redis, and the scale-out suite (Redis killed and restarted,
# SignalR forwarded between nodes; nginx in front). Every crier writes its TSan reports to
# $artifacts/tsan/SUITE/crier.PID and exits 66: tests/lib/server.js fails the
# test whose crier wrote one, and tsan_scan then names every report file as a
# failure (also those of criers no test stopped cleanly). Suppressions, each
# with its reason: tests/tsan.supp. The bar is zero reports.
tsan_scan() { # suite dir
  local f n=0
  for f in "$2"/crier.*; do
    [ -e "$f" ] || continue
    while IFS= read -r l; do
      failures+=("$1: $l (${f#"$PWD"/})")
      n=$((n + 1))
    done < <(grep -E '^SUMMARY: ThreadSanitizer' "$f" || echo "ThreadSanitizer output")
  done
  add_counts "$1 reports" $((n == 0 ? 1 : 0)) "$n"
}

# The threaded unit tests built with -fsanitize=thread (make tsan:
# build/tsan/unit/*); their reports land where tsan_scan looks.
run_unit_tsan() {
  local t out rc p f
  for t in build/tsan/unit/test_*; do
    [ -x "$t" ] || { failures+=("unit-tsan: $t missing (make tsan)"); add_counts unit-tsan 0 1; continue; }
    out=$("$t" 2>&1)
    rc=$?
    p=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1 | awk '{print $1}')
    f=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1 | awk '{print $3}')
    [ -n "$p" ] || { p=0; f=1; }
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    [ "$f" -eq 0 ] || failures+=("unit-tsan: $(basename "$t") exit $rc")
    add_counts "unit-tsan $(basename "$t")" "$p" "$f"
  done
}

# On Redis, ThreadSanitizer runs the files where the backplane's thread meets
# the hub and the transports (publish and fanout, resume, SignalR across
# connections, presence, users API, backpressure, room info): the scale-out
# suite under TSan runs every Redis path again across nodes. TSAN_REDIS_FILES=all
# runs the whole integration suite there (three more minutes).
TSAN_REDIS_FILES=${TSAN_REDIS_FILES:-fanout resume resume-signalr signalr-cross signalr-transports presence users-api backpressure server-api-rooms history-start cluster-nodes held-close}

run_tsan() {
  local bin=${TSAN_BIN:-build/tsan/crier} suite dir
  if [ ! -x "$bin" ]; then
    echo "== tsan: $bin missing (make tsan)"
    failures+=("tsan: $bin missing")
    add_counts tsan 0 1
    return
  fi
  for suite in unit-tsan integration-tsan integration-redis-tsan scaleout-tsan; do
    dir=$PWD/$artifacts/tsan/$suite
    rm -rf "$dir" && mkdir -p "$dir"
    # atexit_sleep_ms: TSan sleeps that long (default 1000) at exit while
    # another thread runs; crier's held-request watcher
    # (transports/carriers/held_watch.c) is detached and never stopped, so
    # every crier that served a held request (an SSE stream, a long poll) took
    # a second more to exit: about 70 tests of the integration suite, 70 s a
    # pass. A short window stays.
    local opts="log_path=$dir/crier:exitcode=66:second_deadlock_stack=1:atexit_sleep_ms=100"
    opts="$opts:suppressions=$PWD/tests/tsan.supp"
    case $suite in
      unit-tsan) TSAN_OPTIONS=$opts run_unit_tsan ;;
      integration-tsan) CRIER_BIN=$bin TSAN_OPTIONS=$opts run_node_suite "$suite" tests/integration ;;
      integration-redis-tsan)
        CRIER_BIN=$bin TSAN_OPTIONS=$opts TEST_FILES=$TSAN_REDIS_FILES run_integration_redis "$suite" ;;
      scaleout-tsan) CRIER_BIN=$bin TSAN_OPTIONS=$opts run_node_suite "$suite" tests/scaleout ;;
    esac
    tsan_scan "$suite" "$dir"
  done
}
# --- end ThreadSanitizer suites ----------------------------------------------

# A script that ends with "NAME: N passed, N failed" and marks each failed
# check with a line matching PATTERN, counted as a suite.
run_counted() { # name pattern command...
  local name=$1 pattern=$2 out rc p f
  shift 2
  out=$("$@" 2>&1)
  rc=$?
  echo "$out"
  p=$(echo "$out" | sed -n "s/^$name: \([0-9]*\) passed, \([0-9]*\) failed\$/\1/p")
  f=$(echo "$out" | sed -n "s/^$name: \([0-9]*\) passed, \([0-9]*\) failed\$/\2/p")
  p=${p:-0}
  f=${f:-1}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$f" -ne 0 ]; then
    while IFS= read -r l; do failures+=("$name: $l"); done \
      < <(echo "$out" | grep -E "$pattern" || echo "$* exited $rc")
  fi
  add_counts "$name" "$p" "$f"
}

# The layering rules (tests/layers.sh): one pass or failure per rule.
run_layers() { run_counted layers '^FAIL ' bash tests/layers.sh; }

# clang-format on every C file (tests/format.sh): one check per file.
run_format() { run_counted format '^FAIL ' bash tests/format.sh; }

# Each libFuzzer harness for a few seconds from its seed corpus
# (tests/fuzz/run.sh; `make fuzz` runs them longer).
run_fuzz() { run_counted fuzz ': FAIL ' bash tests/fuzz/run.sh "${FUZZ_SMOKE_SECONDS:-5}"; }

case "$which" in
  unit) run_unit ;;
  layers) run_layers ;;
  format) run_format ;;
  integration)
    run_node_suite integration tests/integration
    run_integration_redis
    ;;
  scaleout) run_node_suite scaleout tests/scaleout ;;
  browser) run_node_suite browser tests/browser ;;
  ops) run_node_suite ops tests/ops ;;
  smoke) run_smoke ;;
  tsan) run_tsan ;;
  fuzz) run_fuzz ;;
  all)
    run_layers
    run_format
    run_unit
    run_node_suite integration tests/integration
    run_integration_redis
    run_node_suite scaleout tests/scaleout
    run_node_suite browser tests/browser
    run_node_suite ops tests/ops
    run_smoke
    run_fuzz
    run_tsan
    ;;
  *) echo "usage: $0 [unit|layers|format|integration|scaleout|browser|ops|smoke|fuzz|tsan|all]"; exit 2 ;;
esac

if [ "${#failures[@]}" -gt 0 ]; then
  echo "== failures (details above and in $artifacts/):"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
