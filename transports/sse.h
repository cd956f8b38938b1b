/* SPDX-License-Identifier: MIT */
/*
 * sse.h - Server-Sent Events subscribers on libmicrohttpd:
 * GET /rooms/{room}/events. Handlers run on the MHD thread; sse_keepalive
 * and sse_shutdown may be called from any thread.
 */
#ifndef CRIER_SSE_H
#define CRIER_SSE_H

#include "gateway/http.h"

void sse_init(const cfg *c, hub *h);
enum MHD_Result sse_handle(http_call *call);
void sse_completed(void *state);

/* Sends a keep-alive comment on every stream. */
void sse_keepalive(void);

/* Ends every stream and lets none suspend again. */
void sse_shutdown(void);

#endif
