/* SPDX-License-Identifier: MIT */
/*
 * test_node_stats.c - the cluster view's figures (hub/node_stats.c):
 * without a backplane this node alone; with one, the question to every
 * node, the answers added, done once the count of receivers answered (its
 * own copy included), partial after HUB_OP_WAIT_MS or when not sent;
 * another node's question answered to it alone; malformed ones ignored.
 */
#include "common/clock.h"
#include "hub/hub.h"
#include "hub/node_stats.h"
#include "tests/unit/test.h"

#include <stdio.h>
#include <string.h>

static hub *new_hub(void)
{
    hub_options opt = {.history_size = 8};
    hub *h = hub_create(&opt);
    CHECK(h != NULL);
    return h;
}

static json_t *figures(void)
{
    return json_pack("{s:i}", "answer", 42);
}

static struct {
    int calls;
    bool partial;
    char nodes[256]; /* the node ids, in order, space-separated */
} got;

static void done(void *arg, json_t *nodes, bool partial)
{
    (void)arg;
    got.calls++;
    got.partial = partial;
    got.nodes[0] = '\0';
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        CHECK(json_integer_value(json_object_get(n, "answer")) == 42);
        size_t len = strlen(got.nodes);
        snprintf(got.nodes + len, sizeof(got.nodes) - len, "%s%s", len ? " " : "",
                 json_string_value(json_object_get(n, "node")));
    }
    json_decref(nodes);
}

static struct {
    char to[32];
    char text[512];
    int sends;
    bp_count_fn cb;
    void *cb_arg;
} sent;

static void fake_want(backplane *bp, const char *room, bool want)
{
    (void)bp, (void)room, (void)want;
}

static void fake_fetch(backplane *bp, const char *room, const char *epoch, uint64_t after)
{
    (void)bp, (void)room, (void)epoch, (void)after;
}

static void fake_cluster_send(backplane *bp, const char *node, const char *data, size_t len,
                              bp_count_fn cb, void *arg)
{
    (void)bp;
    snprintf(sent.to, sizeof(sent.to), "%s", node ? node : "");
    snprintf(sent.text, sizeof(sent.text), "%.*s", (int)len, data);
    sent.sends++;
    sent.cb = cb;
    sent.cb_arg = arg;
}

static const backplane_ops fake_ops = {
    .want_room = fake_want, .fetch = fake_fetch, .cluster_send = fake_cluster_send};

static void message(hub *h, const char *text)
{
    hub_bp_cluster_message(h, text, strlen(text));
}

static void test_alone(void)
{
    node_stats_set_provider(figures);
    hub *h = new_hub();
    memset(&got, 0, sizeof(got));
    hub_node_stats_async(h, done, NULL);
    CHECK(got.calls == 1 && !got.partial && !strcmp(got.nodes, "local"));
    hub_destroy(h);
}

static void test_origin(void)
{
    node_stats_set_provider(figures);
    hub *h = new_hub();
    backplane bp = {.ops = &fake_ops, .node_id = "nodeAAAAAAAA"};
    hub_set_backplane(h, &bp);
    hub_bp_link(h, true);
    memset(&got, 0, sizeof(got));
    memset(&sent, 0, sizeof(sent));
    hub_node_stats_async(h, done, NULL);
    CHECK(got.calls == 0 && sent.sends == 1 && sent.to[0] == '\0');
    CHECK(strstr(sent.text, "\"stats_req\":") && strstr(sent.text, "\"from\":\"nodeAAAAAAAA\""));
    char own[512];
    snprintf(own, sizeof(own), "%s", sent.text);
    json_t *q = json_loads(own, 0, NULL);
    long req = (long)json_integer_value(json_object_get(q, "stats_req"));
    json_decref(q);
    char answer[256];
    snprintf(answer, sizeof(answer),
             "{\"stats_re\":%ld,\"node\":{\"node\":\"nodeBBBBBBBB\",\"answer\":42}}", req);
    /* the count (3), its own copy, one answer: not yet */
    sent.cb(sent.cb_arg, 3);
    message(h, own);
    message(h, answer);
    CHECK(got.calls == 0);
    snprintf(answer, sizeof(answer),
             "{\"stats_re\":%ld,\"node\":{\"node\":\"nodeCCCCCCCC\",\"answer\":42}}", req);
    message(h, answer);
    CHECK(got.calls == 1 && !got.partial);
    CHECK(!strcmp(got.nodes, "nodeAAAAAAAA nodeBBBBBBBB nodeCCCCCCCC"));
    message(h, answer); /* late: nobody waits for it */
    CHECK(got.calls == 1);

    /* a node that never answers: partial after the wait, with what came */
    hub_node_stats_async(h, done, NULL);
    sent.cb(sent.cb_arg, 2);
    node_stats_tick(clock_now_ms());
    CHECK(got.calls == 1);
    node_stats_tick(clock_now_ms() + HUB_OP_WAIT_MS);
    CHECK(got.calls == 2 && got.partial && !strcmp(got.nodes, "nodeAAAAAAAA"));

    /* not sent (the backplane down): this node alone, partial */
    hub_node_stats_async(h, done, NULL);
    sent.cb(sent.cb_arg, -1);
    CHECK(got.calls == 3 && got.partial && !strcmp(got.nodes, "nodeAAAAAAAA"));

    /* one still waiting at hub_destroy is answered then */
    hub_node_stats_async(h, done, NULL);
    hub_set_backplane(h, NULL);
    hub_destroy(h);
    CHECK(got.calls == 4 && got.partial);
}

static void test_receiver(void)
{
    node_stats_set_provider(figures);
    hub *h = new_hub();
    backplane bp = {.ops = &fake_ops, .node_id = "nodeBBBBBBBB"};
    hub_set_backplane(h, &bp);
    hub_bp_link(h, true);
    memset(&sent, 0, sizeof(sent));
    message(h, "{\"stats_req\":9,\"from\":\"nodeAAAAAAAA\"}");
    CHECK(sent.sends == 1 && !strcmp(sent.to, "nodeAAAAAAAA") && !sent.cb);
    CHECK(strstr(sent.text, "\"stats_re\":9") && strstr(sent.text, "\"node\":\"nodeBBBBBBBB\"") &&
          strstr(sent.text, "\"answer\":42"));
    /* malformed: not answered, no crash */
    const char *bad[] = {"{\"stats_req\":\"x\",\"from\":\"nodeA\"}",
                         "{\"stats_req\":1}",
                         "{\"stats_req\":1,\"from\":\"\"}",
                         "{\"stats_req\":1,\"from\":\"a-node-id-far-too-long-for-one\"}",
                         "{\"stats_re\":12345,\"node\":[]}",
                         "{\"stats_re\":1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        message(h, bad[i]);
    CHECK(sent.sends == 1);
    hub_set_backplane(h, NULL);
    hub_destroy(h);
}

int main(void)
{
    static const test_case tests[] = {
        TEST(test_alone),
        TEST(test_origin),
        TEST(test_receiver),
    };
    return test_run("node_stats", tests, sizeof(tests) / sizeof(tests[0]));
}
