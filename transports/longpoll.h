/* SPDX-License-Identifier: MIT */
/*
 * longpoll.h - held HTTP requests on libmicrohttpd: the plain room long
 * poll (GET /rooms/{room}/poll?since=N), and lp_hold for any sub, which the
 * SignalR long-polling transport uses too. Handlers run on the MHD thread;
 * lp_tick, lp_release and lp_shutdown may be called from any thread.
 */
#ifndef CRIER_LONGPOLL_H
#define CRIER_LONGPOLL_H

#include <stdint.h>

#include "gateway/http.h"

typedef struct lp_conn lp_conn;

/* Why a held request is answered. */
typedef enum {
    LP_READY,    /* messages are queued, or the sub was dropped or ended */
    LP_TIMEOUT,  /* its deadline passed */
    LP_RELEASED, /* lp_release or shutdown */
} lp_reason;

typedef struct lp_hold_ops {
    /* MHD thread: answer the request now. The sub is no longer attached. */
    enum MHD_Result (*answer)(http_call *call, void *session, sub *s, lp_reason why);
    /* MHD thread: the request is over; the hold no longer touches s. */
    void (*ended)(void *session);
} lp_hold_ops;

void lp_init(const cfg *c, hub *h);

/* GET /rooms/{room}/poll */
enum MHD_Result lp_handle(http_call *call);

/* Frees a held request's state; the completed hook of every route that
 * holds. */
void lp_completed(void *state);

/* MHD thread, in a handler's first call: answers at once when s has
 * something, else holds the request until it has, timeout_ms passes, or it
 * is released. Sets *call->state; the handler's later calls go to lp_resume.
 * On failure, ended(session) has been called. */
enum MHD_Result lp_hold(http_call *call, sub *s, int64_t timeout_ms, const lp_hold_ops *ops,
                        void *session, lp_conn **out);

/* MHD thread: a held request's handler was called again (it was resumed). */
enum MHD_Result lp_resume(http_call *call);

/* Any thread: answers a held request now (LP_RELEASED). c must be alive:
 * the caller holds the lock of the sub it waits on. */
void lp_release_locked(lp_conn *c);

/* Requests held now. Any thread. */
unsigned lp_held(void);

/* Answers the held requests whose deadline has passed. */
void lp_tick(int64_t now_ms);

/* Answers every held request and lets none wait again. */
void lp_shutdown(void);

#endif
