/* SPDX-License-Identifier: MIT */
/*
 * test_hub_threads.c - the hub under threads: publisher threads publish to
 * a few rooms while member threads join ("from now"), resume (after a
 * cursor, with its epoch), drain and leave, and a timer thread calls
 * hub_expire and hub_get_stats, for a bounded count of messages. Then:
 * every member got its room's messages in strictly increasing, consecutive
 * ids with no duplicate, a gap only where a gap signal said so; members
 * that stayed all along got every message of their room; room ids, stats
 * and history bytes agree. Built and run under TSan too
 * (build/tsan/unit/test_hub_threads, `make tsan-unit`, tests/run.sh tsan).
 */
#include "common/clock.h"
#include "hub/hub.h"
#include "tests/unit/loopback_sub.h"
#include "tests/unit/test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define ROOMS 3
#define PUBLISHERS 3
#define MEMBER_THREADS 3
#define PER_PUBLISHER 1500     /* messages each publisher sends */
#define HISTORY_SIZE 64        /* small: resumes from old cursors meet gaps */
#define HISTORY_BUDGET 16384   /* history.max_bytes: evictions happen */
#define QUEUE_LIMIT (1u << 16) /* never reached: nobody is dropped */

static hub *h;
static const char *const room_names[ROOMS] = {"t0", "t1", "t2"};
static atomic_uint_fast64_t published[ROOMS];
static atomic_int publishers_done;
static atomic_int threads_ready; /* publishers start once every member thread joined once */
static atomic_uint failures;     /* checks failed on a member thread */
static atomic_uint joins_done;

#define THREAD_CHECK(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
            atomic_fetch_add(&failures, 1);                                                        \
        }                                                                                          \
    } while (0)

/* A member as its thread checks it: the next id it may get. */
typedef struct member {
    loopback lb;
    int room;
    uint64_t expect;           /* the id the next message must have */
    uint64_t got;              /* messages received (gaps not counted) */
    char epoch[MSG_EPOCH_MAX]; /* the room's epoch, from the join's answer */
    bool joined;
} member;

static void joined_cb(void *arg, int rc, const char *epoch, uint64_t last_id)
{
    member *m = arg;
    THREAD_CHECK(rc == 0);
    snprintf(m->epoch, sizeof(m->epoch), "%s", epoch);
    m->expect = last_id + 1; /* "from now": the room's last id is the cursor */
}

static void *publisher(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (atomic_load(&threads_ready) < MEMBER_THREADS)
        sched_yield();
    for (int i = 0; i < PER_PUBLISHER; i++) {
        int room = (int)(rand_r(&seed) % ROOMS);
        char data[64];
        int n = snprintf(data, sizeof(data), "{\"p\":%u,\"i\":%d}", (unsigned)(uintptr_t)arg, i);
        uint64_t id = 0;
        int rc = hub_publish(h, room_names[room], data, (size_t)n, NULL, &id);
        THREAD_CHECK(rc == 0 && id > 0);
        atomic_fetch_add(&published[room], 1);
    }
    atomic_fetch_add(&publishers_done, 1);
    return NULL;
}

/* Pops everything queued to m, checking the order; returns how many. */
static size_t drain(member *m)
{
    size_t n = 0;
    msg *x;
    while ((x = lb_pop(&m->lb)) != NULL) {
        if (x->gap) {
            /* a gap signal: its id is the cursor to go on from */
            THREAD_CHECK(x->id + 1 > m->expect); /* only "expired": it skips ahead */
            m->expect = x->id + 1;
        } else {
            THREAD_CHECK(x->id == m->expect);          /* increasing, no duplicate, no silent gap */
            THREAD_CHECK(!strcmp(x->epoch, m->epoch)); /* this room's, in its numbering */
            m->expect = x->id + 1;
            m->got++;
        }
        msg_unref(x);
        n++;
    }
    return n;
}

/* Joins m "from now". Without a backplane the join's answer (joined_cb,
 * with the cursor) comes before hub_join_ex returns, so before m drains. */
static void join_now(member *m)
{
    lb_init(&m->lb, SUB_WS, QUEUE_LIMIT);
    m->expect = 0;
    hub_join_args a = {.from_now = true, .done = joined_cb, .done_arg = m};
    int rc = hub_join_ex(h, room_names[m->room], &m->lb.s, &a);
    THREAD_CHECK(rc == 0 && m->expect > 0);
    m->joined = rc == 0;
    atomic_fetch_add(&joins_done, 1);
}

/* Resumes m after cursor (in m->epoch): replay, maybe a gap signal, live. */
static void resume_at(member *m, uint64_t cursor)
{
    lb_init(&m->lb, SUB_SSE, QUEUE_LIMIT);
    int rc = hub_resume(h, room_names[m->room], &m->lb.s, cursor, m->epoch[0] ? m->epoch : NULL);
    THREAD_CHECK(rc == 0);
    m->expect = cursor + 1;
    m->joined = rc == 0;
}

static void leave(member *m)
{
    hub_leave(h, &m->lb.s);
    drain(m); /* what was queued before the leave is still in order */
    sub_fini(&m->lb.s);
    m->joined = false;
}

typedef struct member_thread {
    int index;
    member stayer; /* joined before the publishers start, left after they end */
} member_thread;

static void *member_main(void *arg)
{
    member_thread *t = arg;
    unsigned seed = 1000u + (unsigned)t->index;
    member *churn = calloc(1, sizeof(*churn));
    if (!churn) {
        atomic_fetch_add(&failures, 1);
        return NULL;
    }
    churn->room = t->index % ROOMS;
    join_now(churn);
    atomic_fetch_add(&threads_ready, 1);
    while (atomic_load(&publishers_done) < PUBLISHERS) {
        drain(&t->stayer);
        if (!churn->joined) {
            if (rand_r(&seed) % 2 && churn->epoch[0]) { /* the same room, from before */
                uint64_t back = rand_r(&seed) % (2 * HISTORY_SIZE);
                uint64_t last = churn->expect > back ? churn->expect - 1 - back : 0;
                resume_at(churn, last);
            } else {
                churn->room = (int)(rand_r(&seed) % ROOMS);
                join_now(churn);
            }
        } else {
            drain(churn);
            if (rand_r(&seed) % 8 == 0)
                leave(churn);
        }
    }
    if (churn->joined)
        leave(churn);
    free(churn);
    return NULL;
}

static void *timer_main(void *arg)
{
    (void)arg;
    while (atomic_load(&publishers_done) < PUBLISHERS) {
        hub_expire(h, clock_now_ms());
        hub_stats st;
        hub_get_stats(h, &st);
        THREAD_CHECK(st.history_bytes <= HISTORY_BUDGET);
        sched_yield();
    }
    return NULL;
}

static void test_publishers_and_members_on_threads(void)
{
    hub_options opt = {
        .history_size = HISTORY_SIZE, .history_ttl_ms = 60000, .history_max_bytes = HISTORY_BUDGET};
    h = hub_create(&opt);
    CHECK(h != NULL);
    if (!h)
        return;
    member_thread mt[MEMBER_THREADS];
    memset(mt, 0, sizeof(mt));
    for (int i = 0; i < MEMBER_THREADS; i++) {
        mt[i].index = i;
        mt[i].stayer.room = i % ROOMS;
        join_now(&mt[i].stayer);
    }
    pthread_t pub[PUBLISHERS], mem[MEMBER_THREADS], timer;
    for (int i = 0; i < MEMBER_THREADS; i++)
        CHECK(pthread_create(&mem[i], NULL, member_main, &mt[i]) == 0);
    CHECK(pthread_create(&timer, NULL, timer_main, NULL) == 0);
    for (int i = 0; i < PUBLISHERS; i++)
        CHECK(pthread_create(&pub[i], NULL, publisher, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < PUBLISHERS; i++)
        pthread_join(pub[i], NULL);
    for (int i = 0; i < MEMBER_THREADS; i++)
        pthread_join(mem[i], NULL);
    pthread_join(timer, NULL);

    CHECK(atomic_load(&failures) == 0);
    CHECK(atomic_load(&joins_done) > MEMBER_THREADS);
    /* Every member that stayed got every message of its room, in order. */
    for (int i = 0; i < MEMBER_THREADS; i++) {
        member *m = &mt[i].stayer;
        drain(m);
        CHECK(m->got == atomic_load(&published[m->room]));
        CHECK(m->expect == atomic_load(&published[m->room]) + 1);
        CHECK(!m->lb.s.dropped && m->lb.bad_lock == 0);
        leave(m);
    }
    CHECK(atomic_load(&failures) == 0);

    /* The rooms' ids and the stats agree with what was published. */
    uint64_t total = 0;
    for (int r = 0; r < ROOMS; r++) {
        room_info info;
        CHECK(hub_room_info(h, room_names[r], &info) == 0);
        CHECK(info.last_id == atomic_load(&published[r]));
        for (int k = 0; k < SUB_KIND_COUNT; k++)
            CHECK(info.subscribers[k] == 0);
        total += atomic_load(&published[r]);
    }
    CHECK(total == (uint64_t)PUBLISHERS * PER_PUBLISHER);
    hub_stats st;
    hub_get_stats(h, &st);
    CHECK(st.published == total);
    CHECK(st.dropped == 0);
    CHECK(st.history_bytes > 0 && st.history_bytes <= HISTORY_BUDGET);
    for (int k = 0; k < SUB_KIND_COUNT; k++)
        CHECK(st.subscribers[k] == 0);
    /* Expiring everything frees every byte the histories counted. */
    hub_expire(h, INT64_MAX / 2);
    hub_get_stats(h, &st);
    CHECK(st.history_bytes == 0);
    hub_destroy(h);
}

int main(void)
{
    static const test_case tests[] = {
        TEST(test_publishers_and_members_on_threads),
    };
    return test_run("hub_threads", tests, sizeof(tests) / sizeof(tests[0]));
}
