/* SPDX-License-Identifier: MIT */
/*
 * plain_ws.c - the plain room protocol over WebSocket (see plain_ws.h).
 * Runs on the lws service thread; the hub is the only shared state it
 * touches, through its own lock.
 */
#include "transports/plain_ws.h"

#include <libwebsockets.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/payload.h"

typedef struct plain_ws {
    sub s;
    char room[ROOM_NAME_MAX + 1];
} plain_ws;

static const cfg *conf;
static hub *the_hub;

void plain_ws_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

/* Publishes one text frame: JSON keeps its value, other text becomes a JSON
 * string. */
static int receive(void *session, const char *data, size_t len, bool binary, const char **why)
{
    plain_ws *p = session;
    if (binary) {
        *why = "binary frames are not supported";
        return LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE;
    }
    if (!conf->rooms.client_publish) {
        *why = "publishing from WebSocket clients is disabled";
        return LWS_CLOSE_STATUS_POLICY_VIOLATION;
    }
    payload pl;
    static _Thread_local char err[160];
    int rc = payload_from_body(&pl, data, len, true, err, sizeof(err));
    if (rc == -EINVAL) /* not JSON: the text is the message */
        rc = payload_from_body(&pl, data, len, false, err, sizeof(err));
    if (rc) {
        *why = err;
        return LWS_CLOSE_STATUS_INVALID_PAYLOAD;
    }
    uint64_t id;
    rc = hub_publish(the_hub, p->room, pl.data, pl.len, NULL, &id);
    payload_free(&pl);
    if (rc) {
        *why = "cannot publish";
        return LWS_CLOSE_STATUS_UNEXPECTED_CONDITION;
    }
    return 0;
}

static void closed(void *session)
{
    plain_ws *p = session;
    hub_leave(the_hub, &p->s);
    sub_fini(&p->s);
    free(p);
}

static const ws_session_ops plain_ops = {receive, closed, NULL};

int plain_ws_open(const char *room, const char *query, ws_session *out)
{
    (void)query;
    plain_ws *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    sub_init(&p->s, SUB_WS, MSG_FMT_JSON, conf->limits.send_queue);
    snprintf(p->room, sizeof(p->room), "%s", room);
    if (hub_join(the_hub, p->room, &p->s, 0, true)) {
        sub_fini(&p->s);
        free(p);
        return -1;
    }
    *out = (ws_session){&p->s, &plain_ops, p};
    return 0;
}
