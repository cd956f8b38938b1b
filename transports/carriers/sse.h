/* SPDX-License-Identifier: MIT */
/*
 * sse.h - the Server-Sent Events carrier on libmicrohttpd: a stream that
 * drains one sub, whoever set it up (the plain room stream,
 * transports/plain/sse.c; SignalR's SSE transport). It knows no room and no
 * protocol: the sub's format decides the bytes, the protocol the first
 * line. Handlers run on the MHD thread; sse_keepalive and sse_shutdown may
 * be called from any thread.
 */
#ifndef CRIER_SSE_H
#define CRIER_SSE_H

#include "common/cfg.h"
#include "hub/sub.h"
#include "transports/carriers/http_call.h"

/* MHD thread, in a handler's first call: answers with an event stream that
 * starts with hello, then drains s (already set up: fmt, membership) until
 * the client leaves, s is dropped or ends. ended(session) runs on the MHD
 * thread when the stream is over; after it the stream no longer touches s. */
enum MHD_Result sse_stream(http_call *call, sub *s, const char *hello, void (*ended)(void *session),
                           void *session);

/* Says what a stream writes last when the server ends its sub s
 * (sub_end_with: s->end_reason, s->end_text), after all queued: a whole
 * event (static text, or built in scratch, which the stream owns), or NULL
 * for nothing. Sub lock held. */
typedef const char *(*sse_farewell_fn)(const sub *s, buf *scratch);

/* sse_stream with a farewell (NULL: none). */
enum MHD_Result sse_stream_with(http_call *call, sub *s, const char *hello,
                                sse_farewell_fn farewell, void (*ended)(void *session),
                                void *session);

/* Main thread, before the stream daemon starts: with latency "efficient"
 * starts the flusher thread (coalesce_ms). Returns -1 (logged) on failure. */
int sse_start(const cfg *c);

/* Main thread, after sse_shutdown and before the stream daemon stops: stops
 * the flusher and resumes every stream it still held back. */
void sse_stop(void);

/* Frees a stream's state (*call->state of sse_stream's call); the route's
 * completed hook calls it for every stream. */
void sse_completed(void *state);

/* Streams open now. Any thread. */
unsigned sse_streams(void);

/* Sends a keep-alive comment on every stream. */
void sse_keepalive(void);

/* Ends every stream once what is queued is sent, and lets none suspend
 * again. */
void sse_shutdown(void);

#endif
