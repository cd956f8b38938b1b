/* SPDX-License-Identifier: MIT */
/*
 * plain/ending.h - how the plain room protocols end a member the server
 * ends (sub_end_with, hub/sub.h): the deadline a token's expiry sets, and
 * each reason on each wire: a WebSocket close code, the last SSE event. A
 * held long poll is answered with what it has (plain/poll.c needs nothing
 * here: the next poll meets the gateway's check). Stateless; any thread.
 */
#ifndef CRIER_PLAIN_ENDING_H
#define CRIER_PLAIN_ENDING_H

#include "common/access.h"
#include "common/buf.h"
#include "hub/sub.h"

/* The WebSocket close code of a connection whose token expired (4000-4999:
 * private use, RFC 6455 7.4.2). */
#define PLAIN_WS_CLOSE_TOKEN_EXPIRED 4001

/* ... and of one the server API disconnected (the reason is its text). */
#define PLAIN_WS_CLOSE_DISCONNECTED 4002

/* Arms s's deadline at who's token expiry (principal expires_ms: exp plus
 * auth.jwt.leeway_s); nothing for an anonymous client or a token without
 * exp. No sub lock held. */
void plain_end_at_expiry(sub *s, const access_principal *who);

/* The plain WebSocket's close code for s, ended for why: 4001 "token
 * expired", 4002 with the server API's reason (s->end_text); 0: 1000. */
int plain_ws_end_code(const sub *s, sub_end_reason why, const char **text);

/* The SSE carrier's farewell of the plain stream (sse_farewell_fn): an
 * `error` event, data {"error":"token expired"} or {"error": the server
 * API's reason} (built in scratch). */
const char *plain_sse_farewell(const sub *s, buf *scratch);

#endif
