#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/bench/smoke.sh PORT - a ~10-second smoke run of the load generator
# against a crier already listening on 127.0.0.1:PORT: 50 WebSocket, 50 SSE
# and 20 long-poll subscribers on one fresh room, then 200 published
# messages. Exits non-zero unless every subscriber got every message (once,
# in order) and every publish was answered 2xx.
set -euo pipefail

port=${1:?usage: tests/bench/smoke.sh PORT}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

LOADGEN=build/loadgen
COUNT=200
if [ ! -x "$LOADGEN" ] || [ tests/bench/loadgen.c -nt "$LOADGEN" ]; then
    mkdir -p build
    ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wformat=2 -o "$LOADGEN" tests/bench/loadgen.c
fi

tmp=$(mktemp -d /tmp/crier-smoke.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

base="http://127.0.0.1:$port"
room="smoke-$$-$RANDOM"
kinds=(ws sse poll)
declare -A subs=([ws]=50 [sse]=50 [poll]=20)
declare -A path=([ws]=ws [sse]=events [poll]="poll?since=0")

for k in "${kinds[@]}"; do
    "$LOADGEN" --kind "$k" --url "$base/rooms/$room/${path[$k]}" --subs "${subs[$k]}" \
        --expect "$COUNT" --ready-file "$tmp/ready.$k" --connect-timeout 5 \
        --drain-timeout 5 --duration 20 >"$tmp/$k.json" 2>"$tmp/$k.err" &
    pids+=($!)
done

# publish once every subscriber is connected (crier's SSE and WS do not replay)
for k in "${kinds[@]}"; do
    for _ in $(seq 80); do
        [ -e "$tmp/ready.$k" ] && break
        sleep 0.1
    done
done

pub_rc=0
"$LOADGEN" --pub "$base/rooms/$room/messages" --count "$COUNT" --size 100 --duration 10 \
    >"$tmp/pub.json" 2>"$tmp/pub.err" || pub_rc=$?

passed=0 failed=0
report() { # NAME RC JSONFILE ERRFILE
    local line
    line=$(cat "$3" 2>/dev/null || true)
    if [ "$2" = 0 ]; then
        passed=$((passed + 1))
        echo "smoke: $1 ok $line"
    else
        failed=$((failed + 1))
        echo "smoke: $1 FAILED (exit $2) $line"
        sed 's/^/  /' "$4" 2>/dev/null || true
    fi
}
report pub "$pub_rc" "$tmp/pub.json" "$tmp/pub.err"
for i in "${!kinds[@]}"; do
    rc=0
    wait "${pids[$i]}" || rc=$?
    report "${kinds[$i]}" "$rc" "$tmp/${kinds[$i]}.json" "$tmp/${kinds[$i]}.err"
done
pids=()
echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
