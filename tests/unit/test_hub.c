/* SPDX-License-Identifier: MIT */
/*
 * test_hub.c - unit tests for hub/hub.c through loopback members: room names,
 * ids, fanout, join (from_now / since), leave, room_info, expiry, the send
 * queue bound, stats and per-format encodings.
 */
#include "hub/hub.h"
#include "tests/unit/loopback_sub.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <stdlib.h>

static hub *new_hub(size_t history_size, int64_t ttl_ms)
{
    hub_options opt = {.history_size = history_size, .history_ttl_ms = ttl_ms};
    hub *h = hub_create(&opt);
    CHECK(h != NULL);
    return h;
}

/* Publishes data to room; returns the id, 0 on failure. */
static uint64_t pub(hub *h, const char *room, const char *data)
{
    uint64_t id = 0;
    int rc = hub_publish(h, room, data, strlen(data), &id);
    CHECK(rc == 0);
    return rc ? 0 : id;
}

/* Publishes n messages ["m"] to room. */
static void pub_n(hub *h, const char *room, int n)
{
    for (int i = 0; i < n; i++)
        pub(h, room, "[\"m\"]");
}

/* l's queue holds exactly the ids first..last, in order; drains it. */
static bool got_range(loopback *l, uint64_t first, uint64_t last)
{
    uint64_t ids[256];
    size_t n = lb_drain(l, ids, 256);
    bool ok = n == last - first + 1 && n <= 256;
    for (size_t i = 0; ok && i < n; i++)
        ok = ids[i] == first + i;
    if (!ok) {
        fprintf(stderr, "  got %zu ids:", n);
        for (size_t i = 0; i < n && i < 256; i++)
            fprintf(stderr, " %llu", (unsigned long long)ids[i]);
        fprintf(stderr, "; want %llu..%llu\n", (unsigned long long)first, (unsigned long long)last);
    }
    return ok;
}

static bool got_nothing(loopback *l)
{
    return lb_count(l) == 0;
}

static int info(hub *h, const char *room, room_info *out)
{
    memset(out, 0xEE, sizeof(*out));
    return hub_room_info(h, room, out);
}

/* The JSON envelope of m is {"id":id,"room":"room","data":data}. */
static bool envelope_is(const msg *m, uint64_t id, const char *room, const char *data)
{
    char want[512];
    int n = snprintf(want, sizeof(want), "{\"id\":%llu,\"room\":\"%s\",\"data\":%s}",
                     (unsigned long long)id, room, data);
    msg_bytes b = msg_get(m, MSG_FMT_JSON);
    return n > 0 && b.len == (size_t)n && memcmp(b.base, want, b.len) == 0;
}

/* m carries SSE bytes, and they are the SSE form of its data. */
static bool sse_ok(const msg *m)
{
    msg_bytes s = msg_get(m, MSG_FMT_SSE);
    msg_bytes d = msg_data(m);
    if (!s.base)
        return false;
    char buf[512];
    size_t need = msg_format_sse(buf, sizeof(buf), m->id, d.base, d.len);
    return need <= sizeof(buf) && s.len == need && memcmp(s.base, buf, need) == 0;
}

static void fini(hub *h, loopback *l)
{
    hub_leave(h, &l->s);
    sub_fini(&l->s);
}

/* ------------------------------------------------------------------ tests */

static void test_room_names(void)
{
    CHECK(room_name_is_valid("a", 1));
    CHECK(room_name_is_valid("Room-1", 6));
    CHECK(room_name_is_valid("chat.general_2:en-GB", 20));
    CHECK(room_name_is_valid("...", 3));
    CHECK(room_name_is_valid("AZaz09._-:", 10));
    char name[200];
    memset(name, 'r', sizeof(name));
    CHECK(room_name_is_valid(name, 128));
    CHECK(!room_name_is_valid(name, 129));
    CHECK(!room_name_is_valid(name, 200));
    CHECK(!room_name_is_valid("", 0));
    CHECK(!room_name_is_valid("a b", 3));
    CHECK(!room_name_is_valid("a/b", 3));
    CHECK(!room_name_is_valid("/", 1));
    CHECK(!room_name_is_valid("a%20b", 5));
    CHECK(!room_name_is_valid("caf\xc3\xa9", 5));
    CHECK(!room_name_is_valid("\x80", 1));
    CHECK(!room_name_is_valid("\xff", 1));
    CHECK(!room_name_is_valid("a\tb", 3));
    CHECK(!room_name_is_valid("a\nb", 3));
    CHECK(!room_name_is_valid("a\0b", 3));
    CHECK(!room_name_is_valid("a\"b", 3));
    CHECK(!room_name_is_valid("a\\b", 3));
    CHECK(!room_name_is_valid("a?b", 3));
    CHECK(!room_name_is_valid("a#b", 3));
    CHECK(!room_name_is_valid("a+b", 3));
    /* Only len bytes count. */
    CHECK(room_name_is_valid("ab/c", 2));
}

static void test_ids_per_room(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    CHECK(pub(h, "a", "1") == 1);
    CHECK(pub(h, "a", "2") == 2);
    CHECK(pub(h, "b", "3") == 1);
    CHECK(pub(h, "a", "4") == 3);
    CHECK(pub(h, "b", "5") == 2);
    CHECK(pub(h, "c", "6") == 1);
    room_info ri;
    CHECK(info(h, "a", &ri) == 0 && ri.last_id == 3);
    CHECK(info(h, "b", &ri) == 0 && ri.last_id == 2);
    CHECK(info(h, "c", &ri) == 0 && ri.last_id == 1);
    CHECK(info(h, "d", &ri) == -ENOENT);
    hub_destroy(h);
}

static void test_fanout(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback m[3];
    lb_init(&m[0], SUB_WS, 100);
    lb_init(&m[1], SUB_SSE, 100);
    lb_init(&m[2], SUB_LONGPOLL, 100);
    for (int i = 0; i < 3; i++)
        CHECK(hub_join(h, "r", &m[i].s, 0, true) == 0);
    loopback other;
    lb_init(&other, SUB_WS, 100);
    CHECK(hub_join(h, "elsewhere", &other.s, 0, true) == 0);

    const char *data[] = {"{\"n\":1}", "[2]", "\"three\"", "4", "null"};
    for (uint64_t i = 0; i < 5; i++)
        CHECK(pub(h, "r", data[i]) == i + 1);

    msg *got[3][5] = {{NULL}};
    for (int s = 0; s < 3; s++) {
        CHECK(lb_count(&m[s]) == 5);
        CHECK(m[s].wakes == 5);
        CHECK(m[s].s.last_id == 5);
        CHECK(m[s].drops == 0);
        for (int i = 0; i < 5; i++) {
            got[s][i] = lb_pop(&m[s]);
            CHECK(got[s][i] && got[s][i]->id == (uint64_t)i + 1);
            CHECK(got[s][i] && envelope_is(got[s][i], (uint64_t)i + 1, "r", data[i]));
        }
        CHECK(lb_pop(&m[s]) == NULL);
    }
    /* One message shared by every member, not a copy each. */
    for (int i = 0; i < 5; i++)
        CHECK(got[0][i] == got[1][i] && got[1][i] == got[2][i]);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 5; i++)
            msg_unref(got[s][i]);
    CHECK(got_nothing(&other) && other.wakes == 0);

    for (int i = 0; i < 3; i++)
        fini(h, &m[i]);
    fini(h, &other);
    hub_destroy(h);
}

static void test_join_from_now(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    pub_n(h, "r", 3);
    loopback a;
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 1, true) == 0); /* since is ignored */
    CHECK(a.s.last_id == 3);
    CHECK(got_nothing(&a));
    CHECK(a.wakes == 0);
    pub_n(h, "r", 2);
    CHECK(a.s.last_id == 5);
    CHECK(got_range(&a, 4, 5));

    /* A room that does not exist yet: the cursor is 0. */
    loopback b;
    lb_init(&b, SUB_SSE, 100);
    CHECK(hub_join(h, "new", &b.s, 0, true) == 0);
    CHECK(b.s.last_id == 0);
    CHECK(pub(h, "new", "1") == 1);
    CHECK(got_range(&b, 1, 1));
    fini(h, &a);
    fini(h, &b);
    hub_destroy(h);
}

static void test_join_since(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    pub_n(h, "r", 5);

    loopback a, b, c, d;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_LONGPOLL, 100);
    lb_init(&c, SUB_WS, 100);
    lb_init(&d, SUB_WS, 2); /* a small queue: replay is bounded by history */
    CHECK(hub_join(h, "r", &a.s, 2, false) == 0);
    CHECK(a.s.last_id == 5);
    CHECK(lb_count(&a) == 3);
    CHECK(a.wakes >= 1);
    CHECK(hub_join(h, "r", &b.s, 0, false) == 0);
    CHECK(lb_count(&b) == 5);
    CHECK(hub_join(h, "r", &c.s, 5, false) == 0); /* at the last: nothing */
    CHECK(got_nothing(&c));
    CHECK(c.s.last_id == 5);
    CHECK(c.wakes == 0);
    CHECK(hub_join(h, "r", &d.s, 0, false) == 0);
    CHECK(lb_count(&d) == 5);
    CHECK(d.drops == 0 && !d.s.dropped);
    CHECK(got_range(&d, 1, 5));

    pub_n(h, "r", 2);
    CHECK(got_range(&a, 3, 7)); /* replay then live: no gap, no duplicate */
    CHECK(got_range(&b, 1, 7));
    CHECK(got_range(&c, 6, 7));
    CHECK(got_range(&d, 6, 7));
    CHECK(a.s.last_id == 7 && b.s.last_id == 7);

    /* since beyond the room's last id: only what comes next. */
    loopback e;
    lb_init(&e, SUB_SSE, 100);
    CHECK(hub_join(h, "r", &e.s, 100, false) == 0);
    CHECK(got_nothing(&e));
    CHECK(pub(h, "r", "8") == 8);
    CHECK(got_range(&e, 8, 8));
    CHECK(got_range(&a, 8, 8));

    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    fini(h, &d);
    fini(h, &e);
    hub_destroy(h);
}

static void test_join_since_evicted(void)
{
    hub *h = new_hub(3, 60000);
    if (!h)
        return;
    pub_n(h, "r", 10); /* keeps 8, 9, 10 */
    loopback a, b;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 0, false) == 0);
    CHECK(hub_join(h, "r", &b.s, 8, false) == 0);
    pub_n(h, "r", 1);
    CHECK(got_range(&a, 8, 11));
    CHECK(got_range(&b, 9, 11));
    fini(h, &a);
    fini(h, &b);
    hub_destroy(h);
}

static void test_join_twice(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    pub_n(h, "r", 2);
    loopback a;
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 0, false) == 0);
    CHECK(hub_join(h, "r", &a.s, 0, false) == -EEXIST);
    CHECK(hub_join(h, "r", &a.s, 0, true) == -EEXIST);
    CHECK(lb_count(&a) == 2); /* no second replay */
    room_info ri;
    CHECK(info(h, "r", &ri) == 0 && ri.subscribers[SUB_WS] == 1);
    pub_n(h, "r", 1);
    CHECK(got_range(&a, 1, 3)); /* each message once */
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.subscribers[SUB_WS] == 1);
    fini(h, &a);
    hub_destroy(h);
}

static void test_two_rooms(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback a;
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_join(h, "x", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "y", &a.s, 0, true) == 0);
    CHECK(pub(h, "x", "1") == 1);
    CHECK(pub(h, "y", "2") == 1);
    CHECK(pub(h, "x", "3") == 2);
    CHECK(pub(h, "z", "4") == 1); /* not a member */
    CHECK(lb_count(&a) == 3);
    struct {
        const char *room;
        uint64_t id;
        const char *data;
    } want[] = {{"x", 1, "1"}, {"y", 1, "2"}, {"x", 2, "3"}};
    for (size_t i = 0; i < 3; i++) {
        msg *m = lb_pop(&a);
        CHECK(m && envelope_is(m, want[i].id, want[i].room, want[i].data));
        msg_unref(m);
    }
    CHECK(got_nothing(&a));
    fini(h, &a);
    hub_destroy(h);
}

static void test_leave(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback a, b;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_WS, 100);
    hub_leave(h, &a.s); /* never joined: a no-op */
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "s", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    pub_n(h, "r", 1);
    hub_leave(h, &a.s);
    hub_leave(h, &a.s); /* idempotent */
    unsigned wakes = a.wakes;
    pub_n(h, "r", 1);
    pub_n(h, "s", 1);
    CHECK(got_range(&a, 1, 1)); /* what was queued before stays queued */
    CHECK(a.wakes == wakes);
    CHECK(got_range(&b, 1, 2));
    room_info ri;
    CHECK(info(h, "r", &ri) == 0 && ri.subscribers[SUB_WS] == 1);
    CHECK(info(h, "s", &ri) == 0 && ri.subscribers[SUB_WS] == 0);
    /* Joining again after leaving works. */
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    pub_n(h, "r", 1);
    CHECK(got_range(&a, 3, 3));
    fini(h, &a);
    fini(h, &b);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.subscribers[SUB_WS] == 0);
    hub_destroy(h);

    /* Without history a room lives only while it has members. */
    h = new_hub(0, 60000);
    if (!h)
        return;
    lb_init(&a, SUB_LONGPOLL, 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(pub(h, "r", "1") == 1);
    CHECK(info(h, "r", &ri) == 0 && ri.last_id == 1 && ri.subscribers[SUB_LONGPOLL] == 1);
    hub_leave(h, &a.s);
    CHECK(info(h, "r", &ri) == -ENOENT);
    hub_get_stats(h, &st);
    CHECK(st.rooms == 0);
    sub_fini(&a.s);
    hub_destroy(h);
}

static void test_room_info_kinds(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    room_info ri;
    CHECK(info(h, "r", &ri) == -ENOENT);
    loopback l[6];
    sub_kind kinds[6] = {SUB_WS, SUB_SSE, SUB_LONGPOLL, SUB_LONGPOLL, SUB_SSE, SUB_LONGPOLL};
    for (int i = 0; i < 6; i++) {
        lb_init(&l[i], kinds[i], 10);
        CHECK(hub_join(h, "r", &l[i].s, 0, i % 2 == 0) == 0);
    }
    CHECK(hub_join(h, "q", &l[0].s, 0, true) == 0);
    CHECK(info(h, "r", &ri) == 0);
    CHECK(ri.last_id == 0);
    CHECK(ri.subscribers[SUB_WS] == 1);
    CHECK(ri.subscribers[SUB_SSE] == 2);
    CHECK(ri.subscribers[SUB_LONGPOLL] == 3);
    CHECK(info(h, "q", &ri) == 0);
    CHECK(ri.subscribers[SUB_WS] == 1 && ri.subscribers[SUB_SSE] == 0 &&
          ri.subscribers[SUB_LONGPOLL] == 0);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.rooms == 2);
    CHECK(st.subscribers[SUB_WS] == 2); /* memberships: l[0] is in two rooms */
    CHECK(st.subscribers[SUB_SSE] == 2);
    CHECK(st.subscribers[SUB_LONGPOLL] == 3);
    pub_n(h, "r", 4);
    hub_leave(h, &l[3].s);
    CHECK(info(h, "r", &ri) == 0);
    CHECK(ri.last_id == 4);
    CHECK(ri.subscribers[SUB_LONGPOLL] == 2);
    CHECK(info(h, "nope", &ri) == -ENOENT);
    CHECK(info(h, "R", &ri) == -ENOENT); /* names are case-sensitive */
    for (int i = 0; i < 6; i++)
        fini(h, &l[i]);
    CHECK(info(h, "q", &ri) == -ENOENT); /* no members, no history */
    CHECK(info(h, "r", &ri) == 0);       /* history keeps it */
    CHECK(ri.subscribers[SUB_WS] == 0 && ri.subscribers[SUB_SSE] == 0 &&
          ri.subscribers[SUB_LONGPOLL] == 0);
    hub_destroy(h);
}

static void test_expire(void)
{
    const int64_t ttl = 5000;
    hub *h = new_hub(100, ttl);
    if (!h)
        return;
    pub_n(h, "lonely", 3);
    loopback a;
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_join(h, "busy", &a.s, 0, true) == 0);
    pub_n(h, "busy", 2);
    room_info ri;
    CHECK(info(h, "lonely", &ri) == 0);
    CHECK(ri.last_id == 3);
    CHECK(ri.subscribers[SUB_WS] == 0);

    hub_expire(h, hub_now_ms()); /* nothing is old enough */
    CHECK(info(h, "lonely", &ri) == 0 && ri.last_id == 3);
    /* A member that joins now still gets the kept history. */
    loopback b;
    lb_init(&b, SUB_WS, 100);
    CHECK(hub_join(h, "lonely", &b.s, 0, false) == 0);
    CHECK(got_range(&b, 1, 3));
    fini(h, &b);
    CHECK(info(h, "lonely", &ri) == 0);

    hub_expire(h, hub_now_ms() + ttl + 1);
    CHECK(info(h, "lonely", &ri) == -ENOENT);
    CHECK(info(h, "busy", &ri) == 0); /* a member keeps it */
    CHECK(ri.last_id == 2 && ri.subscribers[SUB_WS] == 1);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.rooms == 1);

    /* Its history is gone: a joiner asking for everything gets nothing. */
    lb_init(&b, SUB_WS, 100);
    CHECK(hub_join(h, "busy", &b.s, 0, false) == 0);
    CHECK(got_nothing(&b));
    pub_n(h, "busy", 1);
    CHECK(got_range(&b, 3, 3));
    fini(h, &b);

    fini(h, &a);
    CHECK(info(h, "busy", &ri) == 0); /* message 3 is still kept */
    hub_expire(h, hub_now_ms() + ttl + 1);
    CHECK(info(h, "busy", &ri) == -ENOENT);
    hub_get_stats(h, &st);
    CHECK(st.rooms == 0);
    hub_destroy(h);
}

static void test_send_queue_bound(void)
{
    const size_t limit = 4;
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback slow, fast, poll;
    lb_init(&slow, SUB_SSE, limit);
    lb_init(&fast, SUB_WS, 1000);
    lb_init(&poll, SUB_LONGPOLL, 1000);
    CHECK(hub_join(h, "r", &slow.s, 0, true) == 0);
    CHECK(hub_join(h, "other", &slow.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &fast.s, 0, true) == 0);
    CHECK(hub_join(h, "other", &poll.s, 0, true) == 0);

    pub_n(h, "r", (int)limit);
    CHECK(lb_count(&slow) == limit);
    CHECK(slow.drops == 0 && !slow.s.dropped);
    CHECK(slow.wakes == limit);
    msg *first = NULL;
    pthread_mutex_lock(&slow.s.lock);
    first = msg_ref(sendq_peek(&slow.s.q));
    pthread_mutex_unlock(&slow.s.lock);
    CHECK(first->id == 1);
    unsigned refs_before = atomic_load(&first->refs); /* test, history, slow, fast */
    CHECK(refs_before == 4);

    pub_n(h, "r", 1); /* limit + 1: slow is dropped */
    CHECK(slow.drops == 1);
    CHECK_STR(slow.why, "send queue full");
    CHECK(slow.s.dropped);
    CHECK(lb_count(&slow) == 0);
    CHECK(sendq_is_empty(&slow.s.q));
    CHECK(atomic_load(&first->refs) == refs_before - 1); /* its queue's refs are gone */
    msg_unref(first);
    CHECK(slow.wakes == limit);

    room_info ri;
    CHECK(info(h, "r", &ri) == 0);
    CHECK(ri.subscribers[SUB_SSE] == 0 && ri.subscribers[SUB_WS] == 1);
    CHECK(info(h, "other", &ri) == 0); /* dropped from every room */
    CHECK(ri.subscribers[SUB_SSE] == 0 && ri.subscribers[SUB_LONGPOLL] == 1);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.dropped == 1);
    CHECK(st.subscribers[SUB_SSE] == 0);

    /* Later messages reach the others, never the dropped one. */
    pub_n(h, "r", 3);
    pub_n(h, "other", 2);
    CHECK(slow.drops == 1);
    CHECK(lb_count(&slow) == 0);
    CHECK(got_range(&fast, 1, limit + 4));
    CHECK(got_range(&poll, 1, 2));
    hub_get_stats(h, &st);
    CHECK(st.dropped == 1);

    fini(h, &slow); /* leaving after a drop is harmless */
    fini(h, &fast);
    fini(h, &poll);
    hub_destroy(h);
}

static void test_drop_with_limit_one(void)
{
    hub *h = new_hub(0, 0);
    if (!h)
        return;
    loopback a, b;
    lb_init(&a, SUB_WS, 1);
    lb_init(&b, SUB_WS, 1);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    pub_n(h, "r", 1);
    CHECK(lb_pop_id(&b) == 1); /* b keeps up, a does not */
    pub_n(h, "r", 1);
    CHECK(a.drops == 1 && a.s.dropped);
    CHECK(b.drops == 0 && lb_pop_id(&b) == 2);
    pub_n(h, "r", 1);
    CHECK(lb_pop_id(&b) == 3);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.dropped == 1);
    CHECK(st.published == 3);
    CHECK(st.delivered == 4); /* a: 1; b: 1, 2, 3 */
    /* Both dropped in one publish: the room empties mid-fanout. */
    loopback c;
    lb_init(&c, SUB_WS, 1);
    CHECK(hub_join(h, "r", &c.s, 0, true) == 0);
    pub_n(h, "r", 2);
    CHECK(b.drops == 1 && c.drops == 1);
    room_info ri;
    CHECK(info(h, "r", &ri) == -ENOENT); /* no members, no history */
    hub_get_stats(h, &st);
    CHECK(st.dropped == 3);
    CHECK(st.rooms == 0);
    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    hub_destroy(h);
}

static void test_stats(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    hub_stats st;
    memset(&st, 0xEE, sizeof(st));
    hub_get_stats(h, &st);
    CHECK(st.rooms == 0 && st.published == 0 && st.delivered == 0 && st.dropped == 0);
    CHECK(st.subscribers[SUB_WS] == 0 && st.subscribers[SUB_SSE] == 0 &&
          st.subscribers[SUB_LONGPOLL] == 0);
    loopback a, b, c;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_SSE, 100);
    lb_init(&c, SUB_LONGPOLL, 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    CHECK(hub_join(h, "s", &c.s, 0, true) == 0);
    pub_n(h, "r", 3); /* 2 members each */
    pub_n(h, "s", 2); /* 1 member */
    pub_n(h, "t", 4); /* nobody */
    hub_get_stats(h, &st);
    CHECK(st.rooms == 3);
    CHECK(st.published == 9);
    CHECK(st.delivered == 3 * 2 + 2);
    CHECK(st.dropped == 0);
    CHECK(st.subscribers[SUB_WS] == 1 && st.subscribers[SUB_SSE] == 1 &&
          st.subscribers[SUB_LONGPOLL] == 1);
    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    hub_get_stats(h, &st);
    CHECK(st.subscribers[SUB_WS] == 0 && st.subscribers[SUB_SSE] == 0 &&
          st.subscribers[SUB_LONGPOLL] == 0);
    CHECK(st.published == 9);
    hub_destroy(h);
}

static void test_encodings(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback ws, sse;
    lb_init(&ws, SUB_WS, 100);
    lb_init(&sse, SUB_SSE, 100);

    /* Only JSON members: no SSE bytes are made. */
    CHECK(hub_join(h, "j", &ws.s, 0, true) == 0);
    CHECK(pub(h, "j", "{\"a\":\n1}") == 1);
    CHECK(pub(h, "j", "[1,\r\n2]") == 2);
    msg *m = lb_pop(&ws);
    CHECK(m && m->id == 1 && msg_get(m, MSG_FMT_SSE).base == NULL);
    CHECK(m && envelope_is(m, 1, "j", "{\"a\":\n1}"));
    msg_unref(m);

    /* A late SSE member gets the replayed history SSE-encoded, then live. */
    CHECK(hub_join(h, "j", &sse.s, 0, false) == 0);
    CHECK(pub(h, "j", "\"three\"") == 3);
    for (uint64_t id = 1; id <= 3; id++) {
        m = lb_pop(&sse);
        CHECK(m && m->id == id && sse_ok(m));
        msg_unref(m);
    }
    CHECK(got_nothing(&sse));
    /* The WS member sees the same messages; its bytes are untouched. */
    m = lb_pop(&ws);
    CHECK(m && m->id == 2 && envelope_is(m, 2, "j", "[1,\r\n2]"));
    CHECK(m && sse_ok(m)); /* encoded for the SSE member during replay */
    msg_unref(m);
    m = lb_pop(&ws);
    CHECK(m && m->id == 3 && envelope_is(m, 3, "j", "\"three\"") && sse_ok(m));
    msg_unref(m);

    /* A room with an SSE member: every queued message has SSE bytes. */
    CHECK(hub_join(h, "s", &sse.s, 0, true) == 0);
    CHECK(pub(h, "s", "{\"x\":\"y\"}") == 1);
    m = lb_pop(&sse);
    CHECK(m && m->id == 1 && sse_ok(m));
    msg_bytes b = m ? msg_get(m, MSG_FMT_SSE) : (msg_bytes){0};
    CHECK(b.base && b.len == strlen("id: 1\ndata: {\"x\":\"y\"}\n\n") &&
          memcmp(b.base, "id: 1\ndata: {\"x\":\"y\"}\n\n", b.len) == 0);
    msg_unref(m);

    /* Once the SSE member left, SSE bytes are no longer made for "j". */
    fini(h, &sse);
    CHECK(pub(h, "j", "4") == 4);
    m = lb_pop(&ws);
    CHECK(m && m->id == 4 && msg_get(m, MSG_FMT_SSE).base == NULL);
    msg_unref(m);
    fini(h, &ws);
    hub_destroy(h);
}

static void test_many_rooms_and_destroy(void)
{
    hub *h = new_hub(10, 60000);
    if (!h)
        return;
    enum { NROOMS = 300 };
    loopback a;
    lb_init(&a, SUB_SSE, 100000);
    char name[32];
    for (int i = 0; i < NROOMS; i++) {
        snprintf(name, sizeof(name), "room:%d", i);
        if (i % 3 == 0)
            CHECK(hub_join(h, name, &a.s, 0, true) == 0);
        for (int k = 0; k <= i % 4; k++)
            CHECK(pub(h, name, "{}") == (uint64_t)k + 1);
    }
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.rooms == NROOMS);
    CHECK(st.subscribers[SUB_SSE] == NROOMS / 3);
    bool ok = true;
    for (int i = 0; i < NROOMS; i++) {
        snprintf(name, sizeof(name), "room:%d", i);
        room_info ri;
        ok &= info(h, name, &ri) == 0 && ri.last_id == (uint64_t)(i % 4) + 1 &&
              ri.subscribers[SUB_SSE] == (unsigned)(i % 3 == 0);
    }
    CHECK(ok);
    size_t want = 0;
    for (int i = 0; i < NROOMS; i += 3)
        want += (size_t)(i % 4) + 1;
    CHECK(lb_count(&a) == want);
    /* Leave with messages still queued; sub_fini drops them, hub_destroy
     * frees every room and its history (ASan's leak check). */
    fini(h, &a);
    hub_get_stats(h, &st);
    CHECK(st.rooms == NROOMS); /* history keeps them all */
    hub_destroy(h);
    hub_destroy(NULL);
}

TEST_MAIN("hub", TEST(test_room_names), TEST(test_ids_per_room), TEST(test_fanout),
          TEST(test_join_from_now), TEST(test_join_since), TEST(test_join_since_evicted),
          TEST(test_join_twice), TEST(test_two_rooms), TEST(test_leave), TEST(test_room_info_kinds),
          TEST(test_expire), TEST(test_send_queue_bound), TEST(test_drop_with_limit_one),
          TEST(test_stats), TEST(test_encodings), TEST(test_many_rooms_and_destroy))
