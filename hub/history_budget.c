/* SPDX-License-Identifier: MIT */
/*
 * history_budget.c - history.max_bytes (hub_options.history_max_bytes):
 * past that budget for all rooms' history, the oldest messages of the
 * largest room go first. Rooms holding history are kept in a max-heap by
 * their history's bytes for that (hub->heap, room->heap_pos), fixed after
 * every change to a room's history (room_hist_changed). A resume whose
 * cursor points into what was evicted gets the gap signal, as after expiry
 * (resume.c find_gap). Everything here runs with the hub lock held.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/limits.h"

#define HEAP_INITIAL_CAP 64 /* rooms the heap has room for at first */

static void heap_set(hub *h, size_t i, room *r)
{
    h->heap[i] = r;
    r->heap_pos = i + 1;
}

static void heap_up(hub *h, size_t i)
{
    room *r = h->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->heap[parent]->hist.bytes >= r->hist.bytes)
            break;
        heap_set(h, i, h->heap[parent]);
        i = parent;
    }
    heap_set(h, i, r);
}

static void heap_down(hub *h, size_t i)
{
    room *r = h->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->nheap)
            break;
        if (c + 1 < h->nheap && h->heap[c + 1]->hist.bytes > h->heap[c]->hist.bytes)
            c++;
        if (h->heap[c]->hist.bytes <= r->hist.bytes)
            break;
        heap_set(h, i, h->heap[c]);
        i = c;
    }
    heap_set(h, i, r);
}

static void heap_remove(hub *h, room *r)
{
    size_t i = r->heap_pos - 1;
    r->heap_pos = 0;
    room *last = h->heap[--h->nheap];
    if (last == r)
        return;
    heap_set(h, i, last);
    heap_up(h, i);
    heap_down(h, last->heap_pos - 1);
}

/* Hub lock held: r's history changed; puts r where its bytes now rank it.
 * (Out of memory for the heap: r is simply not a candidate for eviction.) */
static void room_hist_changed(hub *h, room *r)
{
    if (!r->hist.bytes) {
        if (r->heap_pos)
            heap_remove(h, r);
        return;
    }
    if (!r->heap_pos) {
        if (h->nheap == h->heap_cap) {
            size_t cap = h->heap_cap ? h->heap_cap * 2 : HEAP_INITIAL_CAP;
            room **a = realloc(h->heap, cap * sizeof(*a));
            if (!a)
                return;
            h->heap = a;
            h->heap_cap = cap;
        }
        heap_set(h, h->nheap++, r);
    }
    heap_up(h, r->heap_pos - 1);
    heap_down(h, r->heap_pos - 1);
}

/* Hub lock held: r's history after expiry, a clear or an eviction. */
void room_hist_dropped(hub *h, room *r, size_t before)
{
    if (r->hist.bytes < before)
        h->freed_bytes += before - r->hist.bytes;
    room_hist_changed(h, r);
}

/* Hub lock held: while all history holds more than history_max_bytes, the
 * oldest message of the largest room goes. Rooms left empty are freed by
 * the next hub_expire (the caller may be holding one). */
static void enforce_history_budget(hub *h)
{
    size_t max = h->opt.history_max_bytes;
    if (!max || h->hist_bytes <= max)
        return;
    uint64_t n = 0;
    while (h->hist_bytes > max && h->nheap) {
        room *r = h->heap[0];
        size_t before = r->hist.bytes;
        history_drop_oldest(&r->hist);
        room_hist_dropped(h, r, before);
        n++;
    }
    h->evicted += n;
    if (n) {
        char what[160];
        snprintf(what, sizeof(what),
                 "history.max_bytes (%zu) reached: the oldest messages of the largest rooms "
                 "are dropped early",
                 max);
        limit_refused(LIMIT_HISTORY_BYTES, what);
    }
}

/* Hub lock held: m goes into r's history, within the byte budget. */
void room_keep_in_history(hub *h, room *r, msg *m)
{
    history_push(&r->hist, m);
    room_hist_changed(h, r);
    enforce_history_budget(h);
}
