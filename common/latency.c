/* SPDX-License-Identifier: MIT */
/*
 * latency.c - the publish-to-write histogram (latency.h): a relaxed atomic
 * counter per bucket and one for the sum; the count is their total.
 */
#include "common/latency.h"

#include <stdatomic.h>

const unsigned latency_bound_ms[LATENCY_BOUNDS] = {1,   5,   10,   25,   50,   100,
                                                   250, 500, 1000, 2500, 5000, 10000};

static atomic_uint_least64_t buckets[LATENCY_BOUNDS + 1];
static atomic_uint_least64_t sum_ms;

void latency_observe(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    size_t i = 0;
    while (i < LATENCY_BOUNDS && (uint64_t)ms > latency_bound_ms[i])
        i++;
    atomic_fetch_add_explicit(&buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sum_ms, (uint64_t)ms, memory_order_relaxed);
}

void latency_read(latency_snapshot *out)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= LATENCY_BOUNDS; i++) {
        total += atomic_load_explicit(&buckets[i], memory_order_relaxed);
        out->cumulative[i] = total;
    }
    out->sum_ms = atomic_load_explicit(&sum_ms, memory_order_relaxed);
}
