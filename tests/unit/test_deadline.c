/* SPDX-License-Identifier: MIT */
/*
 * test_deadline.c - members the server ends (hub/deadline.c, members.c
 * sub_end_with): deadlines fire in order at the sweep, move when set again
 * (a refreshed token), go with sub_fini, and end a member with its reason
 * (ending set and the consumer woken), or only record the reason for a
 * member that ends itself (SignalR).
 */
#include "test.h"

#include "tests/unit/loopback_sub.h"

#define T0 1700000000000LL /* a wall clock in ms */

static void test_sweep_in_order(void)
{
    loopback a, b, c;
    lb_init(&a, SUB_WS, 8);
    lb_init(&b, SUB_SSE, 8);
    lb_init(&c, SUB_LONGPOLL, 8);
    sub_set_deadline(&a.s, T0 + 300, SUB_END_EXPIRED);
    sub_set_deadline(&b.s, T0 + 100, SUB_END_EXPIRED);
    sub_set_deadline(&c.s, T0 + 200, SUB_END_EXPIRED);
    CHECK(sub_deadlines_count() == 3);
    sub_deadlines_sweep(T0 + 99); /* nothing due */
    CHECK(!a.s.ending && !b.s.ending && !c.s.ending && a.wakes + b.wakes + c.wakes == 0);
    sub_deadlines_sweep(T0 + 200); /* b and c, not a */
    CHECK(b.s.ending && b.s.end_reason == SUB_END_EXPIRED && b.ends == 1 && b.bad_lock == 0);
    CHECK(c.s.ending && c.s.end_reason == SUB_END_EXPIRED && c.ends == 1);
    CHECK(!a.s.ending && a.s.end_reason == SUB_END_NONE && a.wakes == 0);
    CHECK(sub_deadlines_count() == 1);
    sub_deadlines_sweep(T0 + 200); /* fired ones are gone */
    CHECK(b.wakes == 1 && c.wakes == 1);
    sub_deadlines_sweep(T0 + 1000);
    CHECK(a.s.ending && a.ends == 1 && sub_deadlines_count() == 0);
    sub_fini(&a.s);
    sub_fini(&b.s);
    sub_fini(&c.s);
}

static void test_move_and_clear(void)
{
    loopback a, b;
    lb_init(&a, SUB_WS, 8);
    lb_init(&b, SUB_WS, 8);
    sub_set_deadline(&a.s, T0 + 100, SUB_END_EXPIRED);
    sub_set_deadline(&b.s, T0 + 200, SUB_END_EXPIRED);
    sub_set_deadline(&a.s, T0 + 500, SUB_END_EXPIRED); /* a refreshed token: later */
    CHECK(sub_deadlines_count() == 2);
    sub_deadlines_sweep(T0 + 300);
    CHECK(!a.s.ending && b.s.ending);
    sub_set_deadline(&a.s, 0, SUB_END_EXPIRED); /* cleared: never */
    CHECK(sub_deadlines_count() == 0);
    sub_deadlines_sweep(T0 + 10000);
    CHECK(!a.s.ending && a.wakes == 0);
    sub_fini(&a.s);
    sub_fini(&b.s);
}

static void test_fini_forgets(void)
{
    loopback l[40];
    for (int i = 0; i < 40; i++) {
        lb_init(&l[i], SUB_WS, 8);
        sub_set_deadline(&l[i].s, T0 + (i * 7919) % 40, SUB_END_EXPIRED);
    }
    CHECK(sub_deadlines_count() == 40);
    for (int i = 0; i < 40; i += 2)
        sub_fini(&l[i].s); /* gone before its time: never fires */
    CHECK(sub_deadlines_count() == 20);
    for (int t = 0; t < 40; t++) { /* the rest fire one by one, in order */
        sub_deadlines_sweep(T0 + t);
        for (int i = 1; i < 40; i += 2)
            CHECK(l[i].s.ending == ((i * 7919) % 40 <= t));
    }
    CHECK(sub_deadlines_count() == 0);
    for (int i = 1; i < 40; i += 2)
        sub_fini(&l[i].s);
}

static void test_end_with(void)
{
    loopback a, b;
    lb_init(&a, SUB_WS, 8);
    lb_init(&b, SUB_WS, 8);
    sub_end_with(&a.s, SUB_END_EXPIRED);
    CHECK(a.s.ending && a.s.end_reason == SUB_END_EXPIRED && a.ends == 1);
    /* A member that ends itself: the reason only, nobody woken. */
    b.s.ends_itself = true;
    sub_end_with(&b.s, SUB_END_EXPIRED);
    CHECK(!b.s.ending && b.s.end_reason == SUB_END_EXPIRED && b.wakes == 0);
    /* sub_end keeps no reason. */
    loopback c;
    lb_init(&c, SUB_WS, 8);
    sub_end(&c.s);
    CHECK(c.s.ending && c.s.end_reason == SUB_END_NONE);
    CHECK_STR(sub_end_reason_text(SUB_END_EXPIRED), "token expired");
    sub_fini(&a.s);
    sub_fini(&b.s);
    sub_fini(&c.s);
}

int main(void)
{
    static const test_case tests[] = {
        TEST(test_sweep_in_order),
        TEST(test_move_and_clear),
        TEST(test_fini_forgets),
        TEST(test_end_with),
    };
    return test_run("deadline", tests, sizeof(tests) / sizeof(tests[0]));
}
