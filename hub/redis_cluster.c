/* SPDX-License-Identifier: MIT */
/*
 * redis_cluster.c - the hub's own messages between nodes (backplane_ops
 * cluster_send; the server API's user and connection ops, users_cluster.c)
 * over Redis pub/sub: P u:* reaches every node, P u:{node} one node. Both
 * are subscribed when the link comes up; what comes on them goes to
 * hub_bp_cluster_message. A send to every node answers with PUBLISH's
 * count of receivers, which tells the hub how many answers to wait for.
 *
 * Threading: the backplane's thread only (callbacks with no lock held).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALL_NODES "*" /* the every-node channel's suffix: no node id is "*" */

static void cluster_channel(const rb *b, char *out, const char *node)
{
    snprintf(out, KEY_MAX, "%su:%s", b->prefix, node && *node ? node : ALL_NODES);
}

void rb_cluster_subscribe(rb *b)
{
    char all[KEY_MAX], mine[KEY_MAX];
    cluster_channel(b, all, NULL);
    cluster_channel(b, mine, b->base.node_id);
    const char *argv[] = {"SUBSCRIBE", all, mine};
    size_t lens[] = {9, strlen(all), strlen(mine)};
    redisAsyncCommandArgv(b->sub.ac, rb_on_sub_reply, NULL, 3, argv, lens);
}

typedef struct pending_count {
    bp_count_fn cb;
    void *arg;
} pending_count;

static void on_count_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_count *pc = privdata;
    redisReply *r = reply;
    pc->cb(pc->arg, r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1);
    free(pc);
}

void rb_cluster_unsent(work *w)
{
    if (w->count_cb)
        w->count_cb(w->arg, -1);
    w->count_cb = NULL;
}

void rb_send_cluster(rb *b, work *w)
{
    char ch[KEY_MAX];
    cluster_channel(b, ch, w->node);
    rb_publish_counted(b, ch, w);
}

void rb_publish_counted(rb *b, const char *ch, work *w)
{
    const char *argv[] = {"PUBLISH", ch, w->data};
    size_t lens[] = {7, strlen(ch), w->len};
    pending_count *pc = w->count_cb ? malloc(sizeof(*pc)) : NULL;
    if (w->count_cb && !pc) {
        rb_cluster_unsent(w);
        return;
    }
    if (pc)
        *pc = (pending_count){w->count_cb, w->arg};
    if (redisAsyncCommandArgv(b->cmd.ac, pc ? on_count_reply : NULL, pc, 3, argv, lens) !=
            REDIS_OK &&
        pc) {
        free(pc);
        rb_cluster_unsent(w);
    }
}

bool rb_cluster_message(rb *b, const redisReply *r)
{
    char all[KEY_MAX], mine[KEY_MAX];
    cluster_channel(b, all, NULL);
    cluster_channel(b, mine, b->base.node_id);
    const char *ch = r->element[1]->str;
    if (strcmp(ch, all) && strcmp(ch, mine))
        return false;
    if (!strcmp(r->element[0]->str, "message") && r->element[2]->type == REDIS_REPLY_STRING)
        hub_bp_cluster_message(b->hub, r->element[2]->str, r->element[2]->len);
    return true;
}
