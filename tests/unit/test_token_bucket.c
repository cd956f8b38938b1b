/* SPDX-License-Identifier: MIT */
/*
 * test_token_bucket.c - unit tests for common/token_bucket.c: a new bucket
 * is full, refills at per_s up to burst and no further, says how long to
 * wait, and rounds that up to whole seconds for Retry-After.
 */
#include "common/token_bucket.h"
#include "tests/unit/test.h"

static void test_full_at_first(void)
{
    token_bucket b = {0};
    int64_t t = 5000;
    for (int i = 0; i < 4; i++)
        CHECK(token_bucket_take(&b, 1, 4, t) == 0);
    CHECK(token_bucket_take(&b, 1, 4, t) == 1000); /* 1 a second: the next in 1 s */
    CHECK(token_bucket_take(&b, 1, 4, t + 999) == 1);
    CHECK(token_bucket_take(&b, 1, 4, t + 1000) == 0);
}

static void test_refill_capped_at_burst(void)
{
    token_bucket b = {0};
    token_bucket_fill(&b, 2, 0);
    CHECK(token_bucket_take(&b, 10, 2, 0) == 0);
    CHECK(token_bucket_take(&b, 10, 2, 0) == 0);
    CHECK(token_bucket_take(&b, 10, 2, 0) == 100); /* 10 a second */
    CHECK(token_bucket_take(&b, 10, 2, 50) == 50);
    /* An hour later: two tokens, not 36000. */
    CHECK(token_bucket_take(&b, 10, 2, 3600000) == 0);
    CHECK(token_bucket_take(&b, 10, 2, 3600000) == 0);
    CHECK(token_bucket_take(&b, 10, 2, 3600000) > 0);
}

static void test_fast_rates(void)
{
    token_bucket b = {0};
    /* 3000 a second: a token every third of a millisecond; waits round up to 1 ms. */
    for (int i = 0; i < 5; i++)
        CHECK(token_bucket_take(&b, 3000, 5, 0) == 0);
    CHECK(token_bucket_take(&b, 3000, 5, 0) == 1);
    for (int i = 0; i < 3; i++)
        CHECK(token_bucket_take(&b, 3000, 5, 1) == 0);
    CHECK(token_bucket_take(&b, 3000, 5, 1) == 1);
}

static void test_zero_counts_as_one(void)
{
    token_bucket b = {0};
    CHECK(token_bucket_take(&b, 0, 0, 0) == 0);
    CHECK(token_bucket_take(&b, 0, 0, 0) == 1000);
}

static void test_clock_going_back_is_harmless(void)
{
    token_bucket b = {0};
    CHECK(token_bucket_take(&b, 1, 1, 10000) == 0);
    CHECK(token_bucket_take(&b, 1, 1, 5000) > 0); /* no refill, no negative wait */
    CHECK(token_bucket_take(&b, 1, 1, 11000) == 0);
}

static void test_wait_seconds(void)
{
    CHECK(token_bucket_wait_s(0) == 0);
    CHECK(token_bucket_wait_s(-5) == 0);
    CHECK(token_bucket_wait_s(1) == 1);
    CHECK(token_bucket_wait_s(1000) == 1);
    CHECK(token_bucket_wait_s(1001) == 2);
    CHECK(token_bucket_wait_s(INT64_MAX) == UINT32_MAX);
}

TEST_MAIN("token_bucket", TEST(test_full_at_first), TEST(test_refill_capped_at_burst),
          TEST(test_fast_rates), TEST(test_zero_counts_as_one),
          TEST(test_clock_going_back_is_harmless), TEST(test_wait_seconds))
