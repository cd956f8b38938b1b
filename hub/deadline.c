/* SPDX-License-Identifier: MIT */
/*
 * deadline.c - members with a deadline: when a member's time is up (the
 * token its connection was opened with expired), the timer thread's sweep
 * ends it with the reason (sub_end_with, sub.h), and its protocol puts that
 * reason on its wire. One binary min-heap of subs by deadline (wall clock,
 * ms since the epoch), each sub knowing its place (deadline_pos), so that
 * setting, moving and removing a deadline is O(log n) and a sweep costs
 * nothing while nothing is due.
 *
 * Threading: any thread. `lock` guards the heap and every sub's
 * deadline_ms, deadline_why and deadline_pos. Lock order: it comes before
 * a sub lock (the sweep calls sub_end_with under it, which takes the sub
 * lock and calls the sub's wake hook) and after none that is held while
 * calling in here: sub_set_deadline and sub_fini are called with no sub
 * lock (and no hub lock) held. Nothing under it calls the hub.
 *
 * Threads and locks: docs/concurrency.md
 */
#include <pthread.h>
#include <stdlib.h>

#include "hub/internal.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sub **heap; /* lock: heap[0] is due first */
static size_t nheap, heap_cap;

/* lock held: puts s at index i and records it there. */
static void place(sub *s, size_t i)
{
    heap[i] = s;
    s->deadline_pos = i + 1;
}

static void sift_up(size_t i)
{
    sub *s = heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap[parent]->deadline_ms <= s->deadline_ms)
            break;
        place(heap[parent], i);
        i = parent;
    }
    place(s, i);
}

static void sift_down(size_t i)
{
    sub *s = heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= nheap)
            break;
        if (child + 1 < nheap && heap[child + 1]->deadline_ms < heap[child]->deadline_ms)
            child++;
        if (heap[child]->deadline_ms >= s->deadline_ms)
            break;
        place(heap[child], i);
        i = child;
    }
    place(s, i);
}

/* lock held: takes s out of the heap, if it is in it. */
static void heap_remove(sub *s)
{
    if (!s->deadline_pos)
        return;
    size_t i = s->deadline_pos - 1;
    s->deadline_pos = 0;
    s->deadline_ms = 0;
    sub *last = heap[--nheap];
    if (i == nheap)
        return;
    place(last, i);
    sift_down(i);
    sift_up(last->deadline_pos - 1);
}

void sub_set_deadline(sub *s, int64_t wall_ms, sub_end_reason why)
{
    pthread_mutex_lock(&lock);
    if (wall_ms <= 0) {
        heap_remove(s);
        pthread_mutex_unlock(&lock);
        return;
    }
    s->deadline_why = why;
    if (s->deadline_pos) { /* moved: back into place from where it is */
        s->deadline_ms = wall_ms;
        sift_down(s->deadline_pos - 1);
        sift_up(s->deadline_pos - 1);
        pthread_mutex_unlock(&lock);
        return;
    }
    if (nheap == heap_cap) {
        size_t cap = heap_cap ? heap_cap * 2 : 64;
        sub **h = realloc(heap, cap * sizeof(*h));
        if (!h) { /* out of memory: it ends now rather than never */
            pthread_mutex_unlock(&lock);
            sub_end_with(s, why);
            return;
        }
        heap = h;
        heap_cap = cap;
    }
    s->deadline_ms = wall_ms;
    place(s, nheap++);
    sift_up(nheap - 1);
    pthread_mutex_unlock(&lock);
}

void sub_deadlines_sweep(int64_t now_wall_ms)
{
    pthread_mutex_lock(&lock);
    while (nheap && heap[0]->deadline_ms <= now_wall_ms) {
        sub *s = heap[0];
        sub_end_reason why = s->deadline_why;
        heap_remove(s);
        /* Under the lock: sub_fini (which frees s after) waits for it. It
         * only takes s's lock and calls its wake hook. */
        sub_end_with(s, why);
    }
    if (!nheap && heap_cap > 64) { /* give a burst's room back */
        free(heap);
        heap = NULL;
        heap_cap = 0;
    }
    pthread_mutex_unlock(&lock);
}

size_t sub_deadlines_count(void)
{
    pthread_mutex_lock(&lock);
    size_t n = nheap;
    pthread_mutex_unlock(&lock);
    return n;
}

void sub_deadline_forget(sub *s)
{
    pthread_mutex_lock(&lock);
    heap_remove(s);
    pthread_mutex_unlock(&lock);
}
