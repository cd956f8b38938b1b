/* SPDX-License-Identifier: MIT */
/*
 * http_call.h - the libmicrohttpd carrier's request/response API: one call
 * of a handler (http_call), replies, bounded request bodies, the client's
 * address. What transports and gateway/api.c need from MHD; the daemons
 * and the dispatch of requests to handlers are gateway/http.c's, which
 * registers what only it knows with http_call_init.
 *
 * Threading: every function here runs on the MHD thread of the request's
 * connection (gateway/http.c has three daemons, one thread each).
 */
#ifndef CRIER_HTTP_CALL_H
#define CRIER_HTTP_CALL_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/access.h"
#include "common/buf.h"

/* One call of a handler. state is the handler's per-request pointer: NULL on
 * the first call (headers only), kept across calls, handed to the endpoint's
 * completed() when MHD is done with the request. who is who the request
 * proved to be (common/access.h; NULL: anonymous, or auth is off), checked
 * against the route before any handler runs (gateway/guard.h): borrowed for
 * the request's life; a handler that keeps it longer takes a reference. */
typedef struct http_call {
    struct MHD_Connection *conn;
    const char *method;
    const void *arg; /* the SignalR hub of a hub path; else the request path */
    const char *room;
    bool first; /* the call with the headers only: early checks, no answer but errors */
    const char *upload;
    size_t *upload_size;
    void **state;
    access_principal *who;
} http_call;

typedef enum MHD_Result (*http_handler)(http_call *call);
typedef void (*http_completed)(void *state);

/* What only the owner of the daemons knows, registered once at start
 * (before any daemon runs). */
typedef struct http_call_hooks {
    /* True when conn's daemon serves one request per connection: every
     * reply then says "Connection: close" (the stream daemon). */
    bool (*one_request)(struct MHD_Connection *conn);
    /* http_abort's work: answers outside MHD and has the connection closed
     * (the daemons' watchdog owns the socket's state). */
    enum MHD_Result (*abort)(struct MHD_Connection *conn, unsigned status, const char *error);
    /* Who the request being served on conn is, for log lines: the user
     * (access_user_label), or NULL when auth is off (not logged then). */
    const char *(*user_label)(struct MHD_Connection *conn);
    /* "METHOD /path" (no query) of the request being served on conn, for
     * log lines; NULL when not known. */
    const char *(*request_line)(struct MHD_Connection *conn);
} http_call_hooks;

/* Registers hooks (copied) and cfg trust_proxy. Main thread, at start. */
void http_call_init(const http_call_hooks *hooks, bool trust_proxy);

/* Queues r on conn: every response goes out through here, so that a
 * stream daemon connection ends with its one response and every response
 * has its CORS headers (http_cors.h). */
enum MHD_Result http_queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r);

/* Frees r's header records, for a response whose header block has been
 * built (a content reader runs only after that): libmicrohttpd 0.9.75 reads
 * them only to build the block (and footers, which crier never adds), and
 * an idle event stream would hold them (some 650 bytes) for its life. On
 * the MHD thread of the connection r is queued on. */
void http_forget_headers(struct MHD_Response *r);

/* Queues r (NULL: MHD_NO) with Content-Type content_type (NULL: none) and
 * Cache-Control: no-store, then drops the caller's reference to r. */
enum MHD_Result http_queue_uncached(struct MHD_Connection *conn, unsigned status,
                                    struct MHD_Response *r, const char *content_type);

/* True when the request's Accept header mentions text/event-stream (a
 * substring match, as the acceptor's request_head reads it). */
bool http_wants_event_stream(struct MHD_Connection *conn);

/* Replies with a copy of body (JSON). */
enum MHD_Result http_reply_json(struct MHD_Connection *conn, unsigned status, const char *body,
                                size_t len);

/* The client's address for a log line: the peer's, or with trust_proxy the
 * one nginx reports (client_addr.h). */
void http_client_addr(struct MHD_Connection *conn, char *out, size_t cap);

/* Replies with {"error":"..."} and logs it once, with the client's address
 * and, with auth on, its user (404s at debug level, the rest at info). */
enum MHD_Result http_reply_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* http_reply_error with one more response header (e.g. Allow, Upgrade). */
enum MHD_Result http_reply_error_with(struct MHD_Connection *conn, unsigned status,
                                      const char *header, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* 404 {"error":"no such endpoint: <url>"}, the url cut to JSON_ECHO_MAX. */
enum MHD_Result http_reply_not_found(struct MHD_Connection *conn, const char *url);

/* A request body being received, bounded. */
typedef struct http_body {
    buf b;
    bool too_big; /* more than the limit came: answered 413 (http_abort) */
} http_body;

/* Ends a request whose body is still arriving (MHD 0.9.75 queues no
 * response then): writes {"error": error} with status and Connection:
 * close straight to the socket, logs it, and returns MHD_NO for the
 * handler to return, so that MHD closes the connection without reading the
 * rest. MHD thread of the request. */
enum MHD_Result http_abort(struct MHD_Connection *conn, unsigned status, const char *error);

/* Takes the piece of body MHD offers in this call (and marks it consumed).
 * Past limit bytes it sets too_big, answers 413 (http_abort) and returns
 * false; the handler returns MHD_NO then. Also false on ENOMEM. */
bool http_body_take(http_body *body, http_call *call, size_t limit);

/* Replies with body, malloc'd, which it takes (and frees, even on failure);
 * body may be NULL when len is 0. */
enum MHD_Result http_reply_take(struct MHD_Connection *conn, unsigned status,
                                const char *content_type, char *body, size_t len);

/* Replies with no body (e.g. 200, 202, 204). */
enum MHD_Result http_reply_empty(struct MHD_Connection *conn, unsigned status);

/* A refusal by a resource limit: {"error": error} (built with jansson) and,
 * when retry_after_s is not 0, a Retry-After header. Logs nothing: limits.c
 * logs a limit's refusals once per burst. */
enum MHD_Result http_reply_refused(struct MHD_Connection *conn, unsigned status,
                                   unsigned retry_after_s, const char *error);

#endif
