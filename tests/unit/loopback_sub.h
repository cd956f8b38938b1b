/* SPDX-License-Identifier: MIT */
/*
 * loopback_sub.h - a test-only hub member: records wake calls and drop
 * reasons, and lets a test drain its send queue by hand. Header-only.
 */
#ifndef CRIER_TEST_LOOPBACK_SUB_H
#define CRIER_TEST_LOOPBACK_SUB_H

#include <stdio.h>
#include <string.h>

#include "hub/sub.h"

typedef struct loopback {
    sub s; /* first, as in every transport */
    unsigned wakes;
    unsigned drops;
    char why[64]; /* the last drop reason */
} loopback;

static inline void lb_wake(sub *s)
{
    ((loopback *)s)->wakes++;
}

static inline void lb_dropped(sub *s, const char *why)
{
    loopback *l = (loopback *)s;
    l->drops++;
    snprintf(l->why, sizeof(l->why), "%s", why ? why : "(null)");
}

/* The ops of a member of kind k: WebSocket and long-polling members use the
 * JSON envelope, SSE members the SSE encoding. */
static inline const sub_ops *lb_ops(sub_kind k)
{
    static const sub_ops ops[SUB_KIND_COUNT] = {
        [SUB_WS] = {"websocket", SUB_WS, MSG_FMT_JSON, lb_wake, lb_dropped},
        [SUB_SSE] = {"sse", SUB_SSE, MSG_FMT_SSE, lb_wake, lb_dropped},
        [SUB_LONGPOLL] = {"long_polling", SUB_LONGPOLL, MSG_FMT_JSON, lb_wake, lb_dropped},
    };
    return &ops[k];
}

static inline void lb_init(loopback *l, sub_kind k, size_t limit)
{
    memset(l, 0, sizeof(*l));
    sub_init(&l->s, lb_ops(k), limit);
}

static inline size_t lb_count(loopback *l)
{
    pthread_mutex_lock(&l->s.lock);
    size_t n = l->s.q.count;
    pthread_mutex_unlock(&l->s.lock);
    return n;
}

/* The oldest queued message with a new ref (the caller unrefs it), popped
 * from the queue; NULL when the queue is empty. */
static inline msg *lb_pop(loopback *l)
{
    pthread_mutex_lock(&l->s.lock);
    msg *m = sendq_peek(&l->s.q);
    if (m) {
        msg_ref(m);
        sendq_pop(&l->s.q);
    }
    pthread_mutex_unlock(&l->s.lock);
    return m;
}

/* Pops the oldest message and returns its id; 0 when the queue is empty. */
static inline uint64_t lb_pop_id(loopback *l)
{
    msg *m = lb_pop(l);
    uint64_t id = m ? m->id : 0;
    msg_unref(m);
    return id;
}

/* Pops every queued message into ids (up to cap); returns how many were
 * queued. */
static inline size_t lb_drain(loopback *l, uint64_t *ids, size_t cap)
{
    size_t n = 0;
    msg *m;
    while ((m = lb_pop(l)) != NULL) {
        if (n < cap)
            ids[n] = m->id;
        n++;
        msg_unref(m);
    }
    return n;
}

#endif
