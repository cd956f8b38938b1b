#!/usr/bin/env bash
# Checks that every C source and header of crier is formatted as
# .clang-format says (the same files `make format` rewrites): one check per
# file, "FAIL file" for each that is not, and a closing
# "format: N passed, N failed". `make format` fixes them.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
while IFS= read -r f; do
  if clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $f (make format)"
  fi
done < <(ls common/*.[ch] gateway/*.[ch] hub/*.[ch] transports/*/*.[ch] \
  tests/unit/*.[ch] tests/fuzz/*.c tests/bench/*.c 2>/dev/null)
echo "format: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
