/* SPDX-License-Identifier: MIT */
/*
 * node_stats.c - the cluster view's figures of every node (node_stats.h).
 *
 * Messages between nodes (the hub's own JSON, on the cluster channels of
 * users_cluster.c): a question {"stats_req":N,"from":NODE} to every node,
 * and an answer {"stats_re":N,"node":{...}} sent to FROM only. A node's
 * own copy of its question counts as its answer (its figures went in
 * when it asked).
 *
 * Threading: the questions waiting for answers (`waits`, `next_req`) are
 * under stats_lock, a leaf lock taken with no other lock held; done and
 * the provider run with no lock held. The hub lock is taken alone, only to
 * read h->bp.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/node_stats.h"
#include "hub/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define STATS_LOCAL_NODE "local"

/* A question waiting for the other nodes' answers (stats_lock). */
typedef struct stats_wait {
    struct stats_wait *next;
    uint64_t req;
    node_stats_done_fn done;
    void *arg;
    json_t *nodes; /* the answers in */
    bool partial;
    int64_t started_ms;
    long expected; /* nodes that received it; -1 not known yet */
    long answers;  /* this node's own copy included */
} stats_wait;

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static stats_wait *waits;
static uint64_t next_req;
static node_stats_fn provider;

void node_stats_set_provider(node_stats_fn fn)
{
    provider = fn;
}

/* This node's figures with its node id. */
static json_t *own_stats(const char *node)
{
    json_t *o = provider ? provider() : json_object();
    if (o)
        json_object_set_new(o, "node", json_string(node));
    return o;
}

/* stats_lock held: the waiting question numbered req, unlinked when take. */
static stats_wait *wait_find(uint64_t req, bool take)
{
    for (stats_wait **pp = &waits; *pp; pp = &(*pp)->next) {
        stats_wait *w = *pp;
        if (w->req != req)
            continue;
        if (take)
            *pp = w->next;
        return w;
    }
    return NULL;
}

/* stats_lock held: unlinks w when every answer is in. */
static bool wait_complete(stats_wait *w)
{
    if (w->expected < 0 || w->answers < w->expected)
        return false;
    wait_find(w->req, true);
    return true;
}

static void wait_finish(stats_wait *w)
{
    w->done(w->arg, w->nodes, w->partial);
    free(w);
}

/* Any thread: how many nodes received question req (-1: not sent). */
static void stats_counted(void *arg, long nodes)
{
    uint64_t req = (uint64_t)(uintptr_t)arg;
    pthread_mutex_lock(&stats_lock);
    stats_wait *w = wait_find(req, false);
    if (w) {
        if (nodes < 0) { /* not sent: this node's figures are all there is */
            w->partial = true;
            w->expected = w->answers;
        } else {
            w->expected = nodes;
        }
    }
    bool complete = w && wait_complete(w);
    pthread_mutex_unlock(&stats_lock);
    if (complete)
        wait_finish(w);
}

void hub_node_stats_async(hub *h, node_stats_done_fn done, void *arg)
{
    pthread_mutex_lock(&h->lock);
    backplane *bp = h->bp;
    bool up = h->bp_up;
    char node[BP_NODE_ID_LEN + 1];
    snprintf(node, sizeof(node), "%s", bp ? bp->node_id : STATS_LOCAL_NODE);
    hub_unlock(h);
    json_t *nodes = json_array();
    json_t *mine = own_stats(node);
    if (nodes && mine)
        json_array_append(nodes, mine);
    json_decref(mine);
    stats_wait *w = bp && up && bp->ops->cluster_send && nodes ? calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        done(arg, nodes, bp != NULL); /* the other nodes were not asked */
        return;
    }
    pthread_mutex_lock(&stats_lock);
    *w = (stats_wait){.req = ++next_req,
                      .done = done,
                      .arg = arg,
                      .nodes = nodes,
                      .started_ms = clock_now_ms(),
                      .expected = -1,
                      .next = waits};
    waits = w;
    uint64_t req = w->req;
    pthread_mutex_unlock(&stats_lock);
    json_t *q = json_pack("{s:I,s:s}", "stats_req", (json_int_t)req, "from", node);
    char *text = q ? json_dumps(q, JSON_COMPACT) : NULL;
    json_decref(q);
    if (!text) {
        stats_counted((void *)(uintptr_t)req, -1);
        return;
    }
    bp->ops->cluster_send(bp, NULL, text, strlen(text), stats_counted, (void *)(uintptr_t)req);
    free(text);
}

/* An answer (node NULL: this node's own copy of its question). */
static void take_answer(uint64_t req, json_t *node)
{
    pthread_mutex_lock(&stats_lock);
    stats_wait *w = wait_find(req, false);
    if (w) {
        w->answers++;
        if (json_is_object(node) && json_is_string(json_object_get(node, "node")))
            json_array_append(w->nodes, node);
    }
    bool complete = w && wait_complete(w);
    pthread_mutex_unlock(&stats_lock);
    if (complete)
        wait_finish(w);
}

/* Another node's question: this node's figures, to it. */
static void answer_question(hub *h, json_t *req, const char *from)
{
    pthread_mutex_lock(&h->lock);
    backplane *bp = h->bp;
    char node[BP_NODE_ID_LEN + 1];
    snprintf(node, sizeof(node), "%s", bp ? bp->node_id : STATS_LOCAL_NODE);
    hub_unlock(h);
    if (!bp || !bp->ops->cluster_send)
        return;
    json_t *a = json_pack("{s:O,s:o}", "stats_re", req, "node", own_stats(node));
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (text)
        bp->ops->cluster_send(bp, from, text, strlen(text), NULL, NULL);
    free(text);
}

bool node_stats_message(hub *h, json_t *m)
{
    json_t *re = json_object_get(m, "stats_re");
    if (json_is_integer(re)) {
        take_answer((uint64_t)json_integer_value(re), json_object_get(m, "node"));
        return true;
    }
    json_t *req = json_object_get(m, "stats_req");
    if (!req)
        return false;
    const char *from = json_string_value(json_object_get(m, "from"));
    if (!json_is_integer(req) || !from || !*from || strlen(from) > BP_NODE_ID_LEN) {
        LOG_WARN(TAG, "a malformed node stats question, ignored");
        return true;
    }
    pthread_mutex_lock(&h->lock);
    bool own = h->bp && !strcmp(from, h->bp->node_id);
    hub_unlock(h);
    if (own)
        take_answer((uint64_t)json_integer_value(req), NULL);
    else
        answer_question(h, req, from);
    return true;
}

/* Unlinks the questions that waited long enough (all: every one) onto *out. */
static void take_expired(int64_t now_ms, bool all, stats_wait **out)
{
    pthread_mutex_lock(&stats_lock);
    for (stats_wait **pp = &waits; *pp;) {
        stats_wait *w = *pp;
        if (all || now_ms - w->started_ms >= HUB_OP_WAIT_MS) {
            *pp = w->next;
            w->partial = true;
            w->next = *out;
            *out = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&stats_lock);
}

static void finish_list(stats_wait *list)
{
    while (list) {
        stats_wait *next = list->next;
        wait_finish(list);
        list = next;
    }
}

void node_stats_tick(int64_t now_ms)
{
    stats_wait *expired = NULL;
    take_expired(now_ms, false, &expired);
    finish_list(expired);
}

void node_stats_finish_all(void)
{
    stats_wait *all = NULL;
    take_expired(0, true, &all);
    finish_list(all);
}
