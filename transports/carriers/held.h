/* SPDX-License-Identifier: MIT */
/*
 * held.h - the registry of held libmicrohttpd connections: every open SSE
 * stream (sse.c) and every held long poll (longpoll.c), by kind. It counts
 * them, walks them for the timer (keep-alives, deadlines) and for the drain,
 * and remembers that a kind is shutting down, so that nothing of it waits
 * again.
 *
 * Threading: any thread. Each kind has its own lock; it guards the kind's
 * list, its count and its shutting-down flag, and every `held.link` of the
 * kind. Lock order: a registry lock comes before any sub lock (the walk's
 * hooks take sub locks); the two registry locks are never held together.
 *
 * Threads and locks: docs/concurrency.md
 */
#ifndef CRIER_HELD_H
#define CRIER_HELD_H

#include <stdbool.h>

#include "common/list.h"

typedef enum {
    HELD_STREAM, /* an SSE stream (sse.c) */
    HELD_POLL,   /* a held long poll (longpoll.c) */
    HELD_KIND_COUNT
} held_kind;

/* A connection's place in the registry, inside the holder's own state. */
typedef struct held {
    list_node link; /* its kind's registry lock */
    held_kind kind; /* set once by held_init */
    void *owner;    /* set once by held_init: what the walk's hook gets */
} held;

/* Before held_add or held_remove: h is not registered. Any thread. */
void held_init(held *h, held_kind kind, void *owner);

/* Registers h. Returns true when its kind is shutting down: h is registered
 * all the same (held_remove takes it out) and the caller ends it at once,
 * since the drain's walk has passed already. */
bool held_add(held *h);

/* Takes h out; a no-op when it is not registered. */
void held_remove(held *h);

/* Connections of kind registered now. */
unsigned held_count(held_kind kind);

/* Calls fn(owner, arg) for every registered connection of kind, with the
 * kind's registry lock held: fn may take the connection's sub lock, and
 * must not add or remove any. */
void held_for_each(held_kind kind, void (*fn)(void *owner, void *arg), void *arg);

/* Marks kind shutting down (held_add says so from now on), then walks it
 * as held_for_each does, in the same locked step. */
void held_shutdown(held_kind kind, void (*fn)(void *owner, void *arg), void *arg);

#endif
