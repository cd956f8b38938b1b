/* SPDX-License-Identifier: MIT */
/*
 * guard.h - the gateway's access checks: who a request is (its credential,
 * verified once by auth.h) and whether the route table's "access" column
 * (routes.h) lets it in. The one place both front doors ask: the acceptor
 * (server.c) for a WebSocket upgrade before libwebsockets has it, and the
 * libmicrohttpd dispatcher (http.c) before any handler runs. What a refusal
 * looks like (README "What each endpoint needs"):
 *   - a credential that does not verify: 401 {"error": why} with
 *     "WWW-Authenticate: Bearer", on every endpoint that looks at one;
 *   - SUBSCRIBE, PUBLISH: access_room's verdict (common/access.h), 401 when
 *     a token would do and none came, 403 when the one that came does not;
 *   - ADMIN (auth.protect_admin): 401 without a credential, 403 with a
 *     token (an API key is needed).
 * With auth off (no "auth" section) nothing is checked and no credential
 * is looked at: everything is open, as before.
 *
 * Threading: guard_init on the main thread at start; the rest from any
 * thread (they read the config and what auth_init loaded).
 */
#ifndef CRIER_GUARD_H
#define CRIER_GUARD_H

#include <stdbool.h>

#include "common/access.h"
#include "common/cfg.h"
#include "gateway/router.h"

/* The header a 401 carries (RFC 6750), as a name and a value and as the
 * one line raw_reply_error takes. */
#define GUARD_CHALLENGE_NAME "WWW-Authenticate"
#define GUARD_CHALLENGE_VALUE "Bearer"
#define GUARD_CHALLENGE_LINE GUARD_CHALLENGE_NAME ": " GUARD_CHALLENGE_VALUE

/* The page the PAGES access guards as ADMIN. */
#define GUARD_DASHBOARD_PAGE "/dashboard.html"

/* A refusal: status 0 (let in), 401 or 403; error is static text. */
typedef struct guard_refusal {
    unsigned status;
    const char *error;
} guard_refusal;

/* Main thread, at start: the config the checks read (it must outlive them). */
void guard_init(const cfg *c);

/* True when auth is on (the config has an "auth" section). */
bool guard_enabled(void);

/* What a request for path on a route of access need must prove: need, but
 * for RIGHT_PAGES RIGHT_ADMIN when path names the dashboard page and
 * RIGHT_NONE for any other page. The functions below take what this gives. */
route_access guard_need(route_access need, const char *path);

/* Who a request to a route of access need is: its Authorization header
 * value and raw query (either may be NULL). Returns the principal (the
 * caller owns one reference) or NULL (anonymous). A credential that does
 * not verify sets *out to 401 with the reason, and so does an API key in
 * the query for RIGHT_PUBLISH (a publish takes a key in the header only);
 * else *out is {0}. Nothing
 * is looked at (NULL, {0}) with auth off or for RIGHT_NONE. now_ms: ms
 * since the epoch. */
access_principal *guard_authenticate(route_access need, const char *authorization,
                                     const char *query, int64_t now_ms, guard_refusal *out);

/* May who (NULL: anonymous) reach a route of access need? room: the
 * route's {room} (NUL-terminated) for SUBSCRIBE and PUBLISH. RIGHT_HUB is
 * always let in here (SignalR decides with the principal). */
guard_refusal guard_check(route_access need, const access_principal *who, const char *room);

#endif
