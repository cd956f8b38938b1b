/* SPDX-License-Identifier: MIT */
/*
 * upstream.h - the upstream protocol's JSON, both ways (README "Upstream
 * hub methods"): the request bodies crier POSTs to a backend (a hub method
 * call, a plain WebSocket frame, an event, a connect check), reading the
 * backend's answer (a result or an error, and actions), and the outcome
 * counters /metrics shows. Pure: no I/O (carriers/http_client.c moves the
 * bytes; the protocols apply the actions).
 *
 * Threading: every function may be called from any thread; the counters
 * are atomics, a burst of failures of one kind logs one line (limits.h
 * style).
 */
#ifndef CRIER_UPSTREAM_H
#define CRIER_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/access.h"

/* How the HTTP exchange itself ended (carriers/http_client.c). */
typedef enum {
    UP_SENT_OK,          /* an HTTP answer came (any status) */
    UP_SENT_UNAVAILABLE, /* no connection, reset, DNS: the backend is down */
    UP_SENT_TIMEOUT,     /* upstream.timeout_ms passed */
    UP_SENT_TOO_LARGE,   /* the answer grew past upstream.max_answer_bytes */
    UP_SENT_BUSY,        /* upstream.max_in_flight calls were running already */
    UP_SENT_STOPPED,     /* crier is shutting down */
} up_transfer;

/* What a call came to, as /metrics counts it (crier_upstream_calls_total). */
typedef enum {
    UP_R_OK,          /* {"result": ...} (or an answer with neither result nor error) */
    UP_R_ERROR,       /* {"error": "..."}: the backend's own error */
    UP_R_UNAVAILABLE, /* "upstream unavailable" */
    UP_R_TIMEOUT,     /* "upstream timeout" */
    UP_R_HTTP_STATUS, /* "upstream answered HTTP 500" (any status but 2xx) */
    UP_R_INVALID,     /* "upstream answer is not valid JSON" (or not the expected shape) */
    UP_R_TOO_LARGE,   /* "upstream answer too large" */
    UP_R_BUSY,        /* "busy" */
    UP_R_STOPPED,     /* shutting down */
    UP_R_COUNT
} up_result;

/* Most actions one answer may carry. */
#define UP_MAX_ACTIONS 100

typedef enum {
    UP_ACT_PUBLISH_ROOM, /* {"publish": {"room": R, "target"?: T, "arguments"?: [...]}} */
    UP_ACT_PUBLISH_USER, /* {"publish": {"user": U, "target"?: T, "arguments"?: [...]}} */
    UP_ACT_PUBLISH_ALL,  /* {"publish": {"all": true, ...}}: every connection of the hub */
    UP_ACT_JOIN,         /* {"join": R}: the calling connection joins room R */
    UP_ACT_LEAVE,        /* {"leave": R} */
    UP_ACT_DISCONNECT,   /* {"disconnect": "reason"}: the calling connection is closed */
} up_action_kind;

typedef struct up_action {
    up_action_kind kind;
    char *name;   /* the room or user (not checked here: the applier checks room names);
                     NULL for UP_ACT_PUBLISH_ALL */
    char *target; /* publish: the SignalR target, NULL: each member's default */
    char *data;   /* publish: the arguments as JSON array text ("[]" when absent) */
    char *reason; /* disconnect */
} up_action;

typedef struct up_answer {
    up_result result;
    char *error; /* not UP_R_OK: the error for the client (malloc'd) */
    char *value; /* UP_R_OK: "result" as JSON text (malloc'd), NULL: null */
    up_action *actions;
    size_t nactions;
} up_answer;

/* Reads what the backend answered (body, len bytes, with HTTP status
 * http_status) after transfer t into *a (freed with up_answer_free).
 * Only a 2xx JSON object whose "error" (if any) is a non-empty string and
 * whose "actions" (if any) are all well formed is taken; anything else is
 * an error for the client and applies nothing. Never fails (out of memory
 * is an error too). */
void up_answer_read(up_answer *a, up_transfer t, long http_status, const char *body, size_t len);

void up_answer_free(up_answer *a);

/* The connect proxy's answer: accepted (returns a new principal with the
 * user, "proxied", and the rights of its "rooms": {"subscribe": [...],
 * "publish": [...]}) or refused (NULL, with *status 401 or 403, or 502/504
 * when the backend failed, and *error malloc'd). The outcome is counted
 * (up_count, url names the backend in a log line). */
access_principal *up_connect_read(up_transfer t, long http_status, const char *body, size_t len,
                                  const char *url, unsigned *status, char **error);

/* Request bodies (malloc'd compact JSON text, NULL on ENOMEM). who: the
 * caller (NULL anonymous): "user" is its user id or null, "claims" its
 * token's claims or null. */
char *up_call_body(const char *hub, const char *method, const char *args_json,
                   const char *connection_id, const access_principal *who);
char *up_frame_body(const char *room, const char *data_json, const char *connection_id,
                    const access_principal *who);
/* event: "connect", "disconnect", "join", "leave"; hub, room, reason NULL when not known. */
char *up_event_body(const char *event, const char *hub, const char *room, const char *reason,
                    const char *connection_id, const access_principal *who);
/* headers_json and query_json: JSON objects as text (NULL: {}). */
char *up_connect_body(const char *hub, const char *headers_json, const char *query_json);

/* Longest user id an action may name (bytes). */
#define UP_USER_MAX 256

/* A user id an action may name: 1 to UP_USER_MAX bytes. */
bool up_user_is_valid(const char *s);

/* A SignalR target an action may name: 1 to 63 letters, digits or '_', not
 * starting with a digit. */
bool up_target_is_valid(const char *s);

/* Counts one outcome; a failure (not OK, not the backend's own error) logs
 * a warning naming url at most once every 10 s per kind. */
void up_count(up_result r, const char *url);

uint64_t up_calls_total(up_result r);

/* The label of r in /metrics: ok, error, unavailable, timeout, http_status,
 * invalid, too_large, busy, stopped. */
const char *up_result_name(up_result r);

#endif
