/* SPDX-License-Identifier: MIT */
/*
 * cors.c - the origin policy (cors.h) over cfg cors. Holds a pointer to the
 * configuration's cors section, set at start and only read afterwards.
 */
#include "common/cors.h"

#include <string.h>
#include <strings.h>

static const cfg *conf; /* set once at start */

void cors_init(const cfg *c)
{
    conf = c;
}

bool cors_enabled(void)
{
    return conf && conf->cors.nallowed_origins > 0;
}

static bool listed(const char *entry, const char *origin, size_t len)
{
    return strlen(entry) == len && !strncasecmp(entry, origin, len);
}

bool cors_origin_allowed(const char *origin, size_t len)
{
    if (!cors_enabled() || !origin)
        return false;
    for (unsigned i = 0; i < conf->cors.nallowed_origins; i++) {
        const char *e = conf->cors.allowed_origins[i];
        if (!strcmp(e, "*") || listed(e, origin, len))
            return true;
    }
    return false;
}

bool cors_answer_wildcard(void)
{
    if (!cors_enabled() || conf->cors.allow_credentials)
        return false;
    for (unsigned i = 0; i < conf->cors.nallowed_origins; i++)
        if (!strcmp(conf->cors.allowed_origins[i], "*"))
            return true;
    return false;
}

bool cors_allow_credentials(void)
{
    return conf && conf->cors.allow_credentials;
}

unsigned cors_max_age_s(void)
{
    return conf ? conf->cors.max_age_s : 0;
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
