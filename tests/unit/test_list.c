/* SPDX-License-Identifier: MIT */
/*
 * test_list.c - unit tests for common/list.h: order of pushes, removal from
 * the front, middle and back, removal while iterating, and an unlinked
 * node's removal being a no-op.
 */
#include "common/list.h"
#include "tests/unit/test.h"

typedef struct item {
    int v;
    list_node link;
} item;

/* The values of head in order, as a string of digits. */
static const char *values(list_node *head)
{
    static char out[32];
    size_t n = 0;
    list_for_each_safe (it, next, head) {
        if (n < sizeof(out) - 1)
            out[n++] = (char)('0' + list_entry(it, item, link)->v);
    }
    out[n] = '\0';
    return out;
}

static void test_push_and_order(void)
{
    list_node head = LIST_INIT(head);
    item a = {1, {0}}, b = {2, {0}}, c = {3, {0}};
    CHECK(list_empty(&head));
    CHECK(list_first(&head) == NULL);
    list_push_back(&head, &b.link);
    list_push_back(&head, &c.link);
    list_push_front(&head, &a.link);
    CHECK(!list_empty(&head));
    CHECK_STR(values(&head), "123");
    CHECK(list_first(&head) == &a.link);
    CHECK(list_linked(&b.link));
}

static void test_remove(void)
{
    list_node head;
    list_init(&head);
    item it[4] = {{1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}};
    for (int i = 0; i < 4; i++)
        list_push_back(&head, &it[i].link);
    list_remove(&it[1].link); /* middle */
    CHECK_STR(values(&head), "134");
    CHECK(!list_linked(&it[1].link));
    list_remove(&it[1].link); /* again: a no-op */
    CHECK_STR(values(&head), "134");
    list_remove(&it[0].link); /* front */
    list_remove(&it[3].link); /* back */
    CHECK_STR(values(&head), "3");
    list_remove(&it[2].link);
    CHECK(list_empty(&head));
}

static void test_remove_while_iterating(void)
{
    list_node head = LIST_INIT(head);
    item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        list_push_back(&head, &it[i].link);
    }
    list_for_each_safe (n, next, &head) {
        if (list_entry(n, item, link)->v % 2 == 0)
            list_remove(n);
    }
    CHECK_STR(values(&head), "13");
}

/* list_move_all: every node, in order, to a fresh head; the old head is
 * left empty and usable; an empty list moves to an empty head. */
static void test_move_all(void)
{
    list_node from = LIST_INIT(from), to;
    list_move_all(&to, &from);
    CHECK(list_empty(&to));
    CHECK(list_empty(&from));
    item it[3];
    for (int i = 0; i < 3; i++) {
        it[i].v = i;
        list_push_back(&from, &it[i].link);
    }
    list_move_all(&to, &from);
    CHECK(list_empty(&from));
    CHECK_STR(values(&to), "012");
    list_remove(&it[1].link);
    CHECK_STR(values(&to), "02");
    list_push_back(&from, &it[1].link);
    CHECK_STR(values(&from), "1");
}

TEST_MAIN("list", TEST(test_push_and_order), TEST(test_remove), TEST(test_remove_while_iterating),
          TEST(test_move_all))
