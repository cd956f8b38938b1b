/* SPDX-License-Identifier: MIT */
/*
 * room_list.c - the room table read a page at a time, sorted by name (GET
 * /rooms): the first `cap` names after a cursor, picked in one pass over
 * the table with a bounded heap (O(rooms log cap), no copy of the table),
 * so that the hub lock is held for one pass however many rooms there are.
 *
 * Threading: hub_list_rooms takes the hub lock for the pass and copies
 * what it lists out.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <stdlib.h>
#include <string.h>

/* A max-heap (by name) of at most cap rooms: the smallest names seen. */
typedef struct name_heap {
    room **r;
    size_t n, cap;
} name_heap;

static bool above(const room *a, const room *b)
{
    return strcmp(a->name, b->name) > 0;
}

static void sift_down(name_heap *hp, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, big = i;
        if (l < hp->n && above(hp->r[l], hp->r[big]))
            big = l;
        if (l + 1 < hp->n && above(hp->r[l + 1], hp->r[big]))
            big = l + 1;
        if (big == i)
            return;
        room *t = hp->r[i];
        hp->r[i] = hp->r[big];
        hp->r[big] = t;
        i = big;
    }
}

static void offer(name_heap *hp, room *r)
{
    if (hp->n == hp->cap) {
        if (!above(hp->r[0], r))
            return; /* larger than every name kept */
        hp->r[0] = r;
        sift_down(hp, 0);
        return;
    }
    size_t i = hp->n++;
    hp->r[i] = r;
    while (i && above(r, hp->r[(i - 1) / 2])) {
        hp->r[i] = hp->r[(i - 1) / 2];
        hp->r[(i - 1) / 2] = r;
        i = (i - 1) / 2;
    }
}

/* Hub lock held: whether a listing shows r. */
static bool listed(const hub *h, const room *r, const char *after)
{
    if (room_name_is_internal(r->name) || strcmp(r->name, after) <= 0)
        return false;
    /* A shared room without a member here only lingers (rooms.c). */
    return !r->shared || !h->bp || (r->synced && room_has_members(r));
}

static void entry_of(const room *r, room_entry *e)
{
    memcpy(e->name, r->name, sizeof(e->name));
    memcpy(e->epoch, r->epoch, sizeof(e->epoch));
    e->last_id = r->last_id;
    memcpy(e->subscribers, r->count, sizeof(e->subscribers));
    e->history_messages = r->hist.count;
    e->history_bytes = r->hist.bytes;
}

size_t hub_list_rooms(hub *h, const char *after, room_entry *out, size_t cap, bool *more)
{
    *more = false;
    name_heap hp = {.cap = cap + 1};
    hp.r = malloc(hp.cap * sizeof(*hp.r));
    if (!hp.r)
        return 0;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nbuckets; i++)
        for (room *r = h->buckets[i]; r; r = r->bucket_next)
            if (listed(h, r, after))
                offer(&hp, r);
    /* Heap order to name order: the largest goes last, one at a time. */
    size_t count = hp.n;
    for (size_t n = count; n > 1; n--) {
        room *t = hp.r[0];
        hp.r[0] = hp.r[n - 1];
        hp.r[n - 1] = t;
        hp.n = n - 1;
        sift_down(&hp, 0);
    }
    *more = count > cap;
    if (count > cap)
        count = cap;
    for (size_t i = 0; i < count; i++)
        entry_of(hp.r[i], &out[i]);
    hub_unlock(h);
    free(hp.r);
    return count;
}
