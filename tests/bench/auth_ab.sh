#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/bench/auth_ab.sh - what access control costs per delivery: the
# 1000 x 1000 fanout (KIND=ws or sse) against build/crier with auth off and
# on, alternating, three times each. "On": tests/bench/crier.json plus an
# auth section (an HS256 token per subscriber whose rooms claim lists the
# room, an API key for the publisher), as `make bench`'s "auth on" rows.
# Prints crier's user+system CPU ticks (/proc) and the load generator's
# figures per run. Loopback only; each run is bounded by --duration.
#   KIND=sse bash tests/bench/auth_ab.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
KIND=${KIND:-ws}
RUNS=${RUNS:-3}
[ -x build/crier ] || make build/crier
[ -x build/loadgen ] || cc -std=c11 -D_GNU_SOURCE -O2 -o build/loadgen tests/bench/loadgen.c
TMP=$(mktemp -d /tmp/crier-auth-ab.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
secret=bench-secret-0123456789abcdef key=bench-api-key-0123456789
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
body=$(printf '{"sub":"bench","exp":%d,"rooms":{"subscribe":["f-*"]}}' $(($(date +%s) + 3600)) | b64url)
sig=$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
jq --arg s "$secret" --arg k "$key" '. + {auth: {jwt: {hmac_secret: $s},
    rooms: [{match: "f-*", subscribe: "claim", publish: "api_key"}], api_keys: [$k]}}' \
    tests/bench/crier.json >"$TMP/auth.json"
path=ws
[ "$KIND" = sse ] && path=events
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
for i in $(seq "$RUNS"); do
    for mode in off on; do
        port=$((30000 + RANDOM % 2000))
        cfg=tests/bench/crier.json sq= pq=
        if [ "$mode" = on ]; then
            cfg=$TMP/auth.json sq="?access_token=$head.$body.$sig" pq="?access_token=$key"
        fi
        ./build/crier --config "$cfg" --listen "127.0.0.1:$port" >"$TMP/crier.log" 2>&1 &
        pid=$!
        sleep 0.5
        t0=$(ticks "$pid")
        build/loadgen --kind "$KIND" --url "http://127.0.0.1:$port/rooms/f-$i/$path$sq" \
            --subs 1000 --src-ips 16 --connect-timeout 20 --drain-timeout 60 --duration 100 \
            --pub "http://127.0.0.1:$port/rooms/f-$i/messages$pq" --count 1000 --rate 0 \
            --size 100 >"$TMP/lg.json" || true
        t1=$(ticks "$pid")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        echo "$KIND auth $mode: crier cpu ticks $((t1 - t0)) (of $(getconf CLK_TCK)/s)" \
            "$(jq -c '{delivered, deliveries_per_s, p99: .latency_ms.p99}' "$TMP/lg.json")"
    done
done
