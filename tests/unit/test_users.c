/* SPDX-License-Identifier: MIT */
/*
 * test_users.c - unit tests for hub/users.c, the registry of who is
 * connected: sub_set_identity and connection ids, registration at the
 * first join and removal at hub_leave, several members per user,
 * anonymous members, lookups by connection id, and the tables growing
 * past their first size.
 */
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
    };
    return test_run("users", tests, sizeof(tests) / sizeof(tests[0]));
}
