/* SPDX-License-Identifier: MIT */
/*
 * publish_pace.c - the queue of HTTP publishes waiting for the fanout
 * backlog (see publish_pace.h). pace_lock guards it; go and refuse are
 * called after letting it go.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/publish_pace.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "hub/backlog.h"

static pthread_mutex_t pace_lock = PTHREAD_MUTEX_INITIALIZER;
static list_node parked = LIST_INIT(parked); /* pace_lock: oldest first */
static bool stopping;                        /* pace_lock */
static atomic_uint nparked;
/* Written when a hold ends while publishes are parked: the timer, waiting
 * in publish_pace_sleep, lets them go at once. Open for the life of the
 * process (a hold may end on any thread until exit); -1: not initialised,
 * parked publishes go on the timer's ticks. */
static int wake_fd = -1;

/* Any thread, maybe with a sub lock held (backlog.h's release hook): no
 * lock, one write when publishes are parked. */
static void wake(void)
{
    if (wake_fd >= 0 && atomic_load(&nparked)) {
        uint64_t one = 1;
        if (write(wake_fd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is full, so the timer is woken anyway */
        }
    }
}

void publish_pace_init(void)
{
    if (wake_fd < 0)
        wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    backlog_set_release_hook(wake); /* no eventfd: the ticks let them go */
}

void publish_pace_sleep(int64_t ms)
{
    int64_t end = clock_now_ms() + ms;
    for (int64_t left = ms; left > 0; left = end - clock_now_ms()) {
        if (wake_fd < 0) {
            usleep((useconds_t)left * 1000);
            return;
        }
        struct pollfd p = {.fd = wake_fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue; /* the time is up (or EINTR: the time is checked) */
        uint64_t n;
        if (read(wake_fd, &n, sizeof(n)) < 0) {
            /* nothing to read (EAGAIN): the tick below is harmless anyway */
        }
        publish_pace_tick(clock_now_ms());
    }
}

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
    if (parks && !backlog_holding())
        wake(); /* the hold ended as it parked: its release saw none parked */
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
