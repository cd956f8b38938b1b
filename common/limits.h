/* SPDX-License-Identifier: MIT */
/*
 * limits.h - what the resource limits refused: one counter per limit (for
 * /metrics) and a log line per burst of refusals, not one per request.
 * Any thread; lock-free (atomics).
 */
#ifndef CRIER_LIMITS_H
#define CRIER_LIMITS_H

#include <stdint.h>

typedef enum {
    LIMIT_ROOMS,           /* limits.max_rooms: a new room refused */
    LIMIT_ROOMS_PER_CONN,  /* limits.max_rooms_per_connection: a join refused */
    LIMIT_HISTORY_BYTES,   /* history.max_bytes: a kept message evicted early */
    LIMIT_SIGNALR_PENDING, /* signalr.max_pending_connections: a negotiate refused */
    LIMIT_NEGOTIATE_RATE,  /* signalr.negotiate_rate_per_s: a negotiate refused */
    LIMIT_FRAGMENT_BYTES,  /* limits.max_fragment_bytes_total: a WebSocket closed */
    LIMIT_BACKPLANE_BYTES, /* backplane.max_pending_bytes: a publish refused */
    /* limits.rate (rate_limits.h); /metrics shows these as crier_rate_limited_total */
    LIMIT_RATE_PUBLISH, /* limits.rate.publish: a message refused */
    LIMIT_RATE_CONNECT, /* limits.rate.connect: a connection refused */
    LIMIT_RATE_REQUEST, /* limits.rate.request: an HTTP request refused */
    LIMIT_COUNT
} limit_kind;

/* The resource limits come first: crier_limit_refusals_total shows them. */
#define LIMIT_FIRST_RATE LIMIT_RATE_PUBLISH

/* The limit's label in /metrics ("max_rooms", ...). */
const char *limit_name(limit_kind k);

/* Counts one refusal of k; logs a warning (what, and how many refusals
 * since the last line) at most once every LIMIT_LOG_EVERY_MS per limit.
 * what: a short description, e.g. "a new room refused: limits.max_rooms
 * (1000) reached". */
#define LIMIT_LOG_EVERY_MS 10000
void limit_refused(limit_kind k, const char *what);

/* What a client is told when a join failed with rc (a hub_join code):
 * -ENOSPC limits.max_rooms, -EMLINK limits.max_rooms_per_connection,
 * otherwise "cannot join room". Static text. */
const char *limit_join_error(int rc);

/* Refusals of k since start. */
uint64_t limit_refusals(limit_kind k);

#endif
