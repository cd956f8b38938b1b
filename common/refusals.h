/* SPDX-License-Identifier: MIT */
/*
 * refusals.h - connections and requests refused before they were served,
 * by reason, for /metrics' crier_connections_refused_total{reason=...}:
 * limit (limits.max_connections), rate (limits.rate.connect), auth (a
 * credential missing or refused, or a right lacking: 401/403 from the
 * access checks, gateway/guard.h) and origin (a WebSocket handshake from a
 * page of a site cors.allowed_origins does not list).
 *
 * Threading: lock-free counters; any thread.
 */
#ifndef CRIER_REFUSALS_H
#define CRIER_REFUSALS_H

#include <stdint.h>

typedef enum {
    REFUSED_LIMIT,
    REFUSED_RATE,
    REFUSED_AUTH,
    REFUSED_ORIGIN,
    REFUSED_REASONS
} refused_reason;

void refused_count(refused_reason r);
uint64_t refused_total(refused_reason r);

/* "limit", "rate", "auth", "origin": the metric's reason label. */
const char *refused_name(refused_reason r);

#endif
