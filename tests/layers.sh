#!/usr/bin/env bash
# Checks that the source folders point down only (issue #12, README "How it
# works"): gateway/ -> transports/ (protocols over carriers) -> hub/ ->
# common/. One check per rule; each prints "ok" or FAIL with the offending
# #include lines. Ends with "layers: N passed, N failed"; exits non-zero when
# any failed.
#   tests/layers.sh
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0

# The #include lines of the C sources and headers under the given folders (or files)
# that match an extended regex on the included name (what is between the
# quotes or angle brackets). Prints file:line:text.
includes() { # regex folder...
  local re=$1
  shift
  local dirs=()
  for d in "$@"; do [ -e "$d" ] && dirs+=("$d"); done
  [ "${#dirs[@]}" -eq 0 ] && return 0
  grep -rnE --include='*.c' --include='*.h' "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]($re)" "${dirs[@]}"
}

check() { # name, then the offending lines on stdin (none: ok)
  local bad
  bad=$(cat)
  if [ -z "$bad" ]; then
    echo "ok   $1"
    passed=$((passed + 1))
  else
    echo "FAIL $1"
    echo "$bad" | sed 's/^/       /'
    failed=$((failed + 1))
  fi
}

# The folders exist and every transport file is a carrier or a protocol
# (without this, the rules below would pass on a tree that lacks them).
layout() {
  for d in common transports/carriers transports/plain transports/signalr; do
    [ -d "$d" ] || echo "missing folder $d/"
  done
  find transports -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \) -printf '%p: not in carriers/, plain/ or signalr/\n'
}
check "layout: common/ and transports/{carriers,plain,signalr}/ hold the sources" < <(layout)

check "includes are rooted at the top folder (no ../)" < <(includes '\.\./' gateway hub transports common tests/unit tests/fuzz)
check "hub/, transports/, common/ include nothing from gateway/" < <(includes 'gateway/' hub transports common)
check "hub/ and common/ include nothing from transports/" < <(includes 'transports/' hub common)
check "common/ includes nothing from hub/" < <(includes 'hub/' common)
check "transports/carriers/ include no protocol (transports/plain/, transports/signalr/)" < <(includes 'transports/(plain|signalr)/' transports/carriers)
# A carrier moves a member's queued bytes and knows no room: of the hub it
# sees the member (sub.h) and what it queues (sendq.h, message.h), and it
# calls no hub function (hub_join, hub_resume, hub_leave, ...): joining and
# leaving rooms is the protocols' work. It may ask whether those queues are
# behind (backlog.h), to read a publishing client more slowly.
check "transports/carriers/ include of hub/ only sub.h, sendq.h, message.h, backlog.h" < <(includes 'hub/' transports/carriers | grep -vE '"hub/(sub|sendq|message|backlog)\.h"')
check "transports/carriers/ call no hub_* function" < <(grep -rnE --include='*.c' --include='*.h' '\bhub_[a-z_]+[[:space:]]*\(' transports/carriers)
check "transports/plain/ and transports/signalr/ include nothing of each other" < <(includes 'transports/signalr/' transports/plain; includes 'transports/plain/' transports/signalr)
check "hub/ and common/ know no libmicrohttpd or libwebsockets" < <(includes 'microhttpd\.h|libwebsockets\.h' hub common)
check "common/ knows no hiredis" < <(includes 'hiredis' common)
check "hub/internal.h and hub/redis_internal.h are private to hub/" < <(includes 'hub/(redis_)?internal\.h' gateway transports common tests)

# The hub keeps an encode-once cache keyed by format; the SignalR wire
# syntax (record separator, hub message types, the gap target, the format
# names) lives in transports/signalr/encode.c. Not an #include check: the
# lines of hub/ that spell SignalR (the .c files also by name, in comments).
hub_signalr() {
  grep -rnE --include='*.c' --include='*.h' '\\x1e|\\"type\\":|MSG_FMT_SIGNALR|MSG_RS|CrierGap|GAP_TARGET' hub
  grep -rniE --include='*.c' 'signalr' hub
}
check "hub/ holds no SignalR wire encoding (transports/signalr/encode.c does)" < <(hub_signalr)
check "the router (gateway/router.*, routes.h) includes no library, transport or handler" < <(includes 'microhttpd\.h|libwebsockets\.h|hiredis|jansson|transports/|gateway/(http|server|api|static)\.h' gateway/router.c gateway/router.h gateway/routes.h)

echo "layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
