/* SPDX-License-Identifier: MIT */
/*
 * signalr/upstream.c - SignalR hub methods answered by a backend, and the
 * events a hub's connections send it (README "Upstream hub methods"). An
 * invocation of a method with "upstream" is POSTed (carriers/http_client.c);
 * the answer's actions are applied in order, then the completion is sent,
 * then a "disconnect" action closes the connection.
 *
 * Threading: sr_upstream_invoke runs on the thread that received the
 * record (recv_lock held); the answer runs on the curl thread (or, for a
 * call refused at once, on the invoking thread) with no lock held, holding
 * a ref on the connection. It touches the connection only through the hub
 * (its own locks), hub_send (the completion) and sr_conn_close, which any
 * thread may call. Actions are trusted: they bypass auth.rooms.
 *
 * Threads and locks: docs/concurrency.md
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/upstream.h"
#include "transports/carriers/http_client.h"
#include "transports/signalr/private.h"

#define TAG "signalr"

static const cfg *conf;
static hub *the_hub;

void sr_upstream_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

/* An invocation waiting for its backend. Holds a ref on c. */
typedef struct up_call {
    sr_conn *c;
    char *invocation_id; /* NULL: no completion */
    const char *url;     /* the method's (the config's) */
} up_call;

/* Who c is now, with a ref (NULL anonymous). */
static access_principal *who_of(sr_conn *c)
{
    pthread_mutex_lock(&c->s.lock);
    access_principal *who = access_ref(c->who);
    pthread_mutex_unlock(&c->s.lock);
    return who;
}

/* Checks every action before any is applied. NULL, or what is wrong (in err). */
static const char *check_actions(const up_answer *a, char *err, size_t cap)
{
    for (size_t i = 0; i < a->nactions; i++) {
        const up_action *act = &a->actions[i];
        if (act->kind == UP_ACT_DISCONNECT)
            continue;
        if (act->kind == UP_ACT_PUBLISH_USER && !up_user_is_valid(act->name)) {
            snprintf(err, cap,
                     "upstream answer is not valid: action %zu: a user id is 1 to %d bytes", i + 1,
                     UP_USER_MAX);
            return err;
        }
        if (act->kind != UP_ACT_PUBLISH_ALL && act->kind != UP_ACT_PUBLISH_USER &&
            !room_name_is_valid(act->name, strlen(act->name))) {
            snprintf(err, cap,
                     "upstream answer is not valid: action %zu: a room name is 1 to %d of "
                     "A-Z a-z 0-9 . _ - :",
                     i + 1, ROOM_NAME_MAX);
            return err;
        }
        if (act->target && !up_target_is_valid(act->target)) {
            snprintf(err, cap,
                     "upstream answer is not valid: action %zu: a target is 1 to 63 letters, "
                     "digits or '_'",
                     i + 1);
            return err;
        }
        if (act->data && strlen(act->data) > conf->limits.max_message_bytes) {
            snprintf(err, cap,
                     "upstream answer is not valid: action %zu: the arguments are larger than "
                     "limits.max_message_bytes",
                     i + 1);
            return err;
        }
    }
    return NULL;
}

static void action_published(void *arg, const publish_result *r)
{
    (void)arg;
    if (r->rc && r->rc != -EAGAIN)
        LOG_WARN(TAG, "a publish action of an upstream answer failed: %s", strerror(-r->rc));
}

static void user_published(void *arg, const hub_user_result *r)
{
    (void)arg;
    if (r->rc)
        LOG_WARN(TAG, "a publish action of an upstream answer to a user failed: %s",
                 strerror(-r->rc));
}

/* Sends to every connection of the user, on every node (hub/users.c), as
 * POST /users/{user}/messages does. */
void sr_upstream_publish_user(const up_action *act)
{
    hub_user_op op = {.op = HUB_OP_SEND,
                      .name = act->name,
                      .data = act->data,
                      .len = strlen(act->data),
                      .target = act->target};
    hub_user_op_async(the_hub, &op, user_published, NULL);
}

/* Publishes to a room (or, for "all", c's hub's own room, as the hub's
 * broadcast does), as the hub's room send does (trusted: no room rule). */
static void publish_action(sr_conn *c, const up_action *act)
{
    publish_opts opt = {.target = act->target};
    const char *room = act->kind == UP_ACT_PUBLISH_ALL ? c->all_room : act->name;
    hub_publish_async(the_hub, room, act->data, strlen(act->data), &opt, action_published, NULL);
}

/* Applies the actions in order, up to a disconnect, whose reason is
 * returned (the caller closes c once the completion is out). */
static const char *apply_actions(sr_conn *c, const up_answer *a)
{
    for (size_t i = 0; i < a->nactions; i++) {
        const up_action *act = &a->actions[i];
        switch (act->kind) {
        case UP_ACT_PUBLISH_ROOM:
        case UP_ACT_PUBLISH_ALL:
            publish_action(c, act);
            break;
        case UP_ACT_PUBLISH_USER:
            sr_upstream_publish_user(act);
            break;
        case UP_ACT_JOIN: {
            int rc = hub_join_ex(the_hub, act->name, &c->s, &(hub_join_args){.from_now = true});
            if (!rc)
                sr_upstream_event(c, "join", act->name, NULL);
            else if (rc != -EEXIST)
                LOG_INFO(TAG, "connection " SR_CONN_FMT ": join action on %s failed: %s",
                         SR_CONN_ARGS(c), act->name, limit_join_error(rc));
            break;
        }
        case UP_ACT_LEAVE:
            hub_leave_room(the_hub, act->name, &c->s);
            sr_upstream_event(c, "leave", act->name, NULL);
            break;
        case UP_ACT_DISCONNECT:
            return act->reason;
        }
    }
    return NULL;
}

/* The backend answered (or did not): actions, completion, disconnect. */
static void call_done(void *arg, up_transfer t, long status, const char *body, size_t len)
{
    up_call *u = arg;
    up_answer a;
    up_answer_read(&a, t, status, body, len);
    char err[200];
    const char *bad =
        a.result == UP_R_OK || a.result == UP_R_ERROR ? check_actions(&a, err, sizeof(err)) : NULL;
    if (bad) {
        a.result = UP_R_INVALID;
        free(a.error);
        a.error = strdup(bad);
    }
    up_count(a.result, u->url);
    bool ok = a.result == UP_R_OK || a.result == UP_R_ERROR;
    const char *disconnect = ok ? apply_actions(u->c, &a) : NULL;
    const char *error = a.result == UP_R_OK ? NULL : a.error ? a.error : "upstream unavailable";
    if (u->invocation_id)
        sr_send_completion(u->c, u->invocation_id, error, a.value);
    else if (error)
        LOG_DBG(TAG, "connection " SR_CONN_FMT ": %s", SR_CONN_ARGS(u->c), error);
    if (disconnect)
        sr_conn_close(u->c, *disconnect ? disconnect : "Disconnected by the server.", false);
    up_answer_free(&a);
    sr_conn_unref(u->c);
    free(u->invocation_id);
    free(u);
}

const char *sr_upstream_invoke(sr_conn *c, const char *invocation_id, const cfg_method *m,
                               json_t *args)
{
    up_call *u = calloc(1, sizeof(*u));
    if (!u || (invocation_id && !(u->invocation_id = strdup(invocation_id)))) {
        free(u);
        return "Out of memory.";
    }
    char *args_text = json_dumps(args, JSON_COMPACT);
    access_principal *who = who_of(c);
    char *body = args_text ? up_call_body(c->hub->name, m->name, args_text, c->id, who) : NULL;
    access_unref(who);
    free(args_text);
    if (!body) {
        free(u->invocation_id);
        free(u);
        return "Out of memory.";
    }
    atomic_fetch_add(&c->refs, 1);
    u->c = c;
    u->url = m->upstream;
    hc_post(m->upstream, body, strlen(body), conf->upstream.timeout_ms, false, call_done, u);
    return NULL;
}

/* How an event's POST ended: only counted (and a failure logged once per burst). */
static void event_done(void *arg, up_transfer t, long status, const char *body, size_t len)
{
    (void)arg;
    (void)body;
    (void)len;
    up_result r = t == UP_SENT_OK && status >= 200 && status <= 299 ? UP_R_OK
                  : t == UP_SENT_OK                                 ? UP_R_HTTP_STATUS
                  : t == UP_SENT_TIMEOUT                            ? UP_R_TIMEOUT
                  : t == UP_SENT_STOPPED                            ? UP_R_STOPPED
                  : t == UP_SENT_TOO_LARGE                          ? UP_R_OK /* answered */
                                                                    : UP_R_UNAVAILABLE;
    up_count(r, conf->upstream.events);
}

void sr_upstream_event(sr_conn *c, const char *event, const char *room, const char *reason)
{
    if (!conf || !conf->upstream.events[0])
        return;
    access_principal *who = who_of(c);
    char *body = up_event_body(event, c->hub->name, room, reason, c->id, who);
    access_unref(who);
    if (body)
        hc_post(conf->upstream.events, body, strlen(body), conf->upstream.timeout_ms, true,
                event_done, NULL);
}
