/* SPDX-License-Identifier: MIT */
/*
 * sendq.h - a subscriber's bounded FIFO of message refs.
 *
 * Not locked itself: the owning subscriber's lock guards it (sub.h). It
 * starts empty with no heap and grows by doubling up to its limit, so an
 * idle connection costs nothing here.
 *
 * A subscriber's queue also takes part in pacing publishers (sendq_pace,
 * backlog.h): past its mark (half its limit) it is "behind" and listed in
 * the fanout backlog until it drains back to the mark.
 */
#ifndef CRIER_SENDQ_H
#define CRIER_SENDQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/list.h"
#include "hub/message.h"

typedef struct sendq {
    msg **slots;
    size_t cap;   /* allocated slots */
    size_t head;  /* index of the oldest */
    size_t count; /* queued messages */
    size_t limit; /* most messages sendq_push accepts */
    /* Pacing (backlog.h); mark 0: the queue takes no part. */
    size_t mark;              /* behind while count > mark */
    bool behind;              /* owner's lock: count > mark */
    atomic_bool listed;       /* backlog lock: in the backlog's list */
    atomic_llong progress_ms; /* when it last gave up a message (or went behind) */
    list_node link;           /* backlog lock: in the backlog's list */
} sendq;

void sendq_init(sendq *q, size_t limit);

/* After sendq_init: q takes part in pacing publishers (a subscriber's
 * queue), with its mark at half its limit. */
void sendq_pace(sendq *q);

/* Appends m, taking a new ref. Returns 0, -ENOBUFS when the queue holds its
 * limit already (the caller drops the subscriber), or -ENOMEM. */
int sendq_push(sendq *q, msg *m);

/* Like sendq_push but past the limit: for replaying history, which is
 * bounded by the history size instead. */
int sendq_push_over_limit(sendq *q, msg *m);

/* Puts m in front of everything queued (takes a new ref), past the limit:
 * for records that must be sent again first (a resumed SignalR
 * connection). Returns 0 or -ENOMEM. */
int sendq_push_front(sendq *q, msg *m);

/* The oldest message, borrowed; NULL when empty. */
msg *sendq_peek(const sendq *q);

/* The i-th queued message, oldest first, borrowed; NULL past the end. */
msg *sendq_at(const sendq *q, size_t i);

/* Drops the oldest message and its ref. */
void sendq_pop(sendq *q);

/* Drops every message and frees the slots. */
void sendq_clear(sendq *q);

static inline bool sendq_is_empty(const sendq *q)
{
    return q->count == 0;
}

#endif
