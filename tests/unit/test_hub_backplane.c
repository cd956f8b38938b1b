/* SPDX-License-Identifier: MIT */
/*
 * test_hub_backplane.c - unit tests for the hub's side of a shared backplane
 * (hub/backplane.h): a scripted backplane records what the hub asks of it,
 * and the test answers as Redis would (hub_bp_subscribed, hub_bp_fetched,
 * hub_bp_message). Covers pending joins, "from now" by wall clock, resume
 * from fetched history, holes and duplicates, epoch changes and their gap
 * signals, the caller's exclusion, messages a node delivered itself while
 * the backplane was down, degraded publishing, and join callbacks.
 * The Redis side itself is tested against a real redis-server
 * (tests/scaleout, and the integration suite's Redis pass).
 */
#include "common/clock.h"
#include "hub/hub.h"
#include "tests/unit/loopback_sub.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <stdlib.h>

/* ----------------------------------------------------- scripted backplane */

typedef struct script_bp {
    backplane base;
    int wants, unwants, fetches;
    char last_room[ROOM_NAME_MAX + 1];
    char fetch_epoch[MSG_EPOCH_MAX];
    uint64_t fetch_after;
    bp_publish_status publish_answer;
    int publishes;
    int presence_reports; /* s_presence calls */
    publish_done_fn done;
    void *done_arg;
    int syncs_base, syncs; /* s_presence_sync calls (base or not) */
    int room_states;       /* s_room_state calls, the last one's answer below */
    bp_room_fn room_cb;
    void *room_arg;
} script_bp;

static void s_want(backplane *bp, const char *room, bool want)
{
    script_bp *s = (script_bp *)bp;
    if (want)
        s->wants++;
    else
        s->unwants++;
    snprintf(s->last_room, sizeof(s->last_room), "%s", room);
}

static void s_fetch(backplane *bp, const char *room, const char *epoch, uint64_t after)
{
    script_bp *s = (script_bp *)bp;
    s->fetches++;
    snprintf(s->last_room, sizeof(s->last_room), "%s", room);
    snprintf(s->fetch_epoch, sizeof(s->fetch_epoch), "%s", epoch);
    s->fetch_after = after;
}

static bp_publish_status s_publish(backplane *bp, const bp_publish *p, publish_done_fn done,
                                   void *arg)
{
    script_bp *s = (script_bp *)bp;
    (void)p;
    s->publishes++;
    s->done = done;
    s->done_arg = arg;
    return s->publish_answer;
}

/* Presence reports are counted; the presence tests are test_presence.c's. */
static void s_presence(backplane *bp, const bp_presence *p)
{
    (void)p;
    ((script_bp *)bp)->presence_reports++;
}

static void s_presence_sync(backplane *bp, const char *room, bool base, size_t max_listed)
{
    script_bp *s = (script_bp *)bp;
    (void)room, (void)max_listed;
    if (base)
        s->syncs_base++;
    else
        s->syncs++;
}

/* Where a room stands: the test answers (room_cb, room_arg). */
static void s_room_state(backplane *bp, const char *room, bp_room_fn cb, void *arg)
{
    script_bp *s = (script_bp *)bp;
    s->room_states++;
    snprintf(s->last_room, sizeof(s->last_room), "%s", room);
    s->room_cb = cb;
    s->room_arg = arg;
}

static const backplane_ops script_ops = {.want_room = s_want,
                                         .fetch = s_fetch,
                                         .publish = s_publish,
                                         .presence = s_presence,
                                         .room_state = s_room_state,
                                         .presence_sync = s_presence_sync};

static hub *new_hub(script_bp *s)
{
    memset(s, 0, sizeof(*s));
    s->base.ops = &script_ops;
    snprintf(s->base.node_id, sizeof(s->base.node_id), "NODEA");
    hub_options opt = {.history_size = 100, .history_ttl_ms = 60000};
    hub *h = hub_create(&opt);
    hub_set_backplane(h, &s->base);
    hub_bp_link(h, true);
    return h;
}

static bp_entry entry(uint64_t id, int64_t wall_ms)
{
    return (bp_entry){
        .id = id, .wall_ms = wall_ms, .origin = "NODEB", .target = "", .data = "[1]", .len = 3};
}

/* Entries first..last published at wall time `wall`. */
static void fetched(hub *h, const char *room, const char *epoch, uint64_t first, uint64_t last,
                    int64_t wall)
{
    bp_entry e[64];
    size_t n = 0;
    for (uint64_t id = first; id && id <= last && n < 64; id++)
        e[n++] = entry(id, wall);
    hub_bp_fetched(h, room, epoch, last, e, n);
}

static void message(hub *h, const char *room, const char *epoch, uint64_t id)
{
    bp_entry e = entry(id, clock_wall_ms());
    hub_bp_message(h, room, epoch, &e);
}

/* l's queue holds exactly the ids first..last, in order; drains it. */
static bool got_range(loopback *l, uint64_t first, uint64_t last)
{
    uint64_t ids[128];
    size_t n = lb_drain(l, ids, 128);
    bool ok = n == (last >= first ? last - first + 1 : 0);
    for (size_t i = 0; ok && i < n; i++)
        ok = ids[i] == first + i;
    if (!ok) {
        fprintf(stderr, "  expected %llu..%llu, got %zu ids:", (unsigned long long)first,
                (unsigned long long)last, n);
        for (size_t i = 0; i < n && i < 128; i++)
            fprintf(stderr, " %llu", (unsigned long long)ids[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}

/* ------------------------------------------------------------------ tests */

/* A join waits for the room's numbering; then "from now" gets what was
 * published after the join (by wall clock), and a resume gets what it
 * missed, from the fetched history. */
static void test_pending_join_then_fetch(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback live, resumer;
    lb_init(&live, SUB_WS, 100);
    lb_init(&resumer, SUB_SSE, 100);
    int64_t before = clock_wall_ms() - 1000;
    CHECK(hub_join(h, "r", &live.s, 0, true) == 0);
    CHECK(hub_resume(h, "r", &resumer.s, 2, "EPOCH1") == 0);
    CHECK(s.wants == 1);
    CHECK_STR(s.last_room, "r");
    CHECK(s.fetches == 0);
    message(h, "r", "EPOCH1", 9); /* not subscribed yet: ignored until fetched */
    hub_bp_subscribed(h, "r");
    CHECK(s.fetches == 1);
    CHECK_STR(s.fetch_epoch, "");
    CHECK(s.fetch_after == 0);
    CHECK(lb_count(&live) == 0);
    /* 1..5 published before the joins, 6..8 after */
    bp_entry e[8];
    for (int i = 0; i < 8; i++)
        e[i] = entry((uint64_t)i + 1, i < 5 ? before : clock_wall_ms() + 10);
    hub_bp_fetched(h, "r", "EPOCH1", 8, e, 8);
    CHECK(got_range(&live, 6, 9));    /* 9 waited for the fetch */
    CHECK(got_range(&resumer, 3, 9)); /* since 2 */
    room_info info;
    CHECK(hub_room_info(h, "r", &info) == 0);
    CHECK_STR(info.epoch, "EPOCH1");
    CHECK(info.last_id == 9);
    hub_leave(h, &live.s);
    hub_leave(h, &resumer.s);
    CHECK(s.unwants == 0); /* it lingers a while, still subscribed */
    CHECK(hub_room_info(h, "r", &info) == 0 && info.last_id == 9);
    hub_expire(h, clock_now_ms() + 6000);
    CHECK(s.unwants == 1);
    CHECK(hub_room_info(h, "r", &info) == -ENOENT);
    hub_destroy(h);
    sub_fini(&live.s);
    sub_fini(&resumer.s);
}

/* Messages in order are delivered, duplicates skipped; a hole asks for a
 * fetch after the last id, and what came meanwhile waits for it. */
static void test_holes_and_duplicates(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback l;
    lb_init(&l, SUB_WS, 100);
    hub_join(h, "r", &l.s, 0, true);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 0, 0, 0);
    message(h, "r", "E1", 1);
    message(h, "r", "E1", 2);
    message(h, "r", "E1", 2);
    CHECK(got_range(&l, 1, 2));
    int fetches = s.fetches;
    message(h, "r", "E1", 5); /* 3 and 4 lost on the way */
    CHECK(s.fetches == fetches + 1);
    CHECK_STR(s.fetch_epoch, "E1");
    CHECK(s.fetch_after == 2);
    message(h, "r", "E1", 6);
    CHECK(lb_count(&l) == 0);
    fetched(h, "r", "E1", 3, 5, clock_wall_ms());
    CHECK(got_range(&l, 3, 6));
    CHECK(s.fetches == fetches + 1);
    hub_leave(h, &l.s);
    hub_destroy(h);
    sub_fini(&l.s);
}

/* What waits for a fetch is bounded in bytes across rooms too (64 MiB):
 * past it the waiting messages are let go and fetched again afterwards,
 * so a burst of big messages into a room that is fetching cannot grow
 * memory without bound. */
static void test_waiting_bytes_bound(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback l;
    lb_init(&l, SUB_WS, 1000);
    hub_join(h, "r", &l.s, 0, true);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 0, 0, 0);
    message(h, "r", "E1", 1);
    CHECK(got_range(&l, 1, 1));
    message(h, "r", "E1", 3); /* 2 lost on the way: a fetch, and 3.. wait for it */
    int fetches = s.fetches;
    size_t big = 256 * 1024;
    char *data = malloc(big + 3);
    data[0] = '"';
    memset(data + 1, 'x', big);
    data[big + 1] = '"';
    data[big + 2] = 0;
    for (uint64_t id = 4; id < 4 + 300; id++) { /* 300 x 256 KiB = 75 MiB */
        bp_entry e = entry(id, clock_wall_ms());
        e.data = data;
        e.len = big + 2;
        hub_bp_message(h, "r", "E1", &e);
    }
    free(data);
    CHECK(s.fetches == fetches);
    fetched(h, "r", "E1", 2, 2, clock_wall_ms());
    /* 2 arrives; what waited was let go past the bound, so another fetch
     * after 2 is asked for instead of holding 75 MiB */
    uint64_t ids[400];
    size_t n = lb_drain(&l, ids, 400);
    CHECK(n >= 1 && ids[0] == 2);
    CHECK(n < 300);
    CHECK(s.fetches == fetches + 1);
    CHECK(s.fetch_after == ids[n - 1]);
    hub_leave(h, &l.s);
    hub_destroy(h);
    sub_fini(&l.s);
}

/* A message of this node's own that it delivered while the backplane was
 * down is kept, not delivered again; the caller excluded ("others") is
 * skipped on this node only. */
static void test_origin_rules(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback a, b;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_WS, 100);
    hub_join(h, "r", &a.s, 0, true);
    hub_join(h, "r", &b.s, 0, true);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 0, 0, 0);
    bp_entry e = entry(1, clock_wall_ms());
    e.origin = "NODEA";
    e.local_done = true;
    hub_bp_message(h, "r", "E1", &e);
    CHECK(lb_count(&a) == 0 && lb_count(&b) == 0);
    e = entry(2, clock_wall_ms());
    e.origin = "NODEA";
    e.exclude = a.s.uid;
    hub_bp_message(h, "r", "E1", &e);
    CHECK(lb_count(&a) == 0);
    CHECK(got_range(&b, 2, 2));
    e = entry(3, clock_wall_ms());
    e.exclude = a.s.uid; /* another node's sub with the same number */
    hub_bp_message(h, "r", "E1", &e);
    CHECK(got_range(&a, 3, 3));
    CHECK(got_range(&b, 3, 3));
    room_info info;
    hub_room_info(h, "r", &info);
    CHECK(info.last_id == 3);
    hub_leave(h, &a.s);
    hub_leave(h, &b.s);
    hub_destroy(h);
    sub_fini(&a.s);
    sub_fini(&b.s);
}

/* The backplane forgot the room (a new numbering from 1): members go on
 * with no gap. A fetch that finds another epoch tells members of a gap. */
static void test_epoch_changes(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback l;
    lb_init(&l, SUB_SSE, 100);
    hub_join(h, "r", &l.s, 0, true);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 1, 3, 0);
    message(h, "r", "E2", 1);
    msg *m = lb_pop(&l);
    CHECK(m && m->id == 1 && !m->gap && !strcmp(m->epoch, "E2"));
    msg_unref(m);
    hub_bp_subscribed(h, "r"); /* as after a reconnection */
    CHECK_STR(s.fetch_epoch, "E2");
    CHECK(s.fetch_after == 1);
    fetched(h, "r", "E3", 1, 2, clock_wall_ms()); /* Redis lost everything meanwhile */
    m = lb_pop(&l);
    CHECK(m && m->gap);
    if (m) {
        msg_bytes info = msg_data(m);
        CHECK(strstr(info.base, "\"reason\":\"epoch\"") != NULL);
        CHECK(strstr(info.base, "\"epoch\":\"E3\"") != NULL);
    }
    msg_unref(m);
    CHECK(got_range(&l, 1, 2));
    hub_leave(h, &l.s);
    hub_destroy(h);
    sub_fini(&l.s);
}

typedef struct answer {
    int calls;
    publish_result r;
} answer;

static void on_published(void *arg, const publish_result *r)
{
    answer *a = arg;
    a->calls++;
    a->r = *r;
}

/* Up: the answer comes once the backplane has numbered the message and
 * this node has taken it (or after PUBLISH_HOLD_MS). Backplane down: a
 * publish is delivered here under a local epoch and reported queued; a full
 * queue refuses. */
static void test_publish_paths(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback l;
    lb_init(&l, SUB_WS, 100);
    hub_join(h, "r", &l.s, 0, true);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 1, 4, 0);
    answer a = {0};
    s.publish_answer = BP_SENT;
    hub_publish_async(h, "r", "[1]", 3, NULL, on_published, &a);
    CHECK(a.calls == 0 && s.publishes == 1);
    CHECK(lb_count(&l) == 0); /* delivered when it comes back from the backplane */
    /* Numbered 5 by the backplane: the answer waits until this node has 5. */
    publish_result numbered = {.id = 5, .epoch = "E1"};
    s.done(s.done_arg, &numbered);
    CHECK(a.calls == 0);
    message(h, "r", "E1", 5);
    CHECK(a.calls == 1 && a.r.rc == 0 && a.r.id == 5 && !strcmp(a.r.epoch, "E1"));
    CHECK(got_range(&l, 5, 5));
    /* Already taken when numbered (the message came first): answered at once. */
    hub_publish_async(h, "r", "[1]", 3, NULL, on_published, &a);
    message(h, "r", "E1", 6);
    numbered.id = 6;
    s.done(s.done_arg, &numbered);
    CHECK(a.calls == 2 && a.r.id == 6);
    /* One that never comes back is answered after PUBLISH_HOLD_MS (1 s). */
    hub_publish_async(h, "r", "[1]", 3, NULL, on_published, &a);
    numbered.id = 7;
    s.done(s.done_arg, &numbered);
    hub_expire(h, clock_now_ms() + 500);
    CHECK(a.calls == 2);
    hub_expire(h, clock_now_ms() + 2500);
    CHECK(a.calls == 3 && a.r.id == 7);
    CHECK(got_range(&l, 6, 6));
    /* Losing the backplane answers what was held at once. */
    hub_publish_async(h, "r", "[1]", 3, NULL, on_published, &a);
    numbered.id = 8;
    s.done(s.done_arg, &numbered);
    CHECK(a.calls == 3);
    hub_bp_link(h, false);
    CHECK(a.calls == 4 && a.r.id == 8);
    a.calls = 0;
    CHECK(!hub_bp_connected(h));
    s.publish_answer = BP_QUEUED;
    hub_publish_async(h, "r", "[2]", 3, NULL, on_published, &a);
    CHECK(a.calls == 1 && a.r.rc == 0 && a.r.queued && a.r.id == 1);
    CHECK(strcmp(a.r.epoch, "E1") != 0 && a.r.epoch[0]);
    msg *m = lb_pop(&l);
    CHECK(m && m->id == 1 && !strcmp(m->epoch, a.r.epoch));
    msg_unref(m);
    s.publish_answer = BP_FULL;
    hub_publish_async(h, "r", "[3]", 3, NULL, on_published, &a);
    CHECK(a.calls == 2 && a.r.rc == -EAGAIN);
    /* Node-local rooms never go to the backplane. */
    int before = s.publishes;
    hub_publish_async(h, HUB_LOCAL_PREFIX "stats", "[4]", 3, NULL, on_published, &a);
    CHECK(a.calls == 3 && a.r.rc == 0 && s.publishes == before);
    hub_leave(h, &l.s);
    hub_destroy(h);
    sub_fini(&l.s);
}

typedef struct join_answer {
    int calls, rc;
    char epoch[MSG_EPOCH_MAX];
    uint64_t last_id;
} join_answer;

static void on_joined(void *arg, int rc, const char *epoch, uint64_t last_id)
{
    join_answer *j = arg;
    j->calls++;
    j->rc = rc;
    snprintf(j->epoch, sizeof(j->epoch), "%s", epoch);
    j->last_id = last_id;
}

/* A join's callback comes once the room is fetched, with where it stands;
 * leaving before that cancels it. */
static void test_join_callbacks(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback a, b;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_WS, 100);
    join_answer ja = {0}, jb = {0};
    hub_join_args args = {.from_now = true, .done = on_joined, .done_arg = &ja};
    CHECK(hub_join_ex(h, "r", &a.s, &args) == 0);
    args.done_arg = &jb;
    CHECK(hub_join_ex(h, "r", &b.s, &args) == 0);
    CHECK(ja.calls == 0 && jb.calls == 0);
    hub_leave(h, &b.s);
    CHECK(jb.calls == 1 && jb.rc == -ECANCELED);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E7", 1, 12, 0);
    CHECK(ja.calls == 1 && ja.rc == 0 && ja.last_id == 12);
    CHECK_STR(ja.epoch, "E7");
    /* A synced room answers at once. */
    join_answer jc = {0};
    args.done_arg = &jc;
    CHECK(hub_join_ex(h, "r", &b.s, &args) == 0);
    CHECK(jc.calls == 1 && jc.last_id == 12);
    hub_leave(h, &a.s);
    hub_leave(h, &b.s);
    hub_destroy(h);
    sub_fini(&a.s);
    sub_fini(&b.s);
}

/* A message's wall clock is whatever number its head in Redis holds: any
 * value, however absurd, is taken without overflow (found by fuzz_redis:
 * INT64_MIN overflowed the age computation), and the message delivered. */
static void test_absurd_wall_clocks(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback l;
    lb_init(&l, SUB_WS, 100);
    CHECK(hub_join(h, "r", &l.s, 0, false) == 0);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 1, 0, 0);
    static const int64_t walls[] = {INT64_MIN, -1, 0, INT64_MAX};
    for (size_t i = 0; i < sizeof(walls) / sizeof(walls[0]); i++) {
        bp_entry e = entry(i + 1, walls[i]);
        hub_bp_message(h, "r", "E1", &e);
    }
    CHECK(got_range(&l, 1, 4));
    hub_expire(h, clock_now_ms()); /* an old wall clock makes an old message: it may expire */
    hub_leave(h, &l.s);
    hub_destroy(h);
    sub_fini(&l.s);
}

/* A resume that lands on a node behind the backplane (its cursor came from
 * a node ahead, same epoch): live at once, but what the cursor had is not
 * sent again as this node catches up, and no gap; every transport and
 * SignalR alike (the hub's join). The join's answer gives the cursor. */
static void test_lagging_resume(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback live, sse, ws, sr, behind;
    lb_init(&live, SUB_WS, 100);
    lb_init(&sse, SUB_SSE, 100);
    lb_init(&ws, SUB_WS, 100);
    lb_init(&sr, SUB_LONGPOLL, 100);
    lb_init(&behind, SUB_SSE, 100);
    hub_join(h, "r", &live.s, 0, true);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 1, 5, clock_wall_ms());
    lb_drain(&live, NULL, 0);
    CHECK(hub_resume(h, "r", &sse.s, 8, "E1") == 0);
    CHECK(hub_resume(h, "r", &ws.s, 7, "E1") == 0);
    loopback far;
    lb_init(&far, SUB_WS, 100);
    CHECK(hub_resume(h, "r", &far.s, 20005, "E1") == 0); /* far behind: no guess, no gap */
    join_answer ja = {0};
    hub_join_args args = {
        .since = 8, .epoch = "E1", .check_gap = true, .done = on_joined, .done_arg = &ja};
    CHECK(hub_join_ex(h, "r", &sr.s, &args) == 0);
    CHECK(ja.calls == 1 && ja.last_id == 8); /* where the client is, not this node */
    CHECK(hub_resume(h, "r", &behind.s, 3, "E1") == 0);
    CHECK(got_range(&behind, 4, 5)); /* a cursor this node has: replayed as ever */
    CHECK(lb_count(&sse) == 0 && lb_count(&ws) == 0 && lb_count(&sr) == 0);
    for (uint64_t id = 6; id <= 10; id++)
        message(h, "r", "E1", id);
    CHECK(got_range(&live, 6, 10));
    CHECK(got_range(&sse, 9, 10)); /* no duplicate of 6..8, no gap */
    CHECK(got_range(&ws, 8, 10));
    CHECK(got_range(&sr, 9, 10));
    CHECK(got_range(&behind, 6, 10));
    CHECK(lb_count(&far) == 0);
    hub_leave(h, &far.s);
    sub_fini(&far.s);
    /* Past the cursor, skipping is over: an "expired" gap reaches them. */
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 20, 21, clock_wall_ms());
    msg *m = lb_pop(&sse);
    CHECK(m && m->gap);
    msg_unref(m);
    CHECK(got_range(&sse, 20, 21));
    hub_leave(h, &live.s);
    hub_leave(h, &sse.s);
    hub_leave(h, &ws.s);
    hub_leave(h, &sr.s);
    hub_leave(h, &behind.s);
    hub_destroy(h);
    sub_fini(&live.s);
    sub_fini(&sse.s);
    sub_fini(&ws.s);
    sub_fini(&sr.s);
    sub_fini(&behind.s);
}

/* Catching up may lose messages on the way (a hole fetched): what the
 * fetch shows lost before the cursor is nothing to this member (no gap);
 * lost after it is a gap. */
static void test_lagging_resume_hole(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback a, b;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_WS, 100);
    hub_join(h, "r", &a.s, 0, true);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 1, 5, clock_wall_ms());
    lb_drain(&a, NULL, 0);
    CHECK(hub_resume(h, "r", &b.s, 12, "E1") == 0);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 10, 14, clock_wall_ms()); /* 6..9 expired on the way */
    CHECK(got_range(&b, 13, 14));                   /* no gap: the client had 6..12 */
    hub_leave(h, &a.s);
    hub_leave(h, &b.s);
    hub_destroy(h);
    sub_fini(&a.s);
    sub_fini(&b.s);
}

/* LAG_WAIT_MS (2 s) after such a resume, if this node has still not
 * reached the cursor, the backplane is asked where the room stands: a room
 * that has the cursor leaves it waiting (this node is behind); one that
 * never numbered that far gets a gap signal ("epoch") and what is kept. */
static void test_lagging_resume_bound(void)
{
    script_bp s;
    hub *h = new_hub(&s);
    loopback real, bogus;
    lb_init(&real, SUB_SSE, 100);
    lb_init(&bogus, SUB_SSE, 100);
    hub_join(h, "r", &real.s, 0, true);
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 1, 5, clock_wall_ms());
    lb_drain(&real, NULL, 0);
    hub_leave(h, &real.s);
    CHECK(hub_resume(h, "r", &real.s, 9, "E1") == 0);
    hub_expire(h, clock_now_ms() + 500);
    CHECK(s.room_states == 0); /* not yet */
    hub_expire(h, clock_now_ms() + 2500);
    CHECK(s.room_states == 1);
    CHECK_STR(s.last_room, "r");
    s.room_cb(s.room_arg, 0, "E1", 12); /* the room has 9: this node is behind */
    CHECK(lb_count(&real) == 0);
    hub_expire(h, clock_now_ms() + 5000);
    CHECK(s.room_states == 1); /* asked once */
    for (uint64_t id = 6; id <= 12; id++)
        message(h, "r", "E1", id);
    CHECK(got_range(&real, 10, 12));
    /* a cursor the room never reached (however far: the backplane says) */
    CHECK(hub_resume(h, "r", &bogus.s, 20, "E1") == 0);
    hub_expire(h, clock_now_ms() + 2500);
    CHECK(s.room_states == 2);
    s.room_cb(s.room_arg, -EIO, NULL, 0); /* no answer: asked again later */
    hub_expire(h, clock_now_ms() + 5000);
    CHECK(s.room_states == 3);
    s.room_cb(s.room_arg, 0, "E1", 12);
    msg *m = lb_pop(&bogus);
    CHECK(m && m->gap);
    if (m) {
        msg_bytes info = msg_data(m);
        CHECK(strstr(info.base, "\"reason\":\"epoch\"") != NULL);
        CHECK(strstr(info.base, "\"since\":20") != NULL);
    }
    msg_unref(m);
    CHECK(got_range(&bogus, 1, 12));
    message(h, "r", "E1", 13);
    CHECK(got_range(&bogus, 13, 13));
    CHECK(got_range(&real, 13, 13));
    hub_leave(h, &real.s);
    hub_leave(h, &bogus.s);
    hub_destroy(h);
    sub_fini(&real.s);
    sub_fini(&bogus.s);
}

static bool events_on(void *arg, const char *room)
{
    (void)arg, (void)room;
    return true;
}

/* The presence events of l's queue, as one text ("" when none); drains it. */
static void presence_text(loopback *l, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    msg *m;
    while ((m = lb_pop(l)) != NULL) {
        if (m->presence) {
            msg_bytes b = msg_get(m, MSG_FMT_JSON, NULL);
            n += (size_t)snprintf(out + n, cap - n, "%.*s", (int)b.len, b.base);
        }
        msg_unref(m);
    }
}

/* Presence events published before this node subscribed to a room's
 * channel: the node reads who is present elsewhere when its presence in
 * the room begins (the base), has who is present now published on the
 * channel once subscribed (the sync), passes by the events before it and
 * tells its members the difference, then the events after it. With no
 * sync in PRESENCE_SYNC_MS it goes on with the events as they come. */
static void test_presence_catch_up(void)
{
    script_bp s;
    memset(&s, 0, sizeof(s));
    s.base.ops = &script_ops;
    snprintf(s.base.node_id, sizeof(s.base.node_id), "NODEA");
    hub_options opt = {.history_size = 100, .history_ttl_ms = 60000, .presence_events = events_on};
    hub *h = hub_create(&opt);
    hub_set_backplane(h, &s.base);
    hub_bp_link(h, true);
    loopback a, b;
    lb_init(&a, SUB_WS, 100);
    lb_init(&b, SUB_WS, 100);
    CHECK(sub_set_identity(&a.s, "ann", NULL) == 0);
    CHECK(sub_set_identity(&b.s, "bob", NULL) == 0);
    CHECK(hub_join(h, "r", &a.s, 0, true) == 0);
    CHECK(s.syncs_base == 1 && s.syncs == 0);
    CHECK(hub_join(h, "r", &b.s, 0, true) == 0);
    CHECK(s.syncs_base == 1); /* once, when this node's presence began */
    hub_bp_presence_base(h, "r", "[\"old\",\"gone\"]", 14);
    CHECK(s.syncs == 0);                  /* not subscribed yet */
    hub_bp_presence(h, "r", "zed", true); /* before the sync: in it */
    hub_bp_subscribed(h, "r");
    fetched(h, "r", "E1", 0, 0, 0);
    CHECK(s.syncs == 1);
    hub_bp_presence(h, "r", "zed", true); /* still before the sync */
    const char now[] = "[\"old\",\"ann\",\"bob\",\"zed\"]";
    hub_bp_presence_synced(h, "r", now, sizeof(now) - 1);
    hub_bp_presence(h, "r", "eve", true); /* after it: as it comes */
    hub_presence_tick(h, clock_now_ms());
    char text[1024];
    presence_text(&a, text, sizeof(text));
    CHECK_STR(text, "{\"presence\":[{\"user\":\"ann\",\"action\":\"join\"},"
                    "{\"user\":\"bob\",\"action\":\"join\"},"
                    "{\"user\":\"zed\",\"action\":\"join\"},"
                    "{\"user\":\"gone\",\"action\":\"leave\"},"
                    "{\"user\":\"eve\",\"action\":\"join\"}]}");
    presence_text(&b, text, sizeof(text));
    CHECK(strstr(text, "zed") && strstr(text, "eve"));
    /* a room whose sync never comes goes on with the events after the bound */
    loopback c;
    lb_init(&c, SUB_WS, 100);
    CHECK(sub_set_identity(&c.s, "cat", NULL) == 0);
    CHECK(hub_join(h, "q", &c.s, 0, true) == 0);
    CHECK(s.syncs_base == 2);
    hub_bp_presence(h, "q", "zed", true);
    hub_presence_tick(h, clock_now_ms());
    presence_text(&c, text, sizeof(text));
    CHECK_STR(text, "");
    hub_presence_tick(h, clock_now_ms() + 6000);
    hub_bp_presence(h, "q", "eve", true);
    hub_presence_tick(h, clock_now_ms() + 6100);
    presence_text(&c, text, sizeof(text));
    CHECK_STR(text, "{\"presence\":{\"user\":\"eve\",\"action\":\"join\"}}");
    hub_leave(h, &a.s);
    hub_leave(h, &b.s);
    hub_leave(h, &c.s);
    hub_destroy(h);
    sub_fini(&a.s);
    sub_fini(&b.s);
    sub_fini(&c.s);
}

TEST_MAIN("hub_backplane", TEST(test_pending_join_then_fetch), TEST(test_holes_and_duplicates),
          TEST(test_waiting_bytes_bound), TEST(test_origin_rules), TEST(test_epoch_changes),
          TEST(test_publish_paths), TEST(test_join_callbacks), TEST(test_absurd_wall_clocks),
          TEST(test_lagging_resume), TEST(test_lagging_resume_hole),
          TEST(test_lagging_resume_bound), TEST(test_presence_catch_up))
