/* SPDX-License-Identifier: MIT */
/*
 * publish_pace.c - the queue of HTTP publishes waiting for the fanout
 * backlog (see publish_pace.h). pace_lock guards it; go and refuse are
 * called after letting it go.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/publish_pace.h"

#include <pthread.h>
#include <stdatomic.h>

#include "common/clock.h"
#include "hub/backlog.h"

static pthread_mutex_t pace_lock = PTHREAD_MUTEX_INITIALIZER;
static list_node parked = LIST_INIT(parked); /* pace_lock: oldest first */
static bool stopping;                        /* pace_lock */
static atomic_uint nparked;

/* Parks e when publishes wait; a request to suspend (conn, may be NULL) is
 * suspended under pace_lock first, so the timer, which resumes it after
 * taking e off under the same lock, always finds it suspended. */
static bool park(pace_entry *e, pace_kind kind, struct MHD_Connection *conn)
{
    if (!atomic_load(&nparked) && !backlog_holding())
        return false;
    pthread_mutex_lock(&pace_lock);
    bool parks = !stopping && (!list_empty(&parked) || backlog_holding());
    if (parks) {
        if (conn)
            MHD_suspend_connection(conn);
        list_push_back(&parked, &e->link);
        atomic_fetch_add(&nparked, 1);
    }
    pthread_mutex_unlock(&pace_lock);
    if (parks)
        backlog_count_paced(kind);
    return parks;
}

bool publish_pace_park(pace_entry *e, pace_kind kind)
{
    return park(e, kind, NULL);
}

/* pace_lock held: takes the oldest parked entry off, or NULL. */
static pace_entry *take_first_locked(void)
{
    if (list_empty(&parked))
        return NULL;
    pace_entry *e = list_entry(list_first(&parked), pace_entry, link);
    list_remove(&e->link);
    atomic_fetch_sub(&nparked, 1);
    return e;
}

void publish_pace_tick(int64_t now_ms)
{
    for (;;) {
        pthread_mutex_lock(&pace_lock);
        pace_entry *e = NULL;
        bool late = false;
        if (!list_empty(&parked)) {
            pace_entry *first = list_entry(list_first(&parked), pace_entry, link);
            late = now_ms >= first->deadline;
            if (late || !backlog_holding())
                e = take_first_locked();
        }
        pthread_mutex_unlock(&pace_lock);
        if (!e)
            return;
        if (late)
            e->refuse(e->arg);
        else
            e->go(e->arg); /* queues it to every member: the next check sees it */
    }
}

unsigned publish_pace_parked(void)
{
    return atomic_load(&nparked);
}

void publish_pace_shutdown(void)
{
    pthread_mutex_lock(&pace_lock);
    stopping = true;
    pthread_mutex_unlock(&pace_lock);
    for (;;) {
        pthread_mutex_lock(&pace_lock);
        pace_entry *e = take_first_locked();
        pthread_mutex_unlock(&pace_lock);
        if (!e)
            return;
        e->refuse(e->arg);
    }
}

/* Timer thread: a parked request goes: its work, then it is resumed. */
static void request_go(void *arg)
{
    pace_request *r = arg;
    if (r->go)
        r->go(r->arg);
    atomic_store(&r->state, PACE_REQ_WENT);
    MHD_resume_connection(r->conn);
}

/* Timer or main thread: a parked request waited too long. */
static void request_refuse(void *arg)
{
    pace_request *r = arg;
    atomic_store(&r->state, PACE_REQ_REFUSED);
    MHD_resume_connection(r->conn);
}

pace_req_state publish_pace_request(pace_request *r, struct MHD_Connection *conn, int64_t wait_ms,
                                    pace_kind kind, void (*go)(void *arg), void *arg)
{
    int st = atomic_load(&r->state);
    if (st != PACE_REQ_NOW)
        return (pace_req_state)st; /* resumed */
    if (!atomic_load(&nparked) && !backlog_holding())
        return PACE_REQ_NOW;
    if (wait_ms <= 0) {
        backlog_count_paced(kind);
        return PACE_REQ_REFUSED;
    }
    r->conn = conn;
    r->go = go;
    r->arg = arg;
    r->e = (pace_entry){
        .deadline = clock_now_ms() + wait_ms, .go = request_go, .refuse = request_refuse, .arg = r};
    return park(&r->e, kind, conn) ? PACE_REQ_WAIT : PACE_REQ_NOW;
}

const char *pace_kind_name(pace_kind k)
{
    static const char *const names[PACE_KINDS] = {"http", "websocket", "signalr_http",
                                                  "server_api"};
    return k < PACE_KINDS ? names[k] : "?";
}
