/* SPDX-License-Identifier: MIT */
/*
 * presence.c - presence_set (presence.h): one room's users and their
 * connection counts on this node, a hash table keyed by user, growing at
 * a load of one. Pure data: its owner's lock guards it.
 */
#include "hub/presence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

#define INITIAL_BUCKETS 8

struct presence_user {
    struct presence_user *next; /* in its bucket */
    uint32_t hash;
    uint64_t count;  /* connections now */
    uint64_t shown;  /* what a reader sees: count, or the last one while lingering */
    int64_t gone_ms; /* lingering since (count 0); 0 while it has connections */
    char name[];
};

static bool is_anonymous(const char *user)
{
    return !user || !*user;
}

static presence_user *find(const presence_set *p, const char *user, uint32_t hv)
{
    if (!p->nbuckets)
        return NULL;
    for (presence_user *u = p->buckets[hv % p->nbuckets]; u; u = u->next)
        if (u->hash == hv && !strcmp(u->name, user))
            return u;
    return NULL;
}

/* Doubles the table (at least INITIAL_BUCKETS); false on ENOMEM. */
static bool grow(presence_set *p)
{
    size_t n = p->nbuckets ? p->nbuckets * 2 : INITIAL_BUCKETS;
    presence_user **b = calloc(n, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < p->nbuckets; i++) {
        for (presence_user *u = p->buckets[i], *next; u; u = next) {
            next = u->next;
            u->next = b[u->hash % n];
            b[u->hash % n] = u;
        }
    }
    free(p->buckets);
    p->buckets = b;
    p->nbuckets = n;
    return true;
}

int presence_add(presence_set *p, const char *user, uint64_t *shown, const char **name)
{
    if (name)
        *name = NULL;
    if (is_anonymous(user)) {
        p->anonymous++;
        *shown = p->anonymous;
        return PRESENCE_SAME;
    }
    uint32_t hv = str_hash(user);
    presence_user *u = find(p, user, hv);
    if (u) {
        bool lingering = u->gone_ms != 0;
        if (lingering)
            p->nlingering--;
        u->gone_ms = 0;
        u->count++;
        uint64_t before = u->shown;
        u->shown = u->count;
        *shown = u->shown;
        if (name)
            *name = u->name;
        return before == u->shown ? PRESENCE_SAME : PRESENCE_COUNT;
    }
    if (p->nusers + 1 > p->nbuckets && !grow(p) && !p->nbuckets)
        return -ENOMEM;
    size_t len = strlen(user);
    u = malloc(sizeof(*u) + len + 1);
    if (!u)
        return -ENOMEM;
    memcpy(u->name, user, len + 1);
    u->hash = hv;
    u->count = u->shown = 1;
    u->gone_ms = 0;
    u->next = p->buckets[hv % p->nbuckets];
    p->buckets[hv % p->nbuckets] = u;
    p->nusers++;
    *shown = 1;
    if (name)
        *name = u->name;
    return PRESENCE_JOINED;
}

presence_change presence_remove(presence_set *p, const char *user, int64_t now_ms, uint64_t *shown)
{
    if (is_anonymous(user)) {
        if (p->anonymous)
            p->anonymous--;
        *shown = p->anonymous;
        return PRESENCE_SAME;
    }
    presence_user *u = find(p, user, str_hash(user));
    if (!u || !u->count)
        return PRESENCE_SAME;
    u->count--;
    if (!u->count) { /* lingers with the count it had */
        u->gone_ms = now_ms ? now_ms : 1;
        p->nlingering++;
        *shown = u->shown;
        return PRESENCE_SAME;
    }
    u->shown = u->count;
    *shown = u->shown;
    return PRESENCE_COUNT;
}

size_t presence_sweep(presence_set *p, int64_t cutoff_ms, void (*gone)(void *arg, const char *user),
                      void *arg)
{
    size_t went = 0;
    for (size_t i = 0; i < p->nbuckets && p->nlingering; i++) {
        presence_user **pp = &p->buckets[i];
        while (*pp) {
            presence_user *u = *pp;
            if (!u->gone_ms || u->gone_ms > cutoff_ms) {
                pp = &u->next;
                continue;
            }
            if (gone)
                gone(arg, u->name);
            *pp = u->next;
            free(u);
            p->nusers--;
            p->nlingering--;
            went++;
        }
    }
    return went;
}

void presence_each(const presence_set *p, void (*each)(void *arg, const char *user, uint64_t shown),
                   void *arg)
{
    for (size_t i = 0; i < p->nbuckets; i++)
        for (presence_user *u = p->buckets[i]; u; u = u->next)
            each(arg, u->name, u->shown);
}

static int by_user(const void *a, const void *b)
{
    return strcmp(((const presence_entry *)a)->user, ((const presence_entry *)b)->user);
}

void presence_sort(presence_entry *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), by_user);
}

int presence_entries(const presence_set *p, presence_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!p->nusers)
        return 0;
    presence_entry *v = malloc(p->nusers * sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < p->nbuckets; i++)
        for (presence_user *u = p->buckets[i]; u; u = u->next)
            v[k++] = (presence_entry){u->name, u->shown};
    presence_sort(v, k);
    *out = v;
    *n = k;
    return 0;
}

void presence_clear(presence_set *p)
{
    for (size_t i = 0; i < p->nbuckets; i++) {
        for (presence_user *u = p->buckets[i], *next; u; u = next) {
            next = u->next;
            free(u);
        }
    }
    free(p->buckets);
    *p = (presence_set){0};
}
