/* SPDX-License-Identifier: MIT */
/*
 * longpoll.c - held requests on libmicrohttpd, and the plain room long poll.
 *
 * A held request waits on a sub. If the sub has something when the request
 * comes, it is answered at once. Otherwise the handler suspends it without a
 * response; the sub's wake, the deadline (lp_tick), a release, shutdown or
 * the client's close (held_watch.c) resumes it, MHD calls the handler
 * again, and the owner's answer() builds the response from what is queued.
 * A request whose client is gone gets no answer: MHD closes it at once and
 * nothing queued is taken from the sub.
 *
 * A hold is made in two steps (lp_prepare, then lp_hold) so that an owner
 * can publish it (SignalR: the connection's `held` poll) under the sub lock
 * before it waits: a release may come at any time after that, and is kept
 * until lp_hold looks (`release`), so a poll replaced before it waited is
 * answered at once instead of waiting beside its successor.
 *
 * The plain room poll joins its room with the cursor `since`: the hub
 * replays what history holds after it, so a poll with something to answer
 * answers at once. Each answer ends the membership; the client polls again
 * with since=last_id and history fills what came in between. The answer's
 * last_id never passes a message the answer does not carry (room_cursor).
 *
 * Threading: handlers run on the MHD thread of the request's daemon (any of
 * the three: http.c); lp_wake on the publisher's thread with the sub lock
 * held; lp_tick on the timer thread; lp_gone on the watcher thread.
 * `suspended`, `release`, `timed_out` and `gone` are guarded by the sub's
 * lock; the registry of held requests has its own lock, taken before any
 * sub lock; the watch (held_watch.h) is set and cleared with no sub lock
 * held. A resume only ever names the lp_conn it is for, never the sub's
 * current owner, which may be another request's.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/longpoll.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/parse.h"
#include "transports/carriers/held_watch.h"

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
    bool gone;         /* sub lock: the client closed its socket */
    bool in_registry;  /* registry lock */
    hw_entry *watch;   /* MHD thread: set while suspended */
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

/* Sub lock held, any thread: lets MHD call c's handler again, once. */
static void resume_locked(lp_conn *c)
{
    if (c->suspended) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
}

/* Sub lock held, the hub's wake: the sub's owner has news. */
static void lp_wake(sub *s)
{
    lp_conn *c = s->owner;
    if (c)
        resume_locked(c);
}

void lp_release_locked(lp_conn *c)
{
    c->release = true; /* kept for lp_hold when c does not wait yet */
    resume_locked(c);
}

/* Watcher thread: the client of a held request closed its socket. */
static void lp_gone(void *arg)
{
    lp_conn *c = arg;
    pthread_mutex_lock(&c->s->lock);
    c->gone = true;
    resume_locked(c);
    pthread_mutex_unlock(&c->s->lock);
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

/* MHD thread, no sub lock: c waits no more. Detaches it from the sub and
 * lets the owner answer, unless the client is gone: then MHD closes the
 * connection (and lp_completed ends the hold) without taking anything
 * queued. */
static enum MHD_Result answer(http_call *call, lp_conn *c)
{
    hw_unwatch(c->watch); /* before the sub lock: the watcher takes it */
    c->watch = NULL;
    registry_remove(c);
    pthread_mutex_lock(&c->s->lock);
    if (c->s->owner == c)
        sub_attach(c->s, NULL, NULL);
    bool gone = c->gone;
    lp_reason why = c->release ? LP_RELEASED : c->timed_out ? LP_TIMEOUT : LP_READY;
    pthread_mutex_unlock(&c->s->lock);
    if (gone)
        return MHD_NO;
    return c->ops->answer(call, c->session, c->s, why);
}

lp_conn *lp_prepare(http_call *call, sub *s, int64_t timeout_ms, const lp_hold_ops *ops,
                    void *session)
{
    lp_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        ops->ended(session);
        return NULL;
    }
    c->s = s;
    c->conn = call->conn;
    c->deadline = clock_now_ms() + timeout_ms;
    c->ops = ops;
    c->session = session;
    *call->state = c;
    return c;
}

enum MHD_Result lp_hold(http_call *call, lp_conn *c)
{
    sub *s = c->s;
    bool held = registry_add(c);
    pthread_mutex_lock(&s->lock);
    c->release |= !held; /* shutting down: answer at once */
    bool ready = c->release || !sendq_is_empty(&s->q) || s->dropped || s->ending;
    if (!ready) {
        sub_attach(s, lp_wake, c);
        c->suspended = true;
        MHD_suspend_connection(call->conn);
    }
    pthread_mutex_unlock(&s->lock);
    if (ready)
        return answer(call, c);
    /* Still on the MHD thread of this request, so answer() cannot run
     * before the watch is set, even if a wake resumed c already. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(call->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->watch = ci ? hw_watch(ci->connect_fd, lp_gone, c) : NULL;
    return MHD_YES;
}

enum MHD_Result lp_resume(http_call *call)
{
    return answer(call, *call->state);
}

void lp_completed(void *state)
{
    lp_conn *c = state;
    hw_unwatch(c->watch);
    c->watch = NULL;
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
            resume_locked(c);
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
    /* The cursor the client holds: its since, or where a from-now join
     * started. Set before the hold, read under the sub lock after. */
    uint64_t since;
    char epoch[MSG_EPOCH_MAX]; /* the client's epoch, "" for none */
    char room[ROOM_NAME_MAX + 1];
} room_poll;

uint64_t lp_join_cursor_locked(const sub *s)
{
    msg *m = sendq_peek(&s->q);
    if (m) /* the hub queued live messages since the join: it began before the first */
        return m->id ? m->id - 1 : 0;
    /* Nothing queued: last_id is still the join's, unless the hub dropped
     * s already (then what it lost is unknown: 0 asks history for all). */
    return s->dropped ? 0 : s->last_id;
}

char *lp_build_answer(sub *s, uint64_t cursor, const char *cursor_epoch, const char *epoch,
                      size_t *len_out)
{
    buf out = {0};
    char tail[96];
    /* Nothing taken: the sub's cursor, the join's or past what the hub
     * queued (all of which went into earlier answers: a poll answers
     * once). A dropped sub lost what was queued, so the client keeps its
     * own cursor, in its own epoch, and the next poll takes the lost
     * messages from history (or learns of a gap). */
    uint64_t last = s->dropped ? cursor : s->last_id;
    if (s->dropped && cursor_epoch && *cursor_epoch)
        epoch = cursor_epoch;
    bool ok = buf_append(&out, "{", 1);
    msg *m = sendq_peek(&s->q);
    if (m && m->gap) { /* a resume that lost something says so first */
        msg_bytes info = msg_data(m);
        ok = buf_append(&out, "\"gap\":", 6) && buf_append(&out, info.base, info.len) &&
             buf_append(&out, ",", 1);
        last = m->id; /* polling on from here asks for nothing lost again */
        sendq_pop(&s->q);
    }
    ok = ok && buf_append(&out, "\"messages\":[", 12);
    bool first = true;
    while (ok && (m = sendq_peek(&s->q)) != NULL) {
        msg_bytes b = msg_get(m, MSG_FMT_JSON, NULL);
        if (!first && out.len + b.len > ANSWER_SOFT_LIMIT)
            break; /* last stays at the last message taken */
        if (!first)
            ok = buf_append(&out, ",", 1);
        ok = ok && buf_append(&out, b.base, b.len);
        last = m->id;
        first = false;
        sendq_pop(&s->q);
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
    char *body = lp_build_answer(s, p->since, p->epoch, info.epoch, &len);
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
    if (v && !parse_u64(v, &since))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "since must be a non-negative integer, got '%.64s'", v);
    if (epoch && !hub_epoch_is_valid(epoch))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "epoch must be 1 to 15 letters or digits");
    if (epoch && !v) /* as on /ws: an epoch alone names no position */
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "epoch needs since: poll with since=N&epoch=E");
    room_poll *p = calloc(1, sizeof(*p));
    if (!p)
        return MHD_NO;
    sub_init(&p->s, SUB_LONGPOLL, MSG_FMT_JSON, conf->limits.send_queue);
    snprintf(p->room, sizeof(p->room), "%s", call->room);
    if (v && epoch)
        snprintf(p->epoch, sizeof(p->epoch), "%s", epoch);
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
    /* The hub may deliver from the moment the join returns: the cursor of a
     * from-now join is read under the sub lock, from before what came. */
    pthread_mutex_lock(&p->s.lock);
    p->since = v ? since : lp_join_cursor_locked(&p->s);
    pthread_mutex_unlock(&p->s.lock);
    lp_conn *c = lp_prepare(call, &p->s, (int64_t)conf->limits.poll_timeout_s * 1000,
                            &room_poll_ops, p);
    return c ? lp_hold(call, c) : MHD_NO;
}
