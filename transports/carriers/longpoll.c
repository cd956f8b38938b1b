/* SPDX-License-Identifier: MIT */
/*
 * longpoll.c - held requests on libmicrohttpd: the long-poll carrier. What a
 * poll waits on (its sub) and what its answer says belong to a protocol
 * (transports/plain/poll.c, transports/signalr/transports.c).
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
 * Threading: handlers run on the MHD thread of the request's daemon (any of
 * the three: http.c); lp_wake on the publisher's thread with the sub lock
 * held; lp_tick on the timer thread; lp_gone on the watcher thread.
 * `suspended`, `release`, `timed_out` and `gone` are guarded by the sub's
 * lock; a waiting request is in the registry of held connections (held.h,
 * kind HELD_POLL), whose lock comes before any sub lock; the watch
 * (held_watch.h) is set and cleared with no sub lock held. A resume only
 * ever names the lp_conn it is for, never the sub's current owner, which
 * may be another request's.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/longpoll.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/clock.h"
#include "transports/carriers/held.h"
#include "transports/carriers/held_watch.h"

struct lp_conn {
    sub *s;
    struct MHD_Connection *conn;
    int64_t deadline; /* monotonic ms */
    bool suspended;   /* sub lock */
    bool release;     /* sub lock: answer now */
    bool timed_out;   /* sub lock */
    bool gone;        /* sub lock: the client closed its socket */
    hw_entry *watch;  /* MHD thread: set while suspended */
    const lp_hold_ops *ops;
    void *session;
    held reg; /* in the registry from lp_hold until it is answered or over */
};

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

unsigned lp_held(void)
{
    return held_count(HELD_POLL);
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
    held_remove(&c->reg);
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
    held_init(&c->reg, HELD_POLL, c);
    *call->state = c;
    return c;
}

enum MHD_Result lp_hold(http_call *call, lp_conn *c)
{
    sub *s = c->s;
    bool shutting_down = held_add(&c->reg);
    pthread_mutex_lock(&s->lock);
    c->release |= shutting_down; /* answer at once */
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
    held_remove(&c->reg);
    pthread_mutex_lock(&c->s->lock);
    if (c->s->owner == c)
        sub_attach(c->s, NULL, NULL);
    pthread_mutex_unlock(&c->s->lock);
    c->ops->ended(c->session);
    free(c);
}

/* Registry lock held (lp_tick's walk): answers c when its deadline passed. */
static void expire(void *owner, void *arg)
{
    lp_conn *c = owner;
    int64_t now_ms = *(const int64_t *)arg;
    if (c->deadline > now_ms)
        return;
    pthread_mutex_lock(&c->s->lock);
    if (c->suspended) {
        c->timed_out = true;
        resume_locked(c);
    }
    pthread_mutex_unlock(&c->s->lock);
}

void lp_tick(int64_t now_ms)
{
    held_for_each(HELD_POLL, expire, &now_ms);
}

/* Registry lock held (lp_shutdown's walk): answers c if it waits. */
static void release(void *owner, void *arg)
{
    lp_conn *c = owner;
    (void)arg;
    pthread_mutex_lock(&c->s->lock);
    if (c->suspended)
        lp_release_locked(c);
    pthread_mutex_unlock(&c->s->lock);
}

void lp_shutdown(void)
{
    held_shutdown(HELD_POLL, release, NULL);
}
