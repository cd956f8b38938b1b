/* SPDX-License-Identifier: MIT */
/*
 * sse.h - Server-Sent Events streams on libmicrohttpd: the plain room
 * stream (GET /rooms/{room}/events), and sse_stream for any sub, which the
 * SignalR transport uses too. Handlers run on the MHD thread; sse_keepalive
 * and sse_shutdown may be called from any thread.
 */
#ifndef CRIER_SSE_H
#define CRIER_SSE_H

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"

void sse_init(const cfg *c, hub *h);

/* GET /rooms/{room}/events */
enum MHD_Result sse_handle(http_call *call);

/* Frees a stream's state; the route's completed hook for every stream. */
void sse_completed(void *state);

/* MHD thread, in a handler's first call: answers with an event stream that
 * starts with hello, then drains s (already set up: fmt, membership) until
 * the client leaves, s is dropped or ends. ended(session) runs on the MHD
 * thread when the stream is over; after it the stream no longer touches s. */
enum MHD_Result sse_stream(http_call *call, sub *s, const char *hello,
                           void (*ended)(void *session), void *session);

/* Streams open now. Any thread. */
unsigned sse_streams(void);

/* Sends a keep-alive comment on every stream. */
void sse_keepalive(void);

/* Ends every stream and lets none suspend again. */
void sse_shutdown(void);

#endif
