/* SPDX-License-Identifier: MIT */
/*
 * test_history.c - unit tests for hub/history.c: eviction past the size,
 * history_since at every position, TTL expiry, size/ttl 0 and wrap-around.
 */
#include "hub/history.h"
#include "tests/unit/test.h"

#include <stdbool.h>

#define NMSG 64

static msg *msgs[NMSG + 1]; /* msgs[i] has id i, created at 1000 + 10 * i */

static void make_msgs(void)
{
    for (uint64_t i = 1; i <= NMSG; i++)
        msgs[i] = msg_create(i, "h", "0", 1, NULL, 1000 + 10 * (int64_t)i);
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

/* h holds exactly the ids first..last, in order. */
static bool holds(const history *h, uint64_t first, uint64_t last)
{
    if (h->count != last - first + 1 || history_first_id(h) != first)
        return false;
    for (size_t i = 0; i < h->count; i++) {
        msg *m = history_at(h, i);
        if (!m || m->id != first + i || m != msgs[first + i])
            return false;
    }
    return history_at(h, h->count) == NULL;
}

/* history_since(since) gives n messages starting with id want_first. */
static void check_since(const history *h, uint64_t since, size_t want_n, uint64_t want_first)
{
    size_t first = 12345;
    size_t n = history_since(h, since, &first);
    if (n != want_n)
        fprintf(stderr, "  since %llu: got %zu, want %zu\n", (unsigned long long)since, n, want_n);
    CHECK(n == want_n);
    if (want_n) {
        msg *m = history_at(h, first);
        CHECK(m && m->id == want_first);
        msg *last = history_at(h, first + n - 1);
        CHECK(last && last->id == history_first_id(h) + h->count - 1);
        CHECK(history_at(h, first + n) == NULL);
    } else {
        CHECK(first == 0);
    }
}

static void test_empty(void)
{
    history h;
    history_init(&h, 10, 1000);
    CHECK(h.count == 0);
    CHECK(history_first_id(&h) == 0);
    CHECK(history_at(&h, 0) == NULL);
    check_since(&h, 0, 0, 0);
    check_since(&h, 5, 0, 0);
    history_expire(&h, 1000000);
    history_clear(&h);
    CHECK(h.size == 10 && h.ttl_ms == 1000);
}

static void test_push_and_evict(void)
{
    make_msgs();
    history h;
    history_init(&h, 5, 1000000);
    for (size_t i = 1; i <= 5; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    CHECK(holds(&h, 1, 5));
    CHECK(refs(msgs[1]) == 2);
    CHECK(history_push(&h, msgs[6]) == 0);
    CHECK(holds(&h, 2, 6));
    CHECK(refs(msgs[1]) == 1); /* the evicted one's ref is dropped */
    CHECK(refs(msgs[6]) == 2);
    for (size_t i = 7; i <= 13; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    CHECK(holds(&h, 9, 13));
    for (size_t i = 1; i <= 8; i++)
        CHECK(refs(msgs[i]) == 1);
    history_clear(&h);
    CHECK(h.count == 0 && history_first_id(&h) == 0);
    for (size_t i = 1; i <= NMSG; i++)
        CHECK(refs(msgs[i]) == 1);
    /* Usable after a clear. */
    CHECK(history_push(&h, msgs[20]) == 0);
    CHECK(holds(&h, 20, 20));
    history_clear(&h);
    free_msgs();
}

static void test_order_after_wrap_and_growth(void)
{
    make_msgs();
    history h;
    history_init(&h, 20, 1000000); /* grows 8, 16, 20 slots */
    bool ok = true;
    for (uint64_t i = 1; i <= NMSG; i++) {
        ok &= history_push(&h, msgs[i]) == 0;
        ok &= holds(&h, i > 20 ? i - 19 : 1, i);
    }
    CHECK(ok);
    CHECK(holds(&h, NMSG - 19, NMSG));
    history_clear(&h);

    history_init(&h, 3, 1000000);
    for (uint64_t i = 1; i <= 10; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    CHECK(holds(&h, 8, 10));
    CHECK(history_at(&h, 0)->id == 8);
    CHECK(history_at(&h, 2)->id == 10);
    CHECK(history_at(&h, 3) == NULL);
    history_clear(&h);
    free_msgs();
}

static void test_since(void)
{
    make_msgs();
    history h;
    history_init(&h, 5, 1000000);
    for (size_t i = 1; i <= 5; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    check_since(&h, 0, 5, 1); /* before the first */
    check_since(&h, 1, 4, 2);
    check_since(&h, 3, 2, 4); /* in the middle */
    check_since(&h, 4, 1, 5);
    check_since(&h, 5, 0, 0); /* at the last */
    check_since(&h, 6, 0, 0); /* beyond */
    check_since(&h, 99, 0, 0);
    check_since(&h, UINT64_MAX, 0, 0);

    /* After eviction the oldest kept is 8: anything older gives all kept. */
    for (size_t i = 6; i <= 12; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    CHECK(holds(&h, 8, 12));
    check_since(&h, 0, 5, 8);
    check_since(&h, 3, 5, 8);
    check_since(&h, 7, 5, 8);
    check_since(&h, 8, 4, 9);
    check_since(&h, 10, 2, 11);
    check_since(&h, 11, 1, 12);
    check_since(&h, 12, 0, 0);
    check_since(&h, 13, 0, 0);
    history_clear(&h);
    free_msgs();
}

static void test_ttl_expire(void)
{
    make_msgs(); /* created at 1010, 1020, 1030, ... */
    history h;
    history_init(&h, 10, 100);
    for (size_t i = 1; i <= 5; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    history_expire(&h, 1109); /* drops created <= 1009: none */
    CHECK(holds(&h, 1, 5));
    history_expire(&h, 1110); /* <= 1010: id 1 */
    CHECK(holds(&h, 2, 5));
    CHECK(refs(msgs[1]) == 1);
    history_expire(&h, 1135); /* <= 1035: ids 2, 3 */
    CHECK(holds(&h, 4, 5));
    check_since(&h, 0, 2, 4);
    check_since(&h, 4, 1, 5);
    history_expire(&h, 1135); /* idempotent */
    CHECK(holds(&h, 4, 5));
    history_expire(&h, 1150); /* <= 1050: all */
    CHECK(h.count == 0);
    CHECK(history_first_id(&h) == 0);
    check_since(&h, 0, 0, 0);
    for (size_t i = 1; i <= 5; i++)
        CHECK(refs(msgs[i]) == 1);
    /* Usable again after everything expired. */
    for (size_t i = 6; i <= 8; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    CHECK(holds(&h, 6, 8));
    history_expire(&h, 1000); /* a clock before every message: nothing goes */
    CHECK(holds(&h, 6, 8));
    history_clear(&h);

    /* Expiry after wrap-around. */
    history_init(&h, 4, 100);
    for (size_t i = 1; i <= 10; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    CHECK(holds(&h, 7, 10));
    history_expire(&h, 1180); /* <= 1080: ids 7, 8 */
    CHECK(holds(&h, 9, 10));
    CHECK(history_push(&h, msgs[11]) == 0);
    CHECK(history_push(&h, msgs[12]) == 0);
    CHECK(history_push(&h, msgs[13]) == 0);
    CHECK(holds(&h, 10, 13));
    history_clear(&h);

    /* Expiry moves the oldest off slot 0; the ring then grows (8 -> 16
     * slots) with its head in the middle. */
    history_init(&h, 20, 100);
    for (size_t i = 1; i <= 5; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    history_expire(&h, 1120); /* <= 1020: ids 1, 2 */
    CHECK(holds(&h, 3, 5));
    for (size_t i = 6; i <= 15; i++)
        CHECK(history_push(&h, msgs[i]) == 0);
    CHECK(holds(&h, 3, 15));
    check_since(&h, 9, 6, 10);
    history_clear(&h);
    for (size_t i = 1; i <= NMSG; i++)
        CHECK(refs(msgs[i]) == 1);
    free_msgs();
}

static void test_keeps_nothing(void)
{
    make_msgs();
    history h;
    history_init(&h, 0, 1000);
    CHECK(history_push(&h, msgs[1]) == 0);
    CHECK(history_push(&h, msgs[2]) == 0);
    CHECK(h.count == 0);
    CHECK(history_first_id(&h) == 0);
    CHECK(refs(msgs[1]) == 1);
    check_since(&h, 0, 0, 0);
    history_clear(&h);

    history_init(&h, 10, 0);
    CHECK(history_push(&h, msgs[1]) == 0);
    CHECK(history_push(&h, msgs[2]) == 0);
    CHECK(h.count == 0);
    CHECK(history_at(&h, 0) == NULL);
    CHECK(refs(msgs[1]) == 1);
    check_since(&h, 0, 0, 0);
    history_expire(&h, 5000);
    history_clear(&h);
    free_msgs();
}

/* bytes and *total: each kept message counts msg_footprint plus its ring
 * slot; every way out (eviction for size, drop_oldest, expiry, clear) takes
 * exactly that back; clear keeps total. */
static void test_bytes(void)
{
    make_msgs();
    size_t total = 0;
    history h;
    history_init(&h, 3, 1000000);
    h.total = &total;
    size_t one = msg_footprint(msgs[1]) + sizeof(msg *);
    CHECK(one > sizeof(msg) + msgs[1]->json_len);
    CHECK(history_push(&h, msgs[1]) == 0);
    CHECK(h.bytes == one && total == one);
    CHECK(history_push(&h, msgs[2]) == 0 && history_push(&h, msgs[3]) == 0);
    CHECK(history_push(&h, msgs[4]) == 0); /* evicts 1 */
    CHECK(h.bytes == total && total == 3 * one);
    history_drop_oldest(&h);
    CHECK(holds(&h, 3, 4) && total == 2 * one);
    history_expire(&h, 1000 + 10 * 3 + 1000000); /* 3 goes */
    CHECK(holds(&h, 4, 4) && total == one);
    history_clear(&h);
    CHECK(h.bytes == 0 && total == 0 && h.total == &total && h.size == 3);
    history_drop_oldest(&h); /* empty: nothing */
    CHECK(total == 0);
    free_msgs();
}

TEST_MAIN("history", TEST(test_empty), TEST(test_push_and_evict),
          TEST(test_order_after_wrap_and_growth), TEST(test_since), TEST(test_ttl_expire),
          TEST(test_keeps_nothing), TEST(test_bytes))
