/* SPDX-License-Identifier: MIT */
/*
 * cfg.h - crier's configuration, the data only: every layer reads it, and
 * gateway/config.c fills it (built-in defaults, overlaid by a JSON file and
 * the command line). Filled once at start-up on the main thread; read-only
 * (and so safe from every thread) afterwards.
 */
#ifndef CRIER_CFG_H
#define CRIER_CFG_H

#include <stdbool.h>
#include <stddef.h>

#define CFG_ERR_MAX 512
#define CFG_NAME_MAX 64  /* hub, method and target names: letters, digits, '_' */
#define CFG_PATH_MAX 128 /* hub paths */
#define CFG_MAX_HUBS 16
#define CFG_MAX_METHODS 32                    /* per hub */
#define CFG_MAX_TARGETS (CFG_MAX_METHODS + 1) /* publish_targets per hub */
#define CFG_MAX_ROOM_RULES 64                 /* auth.rooms */
#define CFG_MAX_API_KEYS 64                   /* auth.api_keys and auth.api_keys_file together */
#define CFG_MAX_ORIGINS 32                    /* cors.allowed_origins */
#define CFG_SECRET_MAX 512                    /* auth.jwt.hmac_secret, an API key, paths */
#define CFG_ROOM_PATTERN_MAX 256              /* auth.rooms[].match */
#define CFG_URL_MAX 256                       /* upstream URLs (http:// or https://) */

/* What a hub method does when a client invokes it (see README). */
typedef enum {
    CFG_ACTION_BROADCAST, /* send the arguments to every connection of the hub */
    CFG_ACTION_OTHERS,    /* ... to every connection but the caller */
    CFG_ACTION_ROOM,      /* first argument names a room; send the rest to its members */
    CFG_ACTION_JOIN,      /* first argument names a room; the caller joins it */
    CFG_ACTION_LEAVE,     /* first argument names a room; the caller leaves it */
    CFG_ACTION_UPSTREAM,  /* POSTed to the method's upstream URL; the backend answers
                             (README "Upstream hub methods") */
} cfg_action;

typedef struct cfg_method {
    char name[CFG_NAME_MAX]; /* matched case-insensitively, as SignalR does */
    cfg_action action;
    char target[CFG_NAME_MAX];  /* client method invoked; sending actions only */
    int args;                   /* exact argument count, room included; -1 = any */
    char upstream[CFG_URL_MAX]; /* CFG_ACTION_UPSTREAM: the backend's URL */
} cfg_method;

typedef struct cfg_hub {
    char name[CFG_NAME_MAX];
    char path[CFG_PATH_MAX];           /* e.g. "/hubs/chat" */
    char default_target[CFG_NAME_MAX]; /* for messages published over HTTP */
    cfg_method methods[CFG_MAX_METHODS];
    unsigned nmethods;
    /* publish_targets: the client methods POST /rooms/{room}/messages?target=
     * may name; default: default_target and the targets of the methods. */
    char publish_targets[CFG_MAX_TARGETS][CFG_NAME_MAX];
    unsigned npublish_targets;
    /* rejoin_query: a connection rejoins the rooms its URL's crier_rooms
     * parameter names, resuming each (signalr/rejoin.h); default false. */
    bool rejoin_query;
} cfg_hub;

typedef enum { CFG_BACKPLANE_MEMORY, CFG_BACKPLANE_REDIS } cfg_backplane_type;

/* "latency": how queued messages are written to WebSocket sockets (README
 * "Configuration", "Performance"). Both set TCP_NODELAY. */
typedef enum {
    CFG_LATENCY_EFFICIENT, /* "efficient": what a socket has queued within coalesce_ms
                              goes out in one write */
    CFG_LATENCY_LOW,       /* "low": each message is written as soon as it is queued */
} cfg_latency;

/* Who may subscribe to or publish in a room (auth.rooms[].subscribe and
 * .publish, README "Access control"). */
typedef enum {
    CFG_ACCESS_PUBLIC,  /* "public": anyone, token or not */
    CFG_ACCESS_TOKEN,   /* "token": any valid token */
    CFG_ACCESS_CLAIM,   /* "claim": a valid token whose rooms claim lists the room */
    CFG_ACCESS_API_KEY, /* "api_key": the server side only (auth.api_keys) */
} cfg_access;

/* One auth.rooms rule; the first whose match fits a room decides. match is a
 * room name, or a prefix ending in '*' (a suffix wildcard: "chat.*"; "*" is
 * every room). */
typedef struct cfg_room_rule {
    char match[CFG_ROOM_PATTERN_MAX];
    cfg_access subscribe, publish;
    bool presence_events; /* presence_events: join/leave events to the room's members */
} cfg_room_rule;

/* The JWT algorithms auth.jwt.algorithms may list, as bits of a set. "none"
 * is never accepted. */
enum {
    CFG_JWT_HS256 = 1u << 0,
    CFG_JWT_HS384 = 1u << 1,
    CFG_JWT_HS512 = 1u << 2,
    CFG_JWT_RS256 = 1u << 3,
    CFG_JWT_RS384 = 1u << 4,
    CFG_JWT_RS512 = 1u << 5,
    CFG_JWT_ES256 = 1u << 6,
    CFG_JWT_ES384 = 1u << 7,
    CFG_JWT_ES512 = 1u << 8,
};
#define CFG_JWT_HMAC (CFG_JWT_HS256 | CFG_JWT_HS384 | CFG_JWT_HS512)

/* A token bucket: per_s tokens a second, up to burst saved (limits.rate.*).
 * per_s 0: no limit. */
typedef struct cfg_rate {
    unsigned per_s;
    unsigned burst;
} cfg_rate;

typedef struct cfg {
    char listen_host[256]; /* "listen": "HOST:PORT", default 127.0.0.1:8080 */
    int listen_port;
    char log_level[16]; /* "log_level": error|warn|info|debug, default "info" */

    /* log: how lines look and how many may come (README "Logs"). */
    struct {
        bool json;                /* log.format: "text" (default) | "json" (one object a line) */
        bool access;              /* log.access: a line per HTTP request and per WebSocket or
                                     stream open and close; default false */
        unsigned max_lines_per_s; /* log.max_lines_per_s: info and debug lines a second past
                                     which lines are dropped and counted, default 200,
                                     0 .. 1000000 (0: no limit) */
    } log;

    struct {
        bool websocket;    /* transports.websocket, default true */
        bool sse;          /* transports.sse, default true */
        bool long_polling; /* transports.long_polling, default true */
    } transports;

    struct {
        size_t max_message_bytes;  /* default 65536, 1 .. 16 MiB */
        unsigned send_queue;       /* messages queued per connection, default 1024, 1 .. 1000000 */
        unsigned poll_timeout_s;   /* default 25, 1 .. 3600 */
        unsigned keepalive_s;      /* SSE comment / WS ping interval, default 15, 1 .. 3600 */
        unsigned header_timeout_s; /* request headers must arrive within, default 5, 1 .. 300 */
        unsigned body_timeout_s;   /* a request body must arrive within (from the end of its
                                      headers), default 10, 1 .. 300; past it: 408 */
        size_t max_header_bytes;   /* default 8192, 1024 .. 65536 */
        unsigned max_connections;  /* 0 = open-file limit minus a reserve; else 1 .. 1000000 */
        /* memory no client can exhaust (503 / WebSocket 1013 / SignalR error past them) */
        unsigned max_rooms;                /* rooms clients name, default 100000, 1 .. 100000000 */
        unsigned max_rooms_per_connection; /* default 100, 1 .. 1000000 */
        size_t max_fragment_bytes_total;   /* unfinished WebSocket messages, all connections:
                                              default 64 MiB, 64 KiB .. 1 TiB */
        /* backpressure (hub/backlog.h): publishers wait while subscribers that read are behind */
        unsigned publish_wait_ms;     /* longest an HTTP publish waits, default 10000, 0 .. 600000;
                                         past it: 503 with Retry-After */
        unsigned subscriber_stall_ms; /* a behind queue not shrinking this long stops holding
                                         publishers back, default 2000, 100 .. 600000 */
        /* limits.rate: token buckets (429 / WebSocket 1008 / SignalR error past them) */
        struct {
            cfg_rate publish; /* per connection (per address for HTTP publishes) */
            cfg_rate connect; /* new connections per client address */
            cfg_rate request; /* HTTP requests per client address */
        } rate;
    } limits;

    struct {
        bool client_publish; /* rooms.client_publish: WS text frames publish, default true */
        bool client_publish_upstream; /* rooms.client_publish "upstream": WS text frames go
                                         to upstream.url instead (client_publish is true) */
    } rooms;

    /* upstream: the backend behind upstream hub methods, plain frames routed
     * upstream, events and the connect proxy (README "Upstream hub methods"). */
    struct {
        char url[CFG_URL_MAX];     /* upstream.url: plain WebSocket frames (client_publish
                                      "upstream"); "" none */
        char events[CFG_URL_MAX];  /* upstream.events: connect/disconnect/join/leave; "" none */
        char connect[CFG_URL_MAX]; /* upstream.connect: the connect proxy; "" none */
        unsigned timeout_ms;       /* upstream.timeout_ms, default 5000, 100 .. 600000 */
        unsigned max_in_flight;    /* upstream.max_in_flight: calls at once, default 1000,
                                      1 .. 100000 (past it: "busy") */
        size_t max_answer_bytes;   /* upstream.max_answer_bytes, default 1 MiB, 1 KiB .. 64 MiB */
        unsigned events_queue;     /* upstream.events_queue: events waiting, default 10000,
                                      1 .. 1000000 (past it: dropped, counted) */
        /* upstream.connect_secret: signs the connect proxy's verdict into
         * clustered connection tokens (32 .. 511 bytes); "" none */
        char connect_secret[CFG_SECRET_MAX];
    } upstream;

    struct {
        unsigned size;    /* history.size: messages kept per room, default 1000, 0 .. 1000000 */
        unsigned ttl_s;   /* history.ttl_s: seconds a message is kept, default 300, 0 .. 604800 */
        size_t max_bytes; /* history.max_bytes: all rooms' history, default 256 MiB,
                             64 KiB .. 1 TiB; past it the largest rooms' oldest go */
    } history;

    /* hubs: SignalR-compatible hubs by name. A config file that sets "hubs"
     * replaces the built-in ones (the "chat" hub) entirely. */
    cfg_hub hubs[CFG_MAX_HUBS];
    unsigned nhubs;

    struct {
        char root[512]; /* web.root: directory of the pages, default "web"; "" serves none */
    } web;

    struct {
        unsigned client_timeout_s;        /* close a silent client, default 30, 1 .. 3600 */
        unsigned handshake_timeout_s;     /* handshake must come within, default 15, 1 .. 300 */
        unsigned disconnect_timeout_s;    /* a long-poll connection with no poll, or a
                                             negotiated one never used, is freed after this;
                                             default 15, 1 .. 3600 */
        unsigned max_pending_connections; /* negotiated, no transport yet: default 10000,
                                             1 .. 1000000 (503 past it) */
        unsigned negotiate_rate_per_s;    /* per client address, default 20, 1 .. 1000000 */
        unsigned negotiate_burst;         /* per client address, default 100, 1 .. 1000000
                                             (429 with Retry-After past rate and burst) */
    } signalr;

    struct {
        cfg_backplane_type type;     /* backplane.type: "memory" (default) | "redis" */
        char url[512];               /* backplane.url, default "redis://127.0.0.1:6379/0" */
        char host[256];              /* from url (hostname, IPv4, or IPv6 without brackets) */
        int port;                    /* from url, default 6379 */
        unsigned db;                 /* from url path "/N", default 0, 0 .. 1000 */
        char password[256];          /* backplane.password, or the url's; "" none */
        bool password_from_key;      /* backplane.password was set (it wins over the url's) */
        char key_prefix[64];         /* backplane.key_prefix, default "crier:" */
        unsigned connect_timeout_ms; /* backplane.connect_timeout_ms, default 2000, 100 .. 60000 */
        unsigned queue_limit;        /* backplane.queue_limit: publishes kept while Redis is
                                        down, default 10000, 0 .. 1000000 */
        size_t max_pending_bytes;    /* backplane.max_pending_bytes: bytes of publishes not
                                        yet answered by Redis (queued or sent), up or down;
                                        default 64 MiB, 64 KiB .. 1 TiB */
    } backplane;

    /* auth: access control (README "Access control"). enabled is false when
     * the config has no "auth" section: everything is open, as before, with a
     * warning at start. */
    struct {
        bool enabled;
        struct {
            char hmac_secret[CFG_SECRET_MAX];     /* auth.jwt.hmac_secret, "" none */
            char public_key_file[CFG_SECRET_MAX]; /* auth.jwt.public_key_file (PEM), "" none */
            unsigned algorithms;                  /* auth.jwt.algorithms: CFG_JWT_* bits;
                                                     default: HS256 with a secret, RS256 and
                                                     ES256 with a key file */
            char issuer[CFG_SECRET_MAX];          /* auth.jwt.issuer: "" any */
            char audience[CFG_SECRET_MAX];        /* auth.jwt.audience: "" any */
            unsigned leeway_s;                    /* auth.jwt.leeway_s, default 5, 0 .. 3600 */
        } jwt;
        bool jwt_enabled; /* auth.jwt is set (a secret or a key file) */
        /* auth.rooms: first match wins; a room no rule matches needs "claim"
         * for both rights. */
        cfg_room_rule rooms[CFG_MAX_ROOM_RULES];
        unsigned nrooms;
        /* auth.api_keys and the keys of auth.api_keys_file (one a line) */
        char api_keys[CFG_MAX_API_KEYS][CFG_SECRET_MAX];
        unsigned napi_keys;
        char api_keys_file[CFG_SECRET_MAX];
        bool protect_admin; /* auth.protect_admin: /metrics, /stats/events, room info and
                               the dashboard need an API key; default true */
    } auth;

    /* cors: which web origins may use crier from a browser. */
    struct {
        char allowed_origins[CFG_MAX_ORIGINS][CFG_SECRET_MAX]; /* exact origins or "*" */
        unsigned nallowed_origins; /* 0: none is checked (any WebSocket Origin is taken,
                                      no CORS headers) */
        bool allow_credentials;    /* cors.allow_credentials, default false */
        unsigned max_age_s;        /* cors.max_age_s: preflight cache, default 600 */
    } cors;

    bool trust_proxy; /* log the client address a proxy reports, default false */

    /* "workers": threads that write WebSockets (lws service threads) and SSE
     * streams (MHD's stream daemon); a connection stays on one. 0 (default):
     * one per core; else 1 .. 64. */
    unsigned workers;
    cfg_latency latency;  /* "latency": "efficient" (default) | "low" */
    unsigned coalesce_ms; /* "coalesce_ms": efficient's wait, default 40, 1 .. 1000 */

    /* presence: GET /rooms/{room}/presence lists users up to max_listed
     * (default 1000; past it only the counts). */
    struct {
        unsigned max_listed;
    } presence;
} cfg;

#endif
