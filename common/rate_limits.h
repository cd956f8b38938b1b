/* SPDX-License-Identifier: MIT */
/*
 * rate_limits.h - limits.rate: token buckets on what clients do (README
 * "Rate limits"). connect: new connections per client address (checked by
 * the acceptor); request: HTTP requests per client address (gateway/
 * http.c); publish: messages per connection (a plain WebSocket's frames,
 * a SignalR connection's sending invocations) and, for POST
 * /rooms/{room}/messages, per client address. A kind whose per_s is 0 is
 * off: no table, no lock, every check returns 0 at once.
 *
 * Each refusal is counted (limits.h: LIMIT_RATE_*, /metrics'
 * crier_rate_limited_total) and logged once per burst of refusals.
 *
 * Threading: rate_limits_init on the main thread before any other thread
 * runs, rate_limits_fini after they stopped, rate_limits_reload on main at
 * a SIGHUP; the figures are atomics, a table stays from when it is made
 * to rate_limits_fini, and each per-address table has its own lock
 * (ratelimit.h; its figures change under it). A per-connection bucket is
 * the caller's, touched by one thread at a time.
 */
#ifndef CRIER_RATE_LIMITS_H
#define CRIER_RATE_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cfg.h"
#include "common/token_bucket.h"

typedef enum { RATE_PUBLISH, RATE_CONNECT, RATE_REQUEST, RATE_KINDS } rate_kind;

/* Client addresses each per-address table remembers at most (the least
 * recently seen is forgotten first): RATE_ADDRS * 88 bytes a table. */
#define RATE_ADDRS 8192

/* Reads c->limits.rate (kept). Returns -1 when a table cannot be made. */
int rate_limits_init(const cfg *c);

/* At a SIGHUP reload (main thread): takes c->limits.rate's new figures;
 * a kind turned on gets its table. Returns -1 (nothing changed) when a
 * table cannot be made. */
int rate_limits_reload(const cfg *c);

/* Frees the tables; every check is off afterwards. */
void rate_limits_fini(void);

/* True when kind k is on (its per_s is not 0). */
bool rate_limit_on(rate_kind k);

/* One event of kind k from the client address addr at now_ms: 0 when it
 * may go on, else the milliseconds until it may (>= 1), the refusal
 * counted and logged (outcome: what the client gets, e.g. "429"). */
int64_t rate_limit_addr(rate_kind k, const char *addr, int64_t now_ms, const char *outcome);

/* One message published by a connection whose bucket is b at now_ms
 * (limits.rate.publish): 0 when it may go, else the milliseconds until it
 * may, the refusal counted and logged (who and name: the connection, e.g.
 * "SignalR connection" and its id; outcome: what the client gets). */
int64_t rate_limit_publish(token_bucket *b, int64_t now_ms, const char *who, const char *name,
                           const char *outcome);

/* Refusals of kind k since start. */
uint64_t rate_limited_total(rate_kind k);

/* "publish", "connect", "request": /metrics' kind label. */
const char *rate_kind_name(rate_kind k);

#endif
