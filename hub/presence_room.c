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
 * Catching up (a shared room with presence_events): events published on
 * the room's channel before this node has subscribed to it would be lost
 * to its members, this node's own changes included. When this node's
 * presence in a room begins, it reads who is present on the other nodes
 * (the base); once the channel is subscribed it has the backplane publish
 * who is present now on that channel, in order with the events (the
 * sync). Events before the sync are in it and are passed by; the members
 * get a join for each user present now and not in the base and a leave
 * for each one gone, then the events after the sync: every change once.
 * Past PRESENCE_SYNC_MS without the sync (Redis unreachable) the room goes
 * on with the events as they come.
 *
 * Threading: everything here runs with the hub lock held (the public calls
 * take it); callbacks are called after it is let go.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json_text.h"
#include "common/log.h"

#define PRESENCE_BATCH_MAX 1000  /* events one room sends in one tick */
#define PRESENCE_SYNC_MS 5000    /* catching up waits this long at most */
#define PRESENCE_SYNC_USERS 1000 /* past this many users present, no catching up */

enum { PSYNC_LIVE, PSYNC_BASE, PSYNC_READY, PSYNC_MARK };

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

/* r goes on with its events as they come. */
static void psync_live(room *r)
{
    r->psync = PSYNC_LIVE;
    free(r->psync_base);
    r->psync_base = NULL;
}

/* This node's presence in r begins: reads the base (who is present on the
 * other nodes). */
static void psync_start(hub *h, room *r)
{
    if (!r->presence_events || !via_backplane(h, r) || !h->bp->ops->presence_sync)
        return;
    psync_live(r);
    r->psync = PSYNC_BASE;
    r->psync_subscribed = r->synced;
    r->psync_since = clock_now_ms();
    queue_work(h, r); /* for its bound (hub_presence_tick) */
    h->bp->ops->presence_sync(h->bp, r->name, true, PRESENCE_SYNC_USERS);
}

static void psync_send(hub *h, room *r)
{
    r->psync = PSYNC_MARK;
    h->bp->ops->presence_sync(h->bp, r->name, false, PRESENCE_SYNC_USERS);
}

void room_presence_subscribed(hub *h, room *r)
{
    r->psync_subscribed = true;
    if (r->psync == PSYNC_READY)
        psync_send(h, r);
}

/* Whether the JSON array of names has name. */
static bool has_user(const json_t *list, const char *name)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *u = json_string_value(json_array_get(list, i));
        if (u && !strcmp(u, name))
            return true;
    }
    return false;
}

/* Events (join or leave) for the names in a and not in b. */
static void add_missing(hub *h, room *r, const json_t *a, const json_t *b, bool join)
{
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *u = json_string_value(json_array_get(a, i));
        if (u && !has_user(b, u))
            add_event(h, r, u, join);
    }
}

/* The events that make base into now (JSON arrays of names; "*": too many
 * to list, then none). */
static void psync_diff(hub *h, room *r, const char *base, const char *now, size_t now_len)
{
    json_t *b = json_loads(base, 0, NULL);
    json_t *n = json_loadb(now, now_len, 0, NULL);
    if (json_is_array(b) && json_is_array(n)) {
        add_missing(h, r, n, b, true);
        add_missing(h, r, b, n, false);
    } else {
        LOG_WARN(TAG, "room %s: too many present to catch up with its presence events", r->name);
    }
    json_decref(b);
    json_decref(n);
}

void hub_bp_presence_base(hub *h, const char *room_name, const char *users, size_t len)
{
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, room_name);
    if (r && r->psync == PSYNC_BASE) {
        char *copy = users ? strndup(users, len) : NULL;
        if (!copy) {
            LOG_WARN(TAG, "room %s: presence not caught up (no answer from the backplane)",
                     r->name);
            psync_live(r);
        } else {
            r->psync_base = copy;
            r->psync = PSYNC_READY;
            if (r->psync_subscribed)
                psync_send(h, r);
        }
    }
    hub_unlock(h);
}

void hub_bp_presence_synced(hub *h, const char *room_name, const char *users, size_t len)
{
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, room_name);
    if (r && r->psync == PSYNC_MARK) {
        if (room_has_members(r))
            psync_diff(h, r, r->psync_base, users, len);
        psync_live(r);
    }
    hub_unlock(h);
}

void room_presence_join(hub *h, room *r, membership *m)
{
    if (!counted(r))
        return;
    if (!room_present(r))
        psync_start(h, r);
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
    psync_live(r);
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
        if (r->psync && now_ms - r->psync_since >= PRESENCE_SYNC_MS) {
            LOG_WARN(TAG, "room %s: presence not caught up in %d ms: events as they come", r->name,
                     PRESENCE_SYNC_MS);
            psync_live(r);
        }
        flush(h, r);
        if (r->presence.nlingering || r->presence_nbatch || r->psync)
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
    /* while catching up, the sync to come holds it */
    if (r && room_has_members(r) && r->psync == PSYNC_LIVE)
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
            psync_live(r); /* what changed meanwhile is not told */
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
