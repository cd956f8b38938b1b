/* SPDX-License-Identifier: MIT */
/*
 * test_users.c - unit tests for hub/users.c, the registry of who is
 * connected: sub_set_identity and connection ids, registration at the
 * first join and removal at hub_leave, several members per user,
 * anonymous members, lookups by connection id, and the tables growing
 * past their first size.
 */
#include "common/clock.h"
#include "hub/hub.h"
#include "tests/unit/loopback_sub.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <stdlib.h>

static hub *new_hub(void)
{
    hub_options opt = {.history_size = 8};
    hub *h = hub_create(&opt);
    CHECK(h != NULL);
    return h;
}

static void test_conn_id_validity(void)
{
    CHECK(sub_conn_id_is_valid("abc", 3));
    CHECK(sub_conn_id_is_valid("A-b_9", 5));
    CHECK(!sub_conn_id_is_valid("", 0));
    CHECK(!sub_conn_id_is_valid("a/b", 3));
    CHECK(!sub_conn_id_is_valid("a b", 3));
    CHECK(!sub_conn_id_is_valid("a.b", 3));
    char longer[SUB_CONN_ID_MAX + 1];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[SUB_CONN_ID_MAX] = '\0';
    CHECK(!sub_conn_id_is_valid(longer, SUB_CONN_ID_MAX));
    CHECK(sub_conn_id_is_valid(longer, SUB_CONN_ID_MAX - 1));
    char a[SUB_CONN_ID_MAX], b[SUB_CONN_ID_MAX];
    sub_new_conn_id(a);
    sub_new_conn_id(b);
    CHECK(strlen(a) == SUB_CONN_ID_LEN);
    CHECK(sub_conn_id_is_valid(a, strlen(a)));
    CHECK(strcmp(a, b) != 0);
}

static void test_set_identity(void)
{
    loopback l;
    lb_init(&l, SUB_WS, 8);
    CHECK(l.s.user == NULL);
    CHECK(l.s.conn_id[0] == '\0');
    CHECK(sub_set_identity(&l.s, "alice", NULL) == 0);
    CHECK_STR(l.s.user, "alice");
    CHECK(strlen(l.s.conn_id) == SUB_CONN_ID_LEN);
    CHECK(sub_set_identity(&l.s, NULL, "given-id_1") == 0);
    CHECK(l.s.user == NULL);
    CHECK_STR(l.s.conn_id, "given-id_1");
    CHECK(sub_set_identity(&l.s, "", "x") == 0);
    CHECK(l.s.user == NULL); /* "" is anonymous */
    CHECK(sub_set_identity(&l.s, "bob", "bad id") == -EINVAL);
    CHECK(l.s.user == NULL); /* unchanged */
    CHECK(sub_set_identity(&l.s, "bob", "id2") == 0);
    sub_fini(&l.s); /* frees the user (ASan: no leak) */
}

/* A member is registered by its first join, and stays through leaving one
 * room; hub_leave takes it out. */
static void test_register_at_join(void)
{
    hub *h = new_hub();
    loopback l;
    lb_init(&l, SUB_WS, 8);
    sub_set_identity(&l.s, "alice", "c1");
    CHECK(hub_user_connections(h, "alice") == 0);
    CHECK(!hub_conn_user(h, "c1", NULL));
    CHECK(hub_join(h, "r1", &l.s, 0, true) == 0);
    CHECK(hub_user_connections(h, "alice") == 1);
    char *user = NULL;
    CHECK(hub_conn_user(h, "c1", &user));
    CHECK_STR(user, "alice");
    free(user);
    CHECK(hub_join(h, "r2", &l.s, 0, true) == 0);
    CHECK(hub_user_connections(h, "alice") == 1); /* one member, two rooms */
    CHECK(hub_join(h, "r2", &l.s, 0, true) == -EEXIST);
    hub_leave_room(h, "r1", &l.s);
    hub_leave_room(h, "r2", &l.s);
    CHECK(hub_user_connections(h, "alice") == 1); /* in no room, still connected */
    hub_leave(h, &l.s);
    CHECK(hub_user_connections(h, "alice") == 0);
    CHECK(!hub_conn_user(h, "c1", NULL));
    hub_leave(h, &l.s); /* idempotent */
    size_t users = 9, conns = 9;
    hub_registry_counts(h, &users, &conns);
    CHECK(users == 0 && conns == 0);
    sub_fini(&l.s);
    hub_destroy(h);
}

/* Several members per user; anonymous members are found by id only; a
 * member without identity (a hub's own) is not registered. */
static void test_several_and_anonymous(void)
{
    hub *h = new_hub();
    loopback a1, a2, b, anon, none;
    lb_init(&a1, SUB_WS, 8);
    lb_init(&a2, SUB_SSE, 8);
    lb_init(&b, SUB_LONGPOLL, 8);
    lb_init(&anon, SUB_WS, 8);
    lb_init(&none, SUB_WS, 8);
    sub_set_identity(&a1.s, "alice", "a1");
    sub_set_identity(&a2.s, "alice", "a2");
    sub_set_identity(&b.s, "bob", "b");
    sub_set_identity(&anon.s, NULL, "anon");
    CHECK(hub_join(h, "r", &a1.s, 0, true) == 0);
    CHECK(hub_join(h, "s", &a2.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &anon.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &none.s, 0, true) == 0);
    CHECK(hub_user_connections(h, "alice") == 2);
    CHECK(hub_user_connections(h, "bob") == 1);
    CHECK(hub_user_connections(h, "carol") == 0);
    CHECK(hub_user_connections(h, NULL) == 0);
    char ids[4][SUB_CONN_ID_MAX];
    CHECK(hub_user_conn_ids(h, "alice", ids, 4) == 2);
    CHECK((!strcmp(ids[0], "a1") && !strcmp(ids[1], "a2")) ||
          (!strcmp(ids[0], "a2") && !strcmp(ids[1], "a1")));
    CHECK(hub_user_conn_ids(h, "alice", ids, 1) == 2); /* counts past cap */
    char *user = (char *)"x";
    CHECK(hub_conn_user(h, "anon", &user));
    CHECK(user == NULL);
    size_t users = 0, conns = 0;
    hub_registry_counts(h, &users, &conns);
    CHECK(users == 2 && conns == 4);
    hub_leave(h, &a1.s);
    CHECK(hub_user_connections(h, "alice") == 1);
    CHECK(hub_user_conn_ids(h, "alice", ids, 4) == 1);
    CHECK_STR(ids[0], "a2");
    hub_leave(h, &a2.s);
    hub_leave(h, &b.s);
    hub_leave(h, &anon.s);
    hub_leave(h, &none.s);
    hub_registry_counts(h, &users, &conns);
    CHECK(users == 0 && conns == 0);
    loopback *all[] = {&a1, &a2, &b, &anon, &none};
    for (size_t i = 0; i < 5; i++)
        sub_fini(&all[i]->s);
    hub_destroy(h);
}

/* A refused join registers nothing (the member is freed without hub_leave). */
static void test_refused_join_not_registered(void)
{
    hub_options opt = {.history_size = 8, .max_rooms = 1};
    hub *h = hub_create(&opt);
    loopback a, b;
    lb_init(&a, SUB_WS, 8);
    lb_init(&b, SUB_WS, 8);
    sub_set_identity(&a.s, "alice", "a");
    sub_set_identity(&b.s, "bob", "b");
    CHECK(hub_join(h, "r1", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "r2", &b.s, 0, true) == -ENOSPC);
    CHECK(hub_user_connections(h, "bob") == 0);
    CHECK(!hub_conn_user(h, "b", NULL));
    sub_fini(&b.s);
    hub_leave(h, &a.s);
    sub_fini(&a.s);
    hub_destroy(h);
}

/* A second member with a taken connection id is not registered; the first
 * keeps it. */
static void test_taken_id(void)
{
    hub *h = new_hub();
    loopback a, b;
    lb_init(&a, SUB_WS, 8);
    lb_init(&b, SUB_WS, 8);
    sub_set_identity(&a.s, "alice", "same");
    sub_set_identity(&b.s, "bob", "same");
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    CHECK(hub_user_connections(h, "bob") == 0);
    char *user = NULL;
    CHECK(hub_conn_user(h, "same", &user));
    CHECK_STR(user, "alice");
    free(user);
    hub_leave(h, &b.s); /* not registered: takes nothing out */
    CHECK(hub_conn_user(h, "same", NULL));
    hub_leave(h, &a.s);
    CHECK(!hub_conn_user(h, "same", NULL));
    sub_fini(&a.s);
    sub_fini(&b.s);
    hub_destroy(h);
}

/* Many users and connections: the tables grow and every one is found. */
static void test_many(void)
{
    hub *h = new_hub();
    enum { N = 600 };
    loopback *l = calloc(N, sizeof(*l));
    for (int i = 0; i < N; i++) {
        char user[16], id[16];
        snprintf(user, sizeof(user), "u%d", i % 200);
        snprintf(id, sizeof(id), "c%d", i);
        lb_init(&l[i], SUB_WS, 4);
        CHECK(sub_set_identity(&l[i].s, user, id) == 0);
        CHECK(hub_join(h, "r", &l[i].s, 0, true) == 0);
    }
    size_t users = 0, conns = 0;
    hub_registry_counts(h, &users, &conns);
    CHECK(users == 200 && conns == N);
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        char user[16];
        snprintf(user, sizeof(user), "u%d", i);
        bad += hub_user_connections(h, user) != 3;
    }
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c%d", i);
        bad += !hub_conn_user(h, id, NULL);
    }
    CHECK(bad == 0);
    for (int i = 0; i < N; i += 2)
        hub_leave(h, &l[i].s);
    hub_registry_counts(h, &users, &conns);
    CHECK(users == 100 && conns == N / 2); /* u<even> had only even members */
    CHECK(hub_user_connections(h, "u1") == 3);
    CHECK(hub_user_connections(h, "u0") == 0);
    /* Members left behind at hub_destroy are forgotten, not touched after. */
    hub_destroy(h);
    for (int i = 0; i < N; i++)
        sub_fini(&l[i].s);
    free(l);
}

/* The bytes l's queue holds first, popped (in l's format). */
static bool pop_is(loopback *l, const char *want)
{
    msg *m = lb_pop(l);
    msg_bytes b = m ? lb_bytes(l, m) : (msg_bytes){NULL, 0};
    bool ok = m && b.len == strlen(want) && !memcmp(b.base, want, b.len);
    if (!ok)
        fprintf(stderr, "  got \"%.*s\", want \"%s\"\n", (int)b.len, b.base ? b.base : "", want);
    msg_unref(m);
    return ok;
}

/* A message to a user reaches each of its members in that member's format
 * (JSON envelope with "user", an SSE event named user without id, a
 * SignalR invocation of the member's default target), once encoded per
 * format; nobody else. */
static void test_send_to_user(void)
{
    hub *h = new_hub();
    loopback ws, sse, sr, other;
    lb_init(&ws, SUB_WS, 8);
    lb_init(&sse, SUB_SSE, 8);
    lb_init_fmt(&sr, SUB_WS, sr_fmt_record(), "ReceiveMessage", 8);
    lb_init(&other, SUB_WS, 8);
    sub_set_identity(&ws.s, "al\"ice", "w");
    sub_set_identity(&sse.s, "al\"ice", "s");
    sub_set_identity(&sr.s, "al\"ice", "r");
    sub_set_identity(&other.s, "bob", "o");
    loopback *all[] = {&ws, &sse, &sr, &other};
    for (size_t i = 0; i < 4; i++)
        CHECK(hub_join(h, "lobby", &all[i]->s, 0, true) == 0);
    const char data[] = "[\"hi\",2]";
    hub_user_op op = {.op = HUB_OP_SEND, .name = "al\"ice", .data = data, .len = strlen(data)};
    hub_user_result r = {0};
    hub_user_op_here(h, &op, &r);
    CHECK(r.rc == 0 && r.found == 3 && r.done == 3 && !r.partial);
    CHECK(pop_is(&ws, "{\"user\":\"al\\\"ice\",\"data\":[\"hi\",2]}"));
    CHECK(pop_is(&sse, "event: user\ndata: [\"hi\",2]\n\n"));
    CHECK(pop_is(&sr, "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[\"hi\",2]}\x1e"));
    CHECK(lb_count(&other) == 0);
    CHECK(ws.s.last_id == 0); /* not a room message: no cursor moves */
    /* by connection id, with a target */
    op = (hub_user_op){
        .op = HUB_OP_SEND, .by_conn = true, .name = "r", .data = "1", .len = 1, .target = "Notify"};
    r = (hub_user_result){0};
    hub_user_op_here(h, &op, &r);
    CHECK(r.found == 1 && r.done == 1);
    CHECK(pop_is(&sr, "{\"type\":1,\"target\":\"Notify\",\"arguments\":[1]}\x1e"));
    CHECK(lb_count(&ws) == 0 && lb_count(&sse) == 0);
    op.name = "nobody";
    r = (hub_user_result){0};
    hub_user_op_here(h, &op, &r);
    CHECK(r.found == 0 && r.done == 0);
    for (size_t i = 0; i < 4; i++) {
        hub_leave(h, &all[i]->s);
        sub_fini(&all[i]->s);
    }
    hub_destroy(h);
}

/* Join and leave apply to multi_room members only, within
 * max_rooms_per_sub; END records the reason and its text. */
static void test_join_leave_end(void)
{
    hub_options opt = {.history_size = 8, .max_rooms_per_sub = 2};
    hub *h = hub_create(&opt);
    loopback a, b, c;
    lb_init(&a, SUB_WS, 8);
    lb_init(&b, SUB_WS, 8);
    lb_init(&c, SUB_SSE, 8);
    a.s.multi_room = b.s.multi_room = true;
    sub_set_identity(&a.s, "alice", "a");
    sub_set_identity(&b.s, "alice", "b");
    sub_set_identity(&c.s, "alice", "c");
    CHECK(hub_join(h, "home", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "home", &b.s, 0, true) == 0);
    CHECK(hub_join(h, "x", &b.s, 0, true) == 0); /* b is at its limit */
    CHECK(hub_join(h, "home", &c.s, 0, true) == 0);
    hub_user_op op = {.op = HUB_OP_JOIN, .name = "alice", .room = "team"};
    hub_user_result r = {0};
    hub_user_op_here(h, &op, &r);
    CHECK(r.found == 3 && r.done == 1 && r.refused == 1 && r.skipped == 1);
    uint64_t id;
    CHECK(hub_publish(h, "team", "5", 1, NULL, &id) == 0);
    CHECK(lb_count(&a) == 1 && lb_count(&b) == 0 && lb_count(&c) == 0);
    CHECK(lb_pop_id(&a) == id);
    op.op = HUB_OP_LEAVE;
    r = (hub_user_result){0};
    hub_user_op_here(h, &op, &r);
    CHECK(r.found == 3 && r.done == 1 && r.skipped == 1);
    CHECK(hub_publish(h, "team", "6", 1, NULL, &id) == 0);
    CHECK(lb_count(&a) == 0);
    op = (hub_user_op){.op = HUB_OP_END, .by_conn = true, .name = "c", .reason = "bye now"};
    r = (hub_user_result){0};
    hub_user_op_here(h, &op, &r);
    CHECK(r.found == 1 && r.done == 1);
    CHECK(c.s.ending && c.s.end_reason == SUB_END_DISCONNECTED);
    CHECK_STR(c.s.end_text, "bye now");
    CHECK(c.ends == 1);
    sub_end_with_text(&c.s, SUB_END_EXPIRED, "later"); /* the first reason stays */
    CHECK_STR(c.s.end_text, "bye now");
    CHECK(!a.s.ending && !b.s.ending);
    loopback *all[] = {&a, &b, &c};
    for (size_t i = 0; i < 3; i++) {
        hub_leave(h, &all[i]->s);
        sub_fini(&all[i]->s); /* frees end_text (ASan: no leak) */
    }
    hub_destroy(h);
}

/* Without a backplane, hub_user_op_async answers at once, not partial. */
static int async_calls;
static hub_user_result async_res;
static void async_done(void *arg, const hub_user_result *r)
{
    (void)arg;
    async_calls++;
    async_res = *r;
}

static void test_async_without_backplane(void)
{
    hub *h = new_hub();
    loopback a;
    lb_init(&a, SUB_WS, 8);
    sub_set_identity(&a.s, "alice", "a");
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    hub_user_op op = {.op = HUB_OP_SEND, .name = "alice", .data = "{}", .len = 2};
    hub_user_op_async(h, &op, async_done, NULL);
    CHECK(async_calls == 1 && async_res.found == 1 && async_res.done == 1 && !async_res.partial);
    hub_user_ops_tick(h, 1000000); /* nothing waits */
    CHECK(async_calls == 1);
    hub_leave(h, &a.s);
    sub_fini(&a.s);
    hub_destroy(h);
}

/* --- across nodes, with a backplane that records cluster_send */

static struct {
    char to[32];    /* "" for every node */
    char text[512]; /* the last message sent */
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

/* The origin: its own members at once, then the other nodes' answers added
 * up; done once every node that got the op (the count) answered, its own
 * copy included; else partial after HUB_OP_WAIT_MS. */
static void test_cluster_origin(void)
{
    hub *h = new_hub();
    backplane bp = {.ops = &fake_ops, .node_id = "nodeAAAAAAAA"};
    hub_set_backplane(h, &bp);
    hub_bp_link(h, true);
    loopback a;
    lb_init(&a, SUB_WS, 8);
    a.s.multi_room = true;
    sub_set_identity(&a.s, "alice", "a");
    CHECK(hub_join(h, "~own", &a.s, 0, true) == 0);
    memset(&sent, 0, sizeof(sent));
    async_calls = 0;
    hub_user_op op = {.op = HUB_OP_END, .name = "alice", .reason = "r"};
    hub_user_op_async(h, &op, async_done, NULL);
    CHECK(async_calls == 0); /* waits for the other nodes */
    CHECK(sent.sends == 1 && sent.to[0] == '\0');
    CHECK(strstr(sent.text, "\"op\":\"end\"") && strstr(sent.text, "\"from\":\"nodeAAAAAAAA\"") &&
          strstr(sent.text, "\"reason\":\"r\""));
    CHECK(a.s.end_reason == SUB_END_DISCONNECTED); /* here at once */
    /* its own copy comes back, and one other node answers: 2 of 3 */
    hub_bp_cluster_message(h, sent.text, strlen(sent.text));
    const char answer[] = "{\"re\":1,\"found\":2,\"done\":2,\"refused\":0,\"skipped\":0}";
    hub_bp_cluster_message(h, answer, strlen(answer));
    sent.cb(sent.cb_arg, 3);
    CHECK(async_calls == 0);
    hub_bp_cluster_message(h, answer, strlen(answer)); /* the third */
    CHECK(async_calls == 1);
    CHECK(async_res.found == 5 && async_res.done == 5 && !async_res.partial);
    /* a node that never answers: partial after the wait */
    const char big[] = "123456789012345678901234567890"; /* past 64 bits: sent as it is */
    op = (hub_user_op){.op = HUB_OP_SEND, .name = "bob", .data = big, .len = strlen(big)};
    hub_user_op_async(h, &op, async_done, NULL);
    CHECK(strstr(sent.text, "\"data\":\"123456789012345678901234567890\"") != NULL);
    sent.cb(sent.cb_arg, 2);
    hub_user_ops_tick(h, clock_now_ms());
    CHECK(async_calls == 1);
    hub_user_ops_tick(h, clock_now_ms() + HUB_OP_WAIT_MS);
    CHECK(async_calls == 2 && async_res.partial && async_res.found == 0);
    /* not sent (the backplane went down): what this node did, partial */
    hub_user_op_async(h, &op, async_done, NULL);
    sent.cb(sent.cb_arg, -1);
    CHECK(async_calls == 3 && async_res.partial);
    /* an op still waiting at hub_destroy is answered then */
    hub_user_op_async(h, &op, async_done, NULL);
    sent.cb(sent.cb_arg, 5); /* counted (the backplane answers every count before it stops) */
    hub_leave(h, &a.s);
    sub_fini(&a.s);
    hub_set_backplane(h, NULL);
    hub_destroy(h);
    CHECK(async_calls == 4 && async_res.partial);
}

/* Another node's op: applied to this node's members, answered to its node. */
static void test_cluster_receiver(void)
{
    hub *h = new_hub();
    backplane bp = {.ops = &fake_ops, .node_id = "nodeBBBBBBBB"};
    hub_set_backplane(h, &bp);
    hub_bp_link(h, true);
    loopback a;
    lb_init(&a, SUB_WS, 8);
    sub_set_identity(&a.s, "alice", "a");
    CHECK(hub_join(h, "~own", &a.s, 0, true) == 0);
    memset(&sent, 0, sizeof(sent));
    const char op[] = "{\"req\":7,\"from\":\"nodeAAAAAAAA\",\"op\":\"send\",\"by\":\"user\","
                      "\"name\":\"alice\",\"data\":\"{\\\"x\\\": [1,2]}\"}";
    hub_bp_cluster_message(h, op, strlen(op));
    CHECK(pop_is(&a, "{\"user\":\"alice\",\"data\":{\"x\": [1,2]}}")); /* as sent */
    CHECK(sent.sends == 1 && !strcmp(sent.to, "nodeAAAAAAAA") && !sent.cb);
    CHECK(strstr(sent.text, "\"re\":7") && strstr(sent.text, "\"found\":1") &&
          strstr(sent.text, "\"done\":1"));
    /* malformed ones are ignored (an unknown op is answered with nothing) */
    const char *bad[] = {"", "[]", "{\"req\":1}", "{\"req\":1,\"from\":\"x\",\"op\":\"nope\"}",
                         "{\"req\":1,\"from\":\"x\",\"op\":\"join\",\"name\":\"alice\","
                         "\"room\":\"bad room\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        hub_bp_cluster_message(h, bad[i], strlen(bad[i]));
    room_info info;
    CHECK(lb_count(&a) == 0 && hub_room_info(h, "bad room", &info) == -ENOENT);
    hub_leave(h, &a.s);
    sub_fini(&a.s);
    hub_set_backplane(h, NULL);
    hub_destroy(h);
}

int main(void)
{
    static const test_case tests[] = {
        TEST(test_conn_id_validity),
        TEST(test_set_identity),
        TEST(test_register_at_join),
        TEST(test_several_and_anonymous),
        TEST(test_refused_join_not_registered),
        TEST(test_taken_id),
        TEST(test_many),
        TEST(test_send_to_user),
        TEST(test_join_leave_end),
        TEST(test_async_without_backplane),
        TEST(test_cluster_origin),
        TEST(test_cluster_receiver),
    };
    return test_run("users", tests, sizeof(tests) / sizeof(tests[0]));
}
