/* SPDX-License-Identifier: MIT */
/*
 * publish_pace.h - HTTP publishes that wait for the fanout backlog
 * (hub/backlog.h): while subscribers that read are behind, a publish is
 * parked, not applied; the timer thread lets parked publishes go, oldest
 * first, as soon as the backlog no longer holds, and refuses those that
 * waited limits.publish_wait_ms (their answer: 503 with Retry-After).
 * Used by gateway/api.c (room publishes), gateway/users_api.c (the server
 * API's sends) and, through publish_pace_request (a request suspended while
 * parked), transports/signalr/transports.c and cluster.c (SignalR sends over
 * SSE and long polling, their POSTs, taken here or forwarded to the node
 * that holds the connection).
 *
 * Threading: pace_lock guards the queue of parked publishes; it is taken
 * alone, or before backlog.c's locks (backlog_holding) and libmicrohttpd's
 * (a paced request is suspended under it). go and refuse run with no lock
 * held.
 */
#ifndef CRIER_PUBLISH_PACE_H
#define CRIER_PUBLISH_PACE_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "hub/backlog.h"

/* A parked publish; lives in the caller's request data. */
typedef struct pace_entry {
    list_node link;            /* pace_lock */
    int64_t deadline;          /* monotonic ms: refused past it */
    void (*go)(void *arg);     /* publish now */
    void (*refuse)(void *arg); /* waited too long (or shutting down): answer 503 */
    void *arg;
} pace_entry;

/* Any thread: parks e (deadline, go, refuse and arg set by the caller) when
 * publishes wait (the backlog holds, or others are parked already: they go
 * first), counted as paced of kind; returns false when the publish may go
 * at once (e untouched). */
bool publish_pace_park(pace_entry *e, pace_kind kind);

/* Where a request paced by publish_pace_request stands. */
typedef enum {
    PACE_REQ_NOW,     /* not paced: go on now */
    PACE_REQ_WAIT,    /* parked: the request is suspended (answer MHD_YES) */
    PACE_REQ_WENT,    /* resumed after waiting: went (`go` ran, if any): go on */
    PACE_REQ_REFUSED, /* waited limits.publish_wait_ms, or it is 0, or shutting
                         down: answer 503 with Retry-After, do nothing */
} pace_req_state;

/* An HTTP request parked whole: suspended while it waits, resumed by the
 * timer (main at the drain). Lives in the request's state, zeroed at
 * first; libmicrohttpd does not end a suspended request, so it outlives
 * its entry. */
typedef struct pace_request {
    pace_entry e;
    struct MHD_Connection *conn;
    atomic_int state;      /* pace_req_state: set by the timer before it resumes */
    void (*go)(void *arg); /* timer: the work, before the request is resumed; NULL */
    void *arg;
} pace_request;

/* MHD thread, the request's body in: asks whether it waits (counted as
 * paced of kind), each time the handler is called until it may go on.
 * wait_ms: limits.publish_wait_ms. */
pace_req_state publish_pace_request(pace_request *r, struct MHD_Connection *conn, int64_t wait_ms,
                                    pace_kind kind, void (*go)(void *arg), void *arg);

/* Timer thread: lets parked publishes go while the backlog does not hold,
 * refuses those past their deadline. */
void publish_pace_tick(int64_t now_ms);

/* Main thread, before any thread starts: parked publishes go as soon as a
 * hold ends (hub/backlog.h's release hook wakes publish_pace_sleep), not
 * on the timer's next tick (up to 100 ms later, for each publish paced). */
void publish_pace_init(void);

/* Timer thread: waits ms, running publish_pace_tick each time a hold ends
 * meanwhile while publishes are parked (without publish_pace_init: just
 * sleeps). */
void publish_pace_sleep(int64_t ms);

/* The transport label of crier_publish_paced_total: "http", "websocket",
 * "signalr_http", "server_api". */
const char *pace_kind_name(pace_kind k);

/* Parked publishes now. */
unsigned publish_pace_parked(void);

/* Main thread, before api_wait_shutdown: refuses every parked publish and
 * parks none from now on. */
void publish_pace_shutdown(void);

#endif
