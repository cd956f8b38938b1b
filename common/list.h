/* SPDX-License-Identifier: MIT */
/*
 * list.h - one intrusive doubly-linked list: a list_node inside each
 * element, a list_node as the list's head (circular, so no element is a
 * special case). Header only. No locking: whoever owns the list says which
 * lock guards it, where it declares the head.
 *
 *     typedef struct item { ...; list_node link; } item;
 *     static list_node items = LIST_INIT(items);
 *     list_push_back(&items, &it->link);
 *     list_for_each_safe(n, next, &items) {
 *         item *it = list_entry(n, item, link);
 *         ...
 *     }
 */
#ifndef CRIER_LIST_H
#define CRIER_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node;

/* A head (or an unlinked node) initialised in place: empty. */
#define LIST_INIT(name)                                                                            \
    {                                                                                              \
        &(name), &(name)                                                                           \
    }

/* The element that holds node, a pointer to its member `member`. */
#define list_entry(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* Every node of head, in order; the current one may be removed (not others). */
#define list_for_each_safe(n, tmp, head)                                                           \
    for (list_node *n = (head)->next, *tmp = n->next; n != (head); n = tmp, tmp = n->next)

static inline void list_init(list_node *n)
{
    n->prev = n->next = n;
}

static inline bool list_empty(const list_node *head)
{
    return head->next == head;
}

/* True when n is in a list (list_remove and list_init leave it out). */
static inline bool list_linked(const list_node *n)
{
    return n->next != n;
}

static inline void list_insert_between(list_node *n, list_node *prev, list_node *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

static inline void list_push_front(list_node *head, list_node *n)
{
    list_insert_between(n, head, head->next);
}

static inline void list_push_back(list_node *head, list_node *n)
{
    list_insert_between(n, head->prev, head);
}

/* Takes n out of its list and leaves it unlinked; a no-op on an unlinked
 * node (one initialised with list_init or already removed). A node that
 * was never initialised nor linked (e.g. fresh from calloc) must not be
 * removed. */
static inline void list_remove(list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

/* Moves every node of from, in order, to the empty head to; from is left
 * empty. */
static inline void list_move_all(list_node *to, list_node *from)
{
    list_init(to);
    if (list_empty(from))
        return;
    list_insert_between(to, from->prev, from->next);
    list_init(from);
}

/* The first node, or NULL when the list is empty. */
static inline list_node *list_first(const list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

#endif
