/* SPDX-License-Identifier: MIT */
/*
 * memtrim.c - returns freed heap pages to the OS at a bounded rate (see
 * memtrim.h). State belongs to the timer thread.
 */
#include "gateway/memtrim.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "common/log.h"

#define TAG "memory"

static size_t pending;       /* freed since the last trim */
static int64_t since_ms;     /* when the current burst of them began */
static int64_t last_free_ms; /* when the latest of them was */
static int64_t last_ms;      /* when the last trim ran; 0 never */

bool memtrim_freed(size_t freed, int64_t now_ms)
{
    if (freed) {
        if (!pending || now_ms - last_free_ms >= MEMTRIM_QUIET_MS)
            since_ms = now_ms; /* a new burst */
        last_free_ms = now_ms;
    }
    pending += freed;
    bool settled =
        now_ms - last_free_ms >= MEMTRIM_QUIET_MS || now_ms - since_ms >= MEMTRIM_EVERY_MS;
    if (pending < MEMTRIM_MIN_BYTES || !settled || (last_ms && now_ms - last_ms < MEMTRIM_EVERY_MS))
        return false;
    LOG_DBG(TAG, "%zu bytes freed since the last trim: returning free pages to the OS", pending);
    pending = 0;
    last_ms = now_ms;
#ifdef __GLIBC__
    malloc_trim(0);
    return true;
#else
    return false;
#endif
}
