/* SPDX-License-Identifier: MIT */
/*
 * plain/ws.c - the plain room protocol over WebSocket (see plain/ws.h).
 * Runs on the lws service thread; the hub is the only shared state it
 * touches, through its own lock (a connection's publish bucket is its own).
 */
#include "transports/plain/ws.h"

#include <libwebsockets.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/rate_limits.h"
#include "common/upstream.h"
#include "hub/payload.h"
#include "transports/carriers/http_client.h"
#include "transports/plain/ending.h"
#include "transports/plain/events.h"

#define TAG "ws"

/* A WebSocket close reason is at most 123 bytes (RFC 6455 5.5). */
#define CLOSE_REASON_MAX 123

/* The subscribe right was checked before the upgrade (gateway/guard.c); the
 * publish right of the text frames is decided once, at open, for the
 * principal the upgrade proved. */
typedef struct plain_ws {
    access_principal *who;      /* a reference (NULL: anonymous) */
    const char *publish_denied; /* why its frames may not publish (static text), NULL: they may */
    sub s;
    char room[ROOM_NAME_MAX + 1];
    token_bucket rate; /* limits.rate.publish */
} plain_ws;

static const cfg *conf;
static hub *the_hub;

void plain_ws_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

/* How a frame's publish ended: a WebSocket publisher gets no answer, so a
 * failure (only possible with a backplane) is logged. A full backplane
 * (-EAGAIN) is not: the backplane logs that itself, once per outage or per
 * burst (backplane.queue_limit, backplane.max_pending_bytes), and a flood
 * of frames must not write a line each. */
static void frame_published(void *arg, const publish_result *r)
{
    (void)arg;
    if (r->rc && r->rc != -EAGAIN)
        LOG_WARN(TAG, "a message from a WebSocket client was not published: %s", strerror(-r->rc));
}

static void user_published(void *arg, const hub_user_result *r)
{
    (void)arg;
    if (r->rc)
        LOG_WARN(TAG, "a publish to a user from an upstream answer failed: %s", strerror(-r->rc));
}

/* curl thread (or the lws thread, refused at once): what the backend made
 * of a frame routed upstream (rooms.client_publish "upstream"). Its room
 * publishes and user publishes are applied (trusted: no room rule); the
 * connection is not touched (it may be gone), so other actions make the
 * answer invalid (counted, logged once per burst). */
static void frame_answered(void *arg, up_transfer t, long status, const char *body, size_t len)
{
    (void)arg;
    up_answer a;
    up_answer_read(&a, t, status, body, len);
    for (size_t i = 0; i < a.nactions && a.result != UP_R_INVALID; i++) {
        const up_action *act = &a.actions[i];
        bool room = act->kind == UP_ACT_PUBLISH_ROOM, user = act->kind == UP_ACT_PUBLISH_USER;
        if ((!room && !user) || (room && !room_name_is_valid(act->name, strlen(act->name))) ||
            (user && !up_user_is_valid(act->name)) ||
            (act->target && !up_target_is_valid(act->target)) ||
            strlen(act->data) > conf->limits.max_message_bytes)
            a.result = UP_R_INVALID;
    }
    up_count(a.result, conf->upstream.url);
    if (a.result == UP_R_INVALID) {
        LOG_DBG(TAG,
                "an upstream answer to a WebSocket frame was not applied: %s (plain "
                "frames take room publishes only)",
                a.error ? a.error
                        : "an action other than a publish to a room or user, or a bad name");
    } else {
        for (size_t i = 0; i < a.nactions; i++) {
            const up_action *act = &a.actions[i];
            if (act->kind == UP_ACT_PUBLISH_USER) {
                hub_user_op op = {.op = HUB_OP_SEND,
                                  .name = act->name,
                                  .data = act->data,
                                  .len = strlen(act->data),
                                  .target = act->target};
                hub_user_op_async(the_hub, &op, user_published, NULL);
                continue;
            }
            publish_opts opt = {.target = act->target};
            hub_publish_async(the_hub, act->name, act->data, strlen(act->data), &opt,
                              frame_published, NULL);
        }
    }
    up_answer_free(&a);
}

/* Publishes one text frame: JSON keeps its value, other text becomes a JSON
 * string. With rooms.client_publish "upstream" it goes to upstream.url. */
static int receive(void *session, const char *data, size_t len, bool binary, const char **why)
{
    plain_ws *p = session;
    if (binary) {
        *why = "binary frames are not supported";
        return LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE;
    }
    if (p->publish_denied && conf->rooms.client_publish) {
        LOG_INFO(TAG, "closed a WebSocket of user %s on room %s (1008): %s",
                 access_user_label(p->who), p->room, p->publish_denied);
        *why = p->publish_denied;
        return LWS_CLOSE_STATUS_POLICY_VIOLATION;
    }
    if (!conf->rooms.client_publish) {
        *why = "publishing from WebSocket clients is disabled";
        return LWS_CLOSE_STATUS_POLICY_VIOLATION;
    }
    if (rate_limit_publish(&p->rate, clock_now_ms(), "a WebSocket in room", p->room,
                           "closed 1008")) {
        *why = "rate limit";
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
    if (conf->rooms.client_publish_upstream) {
        char *text = strndup(pl.data, pl.len);
        payload_free(&pl);
        char *body = text ? up_frame_body(p->room, text, p->s.conn_id, p->who) : NULL;
        free(text);
        if (body)
            hc_post(conf->upstream.url, body, strlen(body), conf->upstream.timeout_ms, false,
                    frame_answered, NULL);
        return 0;
    }
    hub_publish_async(the_hub, p->room, pl.data, pl.len, NULL, frame_published, NULL);
    payload_free(&pl);
    return 0;
}

static void closed(void *session)
{
    plain_ws *p = session;
    plain_events_closed(conf, &p->s, p->room, p->who);
    hub_leave(the_hub, &p->s);
    sub_fini(&p->s);
    access_unref(p->who);
    free(p);
}

static int end_code(void *session, sub_end_reason why, const char **text)
{
    plain_ws *p = session;
    return plain_ws_end_code(&p->s, why, text);
}

static const ws_session_ops plain_ops = {receive, closed, NULL, NULL, end_code};

/* Reads ?since=N[&epoch=E]. Returns -1 when malformed, 0 when absent, 1
 * with *since and epoch ("" when absent) set. */
/* Copies the len bytes at v into out (cap bytes), NUL-terminated; false
 * when they do not fit. */
static bool copy_value(const char *v, size_t len, char *out, size_t cap)
{
    if (len >= cap)
        return false;
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

static int parse_cursor(const char *query, uint64_t *since, char epoch[MSG_EPOCH_MAX])
{
    char since_s[32], cursor_epoch[MSG_EPOCH_MAX];
    size_t since_len = 0, epoch_len = 0;
    const char *since_v = query_value(query, "since", &since_len);
    const char *epoch_v = query_value(query, "epoch", &epoch_len);
    epoch[0] = '\0';
    if (!since_v && !epoch_v)
        return 0;
    if (!since_v || !copy_value(since_v, since_len, since_s, sizeof(since_s)) ||
        !hub_parse_cursor(since_s, since, cursor_epoch) || cursor_epoch[0])
        return -1;
    if (epoch_v &&
        (!copy_value(epoch_v, epoch_len, epoch, MSG_EPOCH_MAX) || !hub_epoch_is_valid(epoch)))
        return -1;
    return 1;
}

bool plain_ws_query_is_valid(const char *query)
{
    uint64_t since;
    char epoch[MSG_EPOCH_MAX];
    return parse_cursor(query, &since, epoch) >= 0;
}

/* ?since=N[&epoch=E]: resume after N; without since: live only. */
static int join_room(plain_ws *p, const char *query)
{
    uint64_t since = 0;
    char epoch[MSG_EPOCH_MAX];
    int has = parse_cursor(query, &since, epoch);
    if (has < 0)
        return -1;
    if (!has)
        return hub_join(the_hub, p->room, &p->s, 0, true);
    return hub_resume(the_hub, p->room, &p->s, since, epoch[0] ? epoch : NULL);
}

/* Why who's frames may not publish to room (a close reason), or NULL. */
static const char *publish_denied(const access_principal *who, const char *room)
{
    access_verdict v = access_room(conf, who, room, ACCESS_PUBLISH);
    if (v == ACCESS_ALLOWED)
        return NULL;
    const char *why = access_reason(v, ACCESS_PUBLISH);
    return why && strlen(why) <= CLOSE_REASON_MAX ? why : "publishing to this room is not allowed";
}

int plain_ws_open(const char *room, const char *query, access_principal *who, ws_session *out)
{
    plain_ws *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    sub_init(&p->s, SUB_WS, MSG_FMT_JSON, conf->limits.send_queue);
    p->s.multi_room = true; /* its envelopes name their room: the server API may add rooms */
    snprintf(p->room, sizeof(p->room), "%s", room);
    p->who = access_ref(who);
    p->publish_denied = publish_denied(who, p->room);
    int rc = sub_set_identity(&p->s, who ? who->user : NULL, NULL);
    if (!rc)
        rc = join_room(p, query);
    if (rc == -ENOSPC || rc == -EMLINK) { /* a server limit: the client hears it as 1013 */
        *out = (ws_session){&p->s, &plain_ops, p, WS_CLOSE_TRY_AGAIN_LATER, limit_join_error(rc)};
        return 0;
    }
    if (rc) {
        sub_fini(&p->s);
        access_unref(p->who);
        free(p);
        return -1;
    }
    plain_end_at_expiry(&p->s, who); /* closed 4001 at the token's exp */
    plain_events_opened(conf, &p->s, p->room, p->who);
    *out = (ws_session){&p->s, &plain_ops, p, 0, NULL};
    return 0;
}
