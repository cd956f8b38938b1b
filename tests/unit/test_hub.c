/* SPDX-License-Identifier: MIT */
/*
 * test_hub.c - unit tests for hub/hub.c through loopback members: room names,
 * ids, fanout, join (from_now / since), leave, room_info, expiry, the send
 * queue bound, stats, per-format encodings, SignalR targets and records
 * (publish_opts, hub_send), hub_leave_room, sub_end and sub_attach; room
 * epochs, hub_resume and its gap signals, hub_parse_cursor.
 */
#include "common/clock.h"
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
    int rc = hub_publish(h, room, data, strlen(data), NULL, &id);
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

/* True for an epoch as the hub makes them: 8 of A-Z a-z 0-9. */
static bool epoch_is_8(const char *e)
{
    return strlen(e) == 8 && hub_epoch_is_valid(e);
}

/* The epoch of an existing room, copied into out (MSG_EPOCH_MAX bytes);
 * "" when the room does not exist. */
static const char *epoch_of(hub *h, const char *room, char *out)
{
    room_info ri;
    out[0] = '\0';
    if (hub_room_info(h, room, &ri) == 0)
        memcpy(out, ri.epoch, MSG_EPOCH_MAX);
    return out;
}

/* The JSON envelope of m is {"id":id,"epoch":"E","room":"room","data":data}
 * with E the room's epoch in h, which m carries too. */
static bool envelope_is(hub *h, const msg *m, uint64_t id, const char *room, const char *data)
{
    char want[512], epoch[MSG_EPOCH_MAX];
    epoch_of(h, room, epoch);
    if (!epoch_is_8(epoch) || strcmp(m->epoch, epoch))
        return false;
    int n =
        snprintf(want, sizeof(want), "{\"id\":%llu,\"epoch\":\"%s\",\"room\":\"%s\",\"data\":%s}",
                 (unsigned long long)id, epoch, room, data);
    msg_bytes b = msg_get(m, MSG_FMT_JSON, NULL);
    bool ok = n > 0 && b.len == (size_t)n && memcmp(b.base, want, b.len) == 0;
    if (!ok)
        fprintf(stderr, "  envelope \"%.*s\"\n  want     \"%s\"\n", (int)b.len,
                b.base ? b.base : "", want);
    return ok;
}

/* m carries SSE bytes, and they are the SSE form of its data, with the id
 * line "id: EPOCH:N" (m's epoch, 8 characters). */
static bool sse_ok(const msg *m)
{
    msg_bytes s = msg_get(m, MSG_FMT_SSE, NULL);
    msg_bytes d = msg_data(m);
    if (!s.base || !epoch_is_8(m->epoch))
        return false;
    char plain[512], want[512 + MSG_EPOCH_MAX];
    size_t need = msg_format_sse(plain, sizeof(plain), m->id, d.base, d.len);
    if (need > sizeof(plain))
        return false;
    /* "id: N\n..." -> "id: EPOCH:N\n..." */
    int n = snprintf(want, sizeof(want), "id: %s:%.*s", m->epoch, (int)(need - 4), plain + 4);
    return n > 0 && s.len == (size_t)n && memcmp(s.base, want, s.len) == 0;
}

/* The expected text of a room message's SignalR invocation record: head
 * (the record up to its closing brace), the crier-* headers of message id
 * in room (with the room's epoch in h), then tail. In one of a few static
 * buffers, so that a few can be used at once. */
static const char *room_rec(hub *h, const char *room, uint64_t id, const char *head,
                            const char *tail)
{
    static char bufs[4][512];
    static unsigned next;
    char *b = bufs[next++ % 4];
    char epoch[MSG_EPOCH_MAX];
    snprintf(
        b, sizeof(bufs[0]),
        "%s,\"headers\":{\"crier-id\":\"%llu\",\"crier-epoch\":\"%s\",\"crier-room\":\"%s\"}%s",
        head, (unsigned long long)id, epoch_of(h, room, epoch), room, tail);
    return b;
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
            CHECK(got[s][i] && envelope_is(h, got[s][i], (uint64_t)i + 1, "r", data[i]));
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
        CHECK(m && envelope_is(h, m, want[i].id, want[i].room, want[i].data));
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

    hub_expire(h, clock_now_ms()); /* nothing is old enough */
    CHECK(info(h, "lonely", &ri) == 0 && ri.last_id == 3);
    /* A member that joins now still gets the kept history. */
    loopback b;
    lb_init(&b, SUB_WS, 100);
    CHECK(hub_join(h, "lonely", &b.s, 0, false) == 0);
    CHECK(got_range(&b, 1, 3));
    fini(h, &b);
    CHECK(info(h, "lonely", &ri) == 0);

    hub_expire(h, clock_now_ms() + ttl + 1);
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
    hub_expire(h, clock_now_ms() + ttl + 1);
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
    CHECK(slow.s.dropped);
    CHECK(slow.wakes == limit + 1);  /* woken once more, to see the drop */
    CHECK(slow.drops == 1);          /* that wake found dropped set */
    CHECK(slow.queued_at_wake == 0); /* and the queue already emptied */
    CHECK(slow.bad_lock == 0);
    CHECK(lb_count(&slow) == 0);
    CHECK(sendq_is_empty(&slow.s.q));
    CHECK(atomic_load(&first->refs) == refs_before - 1); /* its queue's refs are gone */
    msg_unref(first);

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
    CHECK(slow.wakes == limit + 1);
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
    CHECK(a.s.dropped && a.drops == 1 && a.wakes == 2); /* a wake after the drop */
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
    CHECK(b.s.dropped && c.s.dropped && b.drops == 1 && c.drops == 1);
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
    CHECK(m && m->id == 1 && msg_get(m, MSG_FMT_SSE, NULL).base == NULL);
    CHECK(m && envelope_is(h, m, 1, "j", "{\"a\":\n1}"));
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
    CHECK(m && m->id == 2 && envelope_is(h, m, 2, "j", "[1,\r\n2]"));
    CHECK(m && sse_ok(m)); /* encoded for the SSE member during replay */
    msg_unref(m);
    m = lb_pop(&ws);
    CHECK(m && m->id == 3 && envelope_is(h, m, 3, "j", "\"three\"") && sse_ok(m));
    msg_unref(m);

    /* A room with an SSE member: every queued message has SSE bytes. */
    CHECK(hub_join(h, "s", &sse.s, 0, true) == 0);
    CHECK(pub(h, "s", "{\"x\":\"y\"}") == 1);
    m = lb_pop(&sse);
    CHECK(m && m->id == 1 && sse_ok(m));
    msg_bytes b = m ? msg_get(m, MSG_FMT_SSE, NULL) : (msg_bytes){0};
    char want[64], epoch[MSG_EPOCH_MAX];
    snprintf(want, sizeof(want), "id: %s:1\ndata: {\"x\":\"y\"}\n\n", epoch_of(h, "s", epoch));
    CHECK(epoch_is_8(epoch));
    CHECK(b.base && b.len == strlen(want) && memcmp(b.base, want, b.len) == 0);
    msg_unref(m);

    /* Once the SSE member left, SSE bytes are no longer made for "j". */
    fini(h, &sse);
    CHECK(pub(h, "j", "4") == 4);
    m = lb_pop(&ws);
    CHECK(m && m->id == 4 && msg_get(m, MSG_FMT_SSE, NULL).base == NULL);
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

/* ----------------------------------------------------- SignalR and the rest */

/* Publishes data to room with opt; returns the id, 0 on failure. */
static uint64_t pub_opt(hub *h, const char *room, const char *data, const char *target,
                        const sub *exclude)
{
    publish_opts opt = {.target = target, .exclude = exclude};
    uint64_t id = 0;
    int rc = hub_publish(h, room, data, strlen(data), &opt, &id);
    CHECK(rc == 0);
    return rc ? 0 : id;
}

/* b holds exactly the bytes of want. */
static bool bytes_are(msg_bytes b, const char *want)
{
    size_t n = strlen(want);
    bool ok = b.base && b.len == n && memcmp(b.base, want, n) == 0;
    if (!ok)
        fprintf(stderr, "  got  \"%.*s\" (%zu)\n  want \"%s\" (%zu)\n", b.base ? (int)b.len : 6,
                b.base ? b.base : "(null)", b.len, want, n);
    return ok;
}

static void test_publish_exclude(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback a, b, c, other;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_SSE, 1);
    lb_init(&c, SUB_LONGPOLL, 100);
    lb_init(&other, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &c.s, 0, true) == 0);
    CHECK(hub_join(h, "elsewhere", &other.s, 0, true) == 0);

    /* The excluded member gets nothing and is not woken. */
    CHECK(pub_opt(h, "r", "1", NULL, &b.s) == 1);
    CHECK(got_range(&a, 1, 1));
    CHECK(got_range(&c, 1, 1));
    CHECK(got_nothing(&b) && b.wakes == 0 && b.s.last_id == 0);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.published == 1 && st.delivered == 2);

    /* No exclude, or one that is not a member: everyone. b's queue (limit
     * 1) is then full, and being excluded does not drop it. */
    CHECK(pub_opt(h, "r", "2", NULL, NULL) == 2);
    CHECK(pub_opt(h, "r", "3", NULL, &b.s) == 3);
    CHECK(!b.s.dropped && b.drops == 0 && lb_count(&b) == 1);
    CHECK(lb_pop_id(&b) == 2);
    CHECK(pub_opt(h, "r", "4", NULL, &other.s) == 4);
    CHECK(got_range(&a, 2, 4));
    CHECK(got_range(&c, 2, 4));
    CHECK(got_range(&b, 4, 4));
    CHECK(got_nothing(&other));
    /* Excluded from one publish only; history keeps what it missed. */
    loopback late;
    lb_init(&late, SUB_WS, 100);
    CHECK(hub_join(h, "r", &late.s, 0, false) == 0);
    CHECK(got_range(&late, 1, 4));
    hub_get_stats(h, &st);
    CHECK(st.dropped == 0);
    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    fini(h, &other);
    fini(h, &late);
    hub_destroy(h);
}

static void test_publish_target(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback sr, srs, js, ss;
    lb_init_fmt(&sr, SUB_WS, SR_FMT_RECORD, "Default", 100);
    lb_init_fmt(&srs, SUB_SSE, SR_FMT_SSE, "Default", 100);
    lb_init(&js, SUB_WS, 100);
    lb_init(&ss, SUB_SSE, 100);
    loopback *all[] = {&sr, &srs, &js, &ss};
    for (int i = 0; i < 4; i++)
        CHECK(hub_join(h, "r", &all[i]->s, 0, true) == 0);

    char target[] = "Notify"; /* the hub copies it */
    CHECK(pub_opt(h, "r", "[1,\"two\"]", target, NULL) == 1);
    target[0] = 'X';
    msg *got[4];
    for (int i = 0; i < 4; i++) {
        got[i] = lb_pop(all[i]);
        CHECK(got[i] && got[i]->id == 1);
        CHECK(got[i] == got[0]); /* one message shared */
    }
    msg *m = got[0];
    if (m) {
        CHECK_STR(m->target, "Notify");
        CHECK(bytes_are(lb_bytes(&sr, m),
                        room_rec(h, "r", 1,
                                 "{\"type\":1,\"target\":\"Notify\",\"arguments\":[1,\"two\"]",
                                 "}\x1e")));
        CHECK(bytes_are(
            lb_bytes(&srs, m),
            room_rec(h, "r", 1, "data: {\"type\":1,\"target\":\"Notify\",\"arguments\":[1,\"two\"]",
                     "}\x1e\r\n\r\n")));
        /* Other formats carry the data as before. */
        CHECK(envelope_is(h, m, 1, "r", "[1,\"two\"]"));
        CHECK(lb_bytes(&js, m).base == msg_get(m, MSG_FMT_JSON, NULL).base);
        CHECK(sse_ok(m));
    }
    for (int i = 0; i < 4; i++)
        msg_unref(got[i]);

    /* A non-array payload with a target is its one argument. */
    CHECK(pub_opt(h, "r", "{\"k\":\"v\"}", "Other_1", NULL) == 2);
    m = lb_pop(&sr);
    CHECK(m &&
          bytes_are(lb_bytes(&sr, m), room_rec(h, "r", 2,
                                               "{\"type\":1,\"target\":\"Other_1\",\"arguments\":[{"
                                               "\"k\":\"v\"}]",
                                               "}\x1e")));
    msg_unref(m);
    m = lb_pop(&srs);
    CHECK(m && bytes_are(lb_bytes(&srs, m), room_rec(h, "r", 2,
                                                     "data: {\"type\":1,\"target\":\"Other_1\","
                                                     "\"arguments\":[{\"k\":\"v\"}]",
                                                     "}\x1e\r\n\r\n")));
    msg_unref(m);
    CHECK(got_range(&js, 2, 2));
    CHECK(got_range(&ss, 2, 2));
    for (int i = 0; i < 4; i++)
        fini(h, all[i]);
    hub_destroy(h);
}

static void test_signalr_default_target(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback a, b, c;
    lb_init_fmt(&a, SUB_WS, SR_FMT_RECORD, "Default", 100);
    lb_init_fmt(&b, SUB_LONGPOLL, SR_FMT_RECORD, "Other", 100);
    lb_init_fmt(&c, SUB_SSE, SR_FMT_SSE, "Default", 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &c.s, 0, true) == 0);

    /* No target given: each member's default. */
    CHECK(pub(h, "r", "{\"x\":1}") == 1);
    CHECK(pub_opt(h, "r", "[true]", NULL, NULL) == 2);
    msg *ma = lb_pop(&a), *mb = lb_pop(&b), *mc = lb_pop(&c);
    CHECK(ma && ma == mb && mb == mc && ma->id == 1 && ma->target == NULL);
    msg_bytes ba = {0}, bb = {0};
    if (ma && mb && mc) {
        ba = lb_bytes(&a, ma);
        bb = lb_bytes(&b, mb);
        CHECK(bytes_are(ba, room_rec(h, "r", 1,
                                     "{\"type\":1,\"target\":\"Default\",\"arguments\":[{\"x\":1}]",
                                     "}\x1e")));
        CHECK(bytes_are(bb, room_rec(h, "r", 1,
                                     "{\"type\":1,\"target\":\"Other\",\"arguments\":[{\"x\":1}]",
                                     "}\x1e")));
        CHECK(bytes_are(lb_bytes(&c, mc), room_rec(h, "r", 1,
                                                   "data: {\"type\":1,\"target\":\"Default\","
                                                   "\"arguments\":[{\"x\":1}]",
                                                   "}\x1e\r\n\r\n")));
    }
    msg *m2 = lb_pop(&a);
    CHECK(m2 && m2->id == 2 &&
          bytes_are(lb_bytes(&a, m2),
                    room_rec(h, "r", 2, "{\"type\":1,\"target\":\"Default\",\"arguments\":[true]",
                             "}\x1e")));
    msg_unref(m2);
    CHECK(got_range(&b, 2, 2));
    CHECK(got_range(&c, 2, 2));

    /* A late member with another default gets the replay in its own target;
     * the encodings made before stay where they were. */
    loopback d;
    lb_init_fmt(&d, SUB_WS, SR_FMT_RECORD, "Late", 100);
    CHECK(hub_join(h, "r", &d.s, 0, false) == 0);
    msg *md = lb_pop(&d);
    CHECK(md && md == ma);
    CHECK(md &&
          bytes_are(lb_bytes(&d, md),
                    room_rec(h, "r", 1, "{\"type\":1,\"target\":\"Late\",\"arguments\":[{\"x\":1}]",
                             "}\x1e")));
    msg_unref(md);
    CHECK(got_range(&d, 2, 2));
    if (ma && mb) {
        CHECK(lb_bytes(&a, ma).base == ba.base);
        CHECK(lb_bytes(&b, mb).base == bb.base);
        CHECK(bytes_are(ba, room_rec(h, "r", 1,
                                     "{\"type\":1,\"target\":\"Default\",\"arguments\":[{\"x\":1}]",
                                     "}\x1e")));
        CHECK(bytes_are(bb, room_rec(h, "r", 1,
                                     "{\"type\":1,\"target\":\"Other\",\"arguments\":[{\"x\":1}]",
                                     "}\x1e")));
    }
    msg_unref(ma);
    msg_unref(mb);
    msg_unref(mc);
    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    fini(h, &d);
    hub_destroy(h);
}

static void test_hub_send(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback a, b, alone;
    lb_init_fmt(&a, SUB_WS, SR_FMT_RECORD, "Default", 100);
    lb_init_fmt(&b, SUB_WS, SR_FMT_RECORD, "Default", 100);
    lb_init_fmt(&alone, SUB_LONGPOLL, SR_FMT_SSE, "Default", 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    pub_n(h, "r", 2);

    const char *c1 = "{\"type\":3,\"invocationId\":\"1\",\"result\":null}";
    msg *rec = sr_record_create(c1, strlen(c1));
    CHECK(rec != NULL);
    if (!rec) {
        fini(h, &a);
        fini(h, &b);
        sub_fini(&alone.s);
        hub_destroy(h);
        return;
    }
    unsigned wakes = a.wakes;
    CHECK(hub_send(h, &a.s, rec) == 0);
    CHECK(a.wakes == wakes + 1);
    CHECK(atomic_load(&rec->refs) == 2); /* the test's and a's queue's */
    CHECK(lb_count(&a) == 3);
    CHECK(lb_count(&b) == 2); /* to a alone */
    CHECK(a.s.last_id == 2);  /* a record moves no cursor */

    /* After the room messages already queued, in order; then live ones. */
    const char *c2 = "{\"type\":6}";
    msg *ping = sr_record_create(c2, strlen(c2));
    CHECK(ping && hub_send(h, &a.s, ping) == 0);
    CHECK(pub(h, "r", "3") == 3);
    msg *m;
    for (uint64_t id = 1; id <= 2; id++) {
        m = lb_pop(&a);
        CHECK(m && m->id == id && !m->direct);
        msg_unref(m);
    }
    m = lb_pop(&a);
    CHECK(m == rec);
    CHECK(m &&
          bytes_are(lb_bytes(&a, m), "{\"type\":3,\"invocationId\":\"1\",\"result\":null}\x1e"));
    msg_unref(m);
    m = lb_pop(&a);
    CHECK(ping && m == ping);
    CHECK(m && bytes_are(lb_bytes(&a, m), "{\"type\":6}\x1e"));
    msg_unref(m);
    m = lb_pop(&a);
    CHECK(m && m->id == 3 &&
          bytes_are(lb_bytes(&a, m),
                    room_rec(h, "r", 3, "{\"type\":1,\"target\":\"Default\",\"arguments\":[3]",
                             "}\x1e")));
    msg_unref(m);
    CHECK(got_nothing(&a));
    CHECK(got_range(&b, 1, 3));
    CHECK(atomic_load(&rec->refs) == 1);

    /* A sub in no room can be sent to; its format picks the bytes. */
    CHECK(hub_send(h, &alone.s, rec) == 0);
    CHECK(alone.wakes == 1 && lb_count(&alone) == 1);
    m = lb_pop(&alone);
    CHECK(m == rec);
    CHECK(m && bytes_are(lb_bytes(&alone, m),
                         "data: {\"type\":3,\"invocationId\":\"1\",\"result\":null}\x1e\r\n\r\n"));
    msg_unref(m);
    /* Queued and never drained: sub_fini drops the ref (ASan). */
    CHECK(hub_send(h, &alone.s, rec) == 0);
    msg_unref(rec);
    msg_unref(ping);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.published == 3 && st.dropped == 0);
    fini(h, &a);
    fini(h, &b);
    fini(h, &alone);
    hub_destroy(h);
}

static void test_hub_send_overflow(void)
{
    hub *h = new_hub(0, 0);
    if (!h)
        return;
    loopback a, b;
    lb_init_fmt(&a, SUB_WS, SR_FMT_RECORD, "Default", 3);
    lb_init(&b, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "s", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    pub_n(h, "r", 2);
    const char *c = "{\"type\":6}";
    msg *rec = sr_record_create(c, strlen(c));
    CHECK(rec != NULL);
    if (!rec) {
        fini(h, &a);
        fini(h, &b);
        hub_destroy(h);
        return;
    }
    CHECK(hub_send(h, &a.s, rec) == 0); /* the third: at the limit */
    CHECK(lb_count(&a) == 3 && !a.s.dropped);
    CHECK(a.wakes == 3);

    /* One past the limit: dropped, emptied, woken, unlinked everywhere. */
    CHECK(hub_send(h, &a.s, rec) == -ENOBUFS);
    CHECK(a.s.dropped);
    CHECK(a.wakes == 4 && a.drops == 1 && a.queued_at_wake == 0 && a.bad_lock == 0);
    CHECK(lb_count(&a) == 0);
    CHECK(atomic_load(&rec->refs) == 1); /* the queue's refs are gone */
    CHECK(a.s.memberships == NULL);
    room_info ri;
    CHECK(info(h, "r", &ri) == 0 && ri.subscribers[SUB_WS] == 1); /* b only */
    CHECK(info(h, "s", &ri) == -ENOENT); /* no members, no history: freed */
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.dropped == 1);
    CHECK(st.subscribers[SUB_WS] == 1);
    CHECK(st.rooms == 1);

    /* Nothing reaches it after: neither room messages nor records. */
    pub_n(h, "r", 1);
    CHECK(got_range(&b, 1, 3));
    hub_send(h, &a.s, rec);
    CHECK(lb_count(&a) == 0 && a.wakes == 4);
    CHECK(atomic_load(&rec->refs) == 1);
    hub_get_stats(h, &st);
    CHECK(st.dropped == 1);

    /* A dropped sub without a wake hook is dropped all the same. */
    loopback q;
    lb_init_fmt(&q, SUB_WS, SR_FMT_RECORD, "Default", 1);
    pthread_mutex_lock(&q.s.lock);
    sub_attach(&q.s, NULL, NULL);
    pthread_mutex_unlock(&q.s.lock);
    CHECK(hub_join(h, "r", &q.s, 0, true) == 0);
    CHECK(hub_send(h, &q.s, rec) == 0);
    CHECK(hub_send(h, &q.s, rec) == -ENOBUFS);
    CHECK(q.s.dropped && lb_count(&q) == 0 && q.wakes == 0);
    CHECK(info(h, "r", &ri) == 0 && ri.subscribers[SUB_WS] == 1);
    CHECK(atomic_load(&rec->refs) == 1);
    msg_unref(rec);
    fini(h, &a);
    fini(h, &b);
    fini(h, &q);
    hub_destroy(h);
}

static void test_leave_room(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback a, b;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_SSE, 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "s", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "t", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "s", &b.s, 0, true) == 0);
    pub_n(h, "s", 1);

    hub_leave_room(h, "s", &a.s); /* the middle of a's memberships */
    hub_leave_room(h, "s", &a.s); /* again: a no-op */
    hub_leave_room(h, "nope", &a.s);
    unsigned wakes = a.wakes;
    CHECK(pub(h, "r", "1") == 1);
    CHECK(pub(h, "s", "2") == 2);
    CHECK(pub(h, "t", "3") == 1);
    CHECK(a.wakes == wakes + 2);
    CHECK(lb_count(&a) == 3); /* s:1 (queued before), r:1, t:1 */
    msg *m = lb_pop(&a);
    CHECK(m && envelope_is(h, m, 1, "s", "[\"m\"]"));
    msg_unref(m);
    m = lb_pop(&a);
    CHECK(m && envelope_is(h, m, 1, "r", "1"));
    msg_unref(m);
    m = lb_pop(&a);
    CHECK(m && envelope_is(h, m, 1, "t", "3"));
    msg_unref(m);
    CHECK(got_range(&b, 1, 2)); /* the others stay */

    room_info ri;
    CHECK(info(h, "s", &ri) == 0 && ri.subscribers[SUB_WS] == 0 && ri.subscribers[SUB_SSE] == 1);
    CHECK(info(h, "r", &ri) == 0 && ri.subscribers[SUB_WS] == 1);
    CHECK(info(h, "t", &ri) == 0 && ri.subscribers[SUB_WS] == 1);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.subscribers[SUB_WS] == 2 && st.subscribers[SUB_SSE] == 1);

    /* Joining it again works, and is not a duplicate. */
    CHECK(hub_join(h, "s", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "s", &a.s, 0, true) == -EEXIST);
    /* The first and the last of a's memberships. */
    hub_leave_room(h, "r", &a.s);
    hub_leave_room(h, "s", &a.s);
    CHECK(pub(h, "r", "4") == 2);
    CHECK(pub(h, "s", "5") == 3);
    CHECK(pub(h, "t", "6") == 2);
    m = lb_pop(&a);
    CHECK(m && envelope_is(h, m, 2, "t", "6"));
    msg_unref(m);
    CHECK(got_nothing(&a));
    CHECK(got_range(&b, 3, 3));
    /* A member of none, by name: a no-op. */
    hub_leave_room(h, "s", &b.s);
    hub_leave_room(h, "s", &b.s);
    CHECK(b.s.memberships == NULL);
    hub_leave_room(h, "t", &a.s);
    CHECK(a.s.memberships == NULL);
    hub_get_stats(h, &st);
    CHECK(st.subscribers[SUB_WS] == 0 && st.subscribers[SUB_SSE] == 0);
    fini(h, &a);
    fini(h, &b);
    hub_destroy(h);

    /* Without history, the room goes with its last member. */
    h = new_hub(0, 60000);
    if (!h)
        return;
    lb_init(&a, SUB_LONGPOLL, 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(hub_join(h, "keep", &a.s, 0, true) == 0);
    CHECK(pub(h, "r", "1") == 1);
    hub_leave_room(h, "r", &a.s);
    CHECK(info(h, "r", &ri) == -ENOENT);
    CHECK(info(h, "keep", &ri) == 0 && ri.subscribers[SUB_LONGPOLL] == 1);
    hub_get_stats(h, &st);
    CHECK(st.rooms == 1 && st.subscribers[SUB_LONGPOLL] == 1);
    fini(h, &a);
    hub_get_stats(h, &st);
    CHECK(st.rooms == 0);
    hub_destroy(h);
}

static void test_sub_end_and_attach(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    loopback a;
    lb_init(&a, SUB_WS, 100);
    CHECK(a.s.kind == SUB_WS && a.s.fmt == MSG_FMT_JSON && a.s.target == NULL);
    CHECK(!a.s.dropped && !a.s.ending && a.s.last_id == 0 && a.s.memberships == NULL);
    CHECK(a.s.wake == lb_wake && a.s.owner == &a);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    pub_n(h, "r", 1);
    CHECK(a.wakes == 1 && a.ends == 0 && a.owner_seen == &a);

    /* sub_end: ending set, then a wake that sees it. */
    sub_end(&a.s);
    CHECK(a.s.ending);
    CHECK(a.wakes == 2 && a.ends == 1);
    CHECK(a.bad_lock == 0);
    CHECK(!a.s.dropped && a.drops == 0);
    CHECK(got_range(&a, 1, 1)); /* what is queued stays queued */

    /* Detached (no consumer): messages queue, nobody is woken. */
    pthread_mutex_lock(&a.s.lock);
    sub_attach(&a.s, NULL, NULL);
    pthread_mutex_unlock(&a.s.lock);
    pub_n(h, "r", 2);
    CHECK(a.wakes == 2 && lb_count(&a) == 2);
    sub_end(&a.s); /* no wake to call */
    CHECK(a.s.ending && a.wakes == 2);
    /* Attached again, with another owner: woken from the next message on. */
    int owner;
    pthread_mutex_lock(&a.s.lock);
    sub_attach(&a.s, lb_wake, &owner);
    pthread_mutex_unlock(&a.s.lock);
    pub_n(h, "r", 1);
    CHECK(a.wakes == 3 && a.owner_seen == &owner);
    CHECK(got_range(&a, 2, 4));
    fini(h, &a);

    /* A bare sub, never attached. */
    sub s;
    sub_init(&s, SUB_LONGPOLL, SR_FMT_RECORD, 7);
    CHECK(s.kind == SUB_LONGPOLL && s.fmt == SR_FMT_RECORD && s.q.limit == 7);
    CHECK(s.wake == NULL && s.owner == NULL && !s.ending && !s.dropped);
    sub_end(&s);
    CHECK(s.ending);
    sub_fini(&s);
    hub_destroy(h);
}

static void test_sub_kind_name(void)
{
    CHECK_STR(sub_kind_name(SUB_WS), "websocket");
    CHECK_STR(sub_kind_name(SUB_SSE), "sse");
    CHECK_STR(sub_kind_name(SUB_LONGPOLL), "long_polling");
    CHECK_STR(sub_kind_name(SUB_KIND_COUNT), "?");
}

/* ------------------------------------------------- epochs and resuming */

/* Pops the gap signal that must head l's queue, and checks it: reason,
 * since and resumed_from, the room and its current epoch in h; its id is
 * the cursor to go on from, resumed_from - 1. */
static bool got_gap(hub *h, loopback *l, const char *room, const char *reason, uint64_t since,
                    uint64_t resumed_from)
{
    msg *m = lb_pop(l);
    char want[256], epoch[MSG_EPOCH_MAX];
    snprintf(want, sizeof(want),
             "{\"room\":\"%s\",\"epoch\":\"%s\",\"reason\":\"%s\",\"since\":%llu,"
             "\"resumed_from\":%llu}",
             room, epoch_of(h, room, epoch), reason, (unsigned long long)since,
             (unsigned long long)resumed_from);
    if (!m || !m->gap) {
        fprintf(stderr, "  the queue's head is not a gap signal (%s %llu)\n",
                m ? "message" : "empty", m ? (unsigned long long)m->id : 0ULL);
        msg_unref(m);
        return false;
    }
    bool ok = epoch_is_8(epoch);
    if (m->id != resumed_from - 1) {
        fprintf(stderr, "  gap id %llu, want %llu\n", (unsigned long long)m->id,
                (unsigned long long)(resumed_from - 1));
        ok = false;
    }
    msg_bytes d = msg_data(m);
    if (d.len != strlen(want) || memcmp(d.base, want, d.len) != 0) {
        fprintf(stderr, "  gap  \"%.*s\"\n  want \"%s\"\n", (int)d.len, d.base, want);
        ok = false;
    }
    /* Its JSON form (WebSocket frames) is {"gap":{...}}. */
    char json[300];
    snprintf(json, sizeof(json), "{\"gap\":%s}", want);
    msg_bytes j = msg_get(m, MSG_FMT_JSON, NULL);
    ok = ok && j.len == strlen(json) && memcmp(j.base, json, j.len) == 0;
    msg_unref(m);
    return ok;
}

/* An epoch other than e (same length, first character changed). */
static void other_epoch(const char *e, char *out)
{
    memcpy(out, e, MSG_EPOCH_MAX);
    out[0] = e[0] == 'A' ? 'B' : 'A';
}

static void test_epoch_of_room(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    room_info ri;
    CHECK(pub(h, "r", "1") == 1);
    CHECK(info(h, "r", &ri) == 0);
    CHECK(epoch_is_8(ri.epoch));
    char e1[MSG_EPOCH_MAX];
    memcpy(e1, ri.epoch, sizeof(e1));
    /* Fixed while the room lives, whatever happens in it. */
    pub_n(h, "r", 3);
    loopback a;
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 0, false) == 0);
    fini(h, &a);
    CHECK(info(h, "r", &ri) == 0 && !strcmp(ri.epoch, e1) && ri.last_id == 4);
    /* Each message carries the epoch of its room. */
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 0, false) == 0);
    msg *m = lb_pop(&a);
    CHECK(m && !strcmp(m->epoch, e1));
    msg_unref(m);
    fini(h, &a);
    hub_destroy(h);
}

static void test_room_recreated_new_epoch(void)
{
    /* No history: a room lives while it has members. */
    hub *h = new_hub(0, 60000);
    if (!h)
        return;
    loopback a;
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    pub_n(h, "r", 3);
    room_info ri;
    CHECK(info(h, "r", &ri) == 0 && ri.last_id == 3 && epoch_is_8(ri.epoch));
    char e1[MSG_EPOCH_MAX];
    memcpy(e1, ri.epoch, sizeof(e1));
    fini(h, &a);
    CHECK(info(h, "r", &ri) == -ENOENT); /* freed */

    lb_init(&a, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(info(h, "r", &ri) == 0 && ri.last_id == 0 && epoch_is_8(ri.epoch));
    CHECK(strcmp(ri.epoch, e1) != 0);     /* a new numbering: a new epoch */
    CHECK(pub(h, "r", "\"again\"") == 1); /* ids start again at 1 */
    msg *m = lb_pop(&a);
    CHECK(m && m->id == 1 && envelope_is(h, m, 1, "r", "\"again\""));
    CHECK(m && strcmp(m->epoch, e1) != 0);
    msg_unref(m);
    fini(h, &a);
    hub_destroy(h);

    /* With history: freed once its history expired and nobody is in it. */
    const int64_t ttl = 5000;
    h = new_hub(100, ttl);
    if (!h)
        return;
    pub_n(h, "t", 2);
    CHECK(info(h, "t", &ri) == 0);
    memcpy(e1, ri.epoch, sizeof(e1));
    hub_expire(h, clock_now_ms() + ttl + 1);
    CHECK(info(h, "t", &ri) == -ENOENT);
    CHECK(pub(h, "t", "1") == 1);
    CHECK(info(h, "t", &ri) == 0 && ri.last_id == 1 && epoch_is_8(ri.epoch));
    CHECK(strcmp(ri.epoch, e1) != 0);
    hub_destroy(h);
}

static void test_resume_within_history(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    pub_n(h, "r", 5);
    char e[MSG_EPOCH_MAX];
    epoch_of(h, "r", e);
    CHECK(epoch_is_8(e));

    loopback a, b, c, d;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_LONGPOLL, 100);
    lb_init(&c, SUB_SSE, 100);
    lb_init(&d, SUB_WS, 100);
    CHECK(hub_resume(h, "r", &a.s, 2, e) == 0);    /* with the room's epoch */
    CHECK(hub_resume(h, "r", &b.s, 2, NULL) == 0); /* without an epoch */
    CHECK(hub_resume(h, "r", &c.s, 0, e) == 0);    /* from the start: all kept */
    CHECK(hub_resume(h, "r", &d.s, 5, e) == 0);    /* at the last: nothing */
    CHECK(a.s.last_id == 5 && b.s.last_id == 5 && c.s.last_id == 5 && d.s.last_id == 5);
    CHECK(got_nothing(&d) && d.wakes == 0);
    CHECK(hub_resume(h, "r", &a.s, 2, e) == -EEXIST);

    pub_n(h, "r", 2);
    CHECK(got_range(&a, 3, 7)); /* no gap signal, no duplicate, no hole */
    CHECK(got_range(&b, 3, 7));
    CHECK(got_range(&d, 6, 7));
    /* SSE: ids EPOCH:N, the replayed ones too. */
    for (uint64_t id = 1; id <= 7; id++) {
        msg *m = lb_pop(&c);
        CHECK(m && m->id == id && !m->gap && sse_ok(m));
        msg_unref(m);
    }
    CHECK(got_nothing(&c));
    room_info ri;
    CHECK(info(h, "r", &ri) == 0 && ri.subscribers[SUB_WS] == 2 && ri.subscribers[SUB_SSE] == 1);
    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    fini(h, &d);
    hub_destroy(h);
}

static void test_resume_expired(void)
{
    hub *h = new_hub(3, 60000);
    if (!h)
        return;
    pub_n(h, "r", 10); /* keeps 8, 9, 10 */
    char e[MSG_EPOCH_MAX];
    epoch_of(h, "r", e);

    loopback a, b, c, d, s;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_LONGPOLL, 100);
    lb_init(&c, SUB_WS, 100);
    lb_init(&d, SUB_WS, 100);
    lb_init(&s, SUB_SSE, 100);
    CHECK(hub_resume(h, "r", &a.s, 2, e) == 0);
    CHECK(a.wakes >= 1);
    CHECK(lb_count(&a) == 4); /* the gap signal, then 8, 9, 10 */
    CHECK(got_gap(h, &a, "r", "expired", 2, 8));
    CHECK(got_range(&a, 8, 10));
    CHECK(a.s.last_id == 10);
    /* Without an epoch the same; from 0 too (message 1 is gone). */
    CHECK(hub_resume(h, "r", &b.s, 0, NULL) == 0);
    CHECK(got_gap(h, &b, "r", "expired", 0, 8));
    CHECK(got_range(&b, 8, 10));
    /* One before the oldest kept: nothing lost, no gap. */
    CHECK(hub_resume(h, "r", &c.s, 7, e) == 0);
    CHECK(got_range(&c, 8, 10));
    /* Two before: message 7 is lost. */
    CHECK(hub_resume(h, "r", &d.s, 6, e) == 0);
    CHECK(got_gap(h, &d, "r", "expired", 6, 8));
    CHECK(got_range(&d, 8, 10));

    /* SSE: the gap is an event named gap, with no id, before the replay. */
    CHECK(hub_resume(h, "r", &s.s, 1, e) == 0);
    msg *m = lb_pop(&s);
    CHECK(m && m->gap);
    if (m) {
        msg_bytes sb = msg_get(m, MSG_FMT_SSE, NULL);
        msg_bytes d_ = msg_data(m);
        char want[300];
        snprintf(want, sizeof(want), "event: gap\ndata: %.*s\n\n", (int)d_.len, d_.base);
        CHECK(sb.base && sb.len == strlen(want) && memcmp(sb.base, want, sb.len) == 0);
    }
    msg_unref(m);
    for (uint64_t id = 8; id <= 10; id++) {
        m = lb_pop(&s);
        CHECK(m && m->id == id && sse_ok(m));
        msg_unref(m);
    }

    /* Then live, after the replay: no duplicate. */
    pub_n(h, "r", 1);
    CHECK(got_range(&a, 11, 11));
    CHECK(got_range(&c, 11, 11));
    CHECK(got_range(&s, 11, 11));
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.published == 11);
    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    fini(h, &d);
    fini(h, &s);
    hub_destroy(h);
}

static void test_resume_other_epoch(void)
{
    hub *h = new_hub(100, 60000);
    if (!h)
        return;
    pub_n(h, "r", 5);
    char e[MSG_EPOCH_MAX], wrong[MSG_EPOCH_MAX];
    epoch_of(h, "r", e);
    other_epoch(e, wrong);

    /* Another epoch: a gap signal, then everything kept, from 1. */
    loopback a, b, c;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_WS, 100);
    lb_init(&c, SUB_WS, 100);
    CHECK(hub_resume(h, "r", &a.s, 3, wrong) == 0);
    CHECK(lb_count(&a) == 6);
    CHECK(got_gap(h, &a, "r", "epoch", 3, 1));
    CHECK(got_range(&a, 1, 5));
    /* since 0 has seen nothing, in whatever epoch: no gap, everything. */
    CHECK(hub_resume(h, "r", &b.s, 0, "x") == 0);
    CHECK(got_range(&b, 1, 5));
    /* Beyond the room's last id, without an epoch: only another epoch
     * explains it. */
    CHECK(hub_resume(h, "r", &c.s, 9, NULL) == 0);
    CHECK(got_gap(h, &c, "r", "epoch", 9, 1));
    CHECK(got_range(&c, 1, 5));
    pub_n(h, "r", 1);
    CHECK(got_range(&a, 6, 6) && got_range(&b, 6, 6) && got_range(&c, 6, 6));
    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    hub_destroy(h);

    /* Another epoch when history no longer starts at 1: everything kept. */
    h = new_hub(3, 60000);
    if (!h)
        return;
    pub_n(h, "r", 10);
    epoch_of(h, "r", e);
    other_epoch(e, wrong);
    lb_init(&a, SUB_SSE, 100);
    lb_init(&b, SUB_WS, 100);
    lb_init(&c, SUB_LONGPOLL, 100);
    CHECK(hub_resume(h, "r", &a.s, 9, wrong) == 0);
    CHECK(got_gap(h, &a, "r", "epoch", 9, 8));
    CHECK(got_range(&a, 8, 10));
    CHECK(hub_resume(h, "r", &b.s, 11, e) == 0); /* beyond, with the epoch */
    CHECK(got_gap(h, &b, "r", "epoch", 11, 8));
    CHECK(got_range(&b, 8, 10));
    /* since 0 in another epoch: only expiry loses something. */
    CHECK(hub_resume(h, "r", &c.s, 0, wrong) == 0);
    CHECK(got_gap(h, &c, "r", "expired", 0, 8));
    CHECK(got_range(&c, 8, 10));
    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    hub_destroy(h);

    /* A room that was freed and made again: the old epoch is another. */
    h = new_hub(0, 60000);
    if (!h)
        return;
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    pub_n(h, "r", 4);
    epoch_of(h, "r", e);
    fini(h, &a);
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_resume(h, "r", &a.s, 4, e) == 0); /* makes the room anew */
    CHECK(got_gap(h, &a, "r", "epoch", 4, 1));
    CHECK(got_nothing(&a));
    CHECK(pub(h, "r", "1") == 1);
    CHECK(got_range(&a, 1, 1));
    fini(h, &a);
    hub_destroy(h);
}

static void test_resume_after_ttl(void)
{
    const int64_t ttl = 5000;
    hub *h = new_hub(100, ttl);
    if (!h)
        return;
    loopback keep;
    lb_init(&keep, SUB_WS, 100);
    CHECK(hub_join(h, "r", &keep.s, 0, true) == 0); /* keeps the room */
    pub_n(h, "r", 3);
    char e[MSG_EPOCH_MAX];
    epoch_of(h, "r", e);
    hub_expire(h, clock_now_ms() + ttl + 1);
    room_info ri;
    CHECK(info(h, "r", &ri) == 0 && ri.last_id == 3 && !strcmp(ri.epoch, e));

    /* Nothing kept: the gap says the next id is last_id + 1. */
    loopback a, b, c;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_SSE, 100);
    lb_init(&c, SUB_WS, 100);
    CHECK(hub_resume(h, "r", &a.s, 1, e) == 0);
    CHECK(lb_count(&a) == 1);
    CHECK(got_gap(h, &a, "r", "expired", 1, 4));
    CHECK(got_nothing(&a));
    CHECK(a.s.last_id == 3); /* the cursor went on to where the room stands */
    CHECK(hub_resume(h, "r", &b.s, 0, NULL) == 0);
    CHECK(got_gap(h, &b, "r", "expired", 0, 4));
    /* At the last id: nothing was lost. */
    CHECK(hub_resume(h, "r", &c.s, 3, e) == 0);
    CHECK(got_nothing(&c) && c.wakes == 0);
    pub_n(h, "r", 1);
    CHECK(got_range(&a, 4, 4) && got_range(&b, 4, 4) && got_range(&c, 4, 4));
    fini(h, &keep);
    fini(h, &a);
    fini(h, &b);
    fini(h, &c);
    hub_destroy(h);
}

static void test_resume_gap_first_in_queue(void)
{
    hub *h = new_hub(3, 60000);
    if (!h)
        return;
    loopback a;
    lb_init(&a, SUB_WS, 100);
    /* Already queued from another room: those stay ahead of the resume. */
    CHECK(hub_join(h, "other", &a.s, 0, true) == 0);
    CHECK(pub(h, "other", "0") == 1);
    pub_n(h, "r", 6); /* keeps 4, 5, 6 */
    char e[MSG_EPOCH_MAX];
    epoch_of(h, "r", e);
    CHECK(hub_resume(h, "r", &a.s, 1, e) == 0);
    CHECK(lb_count(&a) == 5);
    CHECK(lb_pop_id(&a) == 1); /* "other" message 1 */
    /* Of the resume, the gap signal first, before any replayed message. */
    CHECK(got_gap(h, &a, "r", "expired", 1, 4));
    CHECK(got_range(&a, 4, 6));
    CHECK(a.s.last_id == 6);
    fini(h, &a);

    /* A queue bound below the replay does not drop a resuming member: the
     * replay is bounded by history, not by the queue. */
    loopback small;
    lb_init(&small, SUB_WS, 1);
    CHECK(hub_resume(h, "r", &small.s, 0, e) == 0);
    CHECK(!small.s.dropped && lb_count(&small) == 4);
    CHECK(got_gap(h, &small, "r", "expired", 0, 4));
    CHECK(got_range(&small, 4, 6));
    fini(h, &small);
    hub_destroy(h);
}

static void test_join_no_gap_signal(void)
{
    /* hub_join never signals a gap: after history or beyond the last id. */
    hub *h = new_hub(3, 60000);
    if (!h)
        return;
    pub_n(h, "r", 10);
    loopback a, b;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_WS, 100);
    CHECK(hub_join(h, "r", &a.s, 2, false) == 0);
    CHECK(got_range(&a, 8, 10));
    CHECK(hub_join(h, "r", &b.s, 50, false) == 0);
    CHECK(got_nothing(&b));
    fini(h, &a);
    fini(h, &b);
    hub_destroy(h);
}

static void test_parse_cursor(void)
{
    uint64_t since;
    char epoch[MSG_EPOCH_MAX];

    since = 99;
    memcpy(epoch, "junk", 5);
    CHECK(hub_parse_cursor("42", &since, epoch) && since == 42 && epoch[0] == '\0');
    CHECK(hub_parse_cursor("0", &since, epoch) && since == 0 && epoch[0] == '\0');
    CHECK(hub_parse_cursor("007", &since, epoch) && since == 7);
    CHECK(hub_parse_cursor("18446744073709551615", &since, epoch) && since == UINT64_MAX);
    CHECK(hub_parse_cursor("Ab3dE9xZ:17", &since, epoch) && since == 17);
    CHECK_STR(epoch, "Ab3dE9xZ");
    CHECK(hub_parse_cursor("e:0", &since, epoch) && since == 0);
    CHECK_STR(epoch, "e");
    CHECK(hub_parse_cursor("abcdefghijklmnO:5", &since, epoch) && since == 5); /* 15 */
    CHECK_STR(epoch, "abcdefghijklmnO");
    /* After one with an epoch, one without clears it. */
    CHECK(hub_parse_cursor("3", &since, epoch) && since == 3 && epoch[0] == '\0');

    static const char *const bad[] = {
        "",
        "x",
        "-1",
        "+1",
        "1.5",
        " 1",
        "1 ",
        "0x10",
        "1e3",
        "18446744073709551616", /* UINT64_MAX + 1 */
        "99999999999999999999", /* 20 digits, too large */
        ":5",                   /* an empty epoch */
        "Ab3dE9xZ:",            /* no number */
        "Ab3dE9xZ:x",
        "Ab3dE9xZ:-1",
        "bad!:1", /* not letters or digits */
        "a-b:1",
        "a b:1",
        "abcdefghijklmnop:5", /* 16 characters */
        "Ab3dE9xZ:1:2",
        "Ab3dE9xZ::1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool ok = hub_parse_cursor(bad[i], &since, epoch);
        if (ok)
            fprintf(stderr, "  cursor \"%s\" parsed (since %llu, epoch \"%s\")\n", bad[i],
                    (unsigned long long)since, epoch);
        CHECK(!ok);
    }
}

static void test_epoch_is_valid(void)
{
    CHECK(hub_epoch_is_valid("a"));
    CHECK(hub_epoch_is_valid("Ab3dE9xZ"));
    CHECK(hub_epoch_is_valid("0123456789"));
    CHECK(hub_epoch_is_valid("abcdefghijklmnO")); /* 15 */
    CHECK(!hub_epoch_is_valid(""));
    CHECK(!hub_epoch_is_valid("abcdefghijklmnop")); /* 16 */
    CHECK(!hub_epoch_is_valid("bad!"));
    CHECK(!hub_epoch_is_valid("a-b"));
    CHECK(!hub_epoch_is_valid("a:b"));
    CHECK(!hub_epoch_is_valid("a b"));
    CHECK(!hub_epoch_is_valid("caf\xc3\xa9"));
}

/* ------------------------------------------------- memory limits (#11) */

static hub *new_hub_opt(hub_options opt)
{
    hub *h = hub_create(&opt);
    CHECK(h != NULL);
    return h;
}

/* limits.max_rooms: a new room past the cap is refused (-ENOSPC) to
 * publish and join alike; existing rooms and the hub's own go on; once a
 * room is freed, a new one may come. */
static void test_max_rooms(void)
{
    hub *h = new_hub_opt((hub_options){.history_size = 10, .history_ttl_ms = 5000, .max_rooms = 3});
    if (!h)
        return;
    uint64_t id = 0;
    CHECK(pub(h, "a", "1") == 1 && pub(h, "b", "1") == 1 && pub(h, "c", "1") == 1);
    CHECK(hub_publish(h, "d", "1", 1, NULL, &id) == -ENOSPC);
    loopback l, own;
    lb_init(&l, SUB_WS, 100);
    lb_init(&own, SUB_WS, 100);
    CHECK(hub_join(h, "d", &l.s, 0, true) == -ENOSPC);
    CHECK(hub_resume(h, "e", &l.s, 3, NULL) == -ENOSPC);
    CHECK(hub_join(h, "a", &l.s, 0, true) == 0); /* an existing room */
    CHECK(pub(h, "a", "2") == 2);
    CHECK(hub_join(h, "~chat", &own.s, 0, true) == 0); /* a hub's own room: not capped */
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.rooms == 3);
    room_info ri;
    CHECK(info(h, "d", &ri) == -ENOENT);
    /* b and c expire (a has a member): room for new ones again */
    hub_expire(h, clock_now_ms() + 6000);
    CHECK(pub(h, "d", "1") == 1);
    CHECK(hub_join(h, "e", &own.s, 0, true) == 0);
    CHECK(hub_publish(h, "f", "1", 1, NULL, &id) == -ENOSPC);
    fini(h, &l);
    fini(h, &own);
    hub_destroy(h);
}

/* limits.max_rooms_per_connection: a member in that many rooms gets
 * -EMLINK for one more; a hub's own rooms do not count; leaving one makes
 * room. */
static void test_max_rooms_per_sub(void)
{
    hub *h = new_hub_opt(
        (hub_options){.history_size = 10, .history_ttl_ms = 5000, .max_rooms_per_sub = 2});
    if (!h)
        return;
    loopback l, other;
    lb_init(&l, SUB_WS, 100);
    lb_init(&other, SUB_WS, 100);
    CHECK(hub_join(h, "~chat", &l.s, 0, true) == 0);
    CHECK(hub_join(h, "a", &l.s, 0, true) == 0);
    CHECK(hub_resume(h, "b", &l.s, 0, NULL) == 0);
    CHECK(hub_join(h, "a", &l.s, 0, true) == -EEXIST);
    CHECK(hub_join(h, "c", &l.s, 0, true) == -EMLINK);
    CHECK(hub_join(h, "c", &other.s, 0, true) == 0); /* per member, not global */
    hub_leave_room(h, "a", &l.s);
    CHECK(hub_join(h, "c", &l.s, 0, true) == 0);
    CHECK(pub(h, "c", "1") == 1);
    CHECK(got_range(&l, 1, 1) && got_range(&other, 1, 1));
    fini(h, &l);
    fini(h, &other);
    hub_destroy(h);
}

/* history.max_bytes: all histories' bytes stay within the budget; the
 * oldest messages of the largest room go first, even when another room
 * was published to; a resume into what was evicted gets the gap signal
 * ("expired", resumed_from the first kept id), then what is kept. */
static void test_history_budget(void)
{
    /* Measure what 10 messages in A and 5 in B count, with no budget. */
    hub_options opt = {.history_size = 100, .history_ttl_ms = 600000};
    hub *h = new_hub_opt(opt);
    if (!h)
        return;
    pub_n(h, "A", 10);
    pub_n(h, "B", 5);
    hub_stats st;
    hub_get_stats(h, &st);
    size_t fifteen = st.history_bytes;
    CHECK(fifteen > 15 * sizeof(msg) && st.history_evicted == 0);
    hub_destroy(h);

    /* The same with exactly that budget, then one more in B: it fits
     * only once A (the largest) lost its oldest. */
    opt.history_max_bytes = fifteen;
    h = new_hub_opt(opt);
    if (!h)
        return;
    pub_n(h, "A", 10);
    pub_n(h, "B", 5);
    hub_get_stats(h, &st);
    CHECK(st.history_bytes == fifteen && st.history_evicted == 0);
    pub_n(h, "B", 1);
    hub_get_stats(h, &st);
    CHECK(st.history_bytes <= fifteen && st.history_evicted == 1);

    char ea[MSG_EPOCH_MAX], eb[MSG_EPOCH_MAX];
    epoch_of(h, "A", ea);
    epoch_of(h, "B", eb);
    loopback a, b, a9;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_SSE, 100);
    lb_init(&a9, SUB_LONGPOLL, 100);
    CHECK(hub_resume(h, "A", &a.s, 0, ea) == 0);
    CHECK(got_gap(h, &a, "A", "expired", 0, 2));
    CHECK(got_range(&a, 2, 10));
    CHECK(hub_resume(h, "B", &b.s, 0, eb) == 0);
    CHECK(got_range(&b, 1, 6));                   /* nothing of B's lost: no gap */
    CHECK(hub_resume(h, "A", &a9.s, 1, ea) == 0); /* cursor just before what is kept */
    CHECK(got_range(&a9, 2, 10));

    /* A flood into one new room: the budget holds, the flooded room pays. */
    for (int i = 0; i < 200; i++)
        pub(h, "C", "[\"a longer message, to fill the budget quickly\"]");
    hub_get_stats(h, &st);
    CHECK(st.history_bytes <= fifteen);
    loopback c;
    lb_init(&c, SUB_WS, 300);
    CHECK(hub_resume(h, "C", &c.s, 1, NULL) == 0);
    msg *g = lb_pop(&c);
    CHECK(g && g->gap);
    msg_unref(g);
    CHECK(lb_count(&c) > 0 && lb_count(&c) < 200);
    fini(h, &a);
    fini(h, &b);
    fini(h, &a9);
    fini(h, &c);

    /* Expiry gives every byte back. */
    hub_expire(h, clock_now_ms() + 600001);
    hub_get_stats(h, &st);
    CHECK(st.history_bytes == 0 && st.rooms == 0);
    hub_destroy(h);
}

/* A room whose history the budget emptied, and that nobody is in, is freed
 * by the sweep; a resume with its old epoch still gets a gap ("epoch"). */
static void test_history_budget_frees_room(void)
{
    char big[1024];
    memset(big, 'x', sizeof(big));
    big[0] = '"';
    big[sizeof(big) - 2] = '"';
    big[sizeof(big) - 1] = '\0';
    hub_options opt = {.history_size = 100, .history_ttl_ms = 600000};
    hub *h = new_hub_opt(opt);
    if (!h)
        return;
    hub_stats st;
    pub(h, "A", big);
    hub_get_stats(h, &st);
    size_t cost_a = st.history_bytes;
    pub(h, "B", "1");
    hub_get_stats(h, &st);
    size_t cost_b = st.history_bytes - cost_a;
    CHECK(cost_a > 3 * cost_b);
    hub_destroy(h);

    opt.history_max_bytes = cost_a + 2 * cost_b;
    h = new_hub_opt(opt);
    if (!h)
        return;
    pub(h, "A", big);
    char ea[MSG_EPOCH_MAX];
    epoch_of(h, "A", ea);
    pub(h, "B", "1");
    pub(h, "B", "1");
    hub_get_stats(h, &st);
    CHECK(st.history_evicted == 0);
    pub(h, "B", "1"); /* A's one message is the largest: it goes */
    hub_get_stats(h, &st);
    CHECK(st.history_evicted == 1 && st.history_bytes == 3 * cost_b);
    hub_expire(h, clock_now_ms());
    room_info ri;
    CHECK(info(h, "A", &ri) == -ENOENT);
    CHECK(info(h, "B", &ri) == 0 && ri.last_id == 3);
    loopback a;
    lb_init(&a, SUB_WS, 100);
    CHECK(hub_resume(h, "A", &a.s, 1, ea) == 0);
    CHECK(got_gap(h, &a, "A", "epoch", 1, 1));
    CHECK(got_nothing(&a));
    fini(h, &a);
    hub_destroy(h);
}

/* hub_expire reports what it freed (for malloc_trim): rooms and history. */
static void test_expire_reports_freed(void)
{
    hub *h = new_hub(10, 1000);
    if (!h)
        return;
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof(name), "r%d", i);
        pub(h, name, "[\"m\"]");
    }
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.rooms == 50 && st.history_bytes > 0);
    size_t freed = hub_expire(h, clock_now_ms() + 2000);
    CHECK(freed >= st.history_bytes + 50 * 128);
    hub_get_stats(h, &st);
    CHECK(st.rooms == 0 && st.history_bytes == 0);
    CHECK(hub_expire(h, clock_now_ms() + 3000) == 0);
    hub_destroy(h);
}

TEST_MAIN("hub", TEST(test_room_names), TEST(test_ids_per_room), TEST(test_fanout),
          TEST(test_join_from_now), TEST(test_join_since), TEST(test_join_since_evicted),
          TEST(test_join_twice), TEST(test_two_rooms), TEST(test_leave), TEST(test_room_info_kinds),
          TEST(test_expire), TEST(test_send_queue_bound), TEST(test_drop_with_limit_one),
          TEST(test_stats), TEST(test_encodings), TEST(test_many_rooms_and_destroy),
          TEST(test_publish_exclude), TEST(test_publish_target), TEST(test_signalr_default_target),
          TEST(test_hub_send), TEST(test_hub_send_overflow), TEST(test_leave_room),
          TEST(test_sub_end_and_attach), TEST(test_sub_kind_name), TEST(test_epoch_of_room),
          TEST(test_room_recreated_new_epoch), TEST(test_resume_within_history),
          TEST(test_resume_expired), TEST(test_resume_other_epoch), TEST(test_resume_after_ttl),
          TEST(test_resume_gap_first_in_queue), TEST(test_join_no_gap_signal),
          TEST(test_parse_cursor), TEST(test_epoch_is_valid), TEST(test_max_rooms),
          TEST(test_max_rooms_per_sub), TEST(test_history_budget),
          TEST(test_history_budget_frees_room), TEST(test_expire_reports_freed))
