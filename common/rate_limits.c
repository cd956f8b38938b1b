/* SPDX-License-Identifier: MIT */
/*
 * rate_limits.c - limits.rate's token buckets (rate_limits.h): a table per
 * kind that is on, keyed by client address (ratelimit.h), and the check of
 * a connection's own publish bucket. Refusals go to limits.c, which counts
 * them and logs once per burst.
 */
#include "common/rate_limits.h"

#include <stdatomic.h>
#include <stdio.h>

#include "common/limits.h"
#include "common/ratelimit.h"

/* Set at init and by rate_limits_reload (main thread); read by any thread.
 * A table, once made, stays until rate_limits_fini: a reload that turns a
 * kind off only sets its per_s to 0, so a check still using it is safe. */
static struct {
    atomic_uint per_s, burst;
} rates[RATE_KINDS];
static _Atomic(ratelimit *) tables[RATE_KINDS]; /* per address; NULL: never on */

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

static cfg_rate rate_now(rate_kind k)
{
    return (cfg_rate){atomic_load(&rates[k].per_s), atomic_load(&rates[k].burst)};
}

static void kinds_of(const cfg *c, cfg_rate out[RATE_KINDS])
{
    out[RATE_PUBLISH] = c->limits.rate.publish;
    out[RATE_CONNECT] = c->limits.rate.connect;
    out[RATE_REQUEST] = c->limits.rate.request;
}

int rate_limits_init(const cfg *c)
{
    rate_limits_fini();
    return rate_limits_reload(c);
}

int rate_limits_reload(const cfg *c)
{
    cfg_rate want[RATE_KINDS];
    kinds_of(c, want);
    ratelimit *made[RATE_KINDS] = {0};
    for (int k = 0; k < RATE_KINDS; k++) {
        if (!want[k].per_s || atomic_load(&tables[k]))
            continue;
        made[k] = ratelimit_create(RATE_ADDRS, want[k].per_s, burst_of(&want[k]));
        if (!made[k]) {
            for (int j = 0; j < k; j++)
                ratelimit_destroy(made[j]);
            return -1;
        }
    }
    for (int k = 0; k < RATE_KINDS; k++) {
        ratelimit *t = atomic_load(&tables[k]);
        if (want[k].per_s && t)
            ratelimit_set_rate(t, want[k].per_s, burst_of(&want[k]));
        atomic_store(&rates[k].burst, want[k].burst);
        atomic_store(&rates[k].per_s, want[k].per_s);
        if (made[k])
            atomic_store(&tables[k], made[k]);
    }
    return 0;
}

void rate_limits_fini(void)
{
    for (int k = 0; k < RATE_KINDS; k++) {
        ratelimit_destroy(atomic_exchange(&tables[k], NULL));
        atomic_store(&rates[k].per_s, 0);
        atomic_store(&rates[k].burst, 0);
    }
}

bool rate_limit_on(rate_kind k)
{
    return k < RATE_KINDS && atomic_load(&rates[k].per_s);
}

/* Counts and logs one refusal of kind k by who (and name: "" or more of who). */
static void refused(rate_kind k, const char *who, const char *name, const char *outcome)
{
    char what[320];
    cfg_rate r = rate_now(k);
    snprintf(what, sizeof(what), "limits.rate.%s (%u/s, burst %u) passed by %.64s%s%.64s: %.80s",
             rate_kind_name(k), r.per_s, burst_of(&r), who, *name ? " " : "", name, outcome);
    limit_refused(limit_of[k], what);
}

int64_t rate_limit_addr(rate_kind k, const char *addr, int64_t now_ms, const char *outcome)
{
    ratelimit *t = k < RATE_KINDS && rate_limit_on(k) ? atomic_load(&tables[k]) : NULL;
    if (!t)
        return 0;
    int64_t wait = ratelimit_take(t, addr, now_ms);
    if (wait)
        refused(k, addr, "", outcome);
    return wait;
}

int64_t rate_limit_publish(token_bucket *b, int64_t now_ms, const char *who, const char *name,
                           const char *outcome)
{
    cfg_rate r = rate_now(RATE_PUBLISH);
    if (!r.per_s)
        return 0;
    int64_t wait = token_bucket_take(b, r.per_s, burst_of(&r), now_ms);
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
