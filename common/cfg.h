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

/* What a hub method does when a client invokes it (see README). */
typedef enum {
    CFG_ACTION_BROADCAST, /* send the arguments to every connection of the hub */
    CFG_ACTION_OTHERS,    /* ... to every connection but the caller */
    CFG_ACTION_ROOM,      /* first argument names a room; send the rest to its members */
    CFG_ACTION_JOIN,      /* first argument names a room; the caller joins it */
    CFG_ACTION_LEAVE,     /* first argument names a room; the caller leaves it */
} cfg_action;

typedef struct cfg_method {
    char name[CFG_NAME_MAX]; /* matched case-insensitively, as SignalR does */
    cfg_action action;
    char target[CFG_NAME_MAX]; /* client method invoked; sending actions only */
    int args;                  /* exact argument count, room included; -1 = any */
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
} cfg_hub;

typedef enum { CFG_BACKPLANE_MEMORY, CFG_BACKPLANE_REDIS } cfg_backplane_type;

typedef struct cfg {
    char listen_host[256]; /* "listen": "HOST:PORT", default 127.0.0.1:8080 */
    int listen_port;
    char log_level[16]; /* "log_level": error|warn|info|debug, default "info" */

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
    } limits;

    struct {
        bool client_publish; /* rooms.client_publish: WS text frames publish, default true */
    } rooms;

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

    bool trust_proxy; /* log the client address a proxy reports, default false */
} cfg;

#endif
