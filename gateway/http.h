/* SPDX-License-Identifier: MIT */
/*
 * http.h - the libmicrohttpd side of the port: the daemons, the dispatch of
 * requests to the handlers the router names (router.h, routes.h), and the
 * watchdog of kept-alive connections. The
 * handlers' request/response API (http_call, replies, bodies) is the
 * carrier's: transports/carriers/http_call.h.
 *
 * Threading: each of MHD's three daemons runs its own polling thread; a
 * handler runs on the thread of its connection's daemon. http_adopt and
 * http_connections may be called from any thread.
 */
#ifndef CRIER_HTTP_H
#define CRIER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/cfg.h"

/* Starts the daemons. The handlers were given the hub before (server.c
 * init_protocols). */
int http_start(const cfg *c);

/* libmicrohttpd's daemons (http.c). Any request is served right by any of
 * them; the acceptor chooses by what the first request of a connection
 * asks for, so that subscribers and publishers do not wait on each other. */
typedef enum {
    HTTP_MAIN,    /* publishes, room info, SignalR negotiate and sends, pages */
    HTTP_STREAMS, /* event streams whose headers are small: a 4 KiB pool */
    HTTP_POLLS,   /* long polls */
    HTTP_DAEMONS
} http_daemon;

/* What libmicrohttpd keeps of a request head in a connection's pool: the
 * block (len bytes, fields header fields) and, for Cookie headers, a copy
 * of their values (cookie_bytes) and a record per cookie (cookie_pairs). */
typedef struct http_head_size {
    size_t len;
    unsigned fields;
    size_t cookie_bytes;
    unsigned cookie_pairs;
} http_head_size;

/* The limits.max_header_bytes rule: the block, every field past the 16th
 * counting 64 bytes more. Only the acceptor asks. */
bool http_head_within_limit(const http_head_size *hs);

/* Can libmicrohttpd parse the head, and answer it, within a connection's
 * memory pool on daemon d? The main daemon's pool takes every head within
 * the limit whose cookies need no more than limits.max_header_bytes besides.
 * Only the acceptor asks. */
bool http_headers_fit(const http_head_size *hs, http_daemon d);

/* Hands an accepted socket, whose request has not been read, to daemon d.
 * Any thread. On failure MHD has closed fd. Returns 0 or -1. */
int http_adopt(int fd, const struct sockaddr *addr, socklen_t addr_len, http_daemon d);

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

/* Any thread: about how many heap bytes the connections MHD closed since
 * the last call gave back (each its pool and some CONN_HEAP_BYTES of
 * MHD's and crier's per-connection state), for memtrim.h; resets it. */
size_t http_take_freed(void);

/* Timer thread: closes connections that have waited longer than
 * limits.header_timeout_s for their next request to arrive. */
void http_tick(int64_t now_ms);

#endif
