/* SPDX-License-Identifier: MIT */
/*
 * loopback_sub.h - a test-only hub member: records wake calls (and whether
 * the sub was dropped or asked to end when woken), and lets a test drain its
 * send queue by hand. Header-only.
 */
#ifndef CRIER_TEST_LOOPBACK_SUB_H
#define CRIER_TEST_LOOPBACK_SUB_H

#include <stdio.h>
#include <string.h>

#include "hub/sub.h"
#include "transports/signalr/encode.h" /* the SignalR formats the hub tests use */

typedef struct loopback {
    sub s; /* first, as in every transport */
    unsigned wakes;
    unsigned drops;        /* wakes that found s.dropped set */
    unsigned ends;         /* wakes that found s.ending set */
    size_t queued_at_wake; /* s.q.count at the last wake */
    void *owner_seen;      /* s.owner at the last wake */
    unsigned bad_lock;     /* wakes called without the sub lock held */
} loopback;

/* The sub's wake hook: called by the hub (or sub_end) with s->lock held. */
static inline void lb_wake(sub *s)
{
    loopback *l = (loopback *)s;
    /* The lock is held by the caller: a trylock must fail. */
    if (pthread_mutex_trylock(&s->lock) == 0) {
        l->bad_lock++;
        pthread_mutex_unlock(&s->lock);
    }
    l->wakes++;
    l->queued_at_wake = s->q.count;
    l->owner_seen = s->owner;
    if (s->dropped)
        l->drops++;
    if (s->ending)
        l->ends++;
}

/* The format of a member of kind k: WebSocket and long-polling members use
 * the JSON envelope, SSE members the SSE encoding. */
static inline msg_fmt lb_fmt(sub_kind k)
{
    return k == SUB_SSE ? MSG_FMT_SSE : MSG_FMT_JSON;
}

/* A member of kind k drained in format fmt, with default SignalR target
 * target (may be NULL), its wake hook attached. */
static inline void lb_init_fmt(loopback *l, sub_kind k, msg_fmt fmt, const char *target,
                               size_t limit)
{
    memset(l, 0, sizeof(*l));
    sub_init(&l->s, k, fmt, limit);
    l->s.target = target;
    pthread_mutex_lock(&l->s.lock);
    sub_attach(&l->s, lb_wake, l);
    pthread_mutex_unlock(&l->s.lock);
}

static inline void lb_init(loopback *l, sub_kind k, size_t limit)
{
    lb_init_fmt(l, k, lb_fmt(k), NULL, limit);
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

/* The bytes m is sent as to l: in l's format, with l's default target. */
static inline msg_bytes lb_bytes(const loopback *l, const msg *m)
{
    return msg_get(m, l->s.fmt, l->s.target);
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
