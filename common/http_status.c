/* SPDX-License-Identifier: MIT */
/*
 * http_status.c - answers by status class (http_status.h): an atomic
 * counter per class.
 */
#include "common/http_status.h"

#include <stdatomic.h>

static atomic_uint_least64_t by_class[6];

void http_count_status(unsigned status)
{
    if (status >= 100 && status < 600)
        atomic_fetch_add_explicit(&by_class[status / 100], 1, memory_order_relaxed);
}

uint64_t http_status_total(unsigned cls)
{
    return cls >= 1 && cls <= 5 ? atomic_load_explicit(&by_class[cls], memory_order_relaxed) : 0;
}
