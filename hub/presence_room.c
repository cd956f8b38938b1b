/* SPDX-License-Identifier: MIT */
/*
 * presence_room.c - the hub's side of presence (hub.h, "presence"): each
 * room's presence_set kept as members join and leave, users lingering
 * PRESENCE_GRACE_MS after their last connection, join/leave events
 * collected per room and sent once a tick (hub_presence_tick) as one
 * presence message (at most PRESENCE_BATCH_MAX events a tick; past it they
 * are dropped, with a warning), and, with a shared backplane, every change
 * of a user's count reported there (the backplane then decides the
 * cluster's joins and leaves and brings them back: hub_bp_presence).
 * Rooms with lingering users or events to send are in hub->presence_work;
 * such a room is not freed until the tick is done with it.
 *
 * Threading: everything here runs with the hub lock held (the public calls
 * take it); callbacks are called after it is let go.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json_text.h"
#include "common/log.h"

#define PRESENCE_BATCH_MAX 1000 /* events one room sends in one tick */

static bool counted(const room *r)
{
    return !room_name_is_internal(r->name);
}

/* Through the backplane: counts go there and events come back from it. A
 * backplane without presence ops (they are optional) leaves it local. */
static bool via_backplane(const hub *h, const room *r)
{
    return r->shared && h->bp && h->bp->ops->presence;
}

static void queue_work(hub *h, room *r)
{
    if (r->presence_queued)
        return;
    list_push_back(&h->presence_work, &r->presence_link);
    r->presence_queued = true;
}

/* Tells the backplane this node's count of user in r. */
static void report(hub *h, room *r, const char *user, uint64_t count, bool present, bool reset,
                   bool events)
{
    if (!via_backplane(h, r))
        return;
    bp_presence p = {.room = r->name,
                     .user = user ? user : "",
                     .count = count,
                     .events = events,
                     .reset = reset,
                     .room_present = present};
    h->bp->ops->presence(h->bp, &p);
}

static bool room_present(const room *r)
{
    return r->presence.nusers || r->presence.anonymous;
}

/* Collects one event for r's next tick. */
static void add_event(hub *h, room *r, const char *user, bool join)
{
    if (!r->presence_events || !user || !*user)
        return;
    if (r->presence_nbatch >= PRESENCE_BATCH_MAX) {
        if (r->presence_nbatch == PRESENCE_BATCH_MAX)
            LOG_WARN(TAG, "room %s: more than %d presence events in one tick; the rest dropped",
                     r->name, PRESENCE_BATCH_MAX);
        r->presence_nbatch = PRESENCE_BATCH_MAX + 1; /* warned once this tick */
        return;
    }
    buf *b = &r->presence_batch;
    size_t before = b->len;
    bool ok = (!r->presence_nbatch || buf_append_str(b, ",")) && buf_append_str(b, "{\"user\":") &&
              buf_json_string(b, user, strlen(user), 0) &&
              buf_append_str(b, join ? ",\"action\":\"join\"}" : ",\"action\":\"leave\"}");
    if (!ok) {
        b->len = before;
        LOG_WARN(TAG, "room %s: out of memory, a presence event dropped", r->name);
        return;
    }
    r->presence_nbatch++;
    queue_work(h, r);
}

void room_presence_join(hub *h, room *r, membership *m)
{
    if (!counted(r))
        return;
    uint64_t shown = 0;
    const char *user = m->s->user;
    int rc = presence_add(&r->presence, user, &shown, &m->user);
    if (rc < 0) {
        LOG_WARN(TAG, "room %s: out of memory, a member not counted in presence", r->name);
        return;
    }
    m->in_presence = true;
    if (rc != PRESENCE_SAME || !m->user)
        report(h, r, m->user, shown, true, false, r->presence_events);
    if (rc == PRESENCE_JOINED && !via_backplane(h, r))
        add_event(h, r, m->user, true);
}

void room_presence_leave(hub *h, room *r, membership *m)
{
    if (!m->in_presence)
        return;
    m->in_presence = false;
    uint64_t shown = 0;
    presence_change c = presence_remove(&r->presence, m->user, clock_now_ms(), &shown);
    if (c == PRESENCE_COUNT || !m->user)
        report(h, r, m->user, shown, room_present(r), false, r->presence_events);
    if (r->presence.nlingering)
        queue_work(h, r);
}

bool room_presence_holds(const room *r)
{
    return r->presence_queued || r->presence.nlingering || r->presence_nbatch;
}

void room_presence_free(hub *h, room *r)
{
    (void)h;
    if (r->presence_queued) {
        list_remove(&r->presence_link);
        r->presence_queued = false;
    }
    presence_clear(&r->presence);
    buf_free(&r->presence_batch);
    r->presence_nbatch = 0;
}

typedef struct gone_ctx {
    hub *h;
    room *r;
} gone_ctx;

/* A lingering user goes: a leave (here, or decided by the backplane). */
static void user_gone(void *arg, const char *user)
{
    gone_ctx *g = arg;
    room *r = g->r;
    bool present = r->presence.nusers > 1 || r->presence.anonymous; /* user still counted */
    report(g->h, r, user, 0, present, false, r->presence_events);
    if (!via_backplane(g->h, r))
        add_event(g->h, r, user, false);
}

/* Sends r's collected events to its members as one message. */
static void flush(hub *h, room *r)
{
    if (!r->presence_nbatch)
        return;
    buf *b = &r->presence_batch;
    size_t n = r->presence_nbatch > PRESENCE_BATCH_MAX ? PRESENCE_BATCH_MAX : r->presence_nbatch;
    msg *m = NULL;
    if (n == 1) {
        m = msg_create_presence(b->data, b->len);
    } else {
        buf list = {0};
        if (buf_append_str(&list, "[") && buf_append(&list, b->data, b->len) &&
            buf_append_str(&list, "]"))
            m = msg_create_presence(list.data, list.len);
        buf_free(&list);
    }
    b->len = 0;
    r->presence_nbatch = 0;
    if (!m) {
        LOG_WARN(TAG, "room %s: out of memory, presence events dropped", r->name);
        return;
    }
    room_fanout(h, r, m, NULL, 0, false);
    msg_unref(m);
}

void hub_presence_tick(hub *h, int64_t now_ms)
{
    pthread_mutex_lock(&h->lock);
    list_for_each_safe (n, next, &h->presence_work) {
        room *r = list_entry(n, room, presence_link);
        if (r->presence.nlingering) {
            gone_ctx g = {h, r};
            presence_sweep(&r->presence, now_ms - PRESENCE_GRACE_MS, user_gone, &g);
        }
        flush(h, r);
        if (r->presence.nlingering || r->presence_nbatch)
            continue;
        list_remove(&r->presence_link);
        r->presence_queued = false;
        room_free_if_empty_at(h, r, now_ms);
    }
    hub_unlock(h);
}

void hub_bp_presence(hub *h, const char *room_name, const char *user, bool join)
{
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, room_name);
    if (r && room_has_members(r))
        add_event(h, r, user, join);
    hub_unlock(h);
}

typedef struct resync_ctx {
    hub *h;
    room *r;
} resync_ctx;

static void resync_user(void *arg, const char *user, uint64_t shown)
{
    resync_ctx *c = arg;
    report(c->h, c->r, user, shown, true, false, false);
}

void hub_presence_resync(hub *h)
{
    for (size_t i = 0; i < h->nbuckets; i++) {
        for (room *r = h->buckets[i]; r; r = r->bucket_next) {
            if (!counted(r) || !via_backplane(h, r))
                continue;
            /* reported afresh, no events: what changed meanwhile is not told */
            report(h, r, "", r->presence.anonymous, room_present(r), true, false);
            resync_ctx c = {h, r};
            presence_each(&r->presence, resync_user, &c);
        }
    }
}

/* A copy of r's presence (names included) that outlives the hub lock. */
typedef struct local_answer {
    presence_list l;
    presence_entry *v;
    char *names;
} local_answer;

static int local_presence(const room *r, size_t max_listed, local_answer *a)
{
    *a = (local_answer){0};
    if (!r)
        return 0;
    a->l.users = r->presence.nusers;
    a->l.anonymous = r->presence.anonymous;
    a->l.listed = r->presence.nusers <= max_listed;
    if (!a->l.listed || !r->presence.nusers)
        return 0;
    presence_entry *v;
    size_t n;
    if (presence_entries(&r->presence, &v, &n))
        return -ENOMEM;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(v[i].user) + 1;
    char *names = malloc(bytes ? bytes : 1);
    if (!names) {
        free(v);
        return -ENOMEM;
    }
    char *p = names;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i].user) + 1;
        memcpy(p, v[i].user, len);
        v[i].user = p;
        p += len;
    }
    a->v = v;
    a->names = names;
    a->l.v = v;
    a->l.n = n;
    return 0;
}

void hub_presence_get(hub *h, const char *room_name, size_t max_listed, presence_fn cb, void *arg)
{
    pthread_mutex_lock(&h->lock);
    backplane *bp = hub_is_shared(h, room_name) && h->bp->ops->presence_get ? h->bp : NULL;
    local_answer a = {0};
    int rc = bp ? 0 : local_presence(room_find(h, room_name), max_listed, &a);
    hub_unlock(h);
    if (bp) {
        bp->ops->presence_get(bp, room_name, max_listed, cb, arg);
        return;
    }
    a.l.listed = a.l.users <= max_listed;
    cb(arg, rc, &a.l);
    free(a.v);
    free(a.names);
}
