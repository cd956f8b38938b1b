/* SPDX-License-Identifier: MIT */
/*
 * latency.h - the publish-to-write histogram (/metrics'
 * crier_delivery_latency_seconds): for each room message a transport takes
 * off a connection's queue to write, the time since it was accepted here
 * (published on this node, or come from the backplane). The carriers read
 * the clock once per batch they write and call latency_observe for each
 * message. A message replayed from history (a resume) counts from when it
 * was first accepted.
 *
 * Threading: lock-free (relaxed atomic counters); any thread.
 */
#ifndef CRIER_LATENCY_H
#define CRIER_LATENCY_H

#include <stddef.h>
#include <stdint.h>

/* Bucket upper bounds, in ms; the last bucket (+Inf) is implicit. */
#define LATENCY_BOUNDS 12
extern const unsigned latency_bound_ms[LATENCY_BOUNDS];

/* One message written ms milliseconds after it was accepted (< 0: 0). */
void latency_observe(int64_t ms);

typedef struct latency_snapshot {
    uint64_t cumulative[LATENCY_BOUNDS + 1]; /* messages at most bound i; last: all */
    uint64_t sum_ms;
} latency_snapshot;

void latency_read(latency_snapshot *out);

#endif
