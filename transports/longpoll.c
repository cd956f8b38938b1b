/* SPDX-License-Identifier: MIT */
/*
 * longpoll.c - held requests on libmicrohttpd, and the plain room long poll.
 *
 * A held request waits on a sub. If the sub has something when the request
 * comes, it is answered at once. Otherwise the handler suspends it without a
 * response; the sub's wake, the deadline (lp_tick), a release or shutdown
 * resumes it, MHD calls the handler again, and the owner's answer() builds
 * the response from what is queued.
 *
 * The plain room poll joins its room with the cursor `since`: the hub
 * replays what history holds after it, so a poll with something to answer
 * answers at once. Each answer ends the membership; the client polls again
 * with since=last_id and history fills what came in between.
 *
 * Threading: handlers run on the MHD thread of the request's daemon (any of
 * the three: http.c); lp_wake on the publisher's
 * thread with the sub lock held; lp_tick on the timer thread. `suspended`,
 * `release` and `answered` are guarded by the sub's lock; the registry of
 * held requests has its own lock, taken before any sub lock.
 */
#include "transports/longpoll.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/limits.h"
#include "gateway/log.h"

#define TAG "longpoll"

/* A plain answer stops adding messages past this size; the client gets the
 * rest from history with its next poll. */
#define ANSWER_SOFT_LIMIT (1u << 20)

struct lp_conn {
    sub *s;
    struct MHD_Connection *conn;
    int64_t deadline;  /* monotonic ms */
    bool suspended;    /* sub lock */
    bool release;      /* sub lock: answer now */
    bool timed_out;    /* sub lock */
    bool in_registry;  /* registry lock */
    const lp_hold_ops *ops;
    void *session;
    struct lp_conn *prev, *next; /* registry of held requests */
};

static const cfg *conf;
static hub *the_hub;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static lp_conn *registry;
static bool shutting_down; /* registry_lock */
static unsigned held_count; /* registry_lock */

void lp_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

/* Sub lock held, any thread. */
static void lp_wake(sub *s)
{
    lp_conn *c = s->owner;
    if (c->suspended) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
}

void lp_release_locked(lp_conn *c)
{
    c->release = true;
    lp_wake(c->s);
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
        held_count++;
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
        held_count--;
    }
    pthread_mutex_unlock(&registry_lock);
}

unsigned lp_held(void)
{
    pthread_mutex_lock(&registry_lock);
    unsigned n = held_count;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

/* -------------------------------------------------------- held requests */

/* Detaches from the sub and lets the owner answer. */
static enum MHD_Result answer(http_call *call, lp_conn *c)
{
    registry_remove(c);
    pthread_mutex_lock(&c->s->lock);
    if (c->s->owner == c)
        sub_attach(c->s, NULL, NULL);
    lp_reason why = c->release ? LP_RELEASED : c->timed_out ? LP_TIMEOUT : LP_READY;
    pthread_mutex_unlock(&c->s->lock);
    return c->ops->answer(call, c->session, c->s, why);
}

enum MHD_Result lp_hold(http_call *call, sub *s, int64_t timeout_ms, const lp_hold_ops *ops,
                        void *session, lp_conn **out)
{
    lp_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        ops->ended(session);
        return MHD_NO;
    }
    c->s = s;
    c->conn = call->conn;
    c->deadline = hub_now_ms() + timeout_ms;
    c->ops = ops;
    c->session = session;
    *call->state = c;
    if (out)
        *out = c;
    bool held = registry_add(c);
    pthread_mutex_lock(&s->lock);
    c->release = !held; /* shutting down: answer at once */
    bool ready = c->release || !sendq_is_empty(&s->q) || s->dropped || s->ending;
    if (!ready) {
        sub_attach(s, lp_wake, c);
        c->suspended = true;
        MHD_suspend_connection(call->conn);
    }
    pthread_mutex_unlock(&s->lock);
    return ready ? answer(call, c) : MHD_YES;
}

enum MHD_Result lp_resume(http_call *call)
{
    return answer(call, *call->state);
}

void lp_completed(void *state)
{
    lp_conn *c = state;
    registry_remove(c);
    pthread_mutex_lock(&c->s->lock);
    if (c->s->owner == c)
        sub_attach(c->s, NULL, NULL);
    pthread_mutex_unlock(&c->s->lock);
    c->ops->ended(c->session);
    free(c);
}

void lp_tick(int64_t now_ms)
{
    pthread_mutex_lock(&registry_lock);
    for (lp_conn *c = registry; c; c = c->next) {
        if (c->deadline > now_ms)
            continue;
        pthread_mutex_lock(&c->s->lock);
        if (c->suspended) {
            c->timed_out = true;
            lp_wake(c->s);
        }
        pthread_mutex_unlock(&c->s->lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

void lp_shutdown(void)
{
    pthread_mutex_lock(&registry_lock);
    shutting_down = true;
    for (lp_conn *c = registry; c; c = c->next) {
        pthread_mutex_lock(&c->s->lock);
        if (c->suspended)
            lp_release_locked(c);
        pthread_mutex_unlock(&c->s->lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

/* ---------------------------------------------------- plain room polls */

typedef struct room_poll {
    sub s;
    uint64_t since; /* the client's cursor (0 for none: see build_answer) */
    char room[ROOM_NAME_MAX + 1];
} room_poll;

/* Sub lock held. Builds {"messages":[...],"last_id":N} from the queue. With
 * nothing queued (timeout, or a dropped poll whose queue the hub emptied)
 * last_id stays the client's cursor, and the next poll takes any missed
 * messages from history. Returns NULL on ENOMEM. */
static char *build_answer(room_poll *p, const char *epoch, size_t *len_out)
{
    buf out = {0};
    char tail[96];
    /* The sub's cursor: the join's (with a backplane it is known only once
     * the room's numbering arrived), or past what the hub queued. */
    uint64_t last = p->s.dropped ? p->since : p->s.last_id;
    bool ok = buf_append(&out, "{", 1);
    msg *m = sendq_peek(&p->s.q);
    if (m && m->gap) { /* a resume that lost something says so first */
        msg_bytes info = msg_data(m);
        ok = buf_append(&out, "\"gap\":", 6) && buf_append(&out, info.base, info.len) &&
             buf_append(&out, ",", 1);
        last = m->id; /* polling on from here asks for nothing lost again */
        sendq_pop(&p->s.q);
    }
    ok = ok && buf_append(&out, "\"messages\":[", 12);
    bool first = true;
    while (ok && (m = sendq_peek(&p->s.q)) != NULL) {
        msg_bytes b = msg_get(m, MSG_FMT_JSON, NULL);
        if (!first && out.len + b.len > ANSWER_SOFT_LIMIT)
            break;
        if (!first)
            ok = buf_append(&out, ",", 1);
        ok = ok && buf_append(&out, b.base, b.len);
        last = m->id;
        first = false;
        sendq_pop(&p->s.q);
    }
    int tlen = snprintf(tail, sizeof(tail), "],\"last_id\":%" PRIu64 ",\"epoch\":\"%s\"}", last,
                        epoch);
    if (!ok || !buf_append(&out, tail, (size_t)tlen)) {
        buf_free(&out);
        return NULL;
    }
    *len_out = out.len;
    return buf_take(&out);
}

static enum MHD_Result room_poll_answer(http_call *call, void *session, sub *s, lp_reason why)
{
    room_poll *p = session;
    (void)why;
    /* The room's epoch first: the hub lock comes before a sub's, never after. */
    room_info info = {0};
    hub_room_info(the_hub, p->room, &info);
    pthread_mutex_lock(&s->lock);
    size_t len = 0;
    char *body = build_answer(p, info.epoch, &len);
    pthread_mutex_unlock(&s->lock);
    hub_leave(the_hub, s);
    return body ? http_reply_take(call->conn, MHD_HTTP_OK, "application/json", body, len) : MHD_NO;
}

static void room_poll_ended(void *session)
{
    room_poll *p = session;
    hub_leave(the_hub, &p->s);
    sub_fini(&p->s);
    free(p);
}

static const lp_hold_ops room_poll_ops = {room_poll_answer, room_poll_ended};

enum MHD_Result lp_handle(http_call *call)
{
    if (*call->state)
        return lp_resume(call);
    const char *v = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *epoch = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "epoch");
    uint64_t since = 0;
    if (v && !http_parse_u64(v, &since))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "since must be a non-negative integer, got '%.64s'", v);
    if (epoch && !hub_epoch_is_valid(epoch))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "epoch must be 1 to 15 letters or digits");
    room_poll *p = calloc(1, sizeof(*p));
    if (!p)
        return MHD_NO;
    sub_init(&p->s, SUB_LONGPOLL, MSG_FMT_JSON, conf->limits.send_queue);
    snprintf(p->room, sizeof(p->room), "%s", call->room);
    int rc = v ? hub_resume(the_hub, call->room, &p->s, since, epoch)
               : hub_join(the_hub, call->room, &p->s, 0, true);
    if (rc) {
        sub_fini(&p->s);
        free(p);
        if (rc == -ENOSPC || rc == -EMLINK) /* a limit: logged once per burst */
            return http_reply_refused(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, 0,
                                      limit_join_error(rc));
        return http_reply_error(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot join room");
    }
    p->since = p->s.last_id; /* since, or the room's last id without one */
    return lp_hold(call, &p->s, (int64_t)conf->limits.poll_timeout_s * 1000, &room_poll_ops, p,
                   NULL);
}
