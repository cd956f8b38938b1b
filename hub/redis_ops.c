/* SPDX-License-Identifier: MIT */
/*
 * redis_ops.c - the Redis backplane's backplane_ops: what the hub and the
 * transports call, on any thread. Each call only queues a work item for the
 * backplane's thread (under qlock) and wakes it; a publish is refused
 * (BP_FULL) past queue_limit while Redis is down, and past
 * max_pending_bytes of publishes Redis has not answered yet, up or down (a
 * Redis that does not keep up). When memory runs out, claim, offer,
 * room_state, history and presence_get answer at once, on the calling
 * thread.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/redis_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"

static void bp_want_room(backplane *bp, const char *room, bool want)
{
    work *w = calloc(1, sizeof(*w));
    if (!w) {
        LOG_ERR(TAG, "out of memory: room %s not %s", room, want ? "subscribed" : "left");
        return;
    }
    w->kind = want ? W_WANT : W_UNWANT;
    snprintf(w->room, sizeof(w->room), "%s", room);
    rb_push_work((rb *)bp, w);
}

static void bp_fetch(backplane *bp, const char *room, const char *epoch, uint64_t after)
{
    work *w = calloc(1, sizeof(*w));
    if (!w) {
        LOG_ERR(TAG, "out of memory: room %s not fetched", room);
        return;
    }
    w->kind = W_FETCH;
    snprintf(w->room, sizeof(w->room), "%s", room);
    snprintf(w->epoch, sizeof(w->epoch), "%s", epoch);
    w->after = after;
    rb_push_work((rb *)bp, w);
}

static bp_publish_status bp_do_publish(backplane *bp, const bp_publish *p, publish_done_fn done,
                                       void *arg)
{
    rb *b = (rb *)bp;
    work *w = calloc(1, sizeof(*w));
    char *data = w ? malloc(p->len ? p->len : 1) : NULL;
    if (!data) {
        free(w);
        return BP_FULL;
    }
    memcpy(data, p->data, p->len);
    w->kind = W_PUBLISH;
    snprintf(w->room, sizeof(w->room), "%s", p->room);
    w->data = data;
    w->len = p->len;
    snprintf(w->target, sizeof(w->target), "%s", p->target ? p->target : "");
    w->exclude = p->exclude;
    w->wall_ms = clock_wall_ms();
    bp_publish_status st;
    pthread_mutex_lock(&b->qlock);
    bool too_many_bytes = b->pending_bytes + p->len > b->max_pending_bytes;
    if ((!b->up && b->npublish >= b->queue_limit) || too_many_bytes) {
        st = BP_FULL;
    } else {
        st = b->up ? BP_SENT : BP_QUEUED;
        w->local_done = !b->up;
        if (b->up) {
            w->done = done;
            w->arg = arg;
        }
        if (b->tail)
            b->tail->next = w;
        else
            b->head = w;
        b->tail = w;
        b->npublish++;
        b->pending_bytes += p->len;
    }
    pthread_mutex_unlock(&b->qlock);
    if (st == BP_FULL) {
        free(data);
        free(w);
        if (too_many_bytes)
            limit_refused(LIMIT_BACKPLANE_BYTES,
                          "a publish refused: backplane.max_pending_bytes of "
                          "publishes wait for Redis's answer");
    } else {
        rb_wake_thread(b);
    }
    return st;
}

static work *name_work(work_kind kind, const char *name, int64_t ttl_ms)
{
    work *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->kind = kind;
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->ttl_ms = ttl_ms;
    return w;
}

static void bp_claim(backplane *bp, const char *name, bool take, int64_t ttl_ms, bp_owner_fn cb,
                     void *arg)
{
    work *w = name_work(W_CLAIM, name, ttl_ms);
    if (!w) {
        cb(arg, -ENOMEM, "");
        return;
    }
    w->owner_cb = cb;
    w->arg = arg;
    w->take = take;
    rb_push_work((rb *)bp, w);
}

static void bp_offer(backplane *bp, const char *name, int64_t ttl_ms, bp_owner_fn cb, void *arg)
{
    work *w = name_work(W_OFFER, name, ttl_ms);
    if (!w) {
        cb(arg, -ENOMEM, "");
        return;
    }
    w->owner_cb = cb;
    w->arg = arg;
    rb_push_work((rb *)bp, w);
}

static void bp_touch(backplane *bp, const char *name, int64_t ttl_ms)
{
    work *w = name_work(W_TOUCH, name, ttl_ms);
    if (w)
        rb_push_work((rb *)bp, w);
}

static void bp_release(backplane *bp, const char *name, int64_t ttl_ms)
{
    work *w = name_work(W_RELEASE, name, ttl_ms);
    if (w)
        rb_push_work((rb *)bp, w);
}

static void bp_node_send_counted(backplane *bp, const char *node, const char *data, size_t len,
                                 bp_count_fn cb, void *arg)
{
    work *w = calloc(1, sizeof(*w));
    char *copy = w ? malloc(len ? len : 1) : NULL;
    if (!copy) {
        free(w);
        LOG_ERR(TAG, "out of memory: a message to node %s is lost", node);
        if (cb)
            cb(arg, -1);
        return;
    }
    memcpy(copy, data, len);
    w->kind = W_NODE_SEND;
    snprintf(w->node, sizeof(w->node), "%s", node);
    w->data = copy;
    w->len = len;
    w->count_cb = cb;
    w->arg = arg;
    rb_push_work((rb *)bp, w);
}

static void bp_node_send(backplane *bp, const char *node, const char *data, size_t len)
{
    bp_node_send_counted(bp, node, data, len, NULL, NULL);
}

static void bp_cluster_send(backplane *bp, const char *node, const char *data, size_t len,
                            bp_count_fn cb, void *arg)
{
    work *w = calloc(1, sizeof(*w));
    char *copy = w ? malloc(len ? len : 1) : NULL;
    if (!copy) {
        free(w);
        LOG_ERR(TAG, "out of memory: a cluster message is lost");
        if (cb)
            cb(arg, -1);
        return;
    }
    memcpy(copy, data, len);
    w->kind = W_CLUSTER_SEND;
    snprintf(w->node, sizeof(w->node), "%s", node ? node : "");
    w->data = copy;
    w->len = len;
    w->count_cb = cb;
    w->arg = arg;
    rb_push_work((rb *)bp, w);
}

static void bp_room_state(backplane *bp, const char *room, bp_room_fn cb, void *arg)
{
    work *w = calloc(1, sizeof(*w));
    if (!w) {
        cb(arg, -EIO, "", 0);
        return;
    }
    w->kind = W_ROOM_STATE;
    snprintf(w->room, sizeof(w->room), "%s", room);
    w->room_cb = cb;
    w->arg = arg;
    rb_push_work((rb *)bp, w);
}

static void bp_history(backplane *bp, const char *room, uint64_t since, const char *epoch,
                       size_t count, bp_history_fn cb, void *arg)
{
    work *w = calloc(1, sizeof(*w));
    if (!w) {
        cb(arg, -ENOMEM, "", 0, 0, NULL, 0);
        return;
    }
    w->kind = W_HISTORY;
    snprintf(w->room, sizeof(w->room), "%s", room);
    snprintf(w->epoch, sizeof(w->epoch), "%s", epoch);
    w->after = since;
    w->count = count;
    w->history_cb = cb;
    w->arg = arg;
    rb_push_work((rb *)bp, w);
}

static void bp_report_presence(backplane *bp, const bp_presence *p)
{
    work *w = calloc(1, sizeof(*w));
    size_t len = strlen(p->user);
    char *user = w ? malloc(len + 1) : NULL;
    if (!user) {
        free(w);
        LOG_ERR(TAG, "out of memory: presence of room %s not reported", p->room);
        return;
    }
    memcpy(user, p->user, len + 1);
    w->kind = W_PRESENCE;
    snprintf(w->room, sizeof(w->room), "%s", p->room);
    w->data = user;
    w->len = len;
    w->after = p->count;
    w->p_events = p->events;
    w->p_reset = p->reset;
    w->p_present = p->room_present;
    rb_push_work((rb *)bp, w);
}

static void bp_presence_get(backplane *bp, const char *room, size_t max_listed, presence_fn cb,
                            void *arg)
{
    work *w = calloc(1, sizeof(*w));
    if (!w) {
        cb(arg, -ENOMEM, NULL);
        return;
    }
    w->kind = W_PRESENCE_GET;
    snprintf(w->room, sizeof(w->room), "%s", room);
    w->presence_cb = cb;
    w->arg = arg;
    w->max_listed = max_listed;
    rb_push_work((rb *)bp, w);
}

static void bp_presence_sync(backplane *bp, const char *room, bool base, size_t max_listed)
{
    work *w = calloc(1, sizeof(*w));
    if (!w) { /* the hub goes live after its bound (PRESENCE_SYNC_MS) */
        LOG_ERR(TAG, "out of memory: presence of room %s not caught up", room);
        return;
    }
    w->kind = W_PRESENCE_SYNC;
    snprintf(w->room, sizeof(w->room), "%s", room);
    w->after = base;
    w->max_listed = max_listed;
    rb_push_work((rb *)bp, w);
}

static void bp_on_node_message(backplane *bp, bp_node_fn fn, void *arg)
{
    rb *b = (rb *)bp;
    pthread_mutex_lock(&b->qlock);
    b->node_fn = fn;
    b->node_arg = arg;
    pthread_mutex_unlock(&b->qlock);
}

const backplane_ops rb_ops = {
    .want_room = bp_want_room,
    .fetch = bp_fetch,
    .publish = bp_do_publish,
    .room_state = bp_room_state,
    .history = bp_history,
    .claim = bp_claim,
    .offer = bp_offer,
    .touch = bp_touch,
    .release = bp_release,
    .node_send = bp_node_send,
    .node_send_counted = bp_node_send_counted,
    .presence = bp_report_presence,
    .presence_get = bp_presence_get,
    .on_node_message = bp_on_node_message,
    .cluster_send = bp_cluster_send,
    .presence_sync = bp_presence_sync,
};
