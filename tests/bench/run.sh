#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/bench/run.sh - `make bench`: crier against nginx + nchan, on this
# machine, with the same load generator (tests/bench/loadgen.c) and the same
# scenarios; the two take turns, a fresh server for every scenario:
#
#   fanout   one room, N subscribers, M messages of 100 bytes published as
#            fast as the server answers: ws and sse with 1000 and 10000
#            subscribers, long polling with 1000 (message counts below: on 2
#            cores shared with the load generator both servers manage some
#            50-100k deliveries/s, so 2000 messages to 10000 subscribers alone
#            would take minutes)
#   latency  10000 WebSocket subscribers, a fixed publish rate (5/s is 50k
#            deliveries/s, which both servers can sustain here; 100/s would be
#            1M/s and only measure queueing)
#   memory   server RSS at rest, then with 10000 idle ws / sse / long polls
#            (fresh server for each) -> bytes per connection
#   cpu      server user+system CPU during each fanout run -> deliveries per
#            server CPU-second
#   upstream crier only: upstream hub methods end to end (tests/bench/
#            upstream.mjs): BENCH_UP_CLIENTS official SignalR clients invoke a
#            method answered by a minimal Node backend at BENCH_UP_RATE calls/s
#            for BENCH_UP_SECS; calls/s, p99, and p99 minus the backend's own
#            handling time (reported by the backend in each result)
#   auth     crier only: the 1000-subscriber ws and sse fanouts again with
#            access control on (tests/bench/crier.json plus an auth section:
#            every subscriber presents an HS256 token whose rooms claim lists
#            the room, the publisher an API key), to show what the checks
#            cost next to the same rows with auth off
#
# Prints a table (scenario, metric, crier, nchan, crier/nchan) and writes the
# raw JSON lines to tests/bench/results/ (git-ignored). Loopback only; every
# run is bounded; the whole takes about 7 minutes, and load runs are cut at
# BENCH_BUDGET_S so that it stays under 10.
#
# Knobs (environment):
#   BENCH_SERVERS        "crier nchan" (default) or one of them
#   BENCH_SMALL_COUNT    messages for the 1000-subscriber fanouts (1000)
#   BENCH_BIG_COUNT      messages for the 10000-subscriber fanouts (100)
#   BENCH_HUGE_COUNT     messages for the 19000-subscriber WebSocket fanout (20)
#   BENCH_POLL_COUNT     messages for the long-poll fanout (500)
#   BENCH_LAT_RATE       latency run publish rate, msgs/s (5)
#   BENCH_LAT_SECS       latency run length, s (20)
#   BENCH_IDLE_SUBS      idle connections per kind (10000)
#   BENCH_NCHAN_WORKERS  nginx worker_processes (1)
#   BENCH_SUBS_PER_PROC  most subscribers per loadgen process (15000)
#   BENCH_UP_CLIENTS     upstream: SignalR clients (50)
#   BENCH_UP_RATE        upstream: offered invocations a second, all clients (1000)
#   BENCH_UP_SECS        upstream: measured seconds (10)
#   BENCH_BUDGET_S       every load run ends by this many s after the start,
#                        later scenarios are skipped (560)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

SERVERS=${BENCH_SERVERS:-crier nchan}
SMALL_COUNT=${BENCH_SMALL_COUNT:-1000}
BIG_COUNT=${BENCH_BIG_COUNT:-100}
HUGE_COUNT=${BENCH_HUGE_COUNT:-20}
PIN=          # a command crier starts under (one_core: taskset -c 0)
POLL_COUNT=${BENCH_POLL_COUNT:-500}
LAT_RATE=${BENCH_LAT_RATE:-5}
LAT_SECS=${BENCH_LAT_SECS:-20}
IDLE_SUBS=${BENCH_IDLE_SUBS:-10000}
NCHAN_WORKERS=${BENCH_NCHAN_WORKERS:-1}
PER_PROC=${BENCH_SUBS_PER_PROC:-15000}
BUDGET_S=${BENCH_BUDGET_S:-560}
SRC_IPS=16
SIZE=100

LOADGEN=build/loadgen
LG_FLAGS="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
          -Wmissing-prototypes -Wformat=2"
RESULTS=tests/bench/results
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$RESULTS/bench-$STAMP.jsonl
TABLE=$RESULTS/bench-$STAMP.txt
TMP=$(mktemp -d /tmp/crier-bench.XXXXXX)
T0=$(date +%s%N)
CLK_TCK=$(getconf CLK_TCK)

SRV=          # crier | nchan: the server under test
SRV_MAIN=     # its main process (crier, or the nginx master)
SRV_PIDS=()   # every process whose CPU and RSS count
BASE=         # http://127.0.0.1:PORT
BG_PIDS=()    # loadgen processes in the background

declare -A VAL   # VAL[row|server] = figure
ROWS=()          # table rows in order: "scenario|metric"

# ---------------------------------------------------------------- helpers

elapsed() { echo $((($(date +%s%N) - T0) / 1000000000)); }
log() { printf '[bench %3ss] %s\n' "$(elapsed)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nchan_module() {
    local f
    for f in /usr/lib/nginx/modules/ngx_nchan_module.so /usr/share/nginx/modules/ngx_nchan_module.so; do
        [ -e "$f" ] && { echo "$f"; return 0; }
    done
    return 0
}

install_deps() {
    local pkgs=() sudo=
    command -v nginx >/dev/null || pkgs+=(nginx)
    [ -n "$(nchan_module)" ] || pkgs+=(libnginx-mod-nchan)
    command -v jq >/dev/null || pkgs+=(jq)
    command -v openssl >/dev/null || pkgs+=(openssl)
    [ ${#pkgs[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || sudo=sudo
    log "installing ${pkgs[*]}"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
    [ -n "$(nchan_module)" ] || die "ngx_nchan_module.so not found after installing libnginx-mod-nchan"
}

build_loadgen() {
    mkdir -p build
    # shellcheck disable=SC2086
    ${CC:-cc} $LG_FLAGS -o "$LOADGEN" tests/bench/loadgen.c
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
    local p i
    for i in $(seq 100); do
        p=$((20000 + RANDOM % 12000))
        port_free "$p" && { echo "$p"; return 0; }
    done
    die "no free port"
}

# http_ok PORT PATH: true when GET answers 200.
http_ok() {
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    read -r -t 2 line <&3 || line=
    exec 3<&- 3>&-
    [[ $line == *" 200"* ]]
}

wait_http() {
    local i
    for i in $(seq 100); do
        http_ok "$1" "$2" 2>/dev/null && return 0
        kill -0 "$SRV_MAIN" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

children_of() {
    local f
    for f in /proc/[0-9]*/status; do
        awk -v pp="$1" '$1 == "PPid:" && $2 == pp { found = 1 } END { exit !found }' "$f" 2>/dev/null &&
            basename "$(dirname "$f")"
    done
    return 0
}

# server_ticks: user+system CPU ticks of the server's processes.
server_ticks() {
    local p s t=0
    for p in "${SRV_PIDS[@]}"; do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }
        # shellcheck disable=SC2086
        set -- $s
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}

# server_fds: open file descriptors summed over the server's processes.
server_fds() {
    local p n=0
    for p in "${SRV_PIDS[@]}"; do
        n=$((n + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
    done
    echo "$n"
}

# server_rss_kb: resident memory summed over the server's processes.
server_rss_kb() {
    local p k=0 v
    for p in "${SRV_PIDS[@]}"; do
        v=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$p/status" 2>/dev/null) || v=0
        k=$((k + ${v:-0}))
    done
    echo "$k"
}

CRIER_CONFIG=tests/bench/crier.json # start_crier's config (auth_fanout swaps it)
SUB_QUERY=                          # appended to subscriber URLs (auth_fanout: a token)
PUB_QUERY=                          # appended to publish URLs (auth_fanout: an API key)

start_crier() {
    local port
    port=$(pick_port)
    $PIN ./build/crier --config "$CRIER_CONFIG" --listen "127.0.0.1:$port" >>"$TMP/crier.log" 2>&1 &
    SRV_MAIN=$!
    SRV_PIDS=("$SRV_MAIN")
    BASE="http://127.0.0.1:$port"
    wait_http "$port" /healthz || { tail -20 "$TMP/crier.log" >&2; die "crier did not start"; }
}

start_nchan() {
    local port dir=$TMP/nchan user=
    port=$(pick_port)
    rm -rf "$dir"
    mkdir -p "$dir/tmp"
    [ "$(id -u)" = 0 ] && user="user root root;"
    sed -e "s|@PREFIX@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$NCHAN_WORKERS|g" \
        -e "s|@MODULE@|$(nchan_module)|g" -e "s|@USER@|$user|g" tests/bench/nchan.conf >"$dir/nginx.conf"
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >>"$dir/stderr.log" 2>&1 &
    SRV_MAIN=$!
    BASE="http://127.0.0.1:$port"
    wait_http "$port" /healthz || { cat "$dir/stderr.log" "$dir/error.log" >&2; die "nginx did not start"; }
    # shellcheck disable=SC2207
    SRV_PIDS=("$SRV_MAIN" $(children_of "$SRV_MAIN"))
}

start_server() { "start_$SRV"; }

stop_server() {
    [ -n "$SRV_MAIN" ] || return 0
    local i
    kill -TERM "$SRV_MAIN" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$SRV_MAIN" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SRV_MAIN" 2>/dev/null || true
    wait "$SRV_MAIN" 2>/dev/null || true
    SRV_MAIN=
    SRV_PIDS=()
    sleep 0.5 # let nginx workers go
}

sub_url() { # KIND ROOM
    if [ "$SRV" = crier ]; then
        case $1 in
        ws) echo "$BASE/rooms/$2/ws$SUB_QUERY" ;;
        sse) echo "$BASE/rooms/$2/events$SUB_QUERY" ;;
        poll) echo "$BASE/rooms/$2/poll?since=0" ;;
        esac
    else
        echo "$BASE/sub/$2"
    fi
}

pub_url() { if [ "$SRV" = crier ]; then echo "$BASE/rooms/$1/messages$PUB_QUERY"; else echo "$BASE/pub/$1"; fi; }

# lg KIND SUBS ROOM COUNT RATE DRAIN DURATION: one fanout/latency run, split
# over several loadgen processes above PER_PROC subscribers. Prints the
# (merged) JSON line.
lg() {
    local kind=$1 subs=$2 room=$3 count=$4 rate=$5 drain=$6 dur=$7
    local common=(--kind "$kind" --url "$(sub_url "$kind" "$room")" --poll-style "$SRV"
        --src-ips "$SRC_IPS" --connect-timeout 20 --drain-timeout "$drain" --duration "$dur")
    local pub=(--pub "$(pub_url "$room")" --count "$count" --rate "$rate" --size "$SIZE")
    if [ "$subs" -le "$PER_PROC" ]; then
        "$LOADGEN" "${common[@]}" --subs "$subs" "${pub[@]}" || true
        return 0
    fi
    local n=$(((subs + PER_PROC - 1) / PER_PROC)) i each left=$subs pids=() files=() deadline
    for i in $(seq "$n"); do
        each=$((left / (n - i + 1)))
        left=$((left - each))
        rm -f "$TMP/ready.$i"
        "$LOADGEN" "${common[@]}" --subs "$each" --expect "$count" --ready-file "$TMP/ready.$i" \
            >"$TMP/lg.$i.json" &
        pids+=($!)
        BG_PIDS+=($!)
        files+=("$TMP/lg.$i.json")
    done
    deadline=$(($(elapsed) + 45))
    for i in $(seq "$n"); do
        while [ ! -e "$TMP/ready.$i" ] && [ "$(elapsed)" -lt "$deadline" ]; do sleep 0.1; done
    done
    "$LOADGEN" "${pub[@]}" --duration "$dur" >"$TMP/lg.pub.json" || true
    for i in "${pids[@]}"; do wait "$i" || true; done
    BG_PIDS=()
    cat "${files[@]}" "$TMP/lg.pub.json" | jq -cs '
        (map(select(.kind != "pub"))) as $s | (map(select(.kind == "pub"))[0]) as $p |
        ($s | map(.delivery_window_s) | max) as $w |
        {kind: $s[0].kind, subs: ($s | map(.subs) | add), connected: ($s | map(.connected) | add),
         failed: ($s | map(.failed) | add), sent: $p.sent,
         delivered: ($s | map(.delivered) | add), expected: ($s | map(.expected) | add),
         deliveries_per_s: (if $w > 0 then ($s | map(.delivered) | add) / $w | floor else 0 end),
         latency_ms: {p50: ($s | map(.latency_ms.p50) | max), p90: ($s | map(.latency_ms.p90) | max),
                      p99: ($s | map(.latency_ms.p99) | max), max: ($s | map(.latency_ms.max) | max)},
         duration_s: (map(.duration_s) | max), errors: (map(.errors) | add),
         loadgen_cpu_s: (map(.loadgen_cpu_s) | add), complete: ($s | map(.complete) | add),
         dups: ($s | map(.dups) | add), gaps: ($s | map(.gaps) | add), pub_errors: $p.pub_errors,
         pub_per_s: $p.pub_per_s, processes: length, latency_merge: "max over processes"}'
}

# record SCENARIO JSON [JQ_ARGS... FILTER]: appends the JSON line, tagged
# with scenario and server and passed through FILTER.
record() {
    local scen=$1 json=$2 filter=.
    shift 2
    if [ $# -gt 0 ]; then
        filter=${!#}
        set -- "${@:1:$(($# - 1))}"
    fi
    echo "$json" | jq -c --arg s "$scen" --arg srv "$SRV" "$@" "{scenario: \$s, server: \$srv} + ($filter)" >>"$OUT"
}

row() { # SCENARIO METRIC VALUE
    local key="$1|$2"
    if [ -z "${VAL["$key|seen"]:-}" ]; then
        ROWS+=("$key")
        VAL["$key|seen"]=1
    fi
    VAL["$key|$SRV"]=$3
}

jget() { echo "$1" | jq -r "$2"; }

# remaining: seconds left before the budget's end.
remaining() { echo $((BUDGET_S - $(elapsed))); }

# over_budget NAME NEED: true (and says so) when fewer than NEED s remain.
over_budget() {
    if [ "$(remaining)" -lt "$2" ]; then
        log "skipping $SRV: $1: less than $2 s left of the ${BUDGET_S} s budget"
        return 0
    fi
    return 1
}

# cap DURATION: the duration, cut to what the budget has left.
cap() {
    local r
    r=$(($(remaining) - 5))
    echo $(($1 < r ? $1 : r))
}

# ---------------------------------------------------------------- scenarios

fanout() { # KIND SUBS COUNT [SCENARIO]
    local kind=$1 subs=$2 count=$3 scen=${4:-"fanout $1 ${2}x$3"}
    over_budget "$scen" 60 && return 0
    local room="f-$kind-$subs-$RANDOM" t0 t1 json cpu fds
    log "$SRV: $scen"
    start_server
    t0=$(server_ticks)
    json=$(lg "$kind" "$subs" "$room" "$count" 0 60 "$(cap 150)")
    t1=$(server_ticks)
    sleep 1
    fds=$(server_fds)
    stop_server
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')
    record "$scen" "$json" --argjson cpu "$cpu" --argjson fds "$fds" \
        '. + {server_cpu_s: $cpu, deliveries_per_server_cpu_s: (if $cpu > 0 then .delivered / $cpu | floor else null end), server_fds_1s_after: $fds}'
    log "$SRV: $(jget "$json" '"\(.delivered)/\(.expected) delivered, \(.deliveries_per_s)/s, p99 \(.latency_ms.p99) ms, errors \(.errors) \(.error_kinds)"'), server cpu ${cpu}s, server fds 1s after: $fds"
    row "$scen" "connected" "$(jget "$json" .connected)"
    row "$scen" "deliveries/s" "$(jget "$json" .deliveries_per_s)"
    row "$scen" "delivered %" "$(jget "$json" 'if .expected > 0 then (1000 * .delivered / .expected | floor) / 10 else 0 end')"
    row "$scen" "latency p50 ms" "$(jget "$json" .latency_ms.p50)"
    row "$scen" "latency p99 ms" "$(jget "$json" .latency_ms.p99)"
    row "$scen" "server cpu s" "$cpu"
    row "$scen" "loadgen cpu s" "$(jget "$json" '.loadgen_cpu_s * 100 | floor / 100')"
    row "$scen" "deliveries/server cpu s" "$(awk -v d="$(jget "$json" .delivered)" -v c="$cpu" 'BEGIN { if (c > 0) printf "%d", d / c; else print "-" }')"
}

latency() {
    local count=$((LAT_RATE * LAT_SECS)) scen="latency ws 10000 @${LAT_RATE}/s" json
    over_budget "$scen" $((LAT_SECS + 20)) && return 0
    log "$SRV: $scen for ${LAT_SECS}s"
    start_server
    json=$(lg ws 10000 "l-$RANDOM" "$count" "$LAT_RATE" 10 "$(cap $((LAT_SECS + 60)))")
    stop_server
    record "$scen" "$json"
    log "$SRV: $(jget "$json" '"\(.delivered)/\(.expected) delivered, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, errors \(.errors) \(.error_kinds)"')"
    row "$scen" "connected" "$(jget "$json" .connected)"
    row "$scen" "latency p50 ms" "$(jget "$json" .latency_ms.p50)"
    row "$scen" "latency p99 ms" "$(jget "$json" .latency_ms.p99)"
    row "$scen" "latency max ms" "$(jget "$json" .latency_ms.max)"
    row "$scen" "delivered %" "$(jget "$json" 'if .expected > 0 then (1000 * .delivered / .expected | floor) / 10 else 0 end')"
}

# idle KIND: fresh server, RSS at rest, RSS with IDLE_SUBS idle connections.
idle() {
    local kind=$1 scen="idle $1 $IDLE_SUBS" base with json ready=$TMP/idle.ready pid bpc
    over_budget "$scen" 20 && return 0
    log "$SRV: $scen"
    start_server
    sleep 0.5
    base=$(server_rss_kb)
    rm -f "$ready"
    "$LOADGEN" --kind "$kind" --url "$(sub_url "$kind" "i-$kind-$RANDOM")" --poll-style "$SRV" \
        --subs "$IDLE_SUBS" --src-ips "$SRC_IPS" --connect-timeout 20 --idle 2 --duration 40 \
        --ready-file "$ready" >"$TMP/idle.json" &
    pid=$!
    BG_PIDS=("$pid")
    while [ ! -e "$ready" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    sleep 1.5
    with=$(server_rss_kb)
    wait "$pid" || true
    BG_PIDS=()
    json=$(cat "$TMP/idle.json")
    stop_server
    bpc=$(awk -v a="$base" -v b="$with" -v n="$(jget "$json" .connected)" \
        'BEGIN { if (n > 0) printf "%d", (b - a) * 1024 / n; else print "-" }')
    record "$scen" "$json" --argjson base "$base" --argjson with "$with" \
        '. + {server_rss_base_kb: $base, server_rss_kb: $with, bytes_per_conn: (if .connected > 0 then (($with - $base) * 1024 / .connected | floor) else null end)}'
    log "$SRV: $(jget "$json" '"\(.connected) connected, errors \(.errors) \(.error_kinds)"'); rss ${base} kB -> ${with} kB, ${bpc} bytes/connection"
    row "$scen" "connected" "$(jget "$json" .connected)"
    row "$scen" "rss at rest MiB" "$(awk -v k="$base" 'BEGIN { printf "%.1f", k / 1024 }')"
    row "$scen" "rss MiB" "$(awk -v k="$with" 'BEGIN { printf "%.1f", k / 1024 }')"
    row "$scen" "bytes/connection" "$bpc"
}

# one_core KIND SUBS COUNT: the same fanout with crier held to one core
# (taskset -c 0), to show what its second thread gives; crier only.
one_core() {
    [ "$SRV" = crier ] && command -v taskset >/dev/null || return 0
    PIN="taskset -c 0"
    fanout "$1" "$2" "$3" "fanout $1 ${2}x$3 one core"
    PIN=
}

# b64url: base64url of stdin, unpadded (for a token minted in the shell).
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# auth_fanout KIND SUBS COUNT: the fanout with access control on; crier only.
# The token is minted here with openssl (HS256), as the README shows.
auth_fanout() {
    [ "$SRV" = crier ] || return 0
    local secret=bench-secret-0123456789abcdef key=bench-api-key-0123456789 head body sig
    head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
    body=$(printf '{"sub":"bench","exp":%d,"rooms":{"subscribe":["f-*"]}}' $(($(date +%s) + 3600)) | b64url)
    sig=$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
    jq --arg s "$secret" --arg k "$key" '. + {auth: {jwt: {hmac_secret: $s},
        rooms: [{match: "f-*", subscribe: "claim", publish: "api_key"}], api_keys: [$k]}}' \
        tests/bench/crier.json >"$TMP/crier-auth.json"
    CRIER_CONFIG=$TMP/crier-auth.json SUB_QUERY="?access_token=$head.$body.$sig" \
        PUB_QUERY="?access_token=$key" fanout "$1" "$2" "$3" "fanout $1 ${2}x$3 auth on"
}

# upstream_calls: upstream hub methods end to end at a fixed offered rate;
# crier only (tests/bench/upstream.mjs starts its own crier and backend).
upstream_calls() {
    [ "$SRV" = crier ] || return 0
    local clients=${BENCH_UP_CLIENTS:-50} rate=${BENCH_UP_RATE:-1000} secs=${BENCH_UP_SECS:-10} json scen
    scen="upstream invoke ${clients}c ${rate}/s"
    over_budget "$scen" $((secs + 30)) && return 0
    log "$scen"
    json=$(CLIENTS=$clients RATE=$rate SECS=$secs timeout $((secs + 60)) node tests/bench/upstream.mjs build/crier) ||
        { log "upstream bench failed"; return 0; }
    record "$scen" "$json"
    row "$scen" "calls/s" "$(jget "$json" .calls_per_s)"
    row "$scen" "p99 ms" "$(jget "$json" .p99_ms)"
    row "$scen" "p99 ms minus backend" "$(jget "$json" .p99_minus_backend_ms)"
    row "$scen" "errors" "$(jget "$json" .errors)"
}

# each SRV...: runs "$@" once per server (each scenario starts its own).
each() {
    for SRV in $SERVERS; do "$@"; done
}

# Cheap, fixed-length scenarios first, then the long fanouts; crier and nchan
# take turns, so that a budget cut hits both alike.
bench_all() {
    each idle ws
    each idle sse
    each idle poll
    each latency
    each upstream_calls
    each fanout ws 1000 "$SMALL_COUNT"
    each fanout sse 1000 "$SMALL_COUNT"
    each fanout poll 1000 "$POLL_COUNT"
    each auth_fanout ws 1000 "$SMALL_COUNT"
    each auth_fanout sse 1000 "$SMALL_COUNT"
    each fanout ws 10000 "$BIG_COUNT"
    each fanout sse 10000 "$BIG_COUNT"
    each one_core ws 10000 "$BIG_COUNT"
    each one_core sse 1000 "$SMALL_COUNT"
    each fanout ws 19000 "$HUGE_COUNT"
}

print_table() {
    local key scen metric a b r
    printf '%-30s %-24s %12s %12s %12s\n' scenario metric crier nchan crier/nchan
    printf '%-30s %-24s %12s %12s %12s\n' -------- ------ ----- ----- -----------
    for key in "${ROWS[@]}"; do
        scen=${key%%|*}
        metric=${key#*|}
        a=${VAL["$key|crier"]:--}
        b=${VAL["$key|nchan"]:--}
        r=$(awk -v a="$a" -v b="$b" 'BEGIN {
            if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else print "-" }')
        printf '%-30s %-24s %12s %12s %12s\n' "$scen" "$metric" "$a" "$b" "$r"
    done
}

# ---------------------------------------------------------------- main

install_deps
build_loadgen
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge 12000 ] || log "warning: open-file limit $(ulimit -n) is low for 10000 connections"
mkdir -p "$RESULTS"
case " $SERVERS " in *" crier "*) [ -x build/crier ] || die "build/crier is missing (make build/crier)" ;; esac

log "results: $OUT"
bench_all

{
    echo "crier benchmark $STAMP ($(nproc) cores; loadgen on the same machine; ${SIZE}-byte messages)"
    print_table
} | tee "$TABLE"
log "done in $(elapsed)s; raw JSON lines in $OUT, table in $TABLE"
