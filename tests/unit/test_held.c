/* SPDX-License-Identifier: MIT */
/*
 * test_held.c - unit tests for the registry of held connections
 * (transports/carriers/held.c): counts by kind, removal (twice, or of one
 * never added), the walk of one kind only, and a kind's shutdown, which
 * walks it and makes held_add say so from then on while the other kind
 * goes on as before. The registry is process-wide: the shutdown test runs
 * last.
 */
#include "tests/unit/test.h"
#include "transports/carriers/held.h"

/* A walk's hook: counts the owners it saw, and marks which of a, b, c. */
typedef struct seen {
    unsigned n;
    void *owners[3];
    bool hit[3];
} seen;

static void mark(void *owner, void *arg)
{
    seen *s = arg;
    for (int i = 0; i < 3; i++)
        if (s->owners[i] == owner)
            s->hit[i] = true;
    s->n++;
}

static void test_count_and_remove(void)
{
    held a, b, c;
    held_init(&a, HELD_STREAM, &a);
    held_init(&b, HELD_STREAM, &b);
    held_init(&c, HELD_POLL, &c);
    held_remove(&a); /* never added: a no-op */
    CHECK(held_count(HELD_STREAM) == 0);
    CHECK(!held_add(&a));
    CHECK(!held_add(&b));
    CHECK(!held_add(&c));
    CHECK(held_count(HELD_STREAM) == 2);
    CHECK(held_count(HELD_POLL) == 1);
    held_remove(&a);
    held_remove(&a); /* twice: a no-op */
    CHECK(held_count(HELD_STREAM) == 1);
    held_remove(&b);
    held_remove(&c);
    CHECK(held_count(HELD_STREAM) == 0);
    CHECK(held_count(HELD_POLL) == 0);
}

static void test_walk_one_kind(void)
{
    held a, b, c;
    held_init(&a, HELD_STREAM, &a);
    held_init(&b, HELD_STREAM, &b);
    held_init(&c, HELD_POLL, &c);
    held_add(&a);
    held_add(&b);
    held_add(&c);
    seen s = {.owners = {&a, &b, &c}};
    held_for_each(HELD_STREAM, mark, &s);
    CHECK(s.n == 2 && s.hit[0] && s.hit[1] && !s.hit[2]);
    s = (seen){.owners = {&a, &b, &c}};
    held_for_each(HELD_POLL, mark, &s);
    CHECK(s.n == 1 && !s.hit[0] && !s.hit[1] && s.hit[2]);
    held_remove(&b);
    s = (seen){.owners = {&a, &b, &c}};
    held_for_each(HELD_STREAM, mark, &s);
    CHECK(s.n == 1 && s.hit[0] && !s.hit[1]);
    held_remove(&a);
    held_remove(&c);
}

static void test_shutdown(void)
{
    held a, b, c;
    held_init(&a, HELD_POLL, &a);
    held_init(&b, HELD_POLL, &b);
    held_init(&c, HELD_STREAM, &c);
    CHECK(!held_add(&a));
    seen s = {.owners = {&a, &b, &c}};
    held_shutdown(HELD_POLL, mark, &s);
    CHECK(s.n == 1 && s.hit[0]);
    CHECK(held_add(&b)); /* shutting down: registered, and the caller told */
    CHECK(held_count(HELD_POLL) == 2);
    CHECK(!held_add(&c)); /* streams go on */
    held_remove(&a);
    held_remove(&b);
    held_remove(&c);
    CHECK(held_count(HELD_POLL) == 0);
    CHECK(held_count(HELD_STREAM) == 0);
}

TEST_MAIN("held", TEST(test_count_and_remove), TEST(test_walk_one_kind), TEST(test_shutdown))
