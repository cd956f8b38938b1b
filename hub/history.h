/* SPDX-License-Identifier: MIT */
/*
 * history.h - a room's bounded history: the newest `size` messages younger
 * than `ttl_ms`, in id order. Ids in a room are consecutive, so a lookup by
 * id is arithmetic, not a search. Guarded by the hub lock.
 *
 * Bytes: each kept message counts its msg_footprint when pushed, plus its
 * ring slot, in `bytes` and, when `total` is set, in *total (the hub's sum
 * over every room, which history.max_bytes bounds).
 */
#ifndef CRIER_HISTORY_H
#define CRIER_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "hub/message.h"

typedef struct history {
    msg **ring;
    size_t cap;  /* allocated slots, grows up to size */
    size_t head; /* oldest */
    size_t count;
    size_t size;    /* most messages kept; 0 keeps none */
    int64_t ttl_ms; /* 0 keeps none */
    size_t bytes;   /* what the kept messages count (see above) */
    size_t *total;  /* NULL, or a sum this history adds its bytes to */
} history;

void history_init(history *h, size_t size, int64_t ttl_ms);

/* Appends m (takes a new ref), evicting the oldest when full. Messages must
 * come in id order. Returns 0 or -ENOMEM (then m is simply not kept). */
int history_push(history *h, msg *m);

/* Drops messages created at or before now_ms - ttl_ms. */
void history_expire(history *h, int64_t now_ms);

/* The oldest kept message with id > since, borrowed, and the number of kept
 * messages from it on (they follow it in the ring: see history_at). */
size_t history_since(const history *h, uint64_t since, size_t *first_index);

/* The i-th kept message, oldest first; borrowed. */
msg *history_at(const history *h, size_t i);

/* The id of the oldest kept message, 0 when empty. */
uint64_t history_first_id(const history *h);

/* Drops the oldest kept message, if any (a byte budget's eviction). */
void history_drop_oldest(history *h);

/* Drops every message; size, ttl_ms and total stay. */
void history_clear(history *h);

#endif
