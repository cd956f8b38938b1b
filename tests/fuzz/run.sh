#!/usr/bin/env bash
# Runs every libFuzzer harness built in $B/fuzz (make fuzz-build) for a while.
#   tests/fuzz/run.sh [SECONDS] [NAME...]     (default 60 s each, every harness)
# Each harness starts from a scratch copy of its seed corpus
# (tests/fuzz/corpus/NAME/ -> $B/fuzz/corpus/NAME/, which keeps what runs
# add), with tests/fuzz/NAME.dict when present and the extra libFuzzer flags
# in tests/fuzz/NAME.options (one line; default -max_len=4096). A crash, leak
# or sanitizer report is written to $B/fuzz/artifacts/NAME-*, the full log to
# $B/fuzz/logs/NAME.log. Prints one line per harness and ends with
# "fuzz: N passed, N failed"; exits non-zero when any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-60}
shift || true
B=${B:-build}
out=$B/fuzz
mkdir -p "$out/artifacts" "$out/logs" "$out/corpus"
# strict_string_checks: a str* function given bytes that are not a C string
# (e.g. a message envelope, which has no NUL) is reported, not only when it
# happens to run into unmapped memory.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:strict_string_checks=1"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  name=${name#fuzz_}
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  bin=$out/fuzz_$name
  if [ ! -x "$bin" ]; then
    echo "fuzz_$name: FAIL not built ($bin; make fuzz-build)"
    failed=$((failed + 1))
    continue
  fi
  corpus=$out/corpus/$name
  mkdir -p "$corpus"
  if [ -d "tests/fuzz/corpus/$name" ]; then cp -n "tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null; fi
  opts=(-max_total_time="$secs" -timeout=25 -print_final_stats=1 -max_len=4096
    -artifact_prefix="$out/artifacts/$name-")
  [ -f "tests/fuzz/$name.dict" ] && opts+=(-dict="tests/fuzz/$name.dict")
  if [ -f "tests/fuzz/$name.options" ]; then
    read -ra extra <"tests/fuzz/$name.options"
    opts+=("${extra[@]}")
  fi
  log=$out/logs/$name.log
  nice -n "${FUZZ_NICE:-5}" "$bin" "${opts[@]}" "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  units=$(find "$corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
    echo "fuzz_$name: ok ${execs:-?} runs in ${secs}s, ${eps:-?} exec/s, ${cov:-cov: ?}, corpus $units"
    passed=$((passed + 1))
  else
    # a sanitizer's summary, else the harness's own message (the line before
    # libFuzzer's), else libFuzzer's
    what=$(grep -m1 -E 'SUMMARY: [A-Za-z]+Sanitizer|runtime error:' "$log")
    [ -n "$what" ] || what=$(grep -m1 -B1 -E '^==[0-9]+== ERROR: libFuzzer' "$log" | grep -v -E '^(#|INFO|==)' | head -1)
    [ -n "$what" ] || what=$(grep -m1 -E 'ERROR: libFuzzer' "$log")
    what=${what:0:240}
    art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "fuzz_$name: FAIL exit $rc: ${what:-see $log}${art:+ (input: $art)}"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
