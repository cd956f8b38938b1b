/* SPDX-License-Identifier: MIT */
/*
 * sub.h - a hub member: a bounded queue of messages for one consumer, in one
 * wire format, and the hook that tells its consumer there is news.
 *
 * Who drains it varies: a plain WebSocket, SSE stream or long poll owns its
 * own sub; a SignalR connection owns one that successive transports attach
 * to (a long poll per request, a stream, a socket). The hub sees neither.
 *
 * Threading: `lock` guards q, last_id, dropped, ending, wake and owner. The hub
 * takes it while holding the hub lock; a consumer takes it alone to drain
 * the queue. Lock order: the held-connection registry (SSE streams, long
 * polls) and the held-socket watcher come before it, then the hub lock,
 * then the sub lock, then only ws.c's pending_lock or the backplane's queue
 * lock (from wake hooks).
 * `memberships` belongs to the hub lock. kind, fmt and target are set before
 * the first hub_join and never change after.
 *
 * Threads and locks: docs/concurrency.md
 */
#ifndef CRIER_SUB_H
#define CRIER_SUB_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hub/message.h"
#include "hub/sendq.h"

typedef enum { SUB_WS, SUB_SSE, SUB_LONGPOLL, SUB_KIND_COUNT } sub_kind;

typedef struct sub sub;

struct sub {
    sub_kind kind;      /* counted per kind in room info */
    uint64_t uid;       /* unique in this process (names it across the backplane) */
    msg_fmt fmt;        /* the encoding queued messages are drained in */
    const char *target; /* SignalR formats: invocation target when a message names none */
    pthread_mutex_t lock;
    sendq q;
    uint64_t last_id; /* id of the newest message queued, or the join cursor */
    bool dropped;     /* the queue overflowed: the hub emptied and unlinked it */
    bool ending;      /* the consumer ends its connection once the queue is drained */
    /* Called by the hub, any thread, lock held, when messages were queued or
     * the sub was dropped. Must not block. NULL while nobody drains. */
    void (*wake)(sub *s);
    void *owner; /* the consumer's own pointer, for wake */
    struct membership *memberships;
};

/* Any thread, before use. limit: the send queue bound (messages). */
void sub_init(sub *s, sub_kind kind, msg_fmt fmt, size_t limit);

/* Sub lock held: sets who is woken. */
static inline void sub_attach(sub *s, void (*wake)(sub *), void *owner)
{
    s->wake = wake;
    s->owner = owner;
}

/* Any thread: asks the consumer to end its connection once it has sent what
 * is queued, and wakes it. */
void sub_end(sub *s);

/* After hub_leave: drops queued messages and the lock. */
void sub_fini(sub *s);

/* "websocket", "sse" or "long_polling". */
const char *sub_kind_name(sub_kind k);

#endif
