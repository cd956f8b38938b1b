/* SPDX-License-Identifier: MIT */
/*
 * backlog_cluster.c - the fanout backlog across nodes (backlog_cluster.h):
 * what this node tells the others of its own queues (announce_lock), and
 * the set of other nodes that hold (holders_lock).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/backlog_cluster.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "hub/backlog.h"

#define TAG "backlog"

static pthread_mutex_t announce_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(backplane *) attached;   /* set and cleared under announce_lock */
static char own_id[BP_NODE_ID_LEN + 1]; /* announce_lock; set before attached */
static bool told_holding;               /* announce_lock: what this node last told */
static int64_t told_ms;                 /* announce_lock: when */

/* Another node that holds, until it is forgotten. */
typedef struct holder {
    char node[BP_NODE_ID_LEN + 1];
    int64_t until_ms; /* monotonic: HOLD_TTL_MS after its last word */
} holder;

static pthread_mutex_t holders_lock = PTHREAD_MUTEX_INITIALIZER;
static holder holders[HOLD_NODES_MAX]; /* holders_lock */
static unsigned nholders;              /* holders_lock */
static atomic_uint nremote;            /* nholders, read without the lock */
static bool told_full;                 /* holders_lock: the "too many nodes" warning */

void backlog_cluster_attach(backplane *bp)
{
    pthread_mutex_lock(&announce_lock);
    snprintf(own_id, sizeof(own_id), "%s", bp ? bp->node_id : "");
    told_holding = false;
    told_ms = 0;
    atomic_store(&attached, bp && bp->ops->cluster_send ? bp : NULL);
    pthread_mutex_unlock(&announce_lock);
}

/* announce_lock held: tells every other node whether this one holds. Out
 * of memory: nothing is told, and the timer tries again. */
static void tell_locked(backplane *bp, bool holding, int64_t now_ms)
{
    json_t *m = json_pack("{s:b,s:s}", "hold", holding, "from", own_id);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (!text)
        return;
    bp->ops->cluster_send(bp, NULL, text, strlen(text), NULL, NULL);
    free(text);
    told_holding = holding;
    told_ms = now_ms;
}

void backlog_cluster_changed(void)
{
    if (!atomic_load_explicit(&attached, memory_order_relaxed))
        return;
    pthread_mutex_lock(&announce_lock);
    backplane *bp = atomic_load(&attached);
    /* A queue that just got behind drains; none behind holds nobody. */
    bool holding = backlog_behind() > 0 || backlog_inbound_behind();
    if (bp && holding != told_holding)
        tell_locked(bp, holding, clock_now_ms());
    pthread_mutex_unlock(&announce_lock);
}

void backlog_cluster_tick(int64_t now_ms)
{
    if (!atomic_load_explicit(&attached, memory_order_relaxed))
        return;
    pthread_mutex_lock(&announce_lock);
    backplane *bp = atomic_load(&attached);
    bool holding = bp && backlog_queues_holding(); /* its stall rule applied */
    if (bp && (holding != told_holding || (holding && now_ms - told_ms >= HOLD_REFRESH_MS)))
        tell_locked(bp, holding, now_ms);
    pthread_mutex_unlock(&announce_lock);
}

/* holders_lock held: the index of node in holders, or nholders. */
static unsigned find_locked(const char *node)
{
    unsigned i = 0;
    while (i < nholders && strcmp(holders[i].node, node))
        i++;
    return i;
}

/* holders_lock held: forgets holders[i] (the last takes its place). */
static void forget_locked(unsigned i)
{
    holders[i] = holders[--nholders];
    atomic_store(&nremote, nholders);
}

/* Any thread: node holds (until HOLD_TTL_MS from now) or no longer does. */
static void set_holder(const char *node, bool holding, int64_t now_ms)
{
    pthread_mutex_lock(&holders_lock);
    unsigned i = find_locked(node);
    bool warn = false, released = false;
    if (!holding) {
        if (i < nholders) {
            forget_locked(i);
            released = !nholders;
        }
    } else if (i < nholders) {
        holders[i].until_ms = now_ms + HOLD_TTL_MS;
    } else if (nholders < HOLD_NODES_MAX) {
        snprintf(holders[nholders].node, sizeof(holders[nholders].node), "%s", node);
        holders[nholders].until_ms = now_ms + HOLD_TTL_MS;
        atomic_store(&nremote, ++nholders);
    } else {
        warn = !told_full;
        told_full = true;
    }
    pthread_mutex_unlock(&holders_lock);
    if (released)
        backlog_released(); /* parked publishers go now, not on the next tick */
    if (warn)
        LOG_WARN(TAG,
                 "more than %d other nodes hold publishers at once: the others are not "
                 "waited for",
                 HOLD_NODES_MAX);
}

bool backlog_cluster_message(const json_t *m)
{
    json_t *hold = json_object_get(m, "hold");
    if (!hold)
        return false;
    const char *from = json_string_value(json_object_get(m, "from"));
    if (!json_is_boolean(hold) || !from || !*from || strlen(from) > BP_NODE_ID_LEN) {
        LOG_WARN(TAG, "a malformed backlog message from another node, ignored");
        return true;
    }
    /* own_id is set before the backplane's thread starts, and cleared after
     * it stopped: this thread reads it without the lock. */
    if (atomic_load(&attached) && strcmp(from, own_id))
        set_holder(from, json_is_true(hold), clock_now_ms());
    return true;
}

bool backlog_remote_holding(void)
{
    if (!atomic_load_explicit(&nremote, memory_order_relaxed))
        return false;
    int64_t now = clock_now_ms();
    pthread_mutex_lock(&holders_lock);
    for (unsigned i = 0; i < nholders;) {
        if (now >= holders[i].until_ms)
            forget_locked(i); /* not heard of for HOLD_TTL_MS: dead, or its word lost */
        else
            i++;
    }
    bool holding = nholders > 0;
    pthread_mutex_unlock(&holders_lock);
    return holding;
}

unsigned backlog_remote_holders(void)
{
    backlog_remote_holding(); /* the forgotten ones out */
    return atomic_load(&nremote);
}
