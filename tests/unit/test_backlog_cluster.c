/* SPDX-License-Identifier: MIT */
/*
 * test_backlog_cluster.c - unit tests for hub/backlog_cluster.c with a fake
 * backplane that keeps what is sent: this node tells the others at once
 * when its first queue gets behind and when its last catches up, says
 * "holding" again on the timer every HOLD_REFRESH_MS, and when it is behind
 * on the backplane's messages (backlog_set_inbound); another node's
 * "holding" makes backlog_holding true until its "stopped", or until
 * HOLD_TTL_MS without a word; this node's own word and malformed ones
 * change nothing.
 */
#include "hub/backlog.h"
#include "hub/backlog_cluster.h"
#include "hub/sendq.h"
#include "tests/unit/test.h"

#include <stdlib.h>
#include <time.h>

#include "common/clock.h"

#define LIMIT 8

static char sent[8][128]; /* what the fake backplane was given, to every node */
static int nsent;

static void fake_cluster_send(backplane *bp, const char *node, const char *data, size_t len,
                              bp_count_fn cb, void *arg)
{
    (void)bp;
    (void)cb;
    (void)arg;
    if (node || nsent >= 8 || len >= sizeof(sent[0]))
        return;
    memcpy(sent[nsent], data, len);
    sent[nsent++][len] = '\0';
}

static const backplane_ops fake_ops = {.cluster_send = fake_cluster_send};
static backplane fake = {.ops = &fake_ops, .node_id = "me"};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Gives the backlog a cluster message of JSON text s; its answer. */
static bool word(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    bool taken = backlog_cluster_message(j);
    json_decref(j);
    return taken;
}

static void test_tells_at_once(void)
{
    backlog_cluster_attach(&fake);
    nsent = 0;
    msg *m[LIMIT + 1];
    sendq q;
    sendq_init(&q, LIMIT);
    sendq_pace(&q);
    for (uint64_t i = 1; i <= LIMIT; i++)
        m[i] = msg_create(i, "q", "0", 1, NULL, 0);
    for (int i = 1; i <= LIMIT / 2 + 1; i++)
        CHECK(sendq_push(&q, m[i]) == 0);
    CHECK(nsent == 1);
    CHECK_STR(sent[0], "{\"hold\":true,\"from\":\"me\"}");
    /* Refreshed on the timer only after HOLD_REFRESH_MS. */
    backlog_cluster_tick(clock_now_ms());
    CHECK(nsent == 1);
    backlog_cluster_tick(clock_now_ms() + HOLD_REFRESH_MS);
    CHECK(nsent == 2);
    CHECK_STR(sent[1], "{\"hold\":true,\"from\":\"me\"}");
    sendq_clear(&q);
    CHECK(nsent == 3);
    CHECK_STR(sent[2], "{\"hold\":false,\"from\":\"me\"}");
    backlog_cluster_tick(clock_now_ms() + 2 * HOLD_REFRESH_MS);
    CHECK(nsent == 3); /* nothing to say */
    for (int i = 1; i <= LIMIT; i++)
        msg_unref(m[i]);
    backlog_cluster_attach(NULL);
}

static void test_other_nodes_hold(void)
{
    backlog_cluster_attach(&fake);
    CHECK(!backlog_holding());
    CHECK(!word("{\"stats_req\":1,\"from\":\"x\"}")); /* not a backlog word */
    CHECK(word("{\"hold\":true,\"from\":\"me\"}"));   /* this node's own: no change */
    CHECK(!backlog_holding());
    CHECK(word("{\"hold\":1,\"from\":\"other\"}")); /* malformed: ignored */
    CHECK(word("{\"hold\":true}"));
    CHECK(word("{\"hold\":true,\"from\":\"a-node-id-too-long\"}"));
    CHECK(!backlog_holding());
    CHECK(word("{\"hold\":true,\"from\":\"other\"}"));
    CHECK(word("{\"hold\":true,\"from\":\"third\"}"));
    CHECK(backlog_holding() && backlog_remote_holders() == 2);
    CHECK(word("{\"hold\":false,\"from\":\"other\"}"));
    CHECK(backlog_holding() && backlog_remote_holders() == 1);
    CHECK(word("{\"hold\":false,\"from\":\"third\"}"));
    CHECK(!backlog_holding() && backlog_remote_holders() == 0);
    CHECK(!backlog_queues_holding());
    backlog_cluster_attach(NULL);
}

/* Behind on the backplane's messages (bytes not read yet): holds from
 * INBOUND_HOLD_BYTES until down to INBOUND_CLEAR_BYTES, told at once. */
static void test_inbound_behind(void)
{
    backlog_cluster_attach(&fake);
    nsent = 0;
    backlog_set_inbound(INBOUND_HOLD_BYTES - 1);
    CHECK(!backlog_queues_holding() && nsent == 0);
    backlog_set_inbound(INBOUND_HOLD_BYTES);
    CHECK(backlog_queues_holding() && backlog_holding() && backlog_inbound_behind());
    CHECK(nsent == 1);
    CHECK_STR(sent[0], "{\"hold\":true,\"from\":\"me\"}");
    backlog_set_inbound(INBOUND_CLEAR_BYTES + 1); /* not yet */
    CHECK(backlog_queues_holding() && nsent == 1);
    backlog_set_inbound(INBOUND_CLEAR_BYTES);
    CHECK(!backlog_queues_holding() && !backlog_holding());
    CHECK(nsent == 2);
    CHECK_STR(sent[1], "{\"hold\":false,\"from\":\"me\"}");
    backlog_cluster_attach(NULL);
}

/* A node that holds and then says nothing (dead) is forgotten. */
static void test_silent_node_forgotten(void)
{
    backlog_cluster_attach(&fake);
    CHECK(word("{\"hold\":true,\"from\":\"dying\"}"));
    CHECK(backlog_holding());
    sleep_ms(HOLD_TTL_MS + 100);
    CHECK(!backlog_holding() && backlog_remote_holders() == 0);
    backlog_cluster_attach(NULL);
}

TEST_MAIN("backlog_cluster", TEST(test_tells_at_once), TEST(test_other_nodes_hold),
          TEST(test_inbound_behind), TEST(test_silent_node_forgotten))
