/* SPDX-License-Identifier: MIT */
/*
 * users_api.c - the server API's users and connections (users_api.h,
 * README "Server API"): POST /users/{user}/messages and
 * /connections/{id}/messages, PUT and DELETE /rooms/{room}/members/{user},
 * DELETE /users/{user}/connections and /connections/{id}. JSON in and out;
 * the route table asks for an API key (access API) when auth is on.
 *
 * Each request becomes one hub_user_op (hub.h): applied to this node's
 * members at once and, with a shared backplane, to every other node's; the
 * answer (how many connections, on every node) comes when the nodes have
 * answered (at most HUB_OP_WAIT_MS). Meanwhile the request waits
 * (api_wait.h: suspended, resumed from the thread that answers it: the
 * caller's, the backplane's, the timer's, or main's at shutdown, 503).
 * A send waits for the fanout backlog first, as a room publish does
 * (send_paced: parked, let go or refused by the timer).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "gateway/users_api.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "gateway/api.h"
#include "gateway/api_wait.h"
#include "gateway/config.h"
#include "hub/backlog.h"
#include "hub/payload.h"
#include "transports/carriers/publish_pace.h"

#define TAG "api"

#define USER_ID_MAX 512 /* bytes of a user id in a path (longer: 400) */
/* bytes of a disconnect reason: a WebSocket close reason holds 123 */
#define REASON_MAX 120
#define REASON_MAX_TEXT "120"
#define END_BODY_MAX 4096 /* a disconnect's JSON body */

static const cfg *conf;
static hub *the_hub;

typedef enum { REQ_SEND, REQ_JOIN, REQ_LEAVE, REQ_END } req_kind;

/* One request: the data of its api_wait, from its first call until MHD is
 * done with it and the hub has answered. The MHD thread's until the op is
 * sent, then read only. */
typedef struct user_req {
    http_body body;
    req_kind kind;
    bool by_conn;
    char *name;                   /* the user id or connection id, malloc'd */
    char room[ROOM_NAME_MAX + 1]; /* JOIN, LEAVE */
    /* SEND: kept with the request, in case it waits (send_paced) */
    payload pl;
    char target[CFG_NAME_MAX];
    pace_entry pace;
    api_wait *w;
} user_req;

void users_api_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

static void req_free(void *data)
{
    user_req *p = data;
    buf_free(&p->body.b);
    payload_free(&p->pl);
    free(p->name);
}

static json_t *error_json(const char *text)
{
    return api_wait_error(text);
}

/* {"user": name} or {"connection": name}, then the counts of the kind. */
static json_t *result_json(const user_req *p, const hub_user_result *r)
{
    json_t *j = json_pack("{s:s}", p->by_conn ? "connection" : "user", p->name);
    if (!j)
        return NULL;
    if (p->kind == REQ_JOIN || p->kind == REQ_LEAVE)
        json_object_set_new(j, "room", json_string(p->room));
    json_object_set_new(j, "connections", json_integer((json_int_t)r->found));
    switch (p->kind) {
    case REQ_SEND:
        json_object_set_new(j, "delivered", json_integer((json_int_t)r->done));
        break;
    case REQ_JOIN:
        json_object_set_new(j, "joined", json_integer((json_int_t)r->done));
        json_object_set_new(j, "refused", json_integer((json_int_t)r->refused));
        json_object_set_new(j, "skipped", json_integer((json_int_t)r->skipped));
        break;
    case REQ_LEAVE:
        json_object_set_new(j, "left", json_integer((json_int_t)r->done));
        json_object_set_new(j, "skipped", json_integer((json_int_t)r->skipped));
        break;
    case REQ_END:
        json_object_set_new(j, "disconnected", json_integer((json_int_t)r->done));
        break;
    }
    if (r->partial)
        json_object_set_new(j, "partial", json_true());
    return j;
}

/* Any thread, no lock held: the hub's answer to the op. */
static void op_done(void *arg, const hub_user_result *r)
{
    api_wait *w = arg;
    const user_req *p = api_wait_data(w);
    if (r->rc) {
        api_wait_answer_json(w, MHD_HTTP_SERVICE_UNAVAILABLE, error_json("out of memory"));
    } else if (!r->found && r->partial) {
        api_wait_answer_json(w, MHD_HTTP_SERVICE_UNAVAILABLE,
                             error_json(p->by_conn
                                            ? "no such connection here, and the other nodes "
                                              "did not all answer (backplane unreachable?)"
                                            : "no connection of this user here, and the other "
                                              "nodes did not all answer (backplane unreachable?)"));
    } else if (!r->found) {
        api_wait_answer_json(w, MHD_HTTP_NOT_FOUND,
                             error_json(p->by_conn ? "no such connection" : "no such user"));
    } else {
        api_wait_answer_json(w, p->kind == REQ_SEND ? MHD_HTTP_ACCEPTED : MHD_HTTP_OK,
                             result_json(p, r));
    }
}

/* Hands op to the hub; the answer follows (api_wait_reply). No deadline
 * here: the hub answers within HUB_OP_WAIT_MS. */
static enum MHD_Result run_op(http_call *call, const hub_user_op *op)
{
    api_wait *w = *call->state;
    api_wait_send(w, 0, NULL); /* for op_done */
    hub_user_op_async(the_hub, op, op_done, w);
    return api_wait_reply(call, w);
}

/* The path segment after prefix, which url starts with (up to the next
 * '/'), malloc'd; NULL. */
static char *segment_after(const char *url, const char *prefix)
{
    const char *p = url + strlen(prefix);
    return strndup(p, strcspn(p, "/"));
}

/* Reads the path's user id or connection id into p; false with the answer
 * in *ret when it is not one. */
static bool take_name(http_call *call, user_req *p, enum MHD_Result *ret)
{
    const char *url = call->arg;
    p->by_conn = !strncmp(url, "/connections/", 13);
    p->name = p->by_conn                    ? segment_after(url, "/connections/")
              : !strncmp(url, "/users/", 7) ? segment_after(url, "/users/")
                                            : strdup(strrchr(url, '/') + 1); /* members/{user} */
    if (!p->name) {
        *ret = MHD_NO;
        return false;
    }
    if (p->by_conn && !sub_conn_id_is_valid(p->name, strlen(p->name))) {
        *ret =
            http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                             "a connection id is 1 to %d of A-Z a-z 0-9 _ -", SUB_CONN_ID_MAX - 1);
        return false;
    }
    if (!p->by_conn && strlen(p->name) > USER_ID_MAX) {
        *ret = http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST, "a user id is at most %d bytes",
                                USER_ID_MAX);
        return false;
    }
    return true;
}

/* The first call: a request whose Content-Length passes limit is refused
 * before its body is read. Then the body, up to limit. Returns true when
 * the handler goes on (the body is in). */
static bool take_request(http_call *call, size_t limit, enum MHD_Result *ret)
{
    if (call->first) {
        const char *cl = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t declared = 0;
        if (cl && parse_u64(cl, &declared) && declared > limit)
            *ret = http_reply_error(call->conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                    "the body is larger than %zu bytes", limit);
        else
            *ret = MHD_YES;
        return false;
    }
    api_wait *w = *call->state;
    if (!w) {
        w = api_wait_new(call, sizeof(user_req), req_free);
        if (!w) {
            *ret = MHD_NO;
            return false;
        }
    }
    if (api_wait_sent(w)) { /* resumed: the answer is in */
        *ret = api_wait_reply(call, w);
        return false;
    }
    user_req *p = api_wait_data(w);
    if (*call->upload_size) {
        *ret = http_body_take(&p->body, call, limit) ? MHD_YES : MHD_NO;
        return false;
    }
    if (p->body.too_big) {
        *ret = http_reply_error(call->conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                "the body is larger than %zu bytes", limit);
        return false;
    }
    return true;
}

/* The send op of p (its payload and target kept in p). */
static hub_user_op send_op(const user_req *p)
{
    return (hub_user_op){.op = HUB_OP_SEND,
                         .by_conn = p->by_conn,
                         .name = p->name,
                         .data = p->pl.data,
                         .len = p->pl.len,
                         .target = p->target[0] ? p->target : NULL};
}

/* Timer thread: a parked send goes now (unless its client left). */
static void parked_go(void *arg)
{
    user_req *p = arg;
    if (api_wait_is_answered(p->w)) { /* the client is gone: not sent */
        api_wait_cancel(p->w);
        return;
    }
    hub_user_op op = send_op(p);
    hub_user_op_async(the_hub, &op, op_done, p->w);
}

/* Timer or main thread: a parked send waited limits.publish_wait_ms. */
static void parked_refuse(void *arg)
{
    user_req *p = arg;
    api_wait_answer_retry(p->w, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "subscribers are behind: the message was not sent within "
                          "limits.publish_wait_ms; try again later",
                          1);
}

/* Backpressure (carriers/publish_pace.h), as for a room publish (api.c):
 * while subscribers that read are behind, the send waits (parked) or, with
 * limits.publish_wait_ms 0, is refused 503 at once. The answer's reference
 * is taken already (api_wait_send). Returns true when it was parked or
 * refused (*ret: the reply); false: send now. */
static bool send_paced(http_call *call, api_wait *w, enum MHD_Result *ret)
{
    user_req *p = api_wait_data(w);
    if (!publish_pace_parked() && !backlog_holding())
        return false;
    int64_t wait = conf->limits.publish_wait_ms;
    if (wait == 0) {
        backlog_count_paced(PACE_SERVER_API);
        api_wait_cancel(w); /* no answer will come from elsewhere */
        *ret = http_reply_refused(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, 1,
                                  "subscribers are behind: try again later");
        return true;
    }
    p->w = w;
    p->pace = (pace_entry){
        .deadline = clock_now_ms() + wait, .go = parked_go, .refuse = parked_refuse, .arg = p};
    if (!publish_pace_park(&p->pace, PACE_SERVER_API))
        return false;
    *ret = api_wait_reply(call, w);
    return true;
}

enum MHD_Result users_api_send(http_call *call)
{
    enum MHD_Result ret;
    if (!take_request(call, conf->limits.max_message_bytes, &ret))
        return ret;
    user_req *p = api_wait_data(*call->state);
    p->kind = REQ_SEND;
    if (!take_name(call, p, &ret))
        return ret;
    const char *target;
    if (!api_take_target(call, conf, &target, &ret))
        return ret;
    const char *ct =
        MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    char err[256];
    if (payload_from_body(&p->pl, p->body.b.data ? p->body.b.data : "", p->body.b.len,
                          payload_is_json_type(ct), err, sizeof(err)))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    snprintf(p->target, sizeof(p->target), "%s", target ? target : "");
    api_wait *w = *call->state;
    api_wait_send(w, 0, NULL); /* for op_done, or a parked send's refusal */
    if (send_paced(call, w, &ret))
        return ret;
    hub_user_op op = send_op(p);
    hub_user_op_async(the_hub, &op, op_done, w);
    return api_wait_reply(call, w);
}

enum MHD_Result users_api_member(http_call *call)
{
    enum MHD_Result ret;
    if (!take_request(call, END_BODY_MAX, &ret))
        return ret;
    user_req *p = api_wait_data(*call->state);
    p->kind = !strcmp(call->method, "PUT") ? REQ_JOIN : REQ_LEAVE;
    snprintf(p->room, sizeof(p->room), "%s", call->room);
    if (!take_name(call, p, &ret))
        return ret;
    hub_user_op op = {
        .op = p->kind == REQ_JOIN ? HUB_OP_JOIN : HUB_OP_LEAVE, .name = p->name, .room = p->room};
    return run_op(call, &op);
}

/* The disconnect's reason: ?reason= or a JSON body {"reason": "..."}
 * (copied into out); "" when neither. False with *error when it is bad. */
static bool take_reason(http_call *call, const user_req *p, char *out, const char **error)
{
    const char *q = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "reason");
    json_t *body = NULL;
    if (!q && p->body.b.len) {
        json_error_t je;
        body = json_loadb(p->body.b.data, p->body.b.len, 0, &je);
        json_t *r = json_object_get(body, "reason");
        if (!json_is_object(body) || (r && !json_is_string(r))) {
            json_decref(body);
            *error = "the body must be a JSON object {\"reason\": \"...\"}";
            return false;
        }
        q = json_string_value(r);
    }
    json_t *utf8 = q ? json_string(q) : NULL; /* NULL: not UTF-8 */
    bool ok = !q || (strlen(q) <= REASON_MAX && utf8);
    json_decref(utf8);
    if (ok)
        snprintf(out, REASON_MAX + 1, "%s", q ? q : "");
    else
        *error = "reason must be valid UTF-8 of at most " REASON_MAX_TEXT " bytes";
    json_decref(body);
    return ok;
}

enum MHD_Result users_api_end(http_call *call)
{
    enum MHD_Result ret;
    if (!take_request(call, END_BODY_MAX, &ret))
        return ret;
    user_req *p = api_wait_data(*call->state);
    p->kind = REQ_END;
    if (!take_name(call, p, &ret))
        return ret;
    char reason[REASON_MAX + 1];
    const char *error = NULL;
    if (!take_reason(call, p, reason, &error))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST, "%s", error);
    hub_user_op op = {.op = HUB_OP_END,
                      .by_conn = p->by_conn,
                      .name = p->name,
                      .reason = reason[0] ? reason : NULL};
    LOG_INFO(TAG, "server API: disconnecting %s %.64s%s%s", p->by_conn ? "connection" : "user",
             p->name, reason[0] ? ": " : "", reason);
    return run_op(call, &op);
}
