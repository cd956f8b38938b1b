/* SPDX-License-Identifier: MIT */
/*
 * limits.c - refusal counters and rate-limited log lines for the resource
 * limits (see limits.h). Lock-free: a counter per limit, and per limit the
 * time of its last log line, claimed with a compare-and-swap so that one
 * thread of a burst logs.
 */
#include "common/limits.h"

#include <errno.h>
#include <stdatomic.h>

#include "common/clock.h"
#include "common/log.h"

#define TAG "limits"

static atomic_uint_fast64_t refusals[LIMIT_COUNT];
static atomic_uint_fast64_t logged_at[LIMIT_COUNT]; /* refusals counted at the last line */
static _Atomic int64_t next_log_ms[LIMIT_COUNT];

static const char *const names[LIMIT_COUNT] = {
    [LIMIT_ROOMS] = "max_rooms",
    [LIMIT_ROOMS_PER_CONN] = "max_rooms_per_connection",
    [LIMIT_HISTORY_BYTES] = "history_max_bytes",
    [LIMIT_SIGNALR_PENDING] = "signalr_max_pending_connections",
    [LIMIT_NEGOTIATE_RATE] = "signalr_negotiate_rate",
    [LIMIT_FRAGMENT_BYTES] = "max_fragment_bytes_total",
    [LIMIT_BACKPLANE_BYTES] = "backplane_max_pending_bytes",
    [LIMIT_RATE_PUBLISH] = "publish",
    [LIMIT_RATE_CONNECT] = "connect",
    [LIMIT_RATE_REQUEST] = "request",
};

const char *limit_name(limit_kind k)
{
    return k < LIMIT_COUNT ? names[k] : "?";
}

void limit_refused(limit_kind k, const char *what)
{
    if (k >= LIMIT_COUNT)
        return;
    uint64_t n = atomic_fetch_add(&refusals[k], 1) + 1;
    int64_t now = clock_now_ms();
    int64_t due = atomic_load(&next_log_ms[k]);
    if (now < due ||
        !atomic_compare_exchange_strong(&next_log_ms[k], &due, now + LIMIT_LOG_EVERY_MS))
        return;
    uint64_t before = atomic_exchange(&logged_at[k], n);
    LOG_WARN(TAG, "%s (%llu time%s since the last such line; next line in %d s at most)", what,
             (unsigned long long)(n - before), n - before == 1 ? "" : "s",
             LIMIT_LOG_EVERY_MS / 1000);
}

const char *limit_join_error(int rc)
{
    if (rc == -ENOSPC)
        return "too many rooms: limits.max_rooms reached; try again later";
    if (rc == -EMLINK)
        return "this connection is in limits.max_rooms_per_connection rooms already";
    return "cannot join room";
}

uint64_t limit_refusals(limit_kind k)
{
    return k < LIMIT_COUNT ? atomic_load(&refusals[k]) : 0;
}
