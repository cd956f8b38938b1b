/* SPDX-License-Identifier: MIT */
/*
 * history.c - per-room ring of recent messages (see history.h). Callers hold
 * the hub lock.
 */
#include "hub/history.h"

#include <errno.h>
#include <stdlib.h>

void history_init(history *h, size_t size, int64_t ttl_ms)
{
    *h = (history){.size = size, .ttl_ms = ttl_ms};
}

/* What a kept message counts: its footprint and its ring slot. */
static size_t cost_of(const msg *m)
{
    return msg_footprint(m) + sizeof(msg *);
}

static void drop_oldest(history *h)
{
    msg *m = h->ring[h->head];
    h->bytes -= m->hist_cost;
    if (h->total)
        *h->total -= m->hist_cost;
    msg_unref(m);
    h->ring[h->head] = NULL;
    h->head = (h->head + 1) % h->cap;
    h->count--;
}

static int grow(history *h)
{
    size_t cap = h->cap ? h->cap * 2 : 8;
    if (cap > h->size)
        cap = h->size;
    msg **ring = malloc(cap * sizeof(*ring));
    if (!ring)
        return -ENOMEM;
    for (size_t i = 0; i < h->count; i++)
        ring[i] = h->ring[(h->head + i) % h->cap];
    free(h->ring);
    h->ring = ring;
    h->cap = cap;
    h->head = 0;
    return 0;
}

int history_push(history *h, msg *m)
{
    if (!h->size || !h->ttl_ms)
        return 0;
    if (h->count == h->size)
        drop_oldest(h);
    if (h->count == h->cap) {
        int rc = grow(h);
        if (rc)
            return rc;
    }
    h->ring[(h->head + h->count) % h->cap] = msg_ref(m);
    h->count++;
    m->hist_cost = cost_of(m);
    h->bytes += m->hist_cost;
    if (h->total)
        *h->total += m->hist_cost;
    return 0;
}

void history_expire(history *h, int64_t now_ms)
{
    while (h->count && h->ring[h->head]->created_ms <= now_ms - h->ttl_ms)
        drop_oldest(h);
    if (!h->count) {
        free(h->ring);
        h->ring = NULL;
        h->cap = h->head = 0;
    }
}

msg *history_at(const history *h, size_t i)
{
    return i < h->count ? h->ring[(h->head + i) % h->cap] : NULL;
}

uint64_t history_first_id(const history *h)
{
    return h->count ? h->ring[h->head]->id : 0;
}

size_t history_since(const history *h, uint64_t since, size_t *first_index)
{
    *first_index = 0;
    if (!h->count)
        return 0;
    uint64_t first = history_first_id(h);
    uint64_t last = first + h->count - 1;
    if (since >= last)
        return 0;
    if (since >= first)
        *first_index = (size_t)(since - first + 1);
    return h->count - *first_index;
}

void history_drop_oldest(history *h)
{
    if (h->count)
        drop_oldest(h);
}

void history_clear(history *h)
{
    while (h->count)
        drop_oldest(h);
    free(h->ring);
    *h = (history){.size = h->size, .ttl_ms = h->ttl_ms, .total = h->total};
}
