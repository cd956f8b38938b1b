/* SPDX-License-Identifier: MIT */
/*
 * signalr.h - ASP.NET Core SignalR-compatible hubs: connections, the JSON
 * hub protocol, and hub methods mapped onto rooms by configuration.
 *
 * A SignalR connection outlives the requests that carry it (negotiate, then
 * a WebSocket, an SSE stream plus POSTs, or a string of long polls plus
 * POSTs), so it owns its hub member (a sub) and each transport attaches to
 * it while it carries the connection. The transports (ws.c, sse.c,
 * longpoll.c) only move bytes; this module decides what they mean.
 *
 * Threading: any function may be called from any thread; each connection
 * has a lock for its state (its sub's lock) and one that serialises the
 * records it receives; the registry of connections has its own lock, taken
 * before any connection's.
 */
#ifndef CRIER_SIGNALR_H
#define CRIER_SIGNALR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"
#include "transports/carriers/ws.h"
#include "transports/signalr/rejoin.h"

typedef struct sr_conn sr_conn;

void sr_init(const cfg *c, hub *h);

/* With a shared backplane (bp not NULL), connections are spread over the
 * nodes with no sticky sessions (signalr/cluster.c). Before serving. */
void sr_cluster_init(const cfg *c, backplane *bp);

/* The hub served at path (exact match), or NULL. */
const cfg_hub *sr_hub_at(const char *path);

/* --- transports call these ------------------------------------------- */

/* Acceptor thread (and MHD's, for an upgrade that reached it): should a
 * WebSocket upgrade of hub hb with connection token id (the id= of its
 * query, id_len bytes, not NUL-terminated; NULL: none) go to
 * libwebsockets? True for a known, unused token, or no token at all
 * (skipNegotiation; so is a token too long to be one). */
bool sr_ws_acceptable(const cfg_hub *hb, const char *id, size_t id_len);

/* Acceptor thread, clustered: an upgrade sr_ws_acceptable takes whose
 * token this node does not hold: it must be claimed first (sr_ws_claim),
 * before the upgrade (gateway/ws_owner.h). */
bool sr_ws_needs_claim(const cfg_hub *hb, const char *id, size_t id_len);

/* What sr_ws_claim found. */
typedef enum {
    SR_WS_TAKEN,     /* this node holds the connection now: upgrade it here */
    SR_WS_ELSEWHERE, /* a live node holds it (a stateful reconnect landed here) */
    SR_WS_GONE,      /* unknown, closed, its node dead, or the backplane unreachable */
} sr_ws_claim_result;

/* Claims the token of id for this node; cb(arg, result) later (the
 * backplane's thread) or at once. */
void sr_ws_claim(const char *id, size_t id_len, void (*cb)(void *arg, sr_ws_claim_result r),
                 void *arg);

/* An MHD thread, for an upgrade sr_ws_acceptable refused: why, as a status
 * and a static text: 403 for a token whose connect-proxy verdict does not
 * verify (clustered with upstream.connect: signalr/ticket.h), else 404. */
unsigned sr_ws_refusal(const cfg_hub *hb, const char *id, size_t id_len, const char **error);

/* Acceptor thread, auth on: may a WebSocket upgrade presenting who (NULL
 * anonymous) carry the connection with token id (as for
 * sr_ws_acceptable)? 0, or 401/403 with *error (sr_conn_admit: a
 * connection made with a token is its user's). */
unsigned sr_ws_admit(const cfg_hub *hb, const char *id, size_t id_len, const access_principal *who,
                     const char **error);

/* ws.c service thread: opens the WebSocket session of the connection with
 * token id (as for sr_ws_acceptable), or of a new one without, for who (the
 * principal the upgrade proved, NULL: anonymous; borrowed, see ws_open_fn).
 * query: the upgrade's raw query (its crier_rooms, with the hub option
 * rejoin_query). */
int sr_ws_open(const cfg_hub *hb, const char *id, size_t id_len, const char *query,
               access_principal *who, ws_session *out);

/* The error of the crier_rooms parameter of a request of hub hb (value:
 * len bytes; decode: still percent-encoded, as in a raw query; NULL:
 * absent), or NULL when it is fine, absent, or hb does not take it (the
 * hub option rejoin_query): a 400, before any upgrade. */
const char *sr_rejoin_error(const cfg_hub *hb, const char *value, size_t len, bool decode);

/* MHD thread: POST {path}/negotiate */
enum MHD_Result sr_negotiate(http_call *call);

/* MHD thread: GET, POST and DELETE on {path}. */
enum MHD_Result sr_request(http_call *call);

/* The completed hook of the {path} route. */
void sr_request_completed(void *state);

/* --- lifecycle --------------------------------------------------------- */

/* Timer thread: pings, timeouts, expiry of unused connections. */
void sr_tick(int64_t now_ms);

/* Sends every connection a Close record and ends its transport. */
void sr_shutdown(void);

/* Frees every connection left, after the transports are stopped. */
void sr_fini(void);

/* Connections negotiated whose transport has not started yet (bounded by
 * signalr.max_pending_connections). Any thread. */
unsigned sr_pending_connections(void);

#endif
