/* SPDX-License-Identifier: MIT */
/*
 * hub_backplane.c - a shared backplane's side of the hub: the link going
 * up and down, a shared room's numbering and history fetched (hub_bp_fetched),
 * its messages in the backplane's order (hub_bp_message), messages waiting
 * while a fetch is under way (bounded: ROOM_WAITING_MAX, WAITING_MAX_BYTES),
 * holes that call for a fetch, and held publishes: an answer held until this
 * node has taken its message (so that whoever published reads what they
 * wrote from this node at once), at most PUBLISH_HOLD_MS. The hub_bp_* calls
 * run on the backplane's thread and take the hub lock; they call the
 * backplane's ops only to queue work.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "hub/backlog.h"
#include "hub/backlog_cluster.h"

/* How long an answer is held at most (a message that does not come back,
 * e.g. while the backplane reconnects): then it is given anyway. */
#define PUBLISH_HOLD_MS 1000

#define ROOM_WAITING_MAX 10000 /* messages held while a room's fetch is under way */

/* ... and the bytes all rooms may hold so together: past it a room lets its
 * waiting messages go and fetches again, as past ROOM_WAITING_MAX. */
#define WAITING_MAX_BYTES ((size_t)64 << 20) /* 64 MiB */
#define WAITING_INITIAL_CAP 8

/* Hub lock held: answers r's held publishes that this node has now taken
 * (or that r's numbering has moved past), and, when now is given, those
 * held longer than PUBLISH_HOLD_MS; all of them when all. */
void room_release_held(hub *h, struct room *r, int64_t now, bool all)
{
    held_publish **pp = &r->held;
    while (*pp) {
        held_publish *p = *pp;
        if (all || p->res.id <= r->last_id || strcmp(p->res.epoch, r->epoch) ||
            (now && now - p->since_ms >= PUBLISH_HOLD_MS)) {
            *pp = p->next;
            backlog_flight(-1); /* sent in hub_publish_async */
            hub_defer_publish(h, p);
        } else {
            pp = &p->next;
        }
    }
}

void hub_set_backplane(hub *h, backplane *bp)
{
    pthread_mutex_lock(&h->lock);
    h->bp = bp;
    h->bp_up = false;
    hub_unlock(h);
    backlog_cluster_attach(bp); /* the backlog across nodes */
}

bool hub_bp_connected(hub *h)
{
    pthread_mutex_lock(&h->lock);
    bool up = !h->bp || h->bp_up;
    hub_unlock(h);
    return up;
}

void hub_bp_link(hub *h, bool up)
{
    pthread_mutex_lock(&h->lock);
    h->bp_up = up;
    for (size_t i = 0; i < h->nbuckets; i++) {
        for (room *r = h->buckets[i]; r; r = r->bucket_next) {
            if (!up) {
                /* what was numbered comes back with the next fetch, if
                 * ever: answering waits for nothing now */
                room_release_held(h, r, 0, true);
                continue;
            }
            r->local_epoch[0] = '\0'; /* the backplane numbers again */
            r->local_last = 0;
        }
    }
    if (up)
        hub_presence_resync(h);
    hub_unlock(h);
}

/* Hub lock held: asks the backplane for what r may have missed (all it
 * keeps, the first time); messages wait until the answer. */
static void refetch(hub *h, room *r)
{
    if (!h->bp)
        return; /* stopping */
    r->synced = false;
    h->bp->ops->fetch(h->bp, r->name, r->known ? r->epoch : "", r->known ? r->last_id : 0);
}

void hub_bp_subscribed(hub *h, const char *name)
{
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, name);
    if (r && r->shared)
        refetch(h, r);
    hub_unlock(h);
}

/* How long ago, by this node's wall clock, a message was published at
 * wall_ms: 0 for a time ahead of it. wall_ms is whatever the backplane
 * carried, so any value is taken without overflow. */
static int64_t wall_age(int64_t wall_ms)
{
    int64_t now = clock_wall_ms();
    if (wall_ms >= now)
        return 0;
    uint64_t age = (uint64_t)now - (uint64_t)wall_ms;
    return age > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)age;
}

/* A message from the backplane as this node keeps it: what origin asked of
 * this node (an excluded sub, nothing when it delivered it already). */
static msg *entry_msg(hub *h, const room *r, const char *epoch, const bp_entry *e)
{
    msg *m = msg_create_in(e->id, r->name, epoch, e->data, e->len,
                           e->target && *e->target ? e->target : NULL,
                           clock_now_ms() - wall_age(e->wall_ms));
    if (!m)
        return NULL;
    m->wall_ms = e->wall_ms;
    bool mine = e->origin && !strcmp(e->origin, h->bp->node_id);
    m->exclude_uid = mine ? e->exclude : 0;
    m->delivered_here = mine && e->local_done;
    return m;
}

/* Hub lock held, r synced: m is the next in r's order. */
static void take_next(hub *h, room *r, msg *m)
{
    r->last_id = m->id;
    room_release_held(h, r, 0, false);
    if (!m->delivered_here)
        room_fanout(h, r, m, NULL, m->exclude_uid, true);
    room_keep_in_history(h, r, m);
}

/* Hub lock held, r synced. Takes m unless r has seen it; returns false when
 * m is not the next one (a hole: r needs a fetch). */
static bool apply(hub *h, room *r, msg *m)
{
    if (strcmp(m->epoch, r->epoch)) {
        if (m->id != 1)
            return false;
        /* A new numbering that starts here (the backplane forgot the room,
         * e.g. its keys expired): nothing before it to lose. */
        memcpy(r->epoch, m->epoch, sizeof(r->epoch));
        r->last_id = 0;
        size_t before = r->hist.bytes;
        history_clear(&r->hist);
        room_hist_dropped(h, r, before);
    }
    if (m->id <= r->last_id)
        return true;
    if (m->id != r->last_id + 1)
        return false;
    take_next(h, r, m);
    return true;
}

/* Hub lock held. Keeps m until r's fetch is answered; past the bounds
 * (messages in this room, bytes in all rooms) they are let go, and a fetch
 * after that one brings them. */
static void wait_push(hub *h, room *r, msg *m)
{
    size_t cost = msg_footprint(m);
    if (r->nwaiting >= ROOM_WAITING_MAX || h->waiting_bytes + cost > WAITING_MAX_BYTES) {
        room_clear_waiting(h, r);
        r->fetch_again = true;
        return;
    }
    if (!(r->nwaiting & (r->nwaiting - 1)) || !r->waiting) { /* grow at powers of two */
        size_t cap = r->nwaiting ? r->nwaiting * 2 : WAITING_INITIAL_CAP;
        msg **w = realloc(r->waiting, cap * sizeof(*w));
        if (!w) {
            r->fetch_again = true;
            return;
        }
        r->waiting = w;
    }
    r->waiting[r->nwaiting++] = msg_ref(m);
    r->waiting_bytes += cost;
    h->waiting_bytes += cost;
}

void hub_bp_message(hub *h, const char *name, const char *epoch, const bp_entry *e)
{
    pthread_mutex_lock(&h->lock);
    room *r = h->bp ? room_find(h, name) : NULL;
    msg *m = r && r->shared ? entry_msg(h, r, epoch, e) : NULL;
    if (!m) {
        if (r && r->shared && r->synced)
            refetch(h, r); /* out of memory: fetch it again later */
    } else if (!r->synced) {
        wait_push(h, r, m);
    } else if (!apply(h, r, m)) {
        refetch(h, r);
        wait_push(h, r, m);
    }
    msg_unref(m);
    hub_unlock(h);
}

/* Hub lock held: r is synced; its pending members start. */
static void start_pending(hub *h, room *r)
{
    list_for_each_safe (n, next, &r->members) {
        membership *mb = member_of(n);
        if (!mb->pending)
            continue;
        hub_join_args a = mb->args;
        if (a.from_now) {
            a.since = room_cursor_at(r, mb->join_wall_ms);
            a.from_now = false;
            a.check_gap = false;
        }
        mb->pending = false;
        if (member_start(h, r, mb, mb->s, &a))
            LOG_WARN(TAG, "room %s: out of memory replaying to a member", r->name);
        if (a.done)
            hub_defer_join(h, a.done, a.done_arg, 0, r->epoch, member_position(r, mb));
    }
}

/* Hub lock held, r synced: delivers what waited for the fetch, until a hole. */
static void drain_waiting(hub *h, room *r)
{
    msg **w = r->waiting;
    size_t n = r->nwaiting;
    r->waiting = NULL;
    r->nwaiting = 0;
    h->waiting_bytes -= r->waiting_bytes;
    r->waiting_bytes = 0;
    size_t i = 0;
    while (i < n && apply(h, r, w[i])) {
        msg_unref(w[i]);
        i++;
    }
    if (i < n) {
        refetch(h, r);
        for (; i < n; i++) {
            wait_push(h, r, w[i]);
            msg_unref(w[i]);
        }
    }
    free(w);
}

void hub_bp_fetched(hub *h, const char *name, const char *epoch, uint64_t last_id,
                    const bp_entry *entries, size_t n)
{
    pthread_mutex_lock(&h->lock);
    room *r = h->bp ? room_find(h, name) : NULL;
    if (!r || !r->shared || !epoch[0])
        goto out;
    bool changed = r->known && strcmp(epoch, r->epoch);
    uint64_t before = r->last_id;
    if (!r->known || changed) {
        snprintf(r->epoch, sizeof(r->epoch), "%s", epoch);
        r->last_id = 0;
        size_t kept = r->hist.bytes;
        history_clear(&r->hist);
        room_hist_dropped(h, r, kept);
    }
    if (changed)
        room_signal_gap(h, r, "epoch", before, n ? entries[0].id : last_id + 1);
    else if (r->known && n && entries[0].id > r->last_id + 1)
        room_signal_gap(h, r, "expired", before, entries[0].id);
    r->known = true;
    for (size_t i = 0; i < n; i++) {
        if (entries[i].id <= r->last_id)
            continue;
        msg *m = entry_msg(h, r, r->epoch, &entries[i]);
        if (m)
            take_next(h, r, m);
        msg_unref(m);
    }
    if (last_id > r->last_id)
        r->last_id = last_id;
    room_release_held(h, r, 0, false);
    r->synced = true;
    start_pending(h, r);
    room_presence_subscribed(h, r);
    drain_waiting(h, r);
    if (r->synced && r->fetch_again) {
        r->fetch_again = false;
        refetch(h, r);
    }
out:
    hub_unlock(h);
}
