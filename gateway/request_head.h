/* SPDX-License-Identifier: MIT */
/*
 * request_head.h - reads and checks the head of an HTTP/1.x request (the
 * request line and the header fields up to the blank line) from bytes the
 * acceptor peeked at, before any library sees them. Pure: no sockets, no
 * library types, no global state; safe from any thread, and fuzzed
 * (tests/fuzz/fuzz_request_head.c).
 *
 * It refuses what lets two parsers disagree on where a request ends
 * (request smuggling): more than one Content-Length, a Content-Length that
 * is not a decimal number, Content-Length with Transfer-Encoding, a
 * Transfer-Encoding other than exactly "chunked", whitespace in or before
 * the colon of a field name, obs-fold continuation lines, bare CR or LF,
 * control characters in field values; more than one Authorization (two
 * credentials, of which each reader might take another). And it checks a
 * WebSocket handshake (RFC 6455 4.2.1) for the acceptor to answer before
 * libwebsockets sees it.
 */
#ifndef CRIER_REQUEST_HEAD_H
#define CRIER_REQUEST_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A run of bytes in the input; len 0 and p NULL when absent. */
typedef struct rh_span {
    const char *p;
    size_t len;
} rh_span;

typedef enum {
    RH_INCOMPLETE, /* no blank line yet, and nothing wrong so far */
    RH_COMPLETE,   /* a whole head, well formed: the fields below are set */
    RH_ERROR,      /* malformed (complete or not): status and error are set */
} rh_result;

typedef struct request_head {
    size_t head_len;          /* bytes up to and including the blank line */
    rh_span method;           /* e.g. "GET" */
    rh_span target;           /* the raw request target, e.g. "/rooms/a/ws?since=3" */
    int http_minor;           /* HTTP/1.<http_minor>: 0 or 1 */
    char *path;               /* the target's path, percent-decoded (malloc'd; NUL
                                 bytes decoded from %00 end it early) */
    char *query;              /* the raw query after '?', "" when none (malloc'd) */
    unsigned fields;          /* header field lines */
    bool upgrade_websocket;   /* Upgrade lists "websocket" */
    bool connection_upgrade;  /* Connection lists "upgrade" */
    bool accept_event_stream; /* Accept mentions text/event-stream */
    rh_span authorization;    /* the credential, checked before an upgrade (gateway/guard.h);
                                 a span of the input, bounded as every field is */
    rh_span cookie;           /* the first Cookie, for the connect proxy (upstream.connect) */
    size_t cookie_bytes;      /* every Cookie value's length + 1: libmicrohttpd parses a copy */
    unsigned cookie_pairs;    /* the cookies in them (';'-separated): a record each */
    bool has_content_length;
    uint64_t content_length;
    bool chunked;               /* Transfer-Encoding: chunked */
    rh_span ws_version, ws_key; /* Sec-WebSocket-Version, Sec-WebSocket-Key */
    unsigned ws_version_count, ws_key_count;
    rh_span x_real_ip, x_forwarded_for; /* the first of each (as libmicrohttpd reads them):
                                           the client address behind a proxy */
    rh_span origin, host;               /* Origin and Host (the first of each), for the WebSocket
                                           origin check (common/cors.h) */
    unsigned origin_count;
    unsigned status;   /* RH_ERROR: the HTTP status to answer (400, 501, 505) */
    const char *error; /* RH_ERROR: why, for the JSON body (a constant string) */
} request_head;

/* Reads the head at the start of data[0..len). On RH_COMPLETE, *h is filled
 * and owns path and query (request_head_free). On RH_INCOMPLETE nothing is
 * allocated: call again when more bytes have come. RH_ERROR is answered as
 * soon as the bytes seen so far show the request is malformed. */
rh_result request_head_parse(const char *data, size_t len, request_head *h);

/* Frees what a complete head owns; safe on a zeroed head. */
void request_head_free(request_head *h);

/* For a complete head that asks for a WebSocket upgrade: 0 when its
 * handshake is acceptable, else the status to answer (400, or 426 with the
 * header "Sec-WebSocket-Version: 13") with *error set. */
unsigned request_head_ws_error(const request_head *h, const char **error);

/* True when the text of span s equals the NUL-terminated string lit,
 * ignoring ASCII case. */
bool rh_span_is(rh_span s, const char *lit);

/* True when the comma-separated header value v (e.g. of Upgrade or
 * Connection) lists the token tok: a whole item, ASCII case ignored, the
 * whitespace around items ignored ("h2c, WebSocket" lists "websocket",
 * "websocketx" does not). */
bool rh_list_has(rh_span v, const char *tok);

#endif
