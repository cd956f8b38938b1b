/* SPDX-License-Identifier: MIT */
/*
 * upstream.c - the upstream protocol's JSON (see upstream.h): request
 * bodies built with jansson, answers read and checked whole before
 * anything is applied, and the outcome counters. No I/O, no locks.
 */
#include "common/upstream.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define TAG "upstream"
#define LOG_EVERY_MS 10000

static atomic_uint_fast64_t counts[UP_R_COUNT];
static atomic_uint_fast64_t logged_at[UP_R_COUNT];
static _Atomic int64_t next_log_ms[UP_R_COUNT];

static const char *const names[UP_R_COUNT] = {
    [UP_R_OK] = "ok",
    [UP_R_ERROR] = "error",
    [UP_R_UNAVAILABLE] = "unavailable",
    [UP_R_TIMEOUT] = "timeout",
    [UP_R_HTTP_STATUS] = "http_status",
    [UP_R_INVALID] = "invalid",
    [UP_R_TOO_LARGE] = "too_large",
    [UP_R_BUSY] = "busy",
    [UP_R_STOPPED] = "stopped",
};

const char *up_result_name(up_result r)
{
    return r < UP_R_COUNT ? names[r] : "?";
}

uint64_t up_calls_total(up_result r)
{
    return r < UP_R_COUNT ? atomic_load(&counts[r]) : 0;
}

void up_count(up_result r, const char *url)
{
    if (r >= UP_R_COUNT)
        return;
    uint64_t n = atomic_fetch_add(&counts[r], 1) + 1;
    if (r == UP_R_OK || r == UP_R_ERROR || r == UP_R_STOPPED)
        return;
    int64_t now = clock_now_ms();
    int64_t due = atomic_load(&next_log_ms[r]);
    if (now < due || !atomic_compare_exchange_strong(&next_log_ms[r], &due, now + LOG_EVERY_MS))
        return;
    uint64_t before = atomic_exchange(&logged_at[r], n);
    /* scheme://host[:port] only: no user:password@, path or query in logs */
    const char *host = url ? strstr(url, "://") : NULL;
    host = host ? host + 3 : NULL;
    const char *at = host ? strchr(host, '@') : NULL;
    if (at && at < host + strcspn(host, "/?#"))
        host = at + 1;
    int scheme_len = host ? (int)(strstr(url, "://") - url) : 0;
    int host_len = host ? (int)strcspn(host, "/?#") : 0;
    LOG_WARN(TAG, "a call to %.*s%s%.*s failed: %s (%llu time%s since the last such line)",
             scheme_len, host ? url : "", host ? "://" : "the backend", host_len, host ? host : "",
             names[r], (unsigned long long)(n - before), n - before == 1 ? "" : "s");
}

bool up_user_is_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= UP_USER_MAX;
}

bool up_target_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n >= 64 || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* ------------------------------------------------------------- answers */

static void set_error(up_answer *a, up_result r, const char *text)
{
    a->result = r;
    free(a->error);
    a->error = strdup(text);
}

/* The error text of a failed transfer, or NULL for UP_SENT_OK. */
static const char *transfer_error(up_transfer t, up_result *r)
{
    switch (t) {
    case UP_SENT_OK:
        return NULL;
    case UP_SENT_UNAVAILABLE:
        *r = UP_R_UNAVAILABLE;
        return "upstream unavailable";
    case UP_SENT_TIMEOUT:
        *r = UP_R_TIMEOUT;
        return "upstream timeout";
    case UP_SENT_TOO_LARGE:
        *r = UP_R_TOO_LARGE;
        return "upstream answer too large";
    case UP_SENT_BUSY:
        *r = UP_R_BUSY;
        return "busy";
    case UP_SENT_STOPPED:
        *r = UP_R_STOPPED;
        return "upstream unavailable: the server is shutting down";
    }
    *r = UP_R_UNAVAILABLE;
    return "upstream unavailable";
}

/* A JSON object body of a 2xx answer, or NULL with a's error set. */
static json_t *answer_object(up_answer *a, up_transfer t, long http_status, const char *body,
                             size_t len)
{
    up_result r = UP_R_UNAVAILABLE;
    const char *why = transfer_error(t, &r);
    if (why) {
        set_error(a, r, why);
        return NULL;
    }
    if (http_status < 200 || http_status > 299) {
        char text[64];
        snprintf(text, sizeof(text), "upstream answered HTTP %ld", http_status);
        set_error(a, UP_R_HTTP_STATUS, text);
        return NULL;
    }
    json_error_t je;
    json_t *j = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        set_error(a, UP_R_INVALID, "upstream answer is not valid JSON");
        return NULL;
    }
    return j;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* One "publish" action's object into *act; NULL or what is wrong. */
static const char *read_publish(json_t *p, up_action *act)
{
    if (!json_is_object(p))
        return "'publish' must be an object";
    json_t *room = json_object_get(p, "room"), *user = json_object_get(p, "user");
    json_t *all = json_object_get(p, "all");
    json_t *target = json_object_get(p, "target"), *args = json_object_get(p, "arguments");
    if ((room != NULL) + (user != NULL) + (all != NULL) != 1)
        return "'publish' needs one of 'room', 'user' and 'all'";
    if ((room && !json_is_string(room)) || (user && !json_is_string(user)))
        return "'publish.room' and 'publish.user' must be strings";
    if (all && !json_is_true(all))
        return "'publish.all' must be true";
    if (target && !json_is_string(target))
        return "'publish.target' must be a string";
    if (args && !json_is_array(args))
        return "'publish.arguments' must be an array";
    act->kind = room ? UP_ACT_PUBLISH_ROOM : user ? UP_ACT_PUBLISH_USER : UP_ACT_PUBLISH_ALL;
    act->name = all ? NULL : strdup(json_string_value(room ? room : user));
    act->target = dup_or_null(json_string_value(target));
    act->data = args ? json_dumps(args, JSON_COMPACT) : strdup("[]");
    return (all || act->name) && act->data && (!target || act->target) ? NULL : "out of memory";
}

/* One action: an object with exactly one of the known members. */
static const char *read_action(json_t *j, up_action *act)
{
    if (!json_is_object(j) || json_object_size(j) != 1)
        return "each action must be an object with one member";
    const char *key = json_object_iter_key(json_object_iter(j));
    json_t *v = json_object_iter_value(json_object_iter(j));
    if (!strcmp(key, "publish"))
        return read_publish(v, act);
    if (!strcmp(key, "join") || !strcmp(key, "leave")) {
        if (!json_is_string(v))
            return "'join' and 'leave' take a room name";
        act->kind = key[0] == 'j' ? UP_ACT_JOIN : UP_ACT_LEAVE;
        act->name = strdup(json_string_value(v));
        return act->name ? NULL : "out of memory";
    }
    if (!strcmp(key, "disconnect")) {
        if (!json_is_string(v))
            return "'disconnect' takes a reason (a string)";
        act->kind = UP_ACT_DISCONNECT;
        act->reason = strdup(json_string_value(v));
        return act->reason ? NULL : "out of memory";
    }
    return "unknown action (publish, join, leave, disconnect)";
}

static const char *read_actions(json_t *list, up_answer *a)
{
    if (!json_is_array(list))
        return "'actions' must be an array";
    size_t n = json_array_size(list);
    if (n > UP_MAX_ACTIONS)
        return "more than 100 actions";
    if (!n)
        return NULL;
    a->actions = calloc(n, sizeof(*a->actions));
    if (!a->actions)
        return "out of memory";
    for (size_t i = 0; i < n; i++) {
        a->nactions = i + 1;
        const char *why = read_action(json_array_get(list, i), &a->actions[i]);
        if (why)
            return why;
    }
    return NULL;
}

static void free_actions(up_answer *a)
{
    for (size_t i = 0; i < a->nactions; i++) {
        free(a->actions[i].name);
        free(a->actions[i].target);
        free(a->actions[i].data);
        free(a->actions[i].reason);
    }
    free(a->actions);
    a->actions = NULL;
    a->nactions = 0;
}

void up_answer_read(up_answer *a, up_transfer t, long http_status, const char *body, size_t len)
{
    memset(a, 0, sizeof(*a));
    json_t *j = answer_object(a, t, http_status, body, len);
    if (!j)
        return;
    json_t *error = json_object_get(j, "error"), *result = json_object_get(j, "result");
    json_t *actions = json_object_get(j, "actions");
    const char *why = NULL;
    if (error && (!json_is_string(error) || !json_string_length(error)))
        why = "'error' must be a non-empty string";
    else if (actions)
        why = read_actions(actions, a);
    if (!why && result && !error && !json_is_null(result) &&
        !(a->value = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY)))
        why = "out of memory";
    if (why) {
        char text[160];
        snprintf(text, sizeof(text), "upstream answer is not valid: %s", why);
        free_actions(a);
        free(a->value);
        a->value = NULL;
        set_error(a, UP_R_INVALID, text);
    } else if (error) {
        set_error(a, UP_R_ERROR, json_string_value(error));
    } else {
        a->result = UP_R_OK;
    }
    json_decref(j);
}

void up_answer_free(up_answer *a)
{
    free_actions(a);
    free(a->error);
    free(a->value);
    memset(a, 0, sizeof(*a));
}

/* A list of room patterns ("rooms.subscribe"/"rooms.publish") into list. */
static bool read_patterns(access_patterns *list, json_t *v)
{
    if (!v)
        return true;
    if (!json_is_array(v) || json_array_size(v) > 1000)
        return false;
    size_t i;
    json_t *p;
    json_array_foreach(v, i, p)
    {
        if (!json_is_string(p) || !json_string_length(p) || json_string_length(p) > 256 ||
            access_patterns_add(list, json_string_value(p)))
            return false;
    }
    return true;
}

/* A refusal: *status and *error; returns NULL. */
static access_principal *refuse(unsigned code, const char *text, unsigned *status, char **error)
{
    *status = code;
    *error = strdup(text);
    return NULL;
}

access_principal *up_connect_read(up_transfer t, long http_status, const char *body, size_t len,
                                  const char *url, unsigned *status, char **error)
{
    up_answer a = {0};
    json_t *j = answer_object(&a, t, http_status, body, len);
    if (!j) {
        unsigned code = a.result == UP_R_TIMEOUT ? 504 : a.result == UP_R_BUSY ? 503 : 502;
        up_count(a.result, url);
        access_principal *none =
            refuse(code, a.error ? a.error : "upstream unavailable", status, error);
        free(a.error);
        return none;
    }
    json_t *err = json_object_get(j, "error"), *user = json_object_get(j, "user");
    json_t *rooms = json_object_get(j, "rooms"), *code = json_object_get(j, "status");
    access_principal *p = NULL;
    if (err) {
        json_int_t s = json_integer_value(code);
        up_count(UP_R_ERROR, url);
        refuse(s == 401 ? 401 : 403,
               json_is_string(err) && json_string_length(err) ? json_string_value(err)
                                                              : "refused by the upstream",
               status, error);
    } else if ((user && !json_is_null(user) &&
                (!json_is_string(user) || !json_string_length(user) ||
                 json_string_length(user) > 256)) ||
               (rooms && !json_is_object(rooms))) {
        up_count(UP_R_INVALID, url);
        refuse(502, "upstream answer is not valid: 'user' must be a string, 'rooms' an object",
               status, error);
    } else if (!(p = access_principal_new(json_string_value(user), 0, false, false))) {
        refuse(503, "out of memory", status, error);
    } else if (!read_patterns(&p->subscribe, json_object_get(rooms, "subscribe")) ||
               !read_patterns(&p->publish, json_object_get(rooms, "publish"))) {
        access_unref(p);
        p = NULL;
        up_count(UP_R_INVALID, url);
        refuse(502,
               "upstream answer is not valid: 'rooms.subscribe' and 'rooms.publish' must be "
               "arrays of room patterns",
               status, error);
    } else {
        p->proxied = true;
        up_count(UP_R_OK, url);
    }
    json_decref(j);
    return p;
}

/* ------------------------------------------------------------ requests */

/* Sets "user" and "claims" of who on o. */
static void set_who(json_t *o, const access_principal *who)
{
    json_object_set_new(o, "user", who && who->user ? json_string(who->user) : json_null());
    json_t *claims = who && who->claims ? json_loads(who->claims, 0, NULL) : NULL;
    json_object_set_new(o, "claims", claims ? claims : json_null());
}

/* text parsed as JSON (any value), or null when NULL or not JSON. */
static json_t *value_of(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* o as compact text (o freed). */
static char *dump(json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return text;
}

char *up_call_body(const char *hub, const char *method, const char *args_json,
                   const char *connection_id, const access_principal *who)
{
    json_t *o = json_object();
    json_object_set_new(o, "hub", json_string(hub));
    json_object_set_new(o, "method", json_string(method));
    json_t *args = value_of(args_json);
    json_object_set_new(o, "arguments", json_is_array(args) ? args : json_array());
    if (!json_is_array(args))
        json_decref(args);
    json_object_set_new(o, "connection_id", json_string(connection_id));
    set_who(o, who);
    return dump(o);
}

char *up_frame_body(const char *room, const char *data_json, const char *connection_id,
                    const access_principal *who)
{
    json_t *o = json_object();
    json_object_set_new(o, "room", json_string(room));
    json_object_set_new(o, "data", value_of(data_json));
    json_object_set_new(o, "connection_id", json_string(connection_id));
    set_who(o, who);
    return dump(o);
}

char *up_event_body(const char *event, const char *hub, const char *room, const char *reason,
                    const char *connection_id, const access_principal *who)
{
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string(event));
    json_object_set_new(o, "hub", string_or_null(hub));
    if (room)
        json_object_set_new(o, "room", json_string(room));
    if (reason)
        json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "connection_id", json_string(connection_id));
    set_who(o, who);
    return dump(o);
}

char *up_connect_body(const char *hub, const char *headers_json, const char *query_json)
{
    json_t *o = json_object();
    json_t *h = value_of(headers_json), *q = value_of(query_json);
    json_object_set_new(o, "hub", json_string(hub));
    json_object_set_new(o, "headers", json_is_object(h) ? h : json_object());
    json_object_set_new(o, "query", json_is_object(q) ? q : json_object());
    if (!json_is_object(h))
        json_decref(h);
    if (!json_is_object(q))
        json_decref(q);
    return dump(o);
}
