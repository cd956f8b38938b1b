/* SPDX-License-Identifier: MIT */
/*
 * sub.h - a hub member: a bounded queue of messages for one consumer, in one
 * wire format, and the hook that tells its consumer there is news.
 *
 * Who drains it varies: a plain WebSocket, SSE stream or long poll owns its
 * own sub; a SignalR connection owns one that successive transports attach
 * to (a long poll per request, a stream, a socket). The hub sees neither.
 *
 * Ending: sub_end asks the consumer to end once what is queued is sent;
 * sub_end_with does the same for a reason the server has (a token expired:
 * deadline.c sweeps the members that have a deadline), kept in end_reason
 * for the protocol to put on its wire (a WebSocket close code, an SSE
 * error event, a SignalR Close message). A protocol that must say more
 * before the end (SignalR) sets ends_itself: sub_end_with then only
 * records the reason, and the protocol ends the member when it sees it.
 *
 * Threading: `lock` guards q, last_id, dropped, ending, end_reason, wake
 * and owner. The hub takes it while holding the hub lock; a consumer takes
 * it alone to drain the queue. Lock order: the deadline lock (deadline.c),
 * the held-connection registry (SSE streams, long polls) and the
 * held-socket watcher come before it, then the hub lock, then the sub lock,
 * then only ws.c's pending_lock or the backplane's queue lock (from wake
 * hooks).
 * `memberships` belongs to the hub lock. kind, fmt, target and ends_itself
 * are set before the first hub_join and never change after.
 *
 * Identity (hub/users.c): user (the token's sub, NULL anonymous) and
 * conn_id (the connection id the server API names it by) are set by
 * sub_set_identity before the first hub_join and never change after; they
 * are read without a lock. The first successful join registers the member
 * in the hub's registry (user -> members, connection id -> member) and
 * hub_leave takes it out: `registered`, `user_link` and `conn_next` belong
 * to the hub lock.
 *
 * Threads and locks: docs/concurrency.md
 */
#ifndef CRIER_SUB_H
#define CRIER_SUB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "hub/message.h"
#include "hub/sendq.h"

typedef enum { SUB_WS, SUB_SSE, SUB_LONGPOLL, SUB_KIND_COUNT } sub_kind;

typedef struct sub sub;

/* A connection id: 1..SUB_CONN_ID_MAX-1 characters of [A-Za-z0-9_-]
 * (SignalR's connectionId, or SUB_CONN_ID_LEN random ones for a plain
 * connection), and its NUL. */
#define SUB_CONN_ID_MAX 32
#define SUB_CONN_ID_LEN 22

/* The response header that tells a client its connection id (the answer
 * to a WebSocket upgrade, an SSE stream, a long poll). */
#define SUB_CONN_ID_HEADER "X-Crier-Connection-Id"

/* Why the server ends a member (sub_end_with). The protocols map each to
 * their wire; the hub knows no wire. */
typedef enum {
    SUB_END_NONE = 0,     /* not ended by the server (or by sub_end, no reason given) */
    SUB_END_EXPIRED,      /* the token it was opened with expired */
    SUB_END_DISCONNECTED, /* the server API disconnected it; end_text says why */
    SUB_END_REASON_COUNT
} sub_end_reason;

struct sub {
    sub_kind kind;      /* counted per kind in room info */
    uint64_t uid;       /* unique in this process (names it across the backplane) */
    msg_fmt fmt;        /* the encoding queued messages are drained in */
    const char *target; /* SignalR formats: invocation target when a message names none */
    pthread_mutex_t lock;
    sendq q;
    uint64_t last_id;          /* id of the newest message queued, or the join cursor */
    bool dropped;              /* the queue overflowed: the hub emptied and unlinked it */
    bool ending;               /* the consumer ends its connection once the queue is drained */
    sub_end_reason end_reason; /* why the server ends it (sub_end_with); set once */
    bool ends_itself;          /* set before the first hub_join: sub_end_with only records the
                                  reason (and wakes nobody); the protocol ends the member itself */
    char *end_text;            /* the reason's text when the server gave one (sub_end_with_text):
                                  set once with end_reason, under the lock, freed by sub_fini */
    bool multi_room;           /* set before the first hub_join: it can carry several rooms'
                                  messages (a SignalR connection, a plain WebSocket), so the
                                  server API may join it to more (hub_user_op) */
    /* deadline.c, under its own lock: when sub_end_with(deadline_why) is due
     * (ms since the epoch; 0: none) and the member's place in its heap. */
    int64_t deadline_ms;
    sub_end_reason deadline_why;
    size_t deadline_pos;
    /* Called by the hub, any thread, lock held, when messages were queued or
     * the sub was dropped. Must not block. NULL while nobody drains. */
    void (*wake)(sub *s);
    void *owner; /* the consumer's own pointer, for wake */
    struct membership *memberships;
    /* Identity: set by sub_set_identity before the first hub_join. */
    char *user;                    /* the token's sub, owned (sub_fini frees it); NULL: none */
    char conn_id[SUB_CONN_ID_MAX]; /* "" until set */
    bool registered;               /* hub lock: in the hub's user and connection tables */
    list_node user_link;           /* hub lock: in its user's list of members */
    struct sub *conn_next;         /* hub lock: connection-id table chain */
};

/* Any thread, before use. limit: the send queue bound (messages). */
void sub_init(sub *s, sub_kind kind, msg_fmt fmt, size_t limit);

/* Before the first hub_join, no lock: s belongs to user (copied; NULL or
 * "": anonymous) and is named conn_id (copied; NULL: a new random one,
 * sub_new_conn_id). Returns 0, -EINVAL (conn_id not a valid connection id)
 * or -ENOMEM. */
int sub_set_identity(sub *s, const char *user, const char *conn_id);

/* Writes SUB_CONN_ID_LEN random characters of [A-Za-z0-9] and a NUL. */
void sub_new_conn_id(char out[SUB_CONN_ID_MAX]);

/* True for 1..SUB_CONN_ID_MAX-1 characters of [A-Za-z0-9_-]. */
bool sub_conn_id_is_valid(const char *id, size_t len);

/* Sub lock held: sets who is woken. */
static inline void sub_attach(sub *s, void (*wake)(sub *), void *owner)
{
    s->wake = wake;
    s->owner = owner;
}

/* Any thread: asks the consumer to end its connection once it has sent what
 * is queued, and wakes it. */
void sub_end(sub *s);

/* Any thread, no sub lock held: the server ends s for why (not
 * SUB_END_NONE): records the reason (the first one stays) and, unless s
 * ends_itself, sets ending and wakes the consumer, as sub_end does. */
void sub_end_with(sub *s, sub_end_reason why);

/* sub_end_with with the reason's text (copied; NULL: none), which the
 * protocol puts on its wire (SUB_END_DISCONNECTED). The first reason and
 * its text stay. */
void sub_end_with_text(sub *s, sub_end_reason why, const char *text);

/* Any thread, no sub lock held: sub_end_with(s, why) is due at wall_ms (ms
 * since the epoch, clock_wall_ms); 0 clears it. A later call replaces the
 * deadline (a refreshed token extends it). Once fired it is gone. */
void sub_set_deadline(sub *s, int64_t wall_ms, sub_end_reason why);

/* Timer thread (any thread): ends every member whose deadline is at or
 * before now_wall_ms (sub_end_with). O(log n) per member due. */
void sub_deadlines_sweep(int64_t now_wall_ms);

/* Members with a deadline now. Any thread. */
size_t sub_deadlines_count(void);

/* "token expired", ...: a short text for logs and wires that carry one. */
const char *sub_end_reason_text(sub_end_reason why);

/* After hub_leave: drops queued messages, its deadline, its identity and
 * the lock. */
void sub_fini(sub *s);

/* "websocket", "sse" or "long_polling". */
const char *sub_kind_name(sub_kind k);

#endif
