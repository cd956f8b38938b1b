/* SPDX-License-Identifier: MIT */
/*
 * test_presence.c - presence: the per-room count (hub/presence.c: users,
 * connections, anonymous members, the grace before a user is gone) and the
 * hub's side (hub/presence_room.c through loopback members: counts per
 * room, hub_presence_get and max_listed, one join per user and one leave
 * after their last connection and the grace, events batched per tick in
 * every format, rooms with no presence_events, a hub's own rooms).
 */
#include "common/clock.h"
#include "hub/hub.h"
#include "hub/presence.h"
#include "tests/unit/loopback_sub.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void test_set_counts(void)
{
    presence_set p = {0};
    uint64_t shown = 0;
    const char *name = NULL;
    CHECK(presence_add(&p, "alice", &shown, &name) == PRESENCE_JOINED && shown == 1);
    CHECK_STR(name, "alice");
    CHECK(presence_add(&p, "alice", &shown, NULL) == PRESENCE_COUNT && shown == 2);
    CHECK(presence_add(&p, "bob", &shown, NULL) == PRESENCE_JOINED);
    CHECK(presence_add(&p, NULL, &shown, &name) == PRESENCE_SAME && shown == 1 && !name);
    CHECK(presence_add(&p, "", &shown, NULL) == PRESENCE_SAME && shown == 2);
    CHECK(p.nusers == 2 && p.anonymous == 2);
    presence_entry *v;
    size_t n;
    CHECK(presence_entries(&p, &v, &n) == 0 && n == 2);
    CHECK_STR(v[0].user, "alice");
    CHECK(v[0].connections == 2);
    CHECK_STR(v[1].user, "bob");
    CHECK(v[1].connections == 1);
    free(v);
    CHECK(presence_remove(&p, "alice", 1000, &shown) == PRESENCE_COUNT && shown == 1);
    CHECK(presence_remove(&p, NULL, 1000, &shown) == PRESENCE_SAME && shown == 1);
    CHECK(presence_remove(&p, "nobody", 1000, &shown) == PRESENCE_SAME);
    presence_clear(&p);
    CHECK(p.nusers == 0 && p.anonymous == 0);
}

static void count_gone(void *arg, const char *user)
{
    (void)user;
    ++*(int *)arg;
}

/* The last connection leaving: the user lingers (still shown) until the
 * sweep after the grace; a connection meanwhile keeps them (no leave). */
static void test_set_grace(void)
{
    presence_set p = {0};
    uint64_t shown = 0;
    presence_add(&p, "alice", &shown, NULL);
    presence_add(&p, "alice", &shown, NULL);
    presence_remove(&p, "alice", 1000, &shown);
    CHECK(presence_remove(&p, "alice", 1000, &shown) == PRESENCE_SAME && shown == 1);
    CHECK(p.nusers == 1 && p.nlingering == 1);
    int gone = 0;
    CHECK(presence_sweep(&p, 999, count_gone, &gone) == 0 && gone == 0);
    /* back within the grace: no join, no leave */
    CHECK(presence_add(&p, "alice", &shown, NULL) == PRESENCE_SAME && shown == 1);
    CHECK(p.nlingering == 0);
    CHECK(presence_sweep(&p, 5000, count_gone, &gone) == 0 && gone == 0);
    presence_remove(&p, "alice", 2000, &shown);
    CHECK(presence_sweep(&p, 2000, count_gone, &gone) == 1 && gone == 1);
    CHECK(p.nusers == 0 && p.nlingering == 0);
    CHECK(presence_add(&p, "alice", &shown, NULL) == PRESENCE_JOINED);
    presence_clear(&p);
}

/* Many users: the table grows and every one is found again. */
static void test_set_many(void)
{
    presence_set p = {0};
    uint64_t shown;
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "user%d", i);
        CHECK(presence_add(&p, name, &shown, NULL) == PRESENCE_JOINED);
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(name, sizeof(name), "user%d", i);
        CHECK(presence_add(&p, name, &shown, NULL) == PRESENCE_COUNT && shown == 2);
    }
    CHECK(p.nusers == 5000);
    presence_entry *v;
    size_t n;
    CHECK(presence_entries(&p, &v, &n) == 0 && n == 5000);
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(v[i - 1].user, v[i].user) < 0);
    free(v);
    presence_clear(&p);
}

static bool events_everywhere(void *arg, const char *room)
{
    (void)arg;
    return strncmp(room, "quiet", 5) != 0;
}

static hub *new_hub(void)
{
    hub_options opt = {
        .history_size = 10, .history_ttl_ms = 60000, .presence_events = events_everywhere};
    hub *h = hub_create(&opt);
    CHECK(h != NULL);
    return h;
}

static void member(loopback *l, sub_kind k, const char *user)
{
    lb_init(l, k, 64);
    CHECK(sub_set_identity(&l->s, user, NULL) == 0);
}

typedef struct got {
    int rc;
    presence_list l;
    char text[512];
} got;

static void got_presence(void *arg, int rc, const presence_list *l)
{
    got *g = arg;
    g->rc = rc;
    g->l = *l;
    g->l.v = NULL;
    size_t n = 0;
    g->text[0] = '\0';
    for (size_t i = 0; i < l->n; i++)
        n += (size_t)snprintf(g->text + n, sizeof(g->text) - n, "%s%s=%llu", i ? "," : "",
                              l->v[i].user, (unsigned long long)l->v[i].connections);
}

static got presence_of(hub *h, const char *room, size_t max_listed)
{
    got g = {.rc = -1};
    hub_presence_get(h, room, max_listed, got_presence, &g);
    return g;
}

/* The next queued message's JSON form, "" when none (it is popped). */
static void pop_json(loopback *l, char *out, size_t cap)
{
    msg *m = lb_pop(l);
    out[0] = '\0';
    if (!m)
        return;
    msg_bytes b = msg_get(m, MSG_FMT_JSON, NULL);
    snprintf(out, cap, "%.*s", (int)b.len, b.base);
    msg_unref(m);
}

static void test_hub_counts(void)
{
    hub *h = new_hub();
    loopback a1, a2, b, anon;
    member(&a1, SUB_WS, "alice");
    member(&a2, SUB_SSE, "alice");
    member(&b, SUB_LONGPOLL, "bob");
    member(&anon, SUB_WS, NULL);
    CHECK(hub_join(h, "lobby", &a1.s, 0, true) == 0);
    CHECK(hub_join(h, "lobby", &a2.s, 0, true) == 0);
    CHECK(hub_join(h, "lobby", &b.s, 0, true) == 0);
    CHECK(hub_join(h, "lobby", &anon.s, 0, true) == 0);
    CHECK(hub_join(h, "other", &b.s, 0, true) == 0);
    got g = presence_of(h, "lobby", 1000);
    CHECK(g.rc == 0 && g.l.users == 2 && g.l.anonymous == 1 && g.l.listed);
    CHECK_STR(g.text, "alice=2,bob=1");
    g = presence_of(h, "lobby", 1); /* past max_listed: counts only */
    CHECK(g.rc == 0 && g.l.users == 2 && !g.l.listed && g.l.n == 0);
    g = presence_of(h, "nobody-here", 1000);
    CHECK(g.rc == 0 && g.l.users == 0 && g.l.anonymous == 0 && g.l.listed);
    hub_leave(h, &a1.s);
    g = presence_of(h, "lobby", 1000);
    CHECK_STR(g.text, "alice=1,bob=1");
    hub_leave(h, &a2.s); /* alice lingers with the count she had */
    g = presence_of(h, "lobby", 1000);
    CHECK_STR(g.text, "alice=1,bob=1");
    hub_presence_tick(h, clock_now_ms() + PRESENCE_GRACE_MS + 1);
    g = presence_of(h, "lobby", 1000);
    CHECK_STR(g.text, "bob=1");
    CHECK(g.l.users == 1);
    hub_leave(h, &b.s);
    hub_leave(h, &anon.s);
    hub_presence_tick(h, clock_now_ms() + PRESENCE_GRACE_MS + 1);
    g = presence_of(h, "lobby", 1000);
    CHECK(g.l.users == 0 && g.l.anonymous == 0);
    sub_fini(&a1.s);
    sub_fini(&a2.s);
    sub_fini(&b.s);
    sub_fini(&anon.s);
    hub_destroy(h);
}

/* One join per user (not per connection), one leave after the last
 * connection and the grace, sent at the tick; several at once: one message
 * with a list. Anonymous members make none. */
static void test_hub_events(void)
{
    hub *h = new_hub();
    loopback w, a1, a2, b, anon;
    member(&w, SUB_WS, "watcher");
    member(&a1, SUB_WS, "alice");
    member(&a2, SUB_WS, "alice");
    member(&b, SUB_WS, "bob");
    member(&anon, SUB_WS, NULL);
    char j[256];
    CHECK(hub_join(h, "lobby", &w.s, 0, true) == 0);
    hub_presence_tick(h, clock_now_ms());
    pop_json(&w, j, sizeof(j));
    CHECK_STR(j, "{\"presence\":{\"user\":\"watcher\",\"action\":\"join\"}}");
    CHECK(hub_join(h, "lobby", &a1.s, 0, true) == 0);
    CHECK(hub_join(h, "lobby", &a2.s, 0, true) == 0);
    CHECK(hub_join(h, "lobby", &b.s, 0, true) == 0);
    CHECK(hub_join(h, "lobby", &anon.s, 0, true) == 0);
    CHECK(lb_count(&w) == 0); /* collected until the tick */
    hub_presence_tick(h, clock_now_ms());
    pop_json(&w, j, sizeof(j));
    CHECK_STR(j, "{\"presence\":[{\"user\":\"alice\",\"action\":\"join\"},"
                 "{\"user\":\"bob\",\"action\":\"join\"}]}");
    CHECK(lb_count(&w) == 0);
    /* a presence message has no id and moves no cursor */
    uint64_t id = 0;
    CHECK(hub_publish(h, "lobby", "1", 1, NULL, &id) == 0 && id == 1);
    msg *m = lb_pop(&w);
    CHECK(m && m->id == 1);
    msg_unref(m);
    hub_leave(h, &a1.s); /* alice still has a2 */
    hub_presence_tick(h, clock_now_ms() + PRESENCE_GRACE_MS + 1);
    CHECK(lb_count(&w) == 0);
    hub_leave(h, &a2.s);
    hub_presence_tick(h, clock_now_ms()); /* within the grace: nothing yet */
    CHECK(lb_count(&w) == 0);
    hub_presence_tick(h, clock_now_ms() + PRESENCE_GRACE_MS + 1);
    pop_json(&w, j, sizeof(j));
    CHECK_STR(j, "{\"presence\":{\"user\":\"alice\",\"action\":\"leave\"}}");
    /* the other formats: an SSE event named presence */
    loopback s;
    member(&s, SUB_SSE, "carol");
    CHECK(hub_join(h, "lobby", &s.s, 0, true) == 0);
    hub_presence_tick(h, clock_now_ms());
    m = lb_pop(&s);
    CHECK(m && m->presence && m->id == 0);
    if (m) {
        msg_bytes e = msg_get(m, MSG_FMT_SSE, NULL);
        char sse[200];
        snprintf(sse, sizeof(sse), "%.*s", (int)e.len, e.base);
        CHECK_STR(sse, "event: presence\ndata: {\"user\":\"carol\",\"action\":\"join\"}\n\n");
    }
    msg_unref(m);
    lb_drain(&w, NULL, 0);
    hub_leave(h, &w.s);
    hub_leave(h, &b.s);
    hub_leave(h, &anon.s);
    hub_leave(h, &s.s);
    hub_presence_tick(h, clock_now_ms() + PRESENCE_GRACE_MS + 1);
    sub_fini(&w.s);
    sub_fini(&a1.s);
    sub_fini(&a2.s);
    sub_fini(&b.s);
    sub_fini(&anon.s);
    sub_fini(&s.s);
    hub_destroy(h);
}

/* A room without presence_events counts, and sends nothing; a hub's own
 * rooms ("~") are not counted. User names are JSON-escaped. */
static void test_hub_quiet_and_internal(void)
{
    hub *h = new_hub();
    loopback a, b;
    member(&a, SUB_WS, "al\"ice");
    member(&b, SUB_WS, "bob");
    CHECK(hub_join(h, "quiet-room", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "quiet-room", &b.s, 0, true) == 0);
    CHECK(hub_join(h, "~hub", &a.s, 0, true) == 0);
    hub_presence_tick(h, clock_now_ms());
    CHECK(lb_count(&a) == 0 && lb_count(&b) == 0);
    got g = presence_of(h, "quiet-room", 10);
    CHECK(g.l.users == 2);
    CHECK_STR(g.text, "al\"ice=1,bob=1");
    g = presence_of(h, "~hub", 10);
    CHECK(g.l.users == 0);
    loopback c;
    member(&c, SUB_WS, "carol");
    CHECK(hub_join(h, "loud", &c.s, 0, true) == 0);
    CHECK(hub_join(h, "loud", &a.s, 0, true) == 0);
    hub_presence_tick(h, clock_now_ms());
    char j[256];
    pop_json(&c, j, sizeof(j));
    CHECK_STR(j, "{\"presence\":[{\"user\":\"carol\",\"action\":\"join\"},"
                 "{\"user\":\"al\\\"ice\",\"action\":\"join\"}]}");
    hub_leave(h, &a.s);
    hub_leave(h, &b.s);
    hub_leave(h, &c.s);
    hub_destroy(h); /* lingering users and rooms freed */
    sub_fini(&a.s);
    sub_fini(&b.s);
    sub_fini(&c.s);
}

/* A room whose members all left lives on until its leaves are sent. */
static void test_hub_room_lives_for_leave(void)
{
    hub *h = new_hub();
    loopback a;
    member(&a, SUB_WS, "alice");
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    hub_leave(h, &a.s);
    hub_expire(h, clock_now_ms());
    got g = presence_of(h, "r", 10);
    CHECK(g.l.users == 1); /* lingering */
    hub_presence_tick(h, clock_now_ms() + PRESENCE_GRACE_MS + 1);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.rooms == 0);
    sub_fini(&a.s);
    hub_destroy(h);
}

TEST_MAIN("presence", TEST(test_set_counts), TEST(test_set_grace), TEST(test_set_many),
          TEST(test_hub_counts), TEST(test_hub_events), TEST(test_hub_quiet_and_internal),
          TEST(test_hub_room_lives_for_leave))
