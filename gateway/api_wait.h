/* SPDX-License-Identifier: MIT */
/*
 * api_wait.h - a plain API request answered later, from another thread (the
 * backplane's): api.c's waiting requests (suspended meanwhile, answered 504
 * "the backplane (Redis) did not answer within 10 s" past their deadline by
 * api_tick and 503 at shutdown by api_shutdown), for the other API files'
 * reads (api_rooms.c). The route's completed hook must be
 * api_request_completed. Private to gateway/.
 *
 * Threading: api_wait_start, api_wait_reply and api_wait_cancel on the
 * request's MHD thread; api_wait_answer on any thread, with no lock held.
 */
#ifndef CRIER_API_WAIT_H
#define CRIER_API_WAIT_H

#include "hub/hub.h"
#include "transports/carriers/http_call.h"

/* api_rooms.c's hub, from api_init. Main thread, at start. */
void api_rooms_init(hub *h);

typedef struct publish_req api_wait;

/* Starts waiting: the request's state, with two references (the
 * request's, and the answer's, which api_wait_answer or api_wait_cancel
 * drops). NULL on ENOMEM. */
api_wait *api_wait_start(http_call *call);

/* The answer: status and text (JSON, malloc'd, taken; NULL: out of memory,
 * the connection is closed). Once; the first answer wins. */
void api_wait_answer(api_wait *w, unsigned status, char *text);

/* No answer will come (it was given at once): drops the answer's reference. */
void api_wait_cancel(api_wait *w);

/* MHD thread: replies when the answer is in, else suspends the request
 * until it is. */
enum MHD_Result api_wait_reply(http_call *call, api_wait *w);

#endif
