/* SPDX-License-Identifier: MIT */
/*
 * rate_limits.c - limits.rate's token buckets (rate_limits.h): a table per
 * kind that is on, keyed by client address (ratelimit.h), and the check of
 * a connection's own publish bucket. Refusals go to limits.c, which counts
 * them and logs once per burst.
 */
#include "common/rate_limits.h"

#include <stdio.h>

#include "common/limits.h"
#include "common/ratelimit.h"

static cfg_rate rates[RATE_KINDS];    /* set at init, read-only after */
static ratelimit *tables[RATE_KINDS]; /* per address; NULL: the kind is off */

static const limit_kind limit_of[RATE_KINDS] = {
    [RATE_PUBLISH] = LIMIT_RATE_PUBLISH,
    [RATE_CONNECT] = LIMIT_RATE_CONNECT,
    [RATE_REQUEST] = LIMIT_RATE_REQUEST,
};

/* A burst of 0 (not configured) is one second's worth. */
static unsigned burst_of(const cfg_rate *r)
{
    return r->burst ? r->burst : r->per_s;
}

int rate_limits_init(const cfg *c)
{
    rate_limits_fini();
    rates[RATE_PUBLISH] = c->limits.rate.publish;
    rates[RATE_CONNECT] = c->limits.rate.connect;
    rates[RATE_REQUEST] = c->limits.rate.request;
    for (int k = 0; k < RATE_KINDS; k++) {
        if (!rates[k].per_s)
            continue;
        tables[k] = ratelimit_create(RATE_ADDRS, rates[k].per_s, burst_of(&rates[k]));
        if (!tables[k]) {
            rate_limits_fini();
            return -1;
        }
    }
    return 0;
}

void rate_limits_fini(void)
{
    for (int k = 0; k < RATE_KINDS; k++) {
        ratelimit_destroy(tables[k]);
        tables[k] = NULL;
        rates[k] = (cfg_rate){0, 0};
    }
}

bool rate_limit_on(rate_kind k)
{
    return k < RATE_KINDS && rates[k].per_s;
}

/* Counts and logs one refusal of kind k by who (and name: "" or more of who). */
static void refused(rate_kind k, const char *who, const char *name, const char *outcome)
{
    char what[320];
    snprintf(what, sizeof(what), "limits.rate.%s (%u/s, burst %u) passed by %.64s%s%.64s: %.80s",
             rate_kind_name(k), rates[k].per_s, burst_of(&rates[k]), who, *name ? " " : "", name,
             outcome);
    limit_refused(limit_of[k], what);
}

int64_t rate_limit_addr(rate_kind k, const char *addr, int64_t now_ms, const char *outcome)
{
    if (k >= RATE_KINDS || !tables[k])
        return 0;
    int64_t wait = ratelimit_take(tables[k], addr, now_ms);
    if (wait)
        refused(k, addr, "", outcome);
    return wait;
}

int64_t rate_limit_publish(token_bucket *b, int64_t now_ms, const char *who, const char *name,
                           const char *outcome)
{
    const cfg_rate *r = &rates[RATE_PUBLISH];
    if (!r->per_s)
        return 0;
    int64_t wait = token_bucket_take(b, r->per_s, burst_of(r), now_ms);
    if (wait)
        refused(RATE_PUBLISH, who, name, outcome);
    return wait;
}

uint64_t rate_limited_total(rate_kind k)
{
    return k < RATE_KINDS ? limit_refusals(limit_of[k]) : 0;
}

const char *rate_kind_name(rate_kind k)
{
    return k < RATE_KINDS ? limit_name(limit_of[k]) : "?";
}
