/* SPDX-License-Identifier: MIT */
/*
 * cors.c - the origin policy (cors.h) over cfg cors. Reads the current
 * config (common/live.h: a SIGHUP reload may change the cors section), or,
 * before there is one, the config cors_init was given (set once at start).
 */
#include "common/cors.h"

#include <string.h>
#include <strings.h>

#include "common/live.h"

static const cfg *conf; /* set once at start */

void cors_init(const cfg *c)
{
    conf = c;
}

/* The config to read now, with a reference (cors_done drops it). */
static const cfg *cors_now(void)
{
    const cfg *c = live_acquire();
    return c ? c : conf;
}

static void cors_done(const cfg *c)
{
    if (c != conf)
        live_release(c);
}

static bool enabled_in(const cfg *c)
{
    return c && c->cors.nallowed_origins > 0;
}

bool cors_enabled(void)
{
    const cfg *c = cors_now();
    bool on = enabled_in(c);
    cors_done(c);
    return on;
}

static bool listed(const char *entry, const char *origin, size_t len)
{
    return strlen(entry) == len && !strncasecmp(entry, origin, len);
}

bool cors_origin_allowed(const char *origin, size_t len)
{
    const cfg *c = cors_now();
    bool ok = false;
    for (unsigned i = 0; enabled_in(c) && origin && !ok && i < c->cors.nallowed_origins; i++) {
        const char *e = c->cors.allowed_origins[i];
        ok = !strcmp(e, "*") || listed(e, origin, len);
    }
    cors_done(c);
    return ok;
}

bool cors_answer_wildcard(void)
{
    const cfg *c = cors_now();
    bool wild = false;
    for (unsigned i = 0;
         enabled_in(c) && !c->cors.allow_credentials && !wild && i < c->cors.nallowed_origins; i++)
        wild = !strcmp(c->cors.allowed_origins[i], "*");
    cors_done(c);
    return wild;
}

bool cors_allow_credentials(void)
{
    const cfg *c = cors_now();
    bool on = c && c->cors.allow_credentials;
    cors_done(c);
    return on;
}

unsigned cors_max_age_s(void)
{
    const cfg *c = cors_now();
    unsigned s = c ? c->cors.max_age_s : 0;
    cors_done(c);
    return s;
}

/* origin starts with scheme "://"; the length of that prefix, or 0. */
static size_t scheme_len(const char *origin, size_t olen)
{
    static const char *const schemes[] = {"http://", "https://"};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i]);
        if (olen > n && !strncasecmp(origin, schemes[i], n))
            return n;
    }
    return 0;
}

bool cors_same_origin(const char *origin, size_t olen, const char *host, size_t hlen)
{
    if (!origin || !host || !hlen)
        return false;
    size_t n = scheme_len(origin, olen);
    return n && olen - n == hlen && !strncasecmp(origin + n, host, hlen);
}
