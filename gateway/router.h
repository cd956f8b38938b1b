/* SPDX-License-Identifier: MIT */
/*
 * router.h - the one route function: a request's method and path (and the
 * few request facts the choice of carrier needs) to the endpoint that
 * serves it (the table in routes.h), the parts of the path it names (room,
 * hub, SignalR connection id), who carries it (libwebsockets or one of
 * libmicrohttpd's daemons), or the error that answers it (400, 404, 405
 * with Allow, 414; OPTIONS, a CORS preflight, is served on every endpoint
 * and answered by the dispatcher before any handler runs). Pure: no library types, no I/O; the
 * acceptor (server.c), the libwebsockets session opener (server.c) and the libmicrohttpd dispatcher
 * (http.c) all route with it.
 *
 * Threading: router_init and router_set_available run on the main thread
 * at start, before any connection is served; router_route and
 * router_method are then safe from any thread (they only read).
 * Threads and locks: docs/concurrency.md
 */
#ifndef CRIER_ROUTER_H
#define CRIER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/cfg.h"
#include "gateway/routes.h"

/* A path longer than this gets 414 with a JSON error, whatever it names. */
#define ROUTE_PATH_MAX 1024
#define ROUTE_PATH_MAX_TEXT "1024"

/* The methods crier serves, as bits of a set (the "methods" column). */
enum {
    NO_METHODS = 0,
    M_GET = 1u << 0,
    M_HEAD = 1u << 1,
    M_POST = 1u << 2,
    M_DELETE = 1u << 3,
    /* OPTIONS is taken on every endpoint (a CORS preflight): the router
     * serves it wherever the path is an endpoint, and no row lists it. */
    M_OPTIONS = 1u << 4,
    M_PUT = 1u << 5, /* the server API's room membership */
};

/* The endpoints, in table order. EP_NONE: no line of the table. */
#define ROUTE_ENDPOINT_ID(name, ...) EP_##name,
typedef enum { EP_NONE, ROUTE_TABLE(ROUTE_ENDPOINT_ID) ROUTE_ENDPOINTS } route_endpoint;
#undef ROUTE_ENDPOINT_ID

/* The "get" column: what carries a GET (routes.h). */
typedef enum {
    CARRY_MAIN,
    CARRY_STREAMS,
    CARRY_POLLS,
    CARRY_WEBSOCKET,
    CARRY_SIGNALR,
} route_carry;

/* The "needs" column: what must be on for an endpoint to exist. */
typedef enum {
    NEEDS_ALWAYS,
    NEEDS_SSE,          /* transports.sse */
    NEEDS_LONG_POLLING, /* transports.long_polling */
    NEEDS_WEBSOCKET,    /* transports.websocket */
    NEEDS_WEB,          /* a web root to serve pages from */
    ROUTE_NEEDS
} route_needs;

/* The "access" column: what a request must prove when auth is on (what
 * each means and answers: gateway/guard.h). */
typedef enum {
    RIGHT_NONE,      /* anyone; credentials are not looked at */
    RIGHT_SUBSCRIBE, /* the subscribe right on {room} (auth.rooms) */
    RIGHT_PUBLISH,   /* the publish right on {room} */
    RIGHT_ADMIN,     /* an API key, when auth.protect_admin */
    RIGHT_HUB,       /* SignalR decides with the principal */
    RIGHT_PAGES,     /* RIGHT_ADMIN for the dashboard page, RIGHT_NONE for the rest */
    RIGHT_API,       /* an API key (auth.api_keys), whatever auth.protect_admin says */
} route_access;

/* Who serves one request: libwebsockets, or a libmicrohttpd daemon (the
 * same three as http.h's http_daemon). */
typedef enum {
    ROUTE_TO_MAIN,
    ROUTE_TO_STREAMS,
    ROUTE_TO_POLLS,
    ROUTE_TO_WEBSOCKET,
} route_carrier;

typedef struct route_request {
    unsigned method;          /* router_method(); 0 for any other method */
    const char *path;         /* percent-decoded, NUL-terminated */
    const char *query;        /* raw (not decoded), without the '?'; NULL: none */
    bool upgrade_websocket;   /* its Upgrade header lists "websocket" */
    bool accept_event_stream; /* its Accept asks for text/event-stream */
} route_request;

typedef struct route_result {
    route_endpoint endpoint; /* the line that matched the path, or EP_NONE */
    route_access access;     /* its "access" column (RIGHT_NONE for EP_NONE) */
    unsigned status;         /* 0: the endpoint serves it; else 400, 404, 405 or 414 */
    const char *error;       /* with status: why (a constant string) */
    const char *allow;       /* with 405: the methods the path takes, "GET, HEAD" */
    const char *methods;     /* the methods the endpoint takes, as allow; set whenever
                                endpoint is not EP_NONE (a preflight's Allow-Methods) */
    /* Who carries it. A request the router refuses goes to a daemon, which
     * answers the error: the one its path names (an event stream path to
     * the stream daemon, even with SSE off), since libwebsockets cannot. */
    route_carrier carrier;
    /* The parts of the path and query (spans of them, not NUL-terminated),
     * set when the matched line has them, also on error: */
    const char *room; /* {room}, room_len bytes (valid when status is 0) */
    size_t room_len;
    const cfg_hub *hub; /* {hub}: the hub, hubs[hub_index] of the cfg */
    unsigned hub_index;
    const char *conn_id; /* {hub}: the query's first id= value, or NULL */
    size_t conn_id_len;
} route_result;

/* Builds the table for c (its hubs' paths; what its transports switch
 * off), which must outlive the router. Main thread, at start; may be
 * called again (tests). The web root counts as there when c names one. */
void router_init(const cfg *c);

/* Marks what endpoints need as there or not, when start-up finds out (the
 * web root: static_init). Main thread, at start. */
void router_set_available(route_needs need, bool on);

/* The M_ bit of a method name (len bytes, case matters), or 0 for any other. */
unsigned router_method(const char *name, size_t len);

/* Routes one request. Any thread, after router_init. */
void router_route(const route_request *rq, route_result *out);

#endif
