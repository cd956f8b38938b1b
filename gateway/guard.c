/* SPDX-License-Identifier: MIT */
/*
 * guard.c - the gateway's access checks (guard.h): the route table's
 * "access" column applied to a principal. Stateless but for the config,
 * set once at start and only read after (auth.protect_admin from the live
 * copy, common/live.h, which a SIGHUP reload swaps); any thread.
 */
#include "gateway/guard.h"

#include "common/live.h"
#include "gateway/auth.h"
#include "gateway/static.h"

static const cfg *conf; /* set once at start */

void guard_init(const cfg *c)
{
    conf = c;
}

bool guard_enabled(void)
{
    return conf && conf->auth.enabled;
}

access_principal *guard_authenticate(route_access need, const char *authorization,
                                     const char *query, int64_t now_ms, guard_refusal *out)
{
    *out = (guard_refusal){0};
    if (!guard_enabled() || need == RIGHT_NONE)
        return NULL;
    const char *error = NULL;
    access_principal *who = auth_authenticate(authorization, query, now_ms, &error);
    if (!who && error)
        *out = (guard_refusal){401, error};
    return who;
}

/* An operator endpoint: an API key, when auth.protect_admin. */
static guard_refusal check_admin(const access_principal *who)
{
    const cfg *now = live_acquire(); /* auth.protect_admin is reloadable */
    bool protect = (now ? now : conf)->auth.protect_admin;
    live_release(now);
    if (!protect || (who && who->api_key))
        return (guard_refusal){0};
    if (!who)
        return (guard_refusal){401, "this endpoint needs an API key (Authorization: Bearer KEY)"};
    return (guard_refusal){403, "this endpoint needs an API key; a token is not one"};
}

/* The server API: an API key, always (auth is on). */
static guard_refusal check_api_key(const access_principal *who)
{
    if (who && who->api_key)
        return (guard_refusal){0};
    if (!who)
        return (guard_refusal){401, "the server API needs an API key (Authorization: Bearer KEY)"};
    return (guard_refusal){403, "the server API needs an API key; a token is not one"};
}

static guard_refusal check_room(const access_principal *who, const char *room, access_right right)
{
    access_verdict v = access_room(conf, who, room ? room : "", right);
    if (v == ACCESS_ALLOWED)
        return (guard_refusal){0};
    return (guard_refusal){access_status(v), access_reason(v, right)};
}

route_access guard_need(route_access need, const char *path)
{
    if (need != RIGHT_PAGES || !guard_enabled())
        return need;
    return path && static_is_page(path, GUARD_DASHBOARD_PAGE) ? RIGHT_ADMIN : RIGHT_NONE;
}

guard_refusal guard_check(route_access need, const access_principal *who, const char *room)
{
    if (!guard_enabled())
        return (guard_refusal){0};
    switch (need) {
    case RIGHT_SUBSCRIBE:
        return check_room(who, room, ACCESS_SUBSCRIBE);
    case RIGHT_PUBLISH:
        return check_room(who, room, ACCESS_PUBLISH);
    case RIGHT_ADMIN:
        return check_admin(who);
    case RIGHT_API:
        return check_api_key(who);
    case RIGHT_NONE:
    case RIGHT_PAGES: /* guard_need has made it ADMIN or NONE */
    case RIGHT_HUB:
        break;
    }
    return (guard_refusal){0};
}
