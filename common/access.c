/* SPDX-License-Identifier: MIT */
/*
 * access.c - principals (who a connection is) and the room rules
 * (auth.rooms): which right on which room a principal has. Pure: no I/O,
 * no crypto; gateway/auth.c makes the principals.
 *
 * Threading: a principal is filled by the thread that makes it, then only
 * read; its reference count is atomic, so any thread may take or drop a
 * reference. access_room reads the config only: the rules of the current
 * copy (common/live.h, swapped by a SIGHUP reload) when there is one, held
 * by a reference for the call; else the cfg it is given.
 */
#include "common/access.h"

#include <stdlib.h>
#include <string.h>

#include "common/live.h"

access_principal *access_principal_new(const char *user, int64_t expires_ms, bool token,
                                       bool api_key)
{
    access_principal *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (user && !(p->user = strdup(user))) {
        free(p);
        return NULL;
    }
    atomic_init(&p->refs, 1);
    p->expires_ms = expires_ms;
    p->token = token;
    p->api_key = api_key;
    return p;
}

int access_patterns_add(access_patterns *list, const char *pattern)
{
    char *copy = strdup(pattern);
    char **items = copy ? realloc(list->items, (list->n + 1) * sizeof(*items)) : NULL;
    if (!items) {
        free(copy);
        return -1;
    }
    items[list->n++] = copy;
    list->items = items;
    return 0;
}

static void patterns_free(access_patterns *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

access_principal *access_ref(access_principal *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void access_unref(access_principal *p)
{
    if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    patterns_free(&p->subscribe);
    patterns_free(&p->publish);
    free(p->user);
    free(p->claims);
    free(p);
}

bool access_pattern_matches(const char *pattern, const char *name)
{
    size_t len = strlen(pattern);
    if (len > 0 && pattern[len - 1] == '*')
        return strncmp(pattern, name, len - 1) == 0;
    return strcmp(pattern, name) == 0;
}

static bool any_matches(const access_patterns *list, const char *room)
{
    for (size_t i = 0; i < list->n; i++) {
        if (access_pattern_matches(list->items[i], room))
            return true;
    }
    return false;
}

/* The level of right on room: the first rule whose match fits decides;
 * none fits: "claim". */
static cfg_access room_level(const cfg *c, const char *room, access_right right)
{
    for (unsigned i = 0; i < c->auth.nrooms; i++) {
        const cfg_room_rule *r = &c->auth.rooms[i];
        if (access_pattern_matches(r->match, room))
            return right == ACCESS_SUBSCRIBE ? r->subscribe : r->publish;
    }
    return CFG_ACCESS_CLAIM;
}

static bool presence_events_of(const cfg *c, const char *room)
{
    for (unsigned i = 0; i < c->auth.nrooms; i++)
        if (access_pattern_matches(c->auth.rooms[i].match, room))
            return c->auth.rooms[i].presence_events;
    return false;
}

bool access_room_presence_events(const cfg *c, const char *room)
{
    const cfg *now = live_acquire();
    bool on = presence_events_of(now ? now : c, room);
    live_release(now);
    return on;
}

static access_verdict verdict(const cfg *c, const access_principal *p, const char *room,
                              access_right right)
{
    if (!c->auth.enabled || (p && p->api_key))
        return ACCESS_ALLOWED;
    bool token = p && (p->token || p->proxied);
    switch (room_level(c, room, right)) {
    case CFG_ACCESS_PUBLIC:
        return ACCESS_ALLOWED;
    case CFG_ACCESS_TOKEN:
        return token ? ACCESS_ALLOWED : ACCESS_NEEDS_TOKEN;
    case CFG_ACCESS_CLAIM:
        if (!token)
            return ACCESS_NEEDS_TOKEN;
        return any_matches(right == ACCESS_SUBSCRIBE ? &p->subscribe : &p->publish, room)
                   ? ACCESS_ALLOWED
                   : ACCESS_NEEDS_CLAIM;
    case CFG_ACCESS_API_KEY:
        return ACCESS_NEEDS_API_KEY;
    }
    return ACCESS_NEEDS_API_KEY; /* not reached: every level is handled above */
}

access_verdict access_room(const cfg *c, const access_principal *p, const char *room,
                           access_right right)
{
    const cfg *now = live_acquire();
    access_verdict v = verdict(now ? now : c, p, room, right);
    live_release(now);
    return v;
}

unsigned access_status(access_verdict v)
{
    switch (v) {
    case ACCESS_ALLOWED:
        return 200;
    case ACCESS_NEEDS_TOKEN:
        return 401;
    case ACCESS_NEEDS_CLAIM:
    case ACCESS_NEEDS_API_KEY:
        return 403;
    }
    return 403;
}

const char *access_reason(access_verdict v, access_right right)
{
    bool sub = right == ACCESS_SUBSCRIBE;
    switch (v) {
    case ACCESS_ALLOWED:
        return "allowed";
    case ACCESS_NEEDS_TOKEN:
        return sub ? "subscribing to this room needs a token"
                   : "publishing to this room needs a token";
    case ACCESS_NEEDS_CLAIM:
        return sub ? "the token's rooms.subscribe claim does not list this room"
                   : "the token's rooms.publish claim does not list this room";
    case ACCESS_NEEDS_API_KEY:
        return sub ? "subscribing to this room needs an API key"
                   : "publishing to this room needs an API key";
    }
    return "access refused";
}

const char *access_user_label(const access_principal *p)
{
    if (!p)
        return "-";
    if (p->user)
        return p->user;
    return p->api_key ? "api-key" : "-";
}
