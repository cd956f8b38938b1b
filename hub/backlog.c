/* SPDX-License-Identifier: MIT */
/*
 * backlog.c - the list of behind send queues and the pacing verdict (see
 * backlog.h). backlog_lock guards the list; it is taken after a sub lock or
 * alone, never with anything under it.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/backlog.h"

#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>

#include "common/clock.h"
#include "common/list.h"
#include "hub/backlog_cluster.h"
#include "hub/sendq.h"

#define STALL_MS_DEFAULT 2000
#define STALL_TOGETHER 4 /* several behind queues stopped at once: judged after 4x */

static pthread_mutex_t backlog_lock = PTHREAD_MUTEX_INITIALIZER;
static list_node behind = LIST_INIT(behind); /* backlog_lock: listed queues */
static atomic_uint nbehind;                  /* listed queues (read without the lock) */
static atomic_llong stall_ms = STALL_MS_DEFAULT;
static atomic_uint_fast64_t paced[PACE_KINDS];
static atomic_uint_fast64_t stalled;
static atomic_long in_flight;  /* this node's publishes on the backplane, not yet back */
static atomic_long flight_max; /* 0: in-flight publishes hold nobody */
static atomic_bool inbound;    /* behind on the backplane's messages */
static void (*_Atomic release_hook)(void);

void backlog_set_release_hook(void (*fn)(void))
{
    atomic_store(&release_hook, fn);
}

void backlog_released(void)
{
    void (*fn)(void) = atomic_load(&release_hook);
    if (fn)
        fn();
}

void backlog_set_stall_ms(int64_t ms)
{
    atomic_store(&stall_ms, ms > 0 ? ms : STALL_MS_DEFAULT);
}

/* backlog_lock held. */
static void unlist_locked(sendq *q)
{
    if (!atomic_load_explicit(&q->listed, memory_order_relaxed))
        return;
    list_remove(&q->link);
    atomic_store_explicit(&q->listed, false, memory_order_relaxed);
    atomic_fetch_sub(&nbehind, 1);
}

void backlog_enter(sendq *q, int64_t now_ms)
{
    atomic_store_explicit(&q->progress_ms, now_ms, memory_order_relaxed);
    pthread_mutex_lock(&backlog_lock);
    bool first = false;
    if (!atomic_load_explicit(&q->listed, memory_order_relaxed)) {
        list_push_back(&behind, &q->link);
        atomic_store_explicit(&q->listed, true, memory_order_relaxed);
        first = !atomic_fetch_add(&nbehind, 1);
    }
    pthread_mutex_unlock(&backlog_lock);
    if (first) /* this node starts holding: the other nodes hear it at once */
        backlog_cluster_changed();
}

void backlog_progress(sendq *q, int64_t now_ms)
{
    atomic_store_explicit(&q->progress_ms, now_ms, memory_order_relaxed);
    /* Set aside as stalled, and draining again: it holds publishers again. */
    if (!atomic_load_explicit(&q->listed, memory_order_relaxed))
        backlog_enter(q, now_ms);
}

void backlog_leave(sendq *q)
{
    if (!atomic_load_explicit(&q->listed, memory_order_relaxed))
        return; /* set aside as stalled, or never listed */
    pthread_mutex_lock(&backlog_lock);
    unlist_locked(q);
    bool last = !atomic_load_explicit(&nbehind, memory_order_relaxed);
    pthread_mutex_unlock(&backlog_lock);
    if (last) { /* nothing behind here now: the other nodes hear it at once */
        backlog_cluster_changed();
        backlog_released();
    }
}

void backlog_set_flight_max(long n)
{
    atomic_store(&flight_max, n > 0 ? n : 0);
}

void backlog_flight(int delta)
{
    long was = atomic_fetch_add(&in_flight, delta);
    long max = atomic_load_explicit(&flight_max, memory_order_relaxed);
    if (delta < 0 && max && was >= max && was + delta < max)
        backlog_released(); /* below the bound again */
}

long backlog_in_flight(void)
{
    return atomic_load(&in_flight);
}

/* Publishes on their way through the backplane land in the subscriber
 * queues here only when they come back: past the bound they hold
 * publishers as a behind queue does. */
static bool flight_holding(void)
{
    long max = atomic_load_explicit(&flight_max, memory_order_relaxed);
    return max && atomic_load_explicit(&in_flight, memory_order_relaxed) >= max;
}

bool backlog_holding(void)
{
    return flight_holding() || backlog_remote_holding() || backlog_queues_holding();
}

void backlog_set_inbound(size_t waiting)
{
    bool was = atomic_load_explicit(&inbound, memory_order_relaxed);
    bool now = was ? waiting > INBOUND_CLEAR_BYTES : waiting >= INBOUND_HOLD_BYTES;
    if (now == was)
        return;
    atomic_store(&inbound, now);
    backlog_cluster_changed(); /* the other nodes hear it at once */
    if (!now)
        backlog_released();
}

bool backlog_inbound_behind(void)
{
    return atomic_load_explicit(&inbound, memory_order_relaxed);
}

bool backlog_queues_holding(void)
{
    if (atomic_load_explicit(&inbound, memory_order_relaxed))
        return true;
    if (!atomic_load_explicit(&nbehind, memory_order_relaxed))
        return false;
    int64_t now = clock_now_ms();
    int64_t stall = atomic_load_explicit(&stall_ms, memory_order_relaxed);
    pthread_mutex_lock(&backlog_lock);
    int64_t latest = INT64_MIN; /* the most recent progress of a behind queue */
    unsigned listed = 0;
    list_for_each_safe (n, next, &behind) {
        int64_t p =
            atomic_load_explicit(&list_entry(n, sendq, link)->progress_ms, memory_order_relaxed);
        if (p > latest)
            latest = p;
        listed++;
    }
    bool holding = now - latest < stall;
    /* Every behind queue stopped (none drained for the stall time): one alone
     * is a reader that stopped, judged now; several at once look like the
     * readers' host or the network stalling (or this process starved), so
     * publishers keep waiting and they are judged together only after
     * STALL_TOGETHER times the stall time. */
    bool together = !holding && listed > 1;
    if (together && now - latest < stall * STALL_TOGETHER)
        holding = true;
    /* Stalled: no progress for the stall time while others kept up (another
     * queue drained a whole stall time after it stopped), or every behind
     * queue stopped (see above). */
    list_for_each_safe (n, next, &behind) {
        sendq *q = list_entry(n, sendq, link);
        int64_t p = atomic_load_explicit(&q->progress_ms, memory_order_relaxed);
        bool kept_up = latest - p >= stall;
        if (now - p >= stall && (kept_up || !holding)) {
            unlist_locked(q);
            atomic_fetch_add(&stalled, 1);
        }
    }
    pthread_mutex_unlock(&backlog_lock);
    return holding;
}

unsigned backlog_behind(void)
{
    return atomic_load(&nbehind);
}

void backlog_count_paced(pace_kind k)
{
    if (k < PACE_KINDS)
        atomic_fetch_add(&paced[k], 1);
}

uint64_t backlog_paced_total(pace_kind k)
{
    return k < PACE_KINDS ? atomic_load(&paced[k]) : 0;
}

uint64_t backlog_stalled_total(void)
{
    return atomic_load(&stalled);
}
