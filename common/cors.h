/* SPDX-License-Identifier: MIT */
/*
 * cors.h - which web origins may use crier from a browser (cfg cors,
 * README "Origins and CORS"): the policy only, no HTTP library. The
 * libmicrohttpd carrier (transports/carriers/http_cors.c) turns it into
 * CORS headers and preflight answers; the acceptor (gateway/server.c)
 * checks a WebSocket handshake's Origin with it.
 *
 * Threading: cors_init runs on the main thread at start, before any
 * connection is served; everything else only reads and is safe from any
 * thread.
 */
#ifndef CRIER_CORS_H
#define CRIER_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/cfg.h"

/* The request headers a preflight allows: what crier.js and the official
 * SignalR client send (Content-Type is text/plain, already safe, but an
 * application may send JSON). */
#define CORS_ALLOW_HEADERS                                                                         \
    "Authorization, Content-Type, X-Requested-With, X-SignalR-User-Agent, Last-Event-ID"
/* The response headers a page may read besides the always-safe ones. */
#define CORS_EXPOSE_HEADERS "Retry-After, X-Crier-Connection-Id"
/* What the CORS headers of a reply to an allowed Origin take besides the
 * Origin echoed: the names, Vary, Allow-Credentials, Expose-Headers. */
#define CORS_REPLY_BYTES 160

/* Uses c's cors section, which must outlive every use. Main thread, at
 * start; may be called again (tests). */
void cors_init(const cfg *c);

/* cors.allowed_origins is set: Origin is checked and answered. When it is
 * not, crier sends no CORS headers and takes any WebSocket Origin. */
bool cors_enabled(void);

/* origin (len bytes) is allowed: cors.allowed_origins lists it (ASCII case
 * ignored) or lists "*". False when cors is not enabled. */
bool cors_origin_allowed(const char *origin, size_t len);

/* The Access-Control-Allow-Origin answer is "*" (the list has "*" and
 * cors.allow_credentials is false); else it is the request's Origin,
 * with Vary: Origin. */
bool cors_answer_wildcard(void);

bool cors_allow_credentials(void); /* cors.allow_credentials */
unsigned cors_max_age_s(void);     /* cors.max_age_s */

/* origin names the host the request was sent to: it is "http://" or
 * "https://" followed by host (the Host header's value), ASCII case
 * ignored. A page crier serves itself (chat.html) is such a page. */
bool cors_same_origin(const char *origin, size_t olen, const char *host, size_t hlen);

#endif
