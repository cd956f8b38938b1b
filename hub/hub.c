/* SPDX-License-Identifier: MIT */
/*
 * hub.c - the hub object: its lock, the calls deferred until that lock is let
 * go (a join's done, a held publish's answer: hub_unlock makes them), its
 * stats, and hub_create/hub_destroy.
 *
 * The hub is split by concern, one file each, sharing hub/internal.h:
 * rooms.c (the room table), members.c (subs and membership), resume.c
 * (cursors, gaps, replay), fanout.c (publishing and delivery),
 * history_budget.c (history.max_bytes), hub_backplane.c (a shared
 * backplane's calls into the hub), users.c (who is connected: users and
 * connection ids). One mutex guards everything in all of
 * them (see hub.h); every callback is deferred so that none runs under it.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hub/node_stats.h"

#define CALLS_INITIAL_CAP 16     /* deferred calls made room for at first */
#define ROOMS_INITIAL_BUCKETS 64 /* the room table doubles as rooms come */

static join_call *call_slot(hub *h)
{
    if (h->ncalls == h->calls_cap) {
        size_t cap = h->calls_cap ? h->calls_cap * 2 : CALLS_INITIAL_CAP;
        join_call *c = realloc(h->calls, cap * sizeof(*c));
        if (!c)
            return NULL;
        h->calls = c;
        h->calls_cap = cap;
    }
    return &h->calls[h->ncalls++];
}

/* Hub lock held: done(arg, rc, …) is to be called after the lock. */
void hub_defer_join(hub *h, join_done_fn done, void *arg, int rc, const char *epoch,
                    uint64_t last_id)
{
    join_call *c = call_slot(h);
    if (!c) {
        LOG_ERR(TAG, "out of memory: a join's answer is lost");
        return;
    }
    *c = (join_call){.done = done, .arg = arg, .rc = rc, .last_id = last_id};
    snprintf(c->epoch, sizeof(c->epoch), "%s", epoch);
}

/* Hub lock held: p's answer is to be given after the lock; p is freed. */
void hub_defer_publish(hub *h, held_publish *p)
{
    join_call *c = call_slot(h);
    if (c)
        *c = (join_call){.published = p->done, .arg = p->arg, .res = p->res};
    else
        LOG_ERR(TAG, "out of memory: a publish's answer is lost");
    free(p);
}

/* Lets the hub lock go, then makes the calls that were due. */
void hub_unlock(hub *h)
{
    join_call *calls = h->calls;
    size_t n = h->ncalls;
    if (n) {
        h->calls = NULL;
        h->ncalls = h->calls_cap = 0;
    }
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        if (calls[i].published)
            calls[i].published(calls[i].arg, &calls[i].res);
        else
            calls[i].done(calls[i].arg, calls[i].rc, calls[i].epoch, calls[i].last_id);
    }
    if (n)
        free(calls);
}

void hub_get_stats(hub *h, hub_stats *out)
{
    pthread_mutex_lock(&h->lock);
    *out = h->stats;
    out->history_bytes = h->hist_bytes;
    out->history_evicted = h->evicted;
    hub_unlock(h);
}

hub *hub_create(const hub_options *opt)
{
    hub *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->opt = *opt;
    h->nbuckets = ROOMS_INITIAL_BUCKETS;
    h->buckets = calloc(h->nbuckets, sizeof(*h->buckets));
    if (!h->buckets) {
        free(h);
        return NULL;
    }
    list_init(&h->presence_work);
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

void hub_destroy(hub *h)
{
    if (!h)
        return;
    /* Answers still held (the backplane is stopped): given before anything
     * goes, since answering may call back into the hub. */
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nbuckets; i++)
        for (room *r = h->buckets[i]; r; r = r->bucket_next)
            room_release_held(h, r, 0, true);
    hub_unlock(h);
    user_ops_finish_all(h);  /* server API ops still waiting for other nodes */
    node_stats_finish_all(); /* cluster view questions too */
    for (size_t i = 0; i < h->nbuckets; i++) {
        room *r = h->buckets[i];
        while (r) {
            room *next = r->bucket_next;
            list_for_each_safe (n, tmp, &r->members) { /* members left behind: forget them */
                membership *m = member_of(n);
                m->s->memberships = NULL;
                free(m);
            }
            history_clear(&r->hist);
            room_clear_waiting(h, r);
            room_presence_free(h, r);
            free(r);
            r = next;
        }
    }
    registry_free(h);
    free(h->calls);
    free(h->heap);
    free(h->buckets);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
