/* SPDX-License-Identifier: MIT */
/*
 * redis_nodes.c - the cluster through Redis: names owned by one node
 * (P o:{name}; claim, offer, touch, release: how a protocol's connections find
 * the node that holds them) and messages to one node (PUBLISH on its
 * channel P n:{node}; this node's own channel is subscribed when the link
 * comes up, and what comes on it goes to the on_node_message callback).
 *
 * Threading: the backplane's thread only; callbacks are called with no
 * lock held (node_fn is read under qlock, then called without it).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/redis_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: the name's key. ARGV: this node, TTL (ms), take ("1"/"0"). Returns
 * the owner, "" for none (an offered name nobody owns yet, or an unknown
 * one). An offered name is "" until claimed. */
static const char claim_lua[] = "local o = redis.call('GET', KEYS[1])\n"
                                "if not o then return '' end\n"
                                "if o ~= '' or ARGV[3] ~= '1' then return o end\n"
                                "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                                "return ARGV[1]\n";

void rb_node_channel(const rb *b, char *out, const char *node)
{
    snprintf(out, KEY_MAX, "%sn:%s", b->prefix, node);
}

static void name_key(const rb *b, char *out, const char *name)
{
    snprintf(out, KEY_MAX, "%so:%s", b->prefix, name);
}

typedef struct pending_claim {
    bp_owner_fn cb;
    void *arg;
} pending_claim;

static void on_claim_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_claim *pc = privdata;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_STRING)
        pc->cb(pc->arg, -EIO, "");
    else if (!strcmp(r->str, RELEASED))
        pc->cb(pc->arg, -ENOENT, "");
    else
        pc->cb(pc->arg, 0, r->str);
    free(pc);
}

static void on_offer_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_claim *pc = privdata;
    redisReply *r = reply;
    pc->cb(pc->arg, r && r->type != REDIS_REPLY_ERROR ? 0 : -EIO, "");
    free(pc);
}

void rb_send_name_work(rb *b, work *w)
{
    char key[KEY_MAX], ttl[RB_NUM_MAX];
    name_key(b, key, w->name);
    snprintf(ttl, sizeof(ttl), "%" PRId64, w->ttl_ms > 0 ? w->ttl_ms : 1);
    if (w->kind == W_TOUCH) {
        const char *argv[] = {"PEXPIRE", key, ttl};
        size_t lens[] = {7, strlen(key), strlen(ttl)};
        redisAsyncCommandArgv(b->cmd.ac, NULL, NULL, 3, argv, lens);
    } else if (w->kind == W_OFFER) {
        pending_claim *pc = malloc(sizeof(*pc));
        if (!pc) {
            w->owner_cb(w->arg, -ENOMEM, "");
            return;
        }
        *pc = (pending_claim){w->owner_cb, w->arg};
        const char *argv[] = {"SET", key, "", "PX", ttl, "NX"};
        size_t lens[] = {3, strlen(key), 0, 2, strlen(ttl), 2};
        if (redisAsyncCommandArgv(b->cmd.ac, on_offer_reply, pc, 6, argv, lens) != REDIS_OK) {
            free(pc);
            w->owner_cb(w->arg, -EIO, "");
        }
    } else if (w->kind == W_RELEASE) {
        const char *argv[] = {"SET", key, RELEASED, "PX", ttl};
        size_t lens[] = {3, strlen(key), strlen(RELEASED), 2, strlen(ttl)};
        redisAsyncCommandArgv(b->cmd.ac, NULL, NULL, 5, argv, lens);
    } else {
        pending_claim *pc = malloc(sizeof(*pc));
        if (!pc) {
            w->owner_cb(w->arg, -ENOMEM, "");
            return;
        }
        *pc = (pending_claim){w->owner_cb, w->arg};
        const char *take = w->take ? "1" : "0";
        const char *argv[] = {"EVAL", claim_lua, "1", key, b->base.node_id, ttl, take};
        size_t lens[] = {4, strlen(claim_lua), 1, strlen(key), strlen(b->base.node_id), strlen(ttl),
                         1};
        if (redisAsyncCommandArgv(b->cmd.ac, on_claim_reply, pc, 7, argv, lens) != REDIS_OK) {
            free(pc);
            w->owner_cb(w->arg, -EIO, "");
        }
    }
}

void rb_send_to_node(rb *b, work *w)
{
    char ch[KEY_MAX];
    rb_node_channel(b, ch, w->node);
    rb_publish_counted(b, ch, w); /* the count: 0 when the node is gone */
}

/* A pub/sub reply (an array of at least 3, the first two strings) on this
 * node's own channel goes to the on_node_message callback; true when it
 * was on that channel. */
bool rb_node_message(rb *b, const redisReply *r)
{
    char mine[KEY_MAX];
    rb_node_channel(b, mine, b->base.node_id);
    if (strcmp(r->element[1]->str, mine))
        return false;
    pthread_mutex_lock(&b->qlock);
    bp_node_fn fn = b->node_fn;
    void *fn_arg = b->node_arg;
    pthread_mutex_unlock(&b->qlock);
    if (!strcmp(r->element[0]->str, "message") && r->element[2]->type == REDIS_REPLY_STRING && fn)
        fn(fn_arg, r->element[2]->str, r->element[2]->len);
    return true;
}
