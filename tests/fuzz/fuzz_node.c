/* SPDX-License-Identifier: MIT */
/*
 * fuzz_node.c - libFuzzer harness for the other decoder of what comes from
 * Redis: messages between nodes on a node's own channel (signalr/cluster.c:
 * "OP REQ FROM PATH TOKEN WHO EXP [KEY]\n" BODY for send, poll and close, and
 * "reply REQ STATUS\n" BODY), which carry SignalR clients' POST bodies and
 * long polls to the node that holds their connection. The node here
 * (clustered, on a scripted backplane that records nothing) holds one
 * long-polling connection of the "chat" hub, token TOKEN below; the input
 * is split at 0xFF bytes into node messages handed to the handler
 * signalr/cluster.c registered, as redis_backplane.c does. A remote poll
 * still held at the end is answered as the timer would.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/config.h"
#include "hub/hub.h"
#include "transports/signalr/private.h"

#define TOKEN "AAAAAAAAAAAAAAAAAAAAAA"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static cfg conf;
static bp_node_fn node_fn;
static void *node_arg;

static void s_want(backplane *b, const char *room, bool want)
{
    (void)b, (void)room, (void)want;
}

static void s_fetch(backplane *b, const char *room, const char *epoch, uint64_t after)
{
    (void)b, (void)room, (void)epoch, (void)after;
}

static bp_publish_status s_publish(backplane *b, const bp_publish *p, publish_done_fn done,
                                   void *arg)
{
    (void)b, (void)p, (void)done, (void)arg;
    return BP_FULL;
}

static void s_claim(backplane *b, const char *name, bool take, int64_t ttl_ms, bp_owner_fn cb,
                    void *arg)
{
    (void)b, (void)name, (void)take, (void)ttl_ms;
    cb(arg, 0, b->node_id);
}

static void s_name(backplane *b, const char *name, int64_t ttl_ms)
{
    (void)b, (void)name, (void)ttl_ms;
}

static void s_node_send(backplane *b, const char *node, const char *d, size_t len)
{
    (void)b, (void)node, (void)d, (void)len;
}

static void s_on_node_message(backplane *b, bp_node_fn fn, void *arg)
{
    (void)b;
    node_fn = fn;
    node_arg = arg;
}

static const backplane_ops ops = {.want_room = s_want,
                                  .fetch = s_fetch,
                                  .publish = s_publish,
                                  .claim = s_claim,
                                  .touch = s_name,
                                  .release = s_name,
                                  .node_send = s_node_send,
                                  .on_node_message = s_on_node_message};

static backplane bp = {.ops = &ops, .node_id = "NODEA"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_LEVEL_ERROR);
    cfg_defaults(&conf);
    conf.limits.send_queue = 64;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hub_options opt = {.history_size = 16, .history_ttl_ms = 60000};
    hub *h = hub_create(&opt);
    if (!h)
        return 0;
    hub_set_backplane(h, &bp);
    hub_bp_link(h, true);
    sr_init(&conf, h);
    sr_cluster_init(&conf, &bp);
    sr_conn *c = sr_conn_new_named(&conf.hubs[0], TOKEN, NULL);
    if (c) {
        pthread_mutex_lock(&c->s.lock);
        sr_attach_locked(c, TR_LP);
        pthread_mutex_unlock(&c->s.lock);
    }

    const char *p = (const char *)data, *end = p + size;
    while (p <= end) {
        const char *sep = memchr(p, 0xFF, (size_t)(end - p));
        const char *unit_end = sep ? sep : end;
        node_fn(node_arg, p, (size_t)(unit_end - p));
        p = unit_end + 1;
    }

    if (c) {
        sr_remote_poll_expire(c, INT64_MAX); /* the timer answers a held poll */
        sr_conn_close(c, NULL, false);
        sr_conn_unref(c);
    }
    sr_fini();
    sr_cluster_init(&conf, NULL);
    hub_destroy(h);
    return 0;
}
