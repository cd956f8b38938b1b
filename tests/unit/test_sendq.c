/* SPDX-License-Identifier: MIT */
/*
 * test_sendq.c - unit tests for hub/sendq.c: the limit (-ENOBUFS), FIFO order
 * across wrap-around and growth, push_over_limit, and the refs it holds.
 */
#include "hub/sendq.h"
#include "tests/unit/test.h"

#include <errno.h>

#define NMSG 200

static msg *msgs[NMSG + 1]; /* msgs[i] has id i */

static void make_msgs(void)
{
    for (uint64_t i = 1; i <= NMSG; i++)
        msgs[i] = msg_create(i, "q", "0", 1, NULL, 0);
}

static void free_msgs(void)
{
    for (size_t i = 1; i <= NMSG; i++) {
        msg_unref(msgs[i]);
        msgs[i] = NULL;
    }
}

static unsigned refs(const msg *m)
{
    return atomic_load(&m->refs);
}

/* Every test message is held by the test alone. */
static bool all_refs_one(void)
{
    for (size_t i = 1; i <= NMSG; i++)
        if (refs(msgs[i]) != 1)
            return false;
    return true;
}

/* Pops the head and returns its id, 0 when empty. */
static uint64_t pop_id(sendq *q)
{
    msg *m = sendq_peek(q);
    if (!m)
        return 0;
    uint64_t id = m->id;
    sendq_pop(q);
    return id;
}

static void test_empty(void)
{
    sendq q;
    sendq_init(&q, 10);
    CHECK(sendq_is_empty(&q));
    CHECK(sendq_peek(&q) == NULL);
    CHECK(q.slots == NULL); /* no heap until the first push */
    sendq_pop(&q);          /* no-op */
    CHECK(sendq_is_empty(&q));
    sendq_clear(&q);
    CHECK(sendq_is_empty(&q));
}

static void test_limit(void)
{
    make_msgs();
    sendq q;
    sendq_init(&q, 5);
    for (size_t i = 1; i <= 5; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    CHECK(q.count == 5);
    CHECK(sendq_push(&q, msgs[6]) == -ENOBUFS);
    CHECK(sendq_push(&q, msgs[6]) == -ENOBUFS);
    CHECK(q.count == 5);
    CHECK(refs(msgs[6]) == 1); /* a refused push takes no ref */
    for (size_t i = 1; i <= 5; i++)
        CHECK(refs(msgs[i]) == 2);
    CHECK(pop_id(&q) == 1);
    CHECK(refs(msgs[1]) == 1);
    CHECK(sendq_push(&q, msgs[6]) == 0); /* room again */
    CHECK(sendq_push(&q, msgs[7]) == -ENOBUFS);
    for (uint64_t want = 2; want <= 6; want++)
        CHECK(pop_id(&q) == want);
    CHECK(sendq_is_empty(&q));
    CHECK(sendq_peek(&q) == NULL);
    sendq_clear(&q);
    CHECK(all_refs_one());

    sendq_init(&q, 0);
    CHECK(sendq_push(&q, msgs[1]) == -ENOBUFS);
    CHECK(sendq_is_empty(&q));
    sendq_clear(&q);
    CHECK(all_refs_one());
    free_msgs();
}

/* Pushes pushes messages and pops pops of them per round, so the head moves
 * around the ring while it grows through 4, 8, 16, 32, 64 slots. */
static void check_fifo(size_t pushes, size_t pops)
{
    make_msgs();
    sendq q;
    sendq_init(&q, NMSG);
    uint64_t next_push = 1, next_pop = 1;
    bool ok = true;
    while (next_push <= NMSG) {
        for (size_t i = 0; i < pushes && next_push <= NMSG; i++)
            ok &= sendq_push(&q, msgs[next_push++]) == 0;
        for (size_t i = 0; i < pops && next_pop < next_push; i++) {
            ok &= sendq_peek(&q) == msgs[next_pop];
            ok &= pop_id(&q) == next_pop++;
        }
        ok &= q.count == next_push - next_pop;
    }
    while (next_pop < next_push)
        ok &= pop_id(&q) == next_pop++;
    CHECK(ok);
    CHECK(next_pop == NMSG + 1);
    CHECK(sendq_is_empty(&q));
    CHECK(sendq_peek(&q) == NULL);
    sendq_clear(&q);
    CHECK(all_refs_one());
    free_msgs();
}

static void test_fifo_wraparound(void)
{
    check_fifo(3, 2);
    check_fifo(5, 4);
    check_fifo(2, 1);
    check_fifo(7, 3);
    check_fifo(1, 1);
}

static void test_fifo_burst_then_reuse(void)
{
    make_msgs();
    sendq q;
    sendq_init(&q, NMSG);
    /* A burst past 16 slots, drained, then the queue is used again. */
    for (size_t i = 1; i <= 40; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    for (uint64_t want = 1; want <= 40; want++)
        CHECK(pop_id(&q) == want);
    CHECK(sendq_is_empty(&q));
    for (size_t i = 41; i <= 50; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    for (uint64_t want = 41; want <= 50; want++)
        CHECK(pop_id(&q) == want);
    CHECK(pop_id(&q) == 0);
    sendq_clear(&q);
    CHECK(all_refs_one());
    free_msgs();
}

static void test_push_over_limit(void)
{
    make_msgs();
    sendq q;
    sendq_init(&q, 2);
    CHECK(sendq_push(&q, msgs[1]) == 0);
    CHECK(sendq_push(&q, msgs[2]) == 0);
    CHECK(sendq_push(&q, msgs[3]) == -ENOBUFS);
    for (size_t i = 3; i <= 20; i++)
        CHECK(sendq_push_over_limit(&q, msgs[i]) == 0);
    CHECK(q.count == 20);
    CHECK(refs(msgs[20]) == 2);
    CHECK(sendq_push(&q, msgs[21]) == -ENOBUFS); /* still over the limit */
    for (uint64_t want = 1; want <= 18; want++)
        CHECK(pop_id(&q) == want);
    CHECK(q.count == 2);
    CHECK(sendq_push(&q, msgs[21]) == -ENOBUFS); /* at the limit */
    CHECK(pop_id(&q) == 19);
    CHECK(sendq_push(&q, msgs[21]) == 0);
    CHECK(pop_id(&q) == 20);
    CHECK(pop_id(&q) == 21);
    CHECK(pop_id(&q) == 0);
    sendq_clear(&q);
    CHECK(all_refs_one());
    free_msgs();
}

static void test_clear_drops_refs(void)
{
    make_msgs();
    sendq q;
    sendq_init(&q, 100);
    /* Wrap the ring first so clear walks from a head that is not 0. */
    for (size_t i = 1; i <= 3; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    CHECK(pop_id(&q) == 1);
    CHECK(pop_id(&q) == 2);
    for (size_t i = 4; i <= 30; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    CHECK(sendq_push(&q, msgs[5]) == 0); /* the same message twice: two refs */
    CHECK(refs(msgs[5]) == 3);
    CHECK(refs(msgs[1]) == 1);
    CHECK(refs(msgs[3]) == 2);
    sendq_clear(&q);
    CHECK(sendq_is_empty(&q));
    CHECK(sendq_peek(&q) == NULL);
    CHECK(q.slots == NULL);
    CHECK(all_refs_one());
    /* Usable after a clear. */
    CHECK(sendq_push(&q, msgs[7]) == 0);
    CHECK(pop_id(&q) == 7);
    sendq_clear(&q);
    CHECK(all_refs_one());
    free_msgs();

    /* A queue holding the last ref frees the message when cleared (ASan). */
    msg *m = msg_create(1, "q", "0", 1, NULL, 0);
    sendq_init(&q, 4);
    CHECK(sendq_push(&q, m) == 0);
    msg_unref(m);
    CHECK(refs(sendq_peek(&q)) == 1);
    sendq_clear(&q);
}

TEST_MAIN("sendq", TEST(test_empty), TEST(test_limit), TEST(test_fifo_wraparound),
          TEST(test_fifo_burst_then_reuse), TEST(test_push_over_limit), TEST(test_clear_drops_refs))
