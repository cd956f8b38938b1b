/* SPDX-License-Identifier: MIT */
/*
 * sendq.c - bounded ring of message refs (see sendq.h). Callers hold the
 * owning subscriber's lock.
 */
#include "hub/sendq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "hub/backlog.h"

void sendq_init(sendq *q, size_t limit)
{
    memset(q, 0, sizeof(*q));
    q->limit = limit;
    atomic_init(&q->listed, false);
    atomic_init(&q->progress_ms, 0);
    list_init(&q->link);
}

void sendq_pace(sendq *q)
{
    q->mark = q->limit / 2 ? q->limit / 2 : 1;
}

/* A message was added: past the mark, q is behind. */
static void grew(sendq *q)
{
    if (q->mark && !q->behind && q->count > q->mark) {
        q->behind = true;
        backlog_enter(q, clock_now_ms());
    }
}

/* A message went: progress, or back at the mark. */
static void shrank(sendq *q)
{
    if (!q->behind)
        return;
    if (q->count <= q->mark) {
        q->behind = false;
        backlog_leave(q);
    } else {
        backlog_progress(q, clock_now_ms());
    }
}

static int grow(sendq *q)
{
    size_t cap = q->cap ? q->cap * 2 : 4;
    msg **slots = malloc(cap * sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < q->count; i++)
        slots[i] = q->slots[(q->head + i) % q->cap];
    free(q->slots);
    q->slots = slots;
    q->cap = cap;
    q->head = 0;
    return 0;
}

int sendq_push_over_limit(sendq *q, msg *m)
{
    if (q->count == q->cap) {
        int rc = grow(q);
        if (rc)
            return rc;
    }
    q->slots[(q->head + q->count) % q->cap] = msg_ref(m);
    q->count++;
    grew(q);
    return 0;
}

int sendq_push_front(sendq *q, msg *m)
{
    if (q->count == q->cap) {
        int rc = grow(q);
        if (rc)
            return rc;
    }
    q->head = (q->head + q->cap - 1) % q->cap;
    q->slots[q->head] = msg_ref(m);
    q->count++;
    grew(q);
    return 0;
}

int sendq_push(sendq *q, msg *m)
{
    if (q->count >= q->limit)
        return -ENOBUFS;
    return sendq_push_over_limit(q, m);
}

msg *sendq_peek(const sendq *q)
{
    return q->count ? q->slots[q->head] : NULL;
}

msg *sendq_at(const sendq *q, size_t i)
{
    return i < q->count ? q->slots[(q->head + i) % q->cap] : NULL;
}

void sendq_pop(sendq *q)
{
    if (!q->count)
        return;
    msg_unref(q->slots[q->head]);
    q->head = (q->head + 1) % q->cap;
    q->count--;
    shrank(q);
    if (!q->count && q->cap > 16) {
        /* After a burst, give the memory back; a few slots stay so that a
         * subscriber that keeps up does not allocate per message. */
        free(q->slots);
        q->slots = NULL;
        q->cap = q->head = 0;
    }
}

void sendq_clear(sendq *q)
{
    if (q->behind) {
        q->behind = false;
        backlog_leave(q);
    }
    while (q->count)
        sendq_pop(q);
    free(q->slots);
    q->slots = NULL;
    q->cap = q->head = 0;
}
