/* SPDX-License-Identifier: MIT */
/*
 * longpoll.h - held HTTP requests on libmicrohttpd: the plain room long
 * poll (GET /rooms/{room}/poll?since=N), and lp_prepare/lp_hold for any sub, which the
 * SignalR long-polling transport uses too. Handlers run on an MHD thread;
 * lp_tick and lp_shutdown may be called from any thread, lp_release_locked
 * from any thread with the sub lock held.
 */
#ifndef CRIER_LONGPOLL_H
#define CRIER_LONGPOLL_H

#include <stdint.h>

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"

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

/* Sub lock held: the cursor a from-now join of s started from, read right
 * after the join (the hub may have queued live messages already). */
uint64_t lp_join_cursor_locked(const sub *s);

/* Sub lock held: takes what s has queued into a plain poll answer,
 * {"gap":...,"messages":[...],"last_id":N,"epoch":"E"}. last_id is the id
 * of the last message in it, or when it has none the sub's cursor; for a
 * dropped sub (whose queue the hub emptied) the client's `cursor` and its
 * `cursor_epoch` ("" or NULL for none: then `epoch`), never past a message
 * it did not get. Returns NULL on ENOMEM. */
char *lp_build_answer(sub *s, uint64_t cursor, const char *cursor_epoch, const char *epoch,
                      size_t *len_out);

/* Requests held now. Any thread. */
unsigned lp_held(void);

/* Answers the held requests whose deadline has passed. */
void lp_tick(int64_t now_ms);

/* Answers every held request and lets none wait again. */
void lp_shutdown(void);

#endif
