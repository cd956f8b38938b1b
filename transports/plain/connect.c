/* SPDX-License-Identifier: MIT */
/*
 * plain/connect.c - the connect proxy (upstream.connect) for the plain SSE
 * stream (/rooms/{room}/events) and long poll (/rooms/{room}/poll): the
 * request is suspended while the backend decides (no thread waits), then
 * goes on with the backend's user id and room rights, or is refused with
 * its status.
 *
 * An ask is the request's state (*call->state) while it waits, tagged in
 * its lowest bit so the completed hook tells it from the carrier's state
 * (malloc'd pointers are aligned: the bit is free).
 *
 * Threading: the handler on the request's MHD thread, ask_done on the curl
 * thread (or the caller's, refused at once; or main at hc_stop). ask_lock
 * (level 3, like signalr/transports.c's connect_lock; MHD's resume is
 * called under it) guards suspended, answered and the answer. Two refs:
 * the request's and the call's. See docs/concurrency.md.
 */
#include "transports/plain/connect.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/upstream.h"
#include "transports/carriers/http_client.h"

#define ASK_TAG ((uintptr_t)1)

typedef struct plain_ask {
    atomic_int refs;
    struct MHD_Connection *conn;
    bool suspended, answered; /* ask_lock */
    access_principal *who;    /* ask_lock until answered: accepted */
    unsigned status;          /* refused */
    char *error;
} plain_ask;

static const cfg *conf;
static pthread_mutex_t ask_lock = PTHREAD_MUTEX_INITIALIZER;

void plain_connect_init(const cfg *c)
{
    conf = c;
}

bool plain_connect_is_ask(const void *state)
{
    return ((uintptr_t)state & ASK_TAG) != 0;
}

static plain_ask *untag(const void *state)
{
    return (plain_ask *)((uintptr_t)state & ~ASK_TAG);
}

static void ask_unref(plain_ask *k)
{
    if (atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    access_unref(k->who);
    free(k->error);
    free(k);
}

void plain_connect_completed(void *state)
{
    plain_ask *k = untag(state);
    pthread_mutex_lock(&ask_lock);
    k->suspended = false; /* MHD resumed it to end it */
    pthread_mutex_unlock(&ask_lock);
    ask_unref(k);
}

/* curl thread (or the caller's): the verdict. */
static void ask_done(void *arg, up_transfer t, long status, const char *body, size_t len)
{
    plain_ask *k = arg;
    unsigned refused = 0;
    char *error = NULL;
    access_principal *who =
        up_connect_read(t, status, body, len, conf->upstream.connect, &refused, &error);
    pthread_mutex_lock(&ask_lock);
    k->who = who;
    k->status = refused;
    k->error = error;
    k->answered = true;
    if (k->suspended) {
        k->suspended = false;
        MHD_resume_connection(k->conn);
    }
    pthread_mutex_unlock(&ask_lock);
    ask_unref(k);
}

static enum MHD_Result add_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    if (key && value && json_object_size(cls) < 64)
        json_object_set_new(cls, key, json_string(value));
    return MHD_YES;
}

/* {"hub": null, "headers": {Cookie?, Authorization?}, "query", "room", "transport"}. */
static char *ask_body(http_call *call, const char *transport)
{
    json_t *o = json_object(), *headers = json_object(), *query = json_object();
    static const char *const wanted[] = {"Cookie", "Authorization"};
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        const char *v = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, wanted[i]);
        if (v)
            json_object_set_new(headers, wanted[i], json_string(v));
    }
    MHD_get_connection_values(call->conn, MHD_GET_ARGUMENT_KIND, add_value, query);
    json_object_set_new(o, "hub", json_null());
    json_object_set_new(o, "headers", headers);
    json_object_set_new(o, "query", query);
    json_object_set_new(o, "room", json_string(call->room));
    json_object_set_new(o, "transport", json_string(transport));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

/* The verdict is in: GO with the proxy's principal, or the refusal. */
static plain_ask_step answered(http_call *call, plain_ask *k, access_principal **who,
                               enum MHD_Result *ret)
{
    if (!k->who) {
        *ret = http_reply_error(call->conn, k->status, "%s",
                                k->error ? k->error : "refused by the upstream");
        return PLAIN_ASK_STOP; /* the ask stays the state: completed frees it */
    }
    access_verdict v = access_room(conf, k->who, call->room, ACCESS_SUBSCRIBE);
    if (v != ACCESS_ALLOWED) {
        *ret = http_reply_error(call->conn, access_status(v), "%s",
                                access_reason(v, ACCESS_SUBSCRIBE));
        return PLAIN_ASK_STOP;
    }
    *who = access_ref(k->who);
    *call->state = NULL; /* the carrier's from now on */
    plain_connect_completed((void *)((uintptr_t)k | ASK_TAG));
    return PLAIN_ASK_GO;
}

plain_ask_step plain_connect_step(http_call *call, const char *transport, access_principal **who,
                                  enum MHD_Result *ret)
{
    *who = NULL;
    if (!conf->upstream.connect[0]) {
        *who = access_ref(call->who);
        return PLAIN_ASK_GO;
    }
    *ret = MHD_YES;
    plain_ask *k = *call->state ? untag(*call->state) : NULL;
    if (!k) {
        char *body = ask_body(call, transport);
        k = body ? calloc(1, sizeof(*k)) : NULL;
        if (!k) {
            free(body);
            *ret = MHD_NO;
            return PLAIN_ASK_STOP;
        }
        atomic_init(&k->refs, 2);
        k->conn = call->conn;
        *call->state = (void *)((uintptr_t)k | ASK_TAG);
        hc_post(conf->upstream.connect, body, strlen(body), conf->upstream.timeout_ms, false,
                ask_done, k);
    }
    pthread_mutex_lock(&ask_lock);
    bool done = k->answered;
    if (!done && !k->suspended) {
        k->suspended = true;
        MHD_suspend_connection(call->conn);
    }
    pthread_mutex_unlock(&ask_lock);
    return done ? answered(call, k, who, ret) : PLAIN_ASK_STOP;
}
