/* SPDX-License-Identifier: MIT */
/*
 * longpoll.h - the long-poll carrier on libmicrohttpd: a request held on
 * any sub until it has something, its deadline passes or it is released,
 * then answered by its owner (lp_hold_ops). It knows no room and no
 * protocol; the plain room poll (transports/plain/poll.c) and SignalR's
 * long-polling transport both hold their requests here. Handlers run on an
 * MHD thread; lp_tick and lp_shutdown may be called from any thread,
 * lp_release_locked from any thread with the sub lock held.
 */
#ifndef CRIER_LONGPOLL_H
#define CRIER_LONGPOLL_H

#include <stdint.h>

#include "hub/sub.h"
#include "transports/carriers/http_call.h"

typedef struct lp_conn lp_conn;

/* A poll answer (plain or SignalR) stops adding messages past this many
 * bytes (a soft limit: one message alone may pass it); the rest goes with
 * the next poll. */
#define LP_ANSWER_SOFT_MAX (1u << 20)

/* Why a held request is answered. */
typedef enum {
    LP_READY,    /* messages are queued, or the sub was dropped or ended */
    LP_TIMEOUT,  /* its deadline passed */
    LP_RELEASED, /* lp_release_locked or shutdown */
} lp_reason;

typedef struct lp_hold_ops {
    /* MHD thread: answer the request now. The sub is no longer attached. */
    enum MHD_Result (*answer)(http_call *call, void *session, sub *s, lp_reason why);
    /* MHD thread: the request is over; the hold no longer touches s. */
    void (*ended)(void *session);
} lp_hold_ops;

/* Frees a held request's state; the completed hook of every route that
 * holds. */
void lp_completed(void *state);

/* MHD thread, in a handler's first call: makes the hold of a request on s
 * and sets *call->state; the handler's later calls go to lp_resume. The
 * caller may publish the result (under s's lock) and must then call
 * lp_hold at once. On failure (NULL) ended(session) has been called. */
lp_conn *lp_prepare(http_call *call, sub *s, int64_t timeout_ms, const lp_hold_ops *ops,
                    void *session);

/* MHD thread, right after lp_prepare, no sub lock held: answers at once
 * when s has something (or c was released already), else holds the
 * request until it has, its timeout passes, it is released, or its client
 * closes the socket (then it ends without an answer). */
enum MHD_Result lp_hold(http_call *call, lp_conn *c);

/* MHD thread: a held request's handler was called again (it was resumed). */
enum MHD_Result lp_resume(http_call *call);

/* Any thread, s's lock held: answers c now (LP_RELEASED), or at once in
 * lp_hold when it does not wait yet. c must be alive: its owner knows it
 * is until its ended hook (which takes the same lock). */
void lp_release_locked(lp_conn *c);

/* Requests held now. Any thread. */
unsigned lp_held(void);

/* Answers the held requests whose deadline has passed. */
void lp_tick(int64_t now_ms);

/* Answers every held request and lets none wait again. */
void lp_shutdown(void);

#endif
