/* SPDX-License-Identifier: MIT */
/*
 * longpoll.c - long-poll subscribers (GET /rooms/{room}/poll?since=N) on
 * libmicrohttpd.
 *
 * A poll joins its room as a subscriber with the cursor `since`: the hub
 * replays what history holds after it, so a poll that has something to
 * answer answers at once. Otherwise the handler suspends the request without
 * a response; the hub's wake, the deadline (lp_tick) or shutdown resumes it,
 * MHD calls the handler again, and it answers with what is queued. Each
 * answer ends the membership; the client polls again with since=last_id and
 * history fills what came in between.
 *
 * Threading: handlers run on the MHD thread; wake runs on the publisher's
 * thread with the sub lock held; lp_tick on the timer thread. `suspended`
 * and the flags are guarded by the sub lock; the registry of held polls has
 * its own lock, taken before any sub lock.
 */
#include "transports/longpoll.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"

#define TAG "longpoll"

/* An answer stops adding messages past this size; the client gets the rest
 * from history with its next poll. */
#define ANSWER_SOFT_LIMIT (1u << 20)

typedef struct lp_conn {
    sub base; /* first: the hub sees only this */
    struct MHD_Connection *conn;
    uint64_t since;    /* the client's cursor */
    int64_t deadline;  /* monotonic ms */
    bool suspended;    /* sub lock */
    bool release;      /* sub lock: answer now (timeout, shutdown, dropped) */
    bool in_registry;  /* registry lock */
    struct lp_conn *prev, *next; /* registry of held polls */
} lp_conn;

static const cfg *conf;
static hub *the_hub;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static lp_conn *registry;
static bool shutting_down; /* registry_lock */

static void lp_wake(sub *s)
{
    lp_conn *c = (lp_conn *)s;
    if (c->suspended && c->conn) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
}

static void lp_dropped(sub *s, const char *why)
{
    (void)why;
    ((lp_conn *)s)->release = true;
    lp_wake(s);
}

static const sub_ops lp_ops = {
    .name = "long_polling",
    .kind = SUB_LONGPOLL,
    .fmt = MSG_FMT_JSON,
    .wake = lp_wake,
    .dropped = lp_dropped,
};

void lp_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

/* ------------------------------------------------------------ registry */

static bool registry_add(lp_conn *c)
{
    pthread_mutex_lock(&registry_lock);
    bool ok = !shutting_down;
    if (ok) {
        c->prev = NULL;
        c->next = registry;
        if (registry)
            registry->prev = c;
        registry = c;
        c->in_registry = true;
    }
    pthread_mutex_unlock(&registry_lock);
    return ok;
}

static void registry_remove(lp_conn *c)
{
    pthread_mutex_lock(&registry_lock);
    if (c->in_registry) {
        if (c->prev)
            c->prev->next = c->next;
        else
            registry = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->in_registry = false;
    }
    pthread_mutex_unlock(&registry_lock);
}

/* -------------------------------------------------------------- answers */

/* Appends len bytes to the growing answer *buf. Returns false on ENOMEM. */
static bool buf_append(char **buf, size_t *n, size_t *cap, const char *data, size_t len)
{
    if (*n + len > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *n + len)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return false;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *n, data, len);
    *n += len;
    return true;
}

/* Sub lock held. Builds {"messages":[...],"last_id":N} from the queue. With
 * nothing queued (timeout, or a dropped poll whose queue the hub emptied)
 * last_id stays the client's cursor, and the next poll takes any missed
 * messages from history. Returns NULL on ENOMEM. */
static char *build_answer(lp_conn *c, size_t *len_out)
{
    char *out = NULL, tail[48];
    size_t n = 0, cap = 0;
    uint64_t last = c->since;
    bool ok = buf_append(&out, &n, &cap, "{\"messages\":[", 13);
    msg *m;
    while (ok && (m = sendq_peek(&c->base.q)) != NULL) {
        msg_bytes b = msg_get(m, MSG_FMT_JSON);
        if (last != c->since && n + b.len > ANSWER_SOFT_LIMIT)
            break;
        if (last != c->since)
            ok = buf_append(&out, &n, &cap, ",", 1);
        ok = ok && buf_append(&out, &n, &cap, b.base, b.len);
        last = m->id;
        sendq_pop(&c->base.q);
    }
    int tlen = snprintf(tail, sizeof(tail), "],\"last_id\":%" PRIu64 "}", last);
    if (!ok || !buf_append(&out, &n, &cap, tail, (size_t)tlen)) {
        free(out);
        return NULL;
    }
    *len_out = n;
    return out;
}

static enum MHD_Result answer(http_call *call, lp_conn *c)
{
    pthread_mutex_lock(&c->base.lock);
    size_t len = 0;
    char *body = build_answer(c, &len);
    pthread_mutex_unlock(&c->base.lock);
    hub_leave(the_hub, &c->base);
    registry_remove(c);
    if (!body)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(call->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* Answers now if there is something to say, else parks the request. */
static enum MHD_Result answer_or_hold(http_call *call, lp_conn *c)
{
    pthread_mutex_lock(&c->base.lock);
    bool ready = !sendq_is_empty(&c->base.q) || c->release || c->base.dropped;
    if (!ready) {
        c->suspended = true;
        MHD_suspend_connection(call->conn);
    }
    pthread_mutex_unlock(&c->base.lock);
    return ready ? answer(call, c) : MHD_YES;
}

static enum MHD_Result start_poll(http_call *call)
{
    const char *v = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "since");
    uint64_t since = 0;
    if (v && !http_parse_u64(v, &since))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "since must be a non-negative integer, got '%.64s'", v);
    lp_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return MHD_NO;
    sub_init(&c->base, &lp_ops, conf->limits.send_queue);
    c->conn = call->conn;
    c->deadline = hub_now_ms() + (int64_t)conf->limits.poll_timeout_s * 1000;
    if (hub_join(the_hub, call->room, &c->base, since, v == NULL)) {
        sub_fini(&c->base);
        free(c);
        return http_reply_error(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot join room");
    }
    c->since = c->base.last_id; /* since, or the room's last id without one */
    *call->state = c;
    if (!registry_add(c)) {
        pthread_mutex_lock(&c->base.lock);
        c->release = true; /* shutting down: answer at once */
        pthread_mutex_unlock(&c->base.lock);
    }
    return answer_or_hold(call, c);
}

enum MHD_Result lp_handle(http_call *call)
{
    lp_conn *c = *call->state;
    if (!c)
        return start_poll(call);
    return answer(call, c); /* resumed: by a message, the deadline or shutdown */
}

void lp_completed(void *state)
{
    lp_conn *c = state;
    hub_leave(the_hub, &c->base);
    registry_remove(c);
    pthread_mutex_lock(&c->base.lock);
    c->conn = NULL;
    pthread_mutex_unlock(&c->base.lock);
    sub_fini(&c->base);
    free(c);
}

/* ---------------------------------------------------------------- timer */

void lp_tick(int64_t now_ms)
{
    pthread_mutex_lock(&registry_lock);
    for (lp_conn *c = registry; c; c = c->next) {
        if (c->deadline > now_ms)
            continue;
        pthread_mutex_lock(&c->base.lock);
        c->release = true;
        lp_wake(&c->base);
        pthread_mutex_unlock(&c->base.lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

void lp_shutdown(void)
{
    pthread_mutex_lock(&registry_lock);
    shutting_down = true;
    for (lp_conn *c = registry; c; c = c->next) {
        pthread_mutex_lock(&c->base.lock);
        c->release = true;
        lp_wake(&c->base);
        pthread_mutex_unlock(&c->base.lock);
    }
    pthread_mutex_unlock(&registry_lock);
}
