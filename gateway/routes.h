/* SPDX-License-Identifier: MIT */
/*
 * routes.h - crier's URL space: one table, one line per endpoint. Adding an
 * endpoint means adding its line here and writing its handler (README,
 * "Development").
 *
 * The columns:
 *   name       the endpoint's id: EP_<name> (router.h)
 *   pattern    the paths it answers: literal text, {hub} (the path of one of
 *              the configured hubs, cfg hubs[].path), {room} (one path
 *              segment, which must be a valid room name, else 400), any
 *              other {name} (one non-empty path segment; the handler reads
 *              and checks it) and a final * (anything). Lines are tried in order; the first one
 *              that matches the (percent-decoded) path takes it.
 *   methods    the methods it takes; any other gets 405 with an Allow list.
 *              NO_METHODS: the path is no endpoint (404).
 *   get        what carries a GET of it: MAIN, STREAMS (event streams),
 *              POLLS (long polls), the libmicrohttpd daemons of http.c;
 *              WEBSOCKET (an upgrade goes to libwebsockets); SIGNALR (a hub
 *              path: an upgrade to libwebsockets, an event-stream Accept to
 *              STREAMS, an id= query to POLLS, else MAIN)
 *   needs      what must be on for it to exist (else 404): ALWAYS, SSE,
 *              LONG_POLLING, WEBSOCKET (transports.*), WEB (a web root)
 *   access     what a request must prove when auth is on (gateway/guard.h,
 *              README "What each endpoint needs"): NONE (anyone; credentials
 *              are not looked at), SUBSCRIBE or PUBLISH (that right on
 *              {room} under auth.rooms), ADMIN (an API key, when
 *              auth.protect_admin), API (an API key: the server API), HUB (SignalR decides with the
 * principal; a refused credential is 401 first), PAGES (ADMIN for the dashboard page, NONE for the
 * other pages). 401 (with WWW-Authenticate: Bearer) or 403 before any handler runs. handler    the
 * libmicrohttpd handler (http_call.h http_handler), run on its daemon's thread completed  frees the
 * handler's per-request state, or NULL early      true: the handler sees the headers-only first
 * call too (to refuse a body before it is read) head       for a GET that streams or is held: what
 * a HEAD answers at once (its content type, http.c), NULL: the handler answers a HEAD and MHD
 * leaves the body out
 *
 * gateway/router.c reads the first six columns and needs none of the
 * handlers; gateway/http.c reads the last four (and includes the handlers).
 * A WebSocket endpoint also names its protocol in server.c (ws_protocols).
 */
#ifndef CRIER_ROUTES_H
#define CRIER_ROUTES_H

// clang-format off
#define ROUTE_TABLE(R) \
/*  name         pattern                    methods                              get         needs          access     handler             completed               early   head */ \
  R(HUB,         "{hub}",                   M_GET | M_HEAD | M_POST | M_DELETE,  SIGNALR,    ALWAYS,        HUB,       hub_request,        sr_request_completed,   true,   held_hub) \
  R(NEGOTIATE,   "{hub}/negotiate",         M_POST,                              MAIN,       ALWAYS,        HUB,       sr_negotiate,       sr_request_completed,   false,  NULL) \
  R(HEALTHZ,     "/healthz",                M_GET | M_HEAD,                      MAIN,       ALWAYS,        NONE,      api_healthz,        NULL,                   false,  NULL) \
  R(METRICS,     "/metrics",                M_GET | M_HEAD,                      MAIN,       ALWAYS,        ADMIN,     api_metrics,        NULL,                   false,  NULL) \
  R(STATS,       "/stats/events",           M_GET | M_HEAD,                      MAIN,       ALWAYS,        ADMIN,     stats_events,       plain_sse_completed,    false,  held_sse) \
  R(CLUSTER,     "/cluster/nodes",          M_GET | M_HEAD,                      MAIN,       ALWAYS,        ADMIN,     cluster_api_nodes,  api_wait_completed,     false,  NULL) \
  R(ROOMS,       "/rooms",                  M_GET | M_HEAD,                      MAIN,       ALWAYS,        ADMIN,     api_rooms_list,     NULL,                   false,  NULL) \
  R(ROOM,        "/rooms/{room}",           M_GET | M_HEAD,                      MAIN,       ALWAYS,        ADMIN,     api_room_info,      api_wait_completed,     false,  NULL) \
  R(EVENTS,      "/rooms/{room}/events",    M_GET | M_HEAD,                      STREAMS,    SSE,           SUBSCRIBE, plain_sse_handle,   plain_sse_completed,    false,  held_sse) \
  R(POLL,        "/rooms/{room}/poll",      M_GET | M_HEAD,                      POLLS,      LONG_POLLING,  SUBSCRIBE, plain_poll_handle,  plain_poll_completed,   false,  held_json) \
  R(PRESENCE,    "/rooms/{room}/presence",  M_GET | M_HEAD,                      MAIN,       ALWAYS,        SUBSCRIBE, api_presence,       api_wait_completed,     false,  NULL) \
  R(MESSAGES,    "/rooms/{room}/messages",  M_POST,                              MAIN,       ALWAYS,        PUBLISH,   api_publish,        api_wait_completed,     true,   NULL) \
  R(HISTORY,     "/rooms/{room}/history",   M_GET | M_HEAD,                      MAIN,       ALWAYS,        SUBSCRIBE, api_room_history,   api_wait_completed,     false,  NULL) \
  R(WS,          "/rooms/{room}/ws",        M_GET | M_HEAD,                      WEBSOCKET,  WEBSOCKET,     SUBSCRIBE, ws_path_only,       NULL,                   false,  NULL) \
  R(ROOM_MEMBER, "/rooms/{room}/members/{user}", M_PUT | M_DELETE,                MAIN,       ALWAYS,        API,       users_api_member,   api_wait_completed,     true,   NULL) \
  R(USER_MSGS,   "/users/{user}/messages",  M_POST,                              MAIN,       ALWAYS,        API,       users_api_send,     api_wait_completed,     true,   NULL) \
  R(USER_CONNS,  "/users/{user}/connections", M_DELETE,                          MAIN,       ALWAYS,        API,       users_api_end,      api_wait_completed,     true,   NULL) \
  R(CONN_MSGS,   "/connections/{id}/messages", M_POST,                           MAIN,       ALWAYS,        API,       users_api_send,     api_wait_completed,     true,   NULL) \
  R(CONN,        "/connections/{id}",       M_DELETE,                            MAIN,       ALWAYS,        API,       users_api_end,      api_wait_completed,     true,   NULL) \
  R(ROOMS_ELSE,  "/rooms/*",                NO_METHODS,                          MAIN,       ALWAYS,        NONE,      NULL,               NULL,                   false,  NULL) \
  R(STATIC,      "*",                       M_GET | M_HEAD,                      MAIN,       WEB,           PAGES,     static_get,         NULL,                   false,  NULL)
// clang-format on

#endif
