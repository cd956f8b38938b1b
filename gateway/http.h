/* SPDX-License-Identifier: MIT */
/*
 * http.h - the libmicrohttpd side of the port: the daemon, request routing
 * to the plain endpoints, and reply helpers shared by the HTTP handlers.
 *
 * Threading: each of MHD's three daemons runs its own polling thread; a
 * handler runs on the thread of its connection's daemon. http_adopt and
 * http_connections may be called from any thread.
 */
#ifndef CRIER_HTTP_H
#define CRIER_HTTP_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "hub/hub.h"

/* One call of a handler. state is the handler's per-request pointer: NULL on
 * the first call (headers only), kept across calls, handed to the endpoint's
 * completed() when MHD is done with the request. */
typedef struct http_call {
    struct MHD_Connection *conn;
    const char *method;
    const void *arg; /* the route's argument: the SignalR hub of a hub path */
    const char *room;
    bool first; /* the call with the headers only: early checks, no answer but errors */
    const char *upload;
    size_t *upload_size;
    void **state;
} http_call;

typedef enum MHD_Result (*http_handler)(http_call *call);
typedef void (*http_completed)(void *state);

int http_start(const cfg *c, hub *h);

/* libmicrohttpd's daemons (http.c). Any request is served right by any of
 * them; the acceptor chooses by what the first request of a connection
 * asks for, so that subscribers and publishers do not wait on each other. */
typedef enum {
    HTTP_MAIN,    /* publishes, room info, SignalR negotiate and sends, pages */
    HTTP_STREAMS, /* event streams whose headers are small: a 4 KiB pool */
    HTTP_POLLS,   /* long polls */
    HTTP_DAEMONS
} http_daemon;

/* Can libmicrohttpd parse a request header block of len bytes with fields
 * header fields, and answer it, within a connection's memory pool on
 * daemon d? Only the acceptor asks; for HTTP_MAIN and HTTP_POLLS the answer
 * is the limits.max_header_bytes rule, in which every field past the 16th
 * counts 64 bytes more. */
bool http_headers_fit(size_t len, unsigned fields, http_daemon d);

/* Hands an accepted socket, whose request has not been read, to daemon d.
 * Any thread. On failure MHD has closed fd. Returns 0 or -1. */
int http_adopt(int fd, const struct sockaddr *addr, socklen_t addr_len, http_daemon d);

/* Queues r on conn: every response goes out through here, so that a
 * stream daemon connection ends with its one response. */
enum MHD_Result http_queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r);

/* Waits, at most timeout_ms, until every request the daemons have begun is
 * answered to its end (a released poll's answer or an ended stream is
 * still being written by its daemon's thread). Call it after releasing held
 * requests and before http_stop, which would cut such answers off. */
void http_finish_requests(int timeout_ms);

/* Stops the daemons. Held requests must have been released first (sse.c and
 * longpoll.c: *_shutdown), since MHD 0.9.75 aborts with suspended ones. */
void http_stop(void);

/* Connections MHD holds now. */
unsigned http_connections(void);

/* Timer thread: closes connections that have waited longer than
 * limits.header_timeout_s for their next request to arrive. */
void http_tick(int64_t now_ms);

/* Replies with a copy of body (JSON). */
enum MHD_Result http_reply_json(struct MHD_Connection *conn, unsigned status, const char *body,
                                size_t len);

/* The client's address for a log line: the peer's, or with trust_proxy the
 * one nginx reports (client_addr.h). */
void http_client_addr(struct MHD_Connection *conn, char *out, size_t cap);

/* Replies with {"error":"..."} and logs it once, with the client's address
 * (404s at debug level, the rest at info). */
enum MHD_Result http_reply_error(struct MHD_Connection *conn, unsigned status, const char *fmt,
                                 ...) __attribute__((format(printf, 3, 4)));

/* 404 {"error":"no such endpoint: <url>"}, the url cut to JSON_ECHO_MAX. */
enum MHD_Result http_reply_not_found(struct MHD_Connection *conn, const char *url);

/* A longer request path gets 414 with a JSON error, whatever it names. */
#define HTTP_PATH_MAX 1024
#define HTTP_PATH_MAX_TEXT "1024"

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
