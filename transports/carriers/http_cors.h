/* SPDX-License-Identifier: MIT */
/*
 * http_cors.h - CORS on the libmicrohttpd carrier: the headers each
 * response gets for an allowed Origin (http_queue adds them, so every
 * endpoint has them), and the answer to a preflight (OPTIONS). Which
 * origins are allowed is common/cors.h's.
 *
 * Threading: the MHD thread of the request's connection.
 */
#ifndef CRIER_HTTP_CORS_H
#define CRIER_HTTP_CORS_H

#include <microhttpd.h>

/* Adds to r, the response to conn's request, what CORS asks for: with an
 * allowed Origin, Access-Control-Allow-Origin (and -Credentials, and
 * -Expose-Headers); Vary: Origin whenever the answer depends on it.
 * Nothing when cors.allowed_origins is empty. */
void http_cors_add(struct MHD_Connection *conn, struct MHD_Response *r);

/* Answers OPTIONS on an endpoint that takes methods ("GET, HEAD"), before
 * any handler or access check (a preflight carries no credentials): 204
 * with Allow and, for an allowed Origin, Access-Control-Allow-Methods,
 * -Headers and -Max-Age (and -Private-Network when asked for); 403 {"error": "origin not allowed"}
 * for an Origin cors.allowed_origins does not allow. Without a list (or an Origin) it is a plain
 * 204 with Allow: no CORS headers. */
enum MHD_Result http_cors_preflight(struct MHD_Connection *conn, const char *methods);

#endif
