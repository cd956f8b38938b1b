#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/bench/smoke.sh PORT - a ~10-second smoke run of the load generator
# against a crier already listening on 127.0.0.1:PORT: 50 WebSocket, 50 SSE
# and 20 long-poll subscribers, 50 WebSocket subscribers reading in
# batches (--batch-ms 5, as `make bench` reads) and 10 of which one stops
# reading (--stall-one, left out of the accounting), on one fresh room, then
# 200 published messages (answer times reported); a publisher that stops
# after a time (--pub-secs 1 at 50 msg/s: 40-60 sent). Then the Socket.IO peer of `make bench`
# (tests/bench/socketio-server.mjs on a free port): 20 Engine.IO v4
# subscribers, 50 messages at a fixed rate with pipelined POSTs (skipped,
# and said so, when the socket.io package is not installed). Exits non-zero
# unless every subscriber got every message (once, in order) and every
# publish was answered 2xx.
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
kinds=(ws sse poll ws-batch ws-stall)
declare -A subs=([ws]=50 [sse]=50 [poll]=20 [ws-batch]=50 [ws-stall]=10)
declare -A path=([ws]=ws [sse]=events [poll]="poll?since=0" [ws-batch]=ws [ws-stall]=ws)
declare -A extra=([ws]="" [sse]="" [poll]="" [ws-batch]="--batch-ms 5" [ws-stall]="--stall-one")

for k in "${kinds[@]}"; do
    # shellcheck disable=SC2086
    kind=${k%-batch}
    "$LOADGEN" --kind "${kind%-stall}" --url "$base/rooms/$room/${path[$k]}" --subs "${subs[$k]}" \
        --expect "$COUNT" --ready-file "$tmp/ready.$k" --connect-timeout 5 \
        --drain-timeout 5 --duration 20 ${extra[$k]} >"$tmp/$k.json" 2>"$tmp/$k.err" &
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
# --stall-one: one of ws-stall's subscribers never read, was left out
# (the others got every message: exit 0 above); the publisher timed its answers
if grep -q '"stalled":1' "$tmp/ws-stall.json" && grep -q '"answer_ms":{"p50":[0-9.]*,"p99"' "$tmp/pub.json"; then
    passed=$((passed + 1))
    echo "smoke: stall-one and answer_ms ok"
else
    failed=$((failed + 1))
    echo "smoke: stall-one / answer_ms FAILED (no \"stalled\":1 or no answer_ms)"
fi
# --pub-secs: a publisher that stops after 1 s at 50 msg/s (about 50 sent)
rc=0
"$LOADGEN" --pub "$base/rooms/$room-t/messages" --count 100000 --rate 50 --pub-secs 1 --duration 10 \
    >"$tmp/pubsecs.json" 2>"$tmp/pubsecs.err" || rc=$?
sent=$(sed -n 's/.*"sent":\([0-9]*\).*/\1/p' "$tmp/pubsecs.json")
if [ "$rc" = 0 ] && [ "${sent:-0}" -ge 40 ] && [ "${sent:-0}" -le 60 ]; then
    passed=$((passed + 1))
    echo "smoke: pub-secs ok (sent $sent)"
else
    failed=$((failed + 1))
    echo "smoke: pub-secs FAILED (exit $rc, sent ${sent:-?})"
fi

# The Socket.IO peer, when its package is there (npm install).
if (cd tests/bench && node --input-type=module -e "await import('socket.io')" 2>/dev/null); then
    sport=
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then sport=$p; break; fi
    done
    node tests/bench/socketio-server.mjs "$sport" 2>"$tmp/sio-server.err" &
    pids+=($!)
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$sport/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    rc=0
    "$LOADGEN" --kind sio --url "http://127.0.0.1:$sport/socket.io/?EIO=4&transport=websocket&room=s" \
        --subs 20 --pub "http://127.0.0.1:$sport/pub/s" --count 50 --rate 100 --pipeline 4 \
        --connect-timeout 5 --drain-timeout 5 --duration 20 >"$tmp/sio.json" 2>"$tmp/sio.err" || rc=$?
    report sio "$rc" "$tmp/sio.json" "$tmp/sio.err"
else
    echo "smoke: sio skipped (the socket.io package is not installed: npm install)"
fi
echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
