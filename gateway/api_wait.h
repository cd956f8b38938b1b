/* SPDX-License-Identifier: MIT */
/*
 * api_wait.h - an HTTP API request answered later, from another thread (the
 * backplane's, the hub's, the timer's): the request is suspended until its
 * answer is in, listed so that the timer answers it 504 past its deadline
 * (api_wait_tick) and shutdown answers it 503 (api_wait_shutdown):
 * libmicrohttpd must not be stopped with a request still suspended. Used by
 * api.c, api_rooms.c, presence_api.c and users_api.c; the route's completed
 * hook must be api_wait_completed. Private to gateway/.
 *
 * A request's state (*call->state) is its api_wait, with the handler's own
 * data after it (api_wait_data). Two references: the request's (dropped by
 * api_wait_completed) and, once sent, the answer's (dropped by
 * api_wait_answer or api_wait_cancel); the data is freed with the last.
 *
 * Threading: api_wait_new, api_wait_send, api_wait_start, api_wait_reply
 * and api_wait_cancel on the request's MHD thread; api_wait_answer on any
 * thread, with no lock held. api_wait.c's wait_lock is taken with no other
 * lock held.
 */
#ifndef CRIER_API_WAIT_H
#define CRIER_API_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "transports/carriers/http_call.h"

typedef struct api_wait api_wait;

/* The request's state, with data_size zeroed bytes of data (data_free, if
 * any, frees what they own, with the last reference); *call->state is set.
 * One reference, the request's. NULL on ENOMEM. */
api_wait *api_wait_new(http_call *call, size_t data_size, void (*data_free)(void *data));

/* The handler's data. */
void *api_wait_data(api_wait *w);

/* True once api_wait_send ran (a resumed request: its answer is in). */
bool api_wait_sent(const api_wait *w);

/* The request is handed on: takes the answer's reference. Past wait_ms
 * while suspended the timer answers 504 {"error": late_text} (a string
 * constant); late_text NULL: no deadline (the answerer has its own). */
void api_wait_send(api_wait *w, int64_t wait_ms, const char *late_text);

/* api_wait_new and api_wait_send at once. */
api_wait *api_wait_start(http_call *call, size_t data_size, void (*data_free)(void *data),
                         int64_t wait_ms, const char *late_text);

/* The answer: status and text (JSON, malloc'd, taken; NULL: out of memory,
 * the connection is closed). Once; the first answer wins. Drops the
 * answer's reference. */
void api_wait_answer(api_wait *w, unsigned status, char *text);

/* api_wait_answer with {"error": error} and a Retry-After header of
 * retry_after_s seconds (a refusal the client may try again later). */
void api_wait_answer_retry(api_wait *w, unsigned status, const char *error, unsigned retry_after_s);

/* Any thread: true once the request is answered, or its client is gone
 * (nobody waits for an answer any more). */
bool api_wait_is_answered(api_wait *w);

/* api_wait_answer with a JSON value (taken; NULL: out of memory). */
void api_wait_answer_json(api_wait *w, unsigned status, json_t *body);

/* {"error": text}, for api_wait_answer_json. */
json_t *api_wait_error(const char *text);

/* No answer will come (it was given at once): drops the answer's reference. */
void api_wait_cancel(api_wait *w);

/* MHD thread: replies when the answer is in, else suspends the request
 * until it is. */
enum MHD_Result api_wait_reply(http_call *call, api_wait *w);

/* The completed hook of every route whose state is an api_wait. */
void api_wait_completed(void *state);

/* Timer thread: answers 504 the requests waiting past their deadline. */
void api_wait_tick(int64_t now_ms);

/* Answers 503 every request still waiting, and lets none wait from now on.
 * Main thread, before http_stop. */
void api_wait_shutdown(void);

#endif
