/* SPDX-License-Identifier: MIT */
/*
 * held.c - the registry of held libmicrohttpd connections (see held.h): one
 * list, count and shutting-down flag per kind, each under its kind's lock.
 *
 * Threading: `registry[k].lock` guards the rest of registry[k] and the
 * links of the kind's entries. A walk's hook runs with it held and may take
 * a sub lock (order: registry lock, then sub lock).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/held.h"

#include <pthread.h>

typedef struct held_registry {
    pthread_mutex_t lock;
    list_node list;     /* lock: the registered `held`s */
    unsigned count;     /* lock */
    bool shutting_down; /* lock */
} held_registry;

static held_registry registry[HELD_KIND_COUNT] = {
    [HELD_STREAM] = {PTHREAD_MUTEX_INITIALIZER, LIST_INIT(registry[HELD_STREAM].list), 0, false},
    [HELD_POLL] = {PTHREAD_MUTEX_INITIALIZER, LIST_INIT(registry[HELD_POLL].list), 0, false},
};

void held_init(held *h, held_kind kind, void *owner)
{
    list_init(&h->link);
    h->kind = kind;
    h->owner = owner;
}

bool held_add(held *h)
{
    held_registry *r = &registry[h->kind];
    pthread_mutex_lock(&r->lock);
    list_push_front(&r->list, &h->link);
    r->count++;
    bool shutting_down = r->shutting_down;
    pthread_mutex_unlock(&r->lock);
    return shutting_down;
}

void held_remove(held *h)
{
    held_registry *r = &registry[h->kind];
    pthread_mutex_lock(&r->lock);
    if (list_linked(&h->link)) {
        list_remove(&h->link);
        r->count--;
    }
    pthread_mutex_unlock(&r->lock);
}

unsigned held_count(held_kind kind)
{
    held_registry *r = &registry[kind];
    pthread_mutex_lock(&r->lock);
    unsigned n = r->count;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Registry lock held. */
static void walk_locked(held_registry *r, void (*fn)(void *owner, void *arg), void *arg)
{
    list_for_each_safe (n, next, &r->list) {
        fn(list_entry(n, held, link)->owner, arg);
    }
}

void held_for_each(held_kind kind, void (*fn)(void *owner, void *arg), void *arg)
{
    held_registry *r = &registry[kind];
    pthread_mutex_lock(&r->lock);
    walk_locked(r, fn, arg);
    pthread_mutex_unlock(&r->lock);
}

void held_shutdown(held_kind kind, void (*fn)(void *owner, void *arg), void *arg)
{
    held_registry *r = &registry[kind];
    pthread_mutex_lock(&r->lock);
    r->shutting_down = true;
    walk_locked(r, fn, arg);
    pthread_mutex_unlock(&r->lock);
}
