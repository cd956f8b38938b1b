/* SPDX-License-Identifier: MIT */
/*
 * plain/sse.h - the plain room protocol over Server-Sent Events
 * (GET /rooms/{room}/events, and the dashboard's /stats/events): the stream
 * joins the room, or resumes it from the client's Last-Event-ID, and
 * carries the room's messages as SSE events (the carrier: carriers/sse.c).
 * Handlers run on the MHD thread of the request.
 */
#ifndef CRIER_PLAIN_SSE_H
#define CRIER_PLAIN_SSE_H

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"

/* Main thread, before the daemons start. */
void plain_sse_init(const cfg *c, hub *h);

/* GET /rooms/{room}/events: call->room is a valid room name. */
enum MHD_Result plain_sse_handle(http_call *call);

/* The route's completed hook: frees the stream. */
void plain_sse_completed(void *state);

#endif
