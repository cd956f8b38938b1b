/* SPDX-License-Identifier: MIT */
/*
 * rooms.c - the room table: names, lookup (a hash table), creation within
 * limits.max_rooms, epochs, and a room's end (a room of this hub's own
 * lives while it has members or history; a shared one lingers
 * ROOM_LINGER_MS after its last member). Room info and hub_expire.
 * Everything here runs with the hub lock held (public calls take it).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/parse.h"

#define ROOM_LINGER_MS 5000 /* a shared room left by all stays subscribed this long */

bool room_name_is_valid(const char *name, size_t len)
{
    if (len < 1 || len > ROOM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

room *room_find(hub *h, const char *name)
{
    uint32_t hv = str_hash(name);
    for (room *r = h->buckets[hv % h->nbuckets]; r; r = r->bucket_next)
        if (r->hash == hv && !strcmp(r->name, name))
            return r;
    return NULL;
}

static void rehash(hub *h)
{
    size_t n = h->nbuckets * 2;
    room **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < h->nbuckets; i++) {
        room *r = h->buckets[i];
        while (r) {
            room *next = r->bucket_next;
            r->bucket_next = b[r->hash % n];
            b[r->hash % n] = r;
            r = next;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = n;
}

void hub_random_name(char *out, size_t n)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[32] = {0};
    if (n > sizeof(raw))
        n = sizeof(raw);
    if (getrandom(raw, n, 0) != (ssize_t)n)
        LOG_WARN(TAG, "getrandom failed; names may repeat");
    for (size_t i = 0; i < n; i++)
        out[i] = chars[raw[i] % (sizeof(chars) - 1)];
    out[n] = '\0';
}

/* A room's epoch: 8 random characters of [A-Za-z0-9]. Ids are only
 * comparable within one epoch; a room that is freed and made again starts
 * a new one (and its ids start again at 1). */
void room_new_epoch(char out[MSG_EPOCH_MAX])
{
    hub_random_name(out, ROOM_EPOCH_LEN);
}

bool hub_is_shared(const hub *h, const char *name)
{
    return h->bp && strncmp(name, HUB_LOCAL_PREFIX, strlen(HUB_LOCAL_PREFIX)) != 0;
}

/* Hub lock held: a room clients name (not a hub's or the stats stream's)
 * would pass limits.max_rooms. */
static bool rooms_full(hub *h, const char *name)
{
    if (!h->opt.max_rooms || room_name_is_internal(name) || h->stats.rooms < h->opt.max_rooms)
        return false;
    char what[96];
    snprintf(what, sizeof(what), "a new room refused: limits.max_rooms (%zu) reached",
             h->opt.max_rooms);
    limit_refused(LIMIT_ROOMS, what);
    return true;
}

/* Returns the room, or NULL with *rc -ENOSPC (limits.max_rooms) or -ENOMEM. */
room *room_get_or_create(hub *h, const char *name, int *rc)
{
    room *r = room_find(h, name);
    if (r)
        return r;
    *rc = -ENOSPC;
    if (rooms_full(h, name))
        return NULL;
    *rc = -ENOMEM;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    list_init(&r->members);
    size_t len = strlen(name);
    memcpy(r->name, name, len + 1);
    r->hash = str_hash(name);
    room_new_epoch(r->epoch);
    r->shared = hub_is_shared(h, name);
    r->presence_events = !room_name_is_internal(name) && h->opt.presence_events &&
                         h->opt.presence_events(h->opt.presence_arg, name);
    r->synced = !r->shared;
    if (r->shared)
        r->epoch[0] = '\0'; /* the backplane's, once fetched */
    history_init(&r->hist, h->opt.history_size, h->opt.history_ttl_ms);
    r->hist.total = &h->hist_bytes;
    if (h->nrooms + 1 > h->nbuckets)
        rehash(h);
    r->bucket_next = h->buckets[r->hash % h->nbuckets];
    h->buckets[r->hash % h->nbuckets] = r;
    h->nrooms++;
    h->stats.rooms +=
        !room_name_is_internal(r->name); /* internal rooms (hubs, stats) not counted */
    if (r->shared && h->bp)
        h->bp->ops->want_room(h->bp, r->name, true);
    return r;
}

/* A room of this hub's own lives while it has members or history; a shared
 * one while it has members, and ROOM_LINGER_MS after (its history lives in
 * the backplane; lingering spares a fetch to members that come and go, as
 * long polls do). */
static bool room_is_empty(room *r, int64_t now)
{
    if (room_has_members(r)) {
        r->empty_since_ms = 0;
        return false;
    }
    if (room_presence_holds(r))
        return false; /* its leaves go out first (hub_presence_tick) */
    if (!r->shared)
        return !r->hist.count;
    if (r->held)
        return false; /* hub_expire answers them first */
    if (!r->empty_since_ms)
        r->empty_since_ms = now;
    return now - r->empty_since_ms >= ROOM_LINGER_MS;
}

void room_clear_waiting(hub *h, room *r)
{
    for (size_t i = 0; i < r->nwaiting; i++)
        msg_unref(r->waiting[i]);
    free(r->waiting);
    r->waiting = NULL;
    r->nwaiting = 0;
    h->waiting_bytes -= r->waiting_bytes;
    r->waiting_bytes = 0;
}

void room_free_if_empty_at(hub *h, room *r, int64_t now)
{
    if (!room_is_empty(r, now))
        return;
    room **pp = &h->buckets[r->hash % h->nbuckets];
    while (*pp != r)
        pp = &(*pp)->bucket_next;
    *pp = r->bucket_next;
    size_t before = r->hist.bytes;
    history_clear(&r->hist);
    room_hist_dropped(h, r, before);
    room_clear_waiting(h, r);
    room_presence_free(h, r);
    if (r->shared && h->bp)
        h->bp->ops->want_room(h->bp, r->name, false);
    h->freed_bytes += sizeof(*r);
    h->nrooms--;
    h->stats.rooms -= !room_name_is_internal(r->name);
    free(r);
}

void room_free_if_empty(hub *h, room *r)
{
    room_free_if_empty_at(h, r, clock_now_ms());
}

int hub_room_info(hub *h, const char *room_name, room_info *out)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, room_name);
    if (r) {
        out->last_id = r->last_id;
        memcpy(out->epoch, r->epoch, sizeof(out->epoch));
        memcpy(out->subscribers, r->count, sizeof(out->subscribers));
        rc = 0;
    }
    hub_unlock(h);
    return rc;
}

int hub_room_info_async(hub *h, const char *room_name, room_info *out, bp_room_fn cb, void *arg)
{
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, room_name);
    backplane *bp = hub_is_shared(h, room_name) ? h->bp : NULL;
    /* A shared room with no member here (lingering) may be gone elsewhere. */
    bool local = r && r->synced && (!bp || room_has_members(r));
    if (local) {
        out->last_id = r->last_id;
        memcpy(out->epoch, r->epoch, sizeof(out->epoch));
        memcpy(out->subscribers, r->count, sizeof(out->subscribers));
    }
    hub_unlock(h);
    if (local)
        return 0;
    if (!bp)
        return -ENOENT;
    bp->ops->room_state(bp, room_name, cb, arg);
    return -EINPROGRESS;
}

size_t hub_expire(hub *h, int64_t now_ms)
{
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nbuckets; i++) {
        room *r = h->buckets[i];
        while (r) {
            room *next = r->bucket_next;
            size_t before = r->hist.bytes;
            history_expire(&r->hist, now_ms);
            room_hist_dropped(h, r, before);
            room_release_held(h, r, now_ms, false);
            room_check_lagging(h, r, now_ms);
            room_free_if_empty_at(h, r, now_ms);
            r = next;
        }
    }
    size_t freed = h->freed_bytes;
    h->freed_bytes = 0;
    hub_unlock(h);
    return freed;
}
