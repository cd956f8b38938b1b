/* SPDX-License-Identifier: MIT */
/*
 * test_ratelimit.c - unit tests for common/ratelimit.c: a key's burst,
 * its refill at the rate, Retry-After-style waits, keys apart, and the
 * table's bound (a flood of addresses never grows it).
 */
#include "common/ratelimit.h"
#include "tests/unit/test.h"

#include <stdio.h>

static void test_burst_then_refused(void)
{
    ratelimit *rl = ratelimit_create(64, 2, 3);
    CHECK(rl != NULL);
    if (!rl)
        return;
    int64_t t = 1000;
    CHECK(ratelimit_take(rl, "10.0.0.1", t) == 0);
    CHECK(ratelimit_take(rl, "10.0.0.1", t) == 0);
    CHECK(ratelimit_take(rl, "10.0.0.1", t) == 0);
    int64_t wait = ratelimit_take(rl, "10.0.0.1", t);
    CHECK(wait == 500);                            /* 2 a second: the next token in 500 ms */
    CHECK(ratelimit_take(rl, "10.0.0.2", t) == 0); /* another address: its own bucket */
    CHECK(ratelimit_take(rl, "10.0.0.1", t + 499) > 0);
    CHECK(ratelimit_take(rl, "10.0.0.1", t + 500) == 0);
    CHECK(ratelimit_take(rl, "10.0.0.1", t + 500) > 0);
    /* A long pause refills up to the burst, not beyond. */
    t += 100000;
    for (int i = 0; i < 3; i++)
        CHECK(ratelimit_take(rl, "10.0.0.1", t) == 0);
    CHECK(ratelimit_take(rl, "10.0.0.1", t) > 0);
    ratelimit_destroy(rl);
}

static void test_table_is_bounded(void)
{
    ratelimit *rl = ratelimit_create(100, 1, 1);
    CHECK(rl != NULL);
    if (!rl)
        return;
    char key[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "2001:db8::%x", i);
        CHECK(ratelimit_take(rl, key, 1000 + i) == 0); /* each new: a full bucket */
    }
    CHECK(ratelimit_keys(rl) <= 104); /* 100 rounded up to sets of 8 */
    /* The most recent address is remembered: its bucket is empty. */
    CHECK(ratelimit_take(rl, key, 1000 + 99999) > 0);
    ratelimit_destroy(rl);
}

static void test_long_key_cut(void)
{
    ratelimit *rl = ratelimit_create(8, 1, 1);
    if (!rl)
        return;
    char key[200];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    CHECK(ratelimit_take(rl, key, 1) == 0);
    CHECK(ratelimit_take(rl, key, 1) > 0); /* the same (cut) key: its bucket is empty */
    CHECK(ratelimit_keys(rl) == 1);
    ratelimit_destroy(rl);
}

TEST_MAIN("ratelimit", TEST(test_burst_then_refused), TEST(test_table_is_bounded),
          TEST(test_long_key_cut))
