/* SPDX-License-Identifier: MIT */
/*
 * users_cluster.c - the server API's user and connection ops on every node
 * (hub_user_op_async). The node that takes the request applies the op to
 * its own members (users.c), then sends it to every node through the
 * backplane (cluster_send); each other node applies it to its members and
 * answers with its counts; the first node adds them up and answers when
 * every node that received the op (the backplane's count) has answered,
 * or after HUB_OP_WAIT_MS (then the result says partial). A node's own
 * copy of the op counts as its answer (it applied the op already).
 *
 * Messages between nodes are JSON objects (the hub's own, not a client's
 * wire): an op {"req":N,"from":NODE,"op":"send"|"join"|"leave"|"end",
 * "by":"user"|"connection","name":…, and "room", "target", "reason",
 * "data" (the JSON text, as a string) as the op has them}, and an answer
 * {"re":N,"found":…,"done":…,"refused":…,"skipped":…} sent to FROM only.
 *
 * Threading: the ops waiting for answers (`ops`, `next_op`) are under the
 * hub lock; done is called with no lock held. hub_bp_cluster_message runs
 * on the backplane's thread, hub_user_ops_tick on the timer, and the rest
 * on any thread. The backplane is called with no lock held (its count
 * callback may run at once on the caller's thread).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "hub/backlog_cluster.h"
#include "hub/node_stats.h"

static const char *const op_names[HUB_OP_KINDS] = {"send", "join", "leave", "end"};

/* An op sent to the other nodes, waiting for their answers (hub lock). */
struct user_op_wait {
    struct user_op_wait *next;
    uint64_t req;
    hub_user_done_fn done;
    void *arg;
    hub_user_result res;
    int64_t started_ms;
    long expected; /* nodes that received it (the backplane's count); -1 not known yet */
    long answers;  /* answers in, this node's own copy included */
};

/* Hub lock held: the waiting op numbered req, unlinked when take; NULL. */
static user_op_wait *wait_find(hub *h, uint64_t req, bool take)
{
    for (user_op_wait **pp = &h->ops; *pp; pp = &(*pp)->next) {
        user_op_wait *w = *pp;
        if (w->req != req)
            continue;
        if (take)
            *pp = w->next;
        return w;
    }
    return NULL;
}

/* Hub lock held: unlinks w when every answer is in. */
static bool wait_complete(hub *h, user_op_wait *w)
{
    if (w->expected < 0 || w->answers < w->expected)
        return false;
    wait_find(h, w->req, true);
    return true;
}

static void wait_finish(user_op_wait *w)
{
    w->done(w->arg, &w->res);
    free(w);
}

/* The backplane's thread (or the caller's): how many nodes received op req. */
static void op_counted(void *arg, long nodes)
{
    op_count_ctx *ctx = arg;
    hub *h = ctx->h;
    pthread_mutex_lock(&h->lock);
    user_op_wait *w = wait_find(h, ctx->req, false);
    if (w) {
        if (nodes < 0) { /* not sent: what this node did is all there is */
            w->res.partial = true;
            w->expected = w->answers;
        } else {
            w->expected = nodes;
        }
    }
    bool complete = w && wait_complete(h, w);
    hub_unlock(h);
    if (complete)
        wait_finish(w);
    free(ctx);
}

/* The op as a cluster message (JSON text, malloc'd), or NULL. */
static char *op_text(const hub_user_op *op, uint64_t req, const char *from)
{
    json_t *j =
        json_pack("{s:I,s:s,s:s,s:s,s:s}", "req", (json_int_t)req, "from", from, "op",
                  op_names[op->op], "by", op->by_conn ? "connection" : "user", "name", op->name);
    if (j && op->room)
        json_object_set_new(j, "room", json_string(op->room));
    if (j && op->target)
        json_object_set_new(j, "target", json_string(op->target));
    if (j && op->reason)
        json_object_set_new(j, "reason", json_string(op->reason));
    if (j && op->op == HUB_OP_SEND) {
        /* The JSON text as a string: its bytes arrive as they are (jansson
         * would reformat a value, and refuses integers past 64 bits). */
        json_t *data = json_stringn(op->data, op->len);
        if (!data) {
            json_decref(j);
            return NULL;
        }
        json_object_set_new(j, "data", data);
    }
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return text;
}

void hub_user_op_async(hub *h, const hub_user_op *op, hub_user_done_fn done, void *arg)
{
    hub_user_result res = {0};
    hub_user_op_here(h, op, &res);
    pthread_mutex_lock(&h->lock);
    backplane *bp = h->bp;
    bool up = h->bp_up;
    user_op_wait *w = NULL;
    op_count_ctx *ctx = NULL;
    if (bp && up && bp->ops->cluster_send && !res.rc && (w = calloc(1, sizeof(*w))) &&
        (ctx = malloc(sizeof(*ctx)))) {
        *w = (user_op_wait){.req = ++h->next_op,
                            .done = done,
                            .arg = arg,
                            .res = res,
                            .started_ms = clock_now_ms(),
                            .expected = -1,
                            .next = h->ops};
        h->ops = w;
        *ctx = (op_count_ctx){h, w->req};
    }
    uint64_t req = w && ctx ? w->req : 0;
    hub_unlock(h);
    if (!req) {
        free(w);
        free(ctx);
        res.partial = bp != NULL; /* the other nodes were not asked */
        done(arg, &res);
        return;
    }
    char *text = op_text(op, req, bp->node_id);
    if (!text) {
        op_counted(ctx, -1);
        return;
    }
    bp->ops->cluster_send(bp, NULL, text, strlen(text), op_counted, ctx);
    free(text);
}

/* An answer from another node. */
static void take_answer(hub *h, json_t *j)
{
    json_int_t req = json_integer_value(json_object_get(j, "re"));
    pthread_mutex_lock(&h->lock);
    user_op_wait *w = wait_find(h, (uint64_t)req, false);
    if (w) {
        w->answers++;
        w->res.found += (uint64_t)json_integer_value(json_object_get(j, "found"));
        w->res.done += (uint64_t)json_integer_value(json_object_get(j, "done"));
        w->res.refused += (uint64_t)json_integer_value(json_object_get(j, "refused"));
        w->res.skipped += (uint64_t)json_integer_value(json_object_get(j, "skipped"));
    }
    bool complete = w && wait_complete(h, w);
    hub_unlock(h);
    if (complete)
        wait_finish(w);
}

/* This node's own copy of an op it sent: it counts as its answer. */
static void take_own_copy(hub *h, uint64_t req)
{
    pthread_mutex_lock(&h->lock);
    user_op_wait *w = wait_find(h, req, false);
    if (w)
        w->answers++;
    bool complete = w && wait_complete(h, w);
    hub_unlock(h);
    if (complete)
        wait_finish(w);
}

/* An op from another node: applied here, answered to it. */
static void apply_op(hub *h, json_t *j, const char *from)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *kind = json_string_value(json_object_get(j, "op"));
    const char *by = json_string_value(json_object_get(j, "by"));
    const char *room_name = json_string_value(json_object_get(j, "room"));
    json_t *data = json_object_get(j, "data");
    hub_user_op op = {.op = HUB_OP_KINDS,
                      .by_conn = by && !strcmp(by, "connection"),
                      .name = name,
                      .room = room_name,
                      .target = json_string_value(json_object_get(j, "target")),
                      .reason = json_string_value(json_object_get(j, "reason"))};
    for (int k = 0; kind && k < HUB_OP_KINDS; k++)
        if (!strcmp(kind, op_names[k]))
            op.op = (hub_op_kind)k;
    const char *text = json_string_value(data); /* the JSON text, as the first node took it */
    bool ok = name && op.op != HUB_OP_KINDS && (op.op != HUB_OP_SEND || text) &&
              ((op.op != HUB_OP_JOIN && op.op != HUB_OP_LEAVE) ||
               (room_name && room_name_is_valid(room_name, strlen(room_name))));
    hub_user_result res = {0};
    if (ok) {
        op.data = text;
        op.len = text ? json_string_length(data) : 0;
        hub_user_op_here(h, &op, &res);
    } else {
        LOG_WARN(TAG, "a malformed user op from node %.16s, ignored", from);
    }
    json_t *answer = json_pack("{s:O,s:I,s:I,s:I,s:I}", "re", json_object_get(j, "req"), "found",
                               (json_int_t)res.found, "done", (json_int_t)res.done, "refused",
                               (json_int_t)res.refused, "skipped", (json_int_t)res.skipped);
    char *reply = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
    json_decref(answer);
    pthread_mutex_lock(&h->lock);
    backplane *bp = h->bp;
    hub_unlock(h);
    if (reply && bp && bp->ops->cluster_send)
        bp->ops->cluster_send(bp, from, reply, strlen(reply), NULL, NULL);
    free(reply);
}

void hub_bp_cluster_message(hub *h, const char *data, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(data, len, 0, &je);
    const char *from = json_string_value(json_object_get(j, "from"));
    json_t *req = json_object_get(j, "req");
    if (backlog_cluster_message(j)) {
        /* another node's queues hold publishers, or no longer (backlog_cluster.c) */
    } else if (node_stats_message(h, j)) {
        /* the cluster view's question or answer (node_stats.c) */
    } else if (json_is_integer(json_object_get(j, "re"))) {
        take_answer(h, j);
    } else if (!from || !json_is_integer(req) || strlen(from) > BP_NODE_ID_LEN) {
        LOG_WARN(TAG, "a malformed cluster message, ignored");
    } else {
        pthread_mutex_lock(&h->lock);
        bool own = h->bp && !strcmp(from, h->bp->node_id);
        hub_unlock(h);
        if (own)
            take_own_copy(h, (uint64_t)json_integer_value(req));
        else
            apply_op(h, j, from);
    }
    json_decref(j);
}

/* Hub lock held: unlinks the ops that waited long enough (all: every one)
 * onto *out. */
static void take_expired(hub *h, int64_t now_ms, bool all, user_op_wait **out)
{
    for (user_op_wait **pp = &h->ops; *pp;) {
        user_op_wait *w = *pp;
        if (all || now_ms - w->started_ms >= HUB_OP_WAIT_MS) {
            *pp = w->next;
            w->res.partial = true;
            w->next = *out;
            *out = w;
        } else {
            pp = &w->next;
        }
    }
}

static void finish_all(user_op_wait *list)
{
    while (list) {
        user_op_wait *next = list->next;
        wait_finish(list);
        list = next;
    }
}

void hub_user_ops_tick(hub *h, int64_t now_ms)
{
    user_op_wait *expired = NULL;
    pthread_mutex_lock(&h->lock);
    take_expired(h, now_ms, false, &expired);
    hub_unlock(h);
    finish_all(expired);
}

void user_ops_finish_all(hub *h)
{
    user_op_wait *all = NULL;
    pthread_mutex_lock(&h->lock);
    take_expired(h, 0, true, &all);
    hub_unlock(h);
    finish_all(all);
}
