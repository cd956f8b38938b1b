/* SPDX-License-Identifier: MIT */
/*
 * refusals.c - refusals by reason (refusals.h): an atomic counter each.
 */
#include "common/refusals.h"

#include <stdatomic.h>

static atomic_uint_least64_t counts[REFUSED_REASONS];
static const char *const names[REFUSED_REASONS] = {"limit", "rate", "auth", "origin"};

void refused_count(refused_reason r)
{
    if (r < REFUSED_REASONS)
        atomic_fetch_add_explicit(&counts[r], 1, memory_order_relaxed);
}

uint64_t refused_total(refused_reason r)
{
    return r < REFUSED_REASONS ? atomic_load_explicit(&counts[r], memory_order_relaxed) : 0;
}

const char *refused_name(refused_reason r)
{
    return r < REFUSED_REASONS ? names[r] : "?";
}
