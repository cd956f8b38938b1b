/* SPDX-License-Identifier: MIT */
/*
 * sub.h - what the hub may call on a room member. Each transport (ws.c,
 * sse.c, longpoll.c) embeds a `sub` as the first member of its connection
 * struct and fills a `sub_ops` table; the hub never sees sockets.
 *
 * Threading: `lock` guards `q`, `closing`, `dropped` and whatever wake-up
 * state the transport keeps beside them. The hub takes it while holding the
 * hub lock (lock order: hub, then sub, then the transport's own locks); the
 * transport's loop takes it alone to drain the queue. `memberships` belongs
 * to the hub lock.
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

typedef struct sub_ops {
    const char *name; /* "websocket" | "sse" | "long_polling" */
    sub_kind kind;
    msg_fmt fmt; /* the encoding this transport sends */
    /* Any thread, sub lock held: messages were queued. Must not block. */
    void (*wake)(sub *s);
    /* Any thread, sub lock held: the hub dropped this member (its queue was
     * full); the transport ends the connection on its own loop. */
    void (*dropped)(sub *s, const char *why);
} sub_ops;

struct sub {
    const sub_ops *ops;
    pthread_mutex_t lock;
    sendq q;
    uint64_t last_id; /* id of the newest message queued, or the join cursor */
    bool dropped;     /* removed by the hub; the transport must close */
    struct membership *memberships; /* hub lock */
};

/* Owner loop. limit: the send queue bound (messages). */
void sub_init(sub *s, const sub_ops *ops, size_t limit);

/* Owner loop, after hub_leave: drops queued messages and the lock. */
void sub_fini(sub *s);

#endif
