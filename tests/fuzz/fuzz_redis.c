/* SPDX-License-Identifier: MIT */
/*
 * fuzz_redis.c - libFuzzer harness for the Redis backplane's decoder
 * (hub/bp_codec.c) and the hub's side of what it decodes: the input is a
 * stream of RESP replies, as Redis would send them, read with hiredis's
 * reader. Each reply is taken as redis_backplane.c takes it: a pub/sub
 * ["message", "crier:c:{room}", payload] goes through bp_parse_message to
 * hub_bp_message; a fetch answer {epoch, last id, entries} through
 * bp_parse_entry to hub_bp_fetched. The hub (with a scripted backplane, as
 * in test_hub_backplane.c) has members in room "r" (replay from 0, from
 * now, and a resume), in the JSON, SSE and SignalR formats, whose queues
 * are drained after each reply. Nothing may crash, leak or overflow.
 * hiredis (0.14) allocates an array of whatever length the reply claims
 * (Redis is trusted to send sane ones): the reader here refuses arrays
 * longer than MAX_ELEMENTS, so that the fuzzer looks at crier's code.
 */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hub/bp_codec.h"
#include "hub/hub.h"
#include "tests/unit/loopback_sub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define PREFIX "crier:"
#define NMEMBERS 3
#define MAX_ELEMENTS 4096

static redisReplyObjectFunctions bounded;
static void *(*create_array)(const redisReadTask *, int);

static void *create_bounded_array(const redisReadTask *task, int elements)
{
    return elements > MAX_ELEMENTS ? NULL : create_array(task, elements);
}

static void s_want(backplane *bp, const char *room, bool want)
{
    (void)bp, (void)room, (void)want;
}

static void s_fetch(backplane *bp, const char *room, const char *epoch, uint64_t after)
{
    (void)bp, (void)room, (void)epoch, (void)after;
}

static bp_publish_status s_publish(backplane *bp, const bp_publish *p, publish_done_fn done,
                                   void *arg)
{
    (void)bp, (void)p, (void)done, (void)arg;
    return BP_FULL;
}

static const backplane_ops ops = {.want_room = s_want, .fetch = s_fetch, .publish = s_publish};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_LEVEL_ERROR);
    return 0;
}

static void drain(loopback *m)
{
    for (int i = 0; i < NMEMBERS; i++) {
        msg *x;
        while ((x = lb_pop(&m[i])) != NULL) {
            msg_bytes b = lb_bytes(&m[i], x);
            if (b.len && !b.base) {
                fprintf(stderr, "a queued message has no bytes in its member's format\n");
                abort();
            }
            msg_unref(x);
        }
    }
}

/* One reply, as on_sub_reply or on_fetch_reply take it. */
static void take(hub *h, const redisReply *r)
{
    uint64_t last_id = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        const char *room = bp_room_of_channel(PREFIX, r->element[1]->str);
        if (!room || strcmp(r->element[0]->str, "message") ||
            r->element[2]->type != REDIS_REPLY_STRING) {
            if (room && !strcmp(r->element[0]->str, "subscribe"))
                hub_bp_subscribed(h, room);
            return;
        }
        char epoch[MSG_EPOCH_MAX] = "", origin[BP_NODE_ID_LEN + 1] = "", target[BP_TARGET_MAX] = "";
        bp_entry e;
        if (bp_parse_message(r->element[2]->str, r->element[2]->len, epoch, &e, origin, target))
            hub_bp_message(h, room, epoch, &e);
    } else if (bp_fetch_reply_ok(r, &last_id)) {
        const redisReply *list = r->element[2];
        size_t n = list->elements, k = 0;
        bp_entry *entries = n ? calloc(n, sizeof(*entries)) : NULL;
        if (n && !entries)
            return;
        for (size_t i = n; i-- > 0;)
            if (bp_parse_entry(list->element[i], &entries[k]))
                k++;
        hub_bp_fetched(h, "r", r->element[0]->str, last_id, entries, k);
        free(entries);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    backplane bp = {.ops = &ops};
    snprintf(bp.node_id, sizeof(bp.node_id), "NODEA");
    hub_options opt = {.history_size = 8, .history_ttl_ms = 60000};
    hub *h = hub_create(&opt);
    if (!h)
        return 0;
    hub_set_backplane(h, &bp);
    hub_bp_link(h, true);
    loopback m[NMEMBERS];
    lb_init_fmt(&m[0], SUB_WS, MSG_FMT_JSON, NULL, 64);
    lb_init_fmt(&m[1], SUB_SSE, MSG_FMT_SSE, NULL, 64);
    lb_init_fmt(&m[2], SUB_WS, SR_FMT_RECORD, "ReceiveMessage", 64);
    hub_join_ex(h, "r", &m[0].s, &(hub_join_args){.since = 0});
    hub_join_ex(h, "r", &m[1].s, &(hub_join_args){.from_now = true});
    hub_join_ex(h, "r", &m[2].s,
                &(hub_join_args){.since = 3, .epoch = "AbCd1234", .check_gap = true});
    hub_bp_subscribed(h, "r");

    redisReader *rd = redisReaderCreate();
    if (rd) {
        if (!create_array) {
            bounded = *rd->fn;
            create_array = bounded.createArray;
            bounded.createArray = create_bounded_array;
        }
        rd->fn = &bounded;
    }
    if (rd && redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
        void *reply;
        while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
            take(h, reply);
            freeReplyObject(reply);
            drain(m);
        }
    }
    if (rd)
        redisReaderFree(rd);

    for (int i = 0; i < NMEMBERS; i++) {
        hub_leave(h, &m[i].s);
        sub_fini(&m[i].s);
    }
    hub_destroy(h);
    return 0;
}
