/* SPDX-License-Identifier: MIT */
/*
 * token_bucket.h - one token bucket: `per_s` tokens a second, up to `burst`
 * saved, a full bucket at first. Tokens are counted in thousandths, so
 * that no rate needs floating point. Pure: the caller owns the bucket and
 * its locking (ratelimit.c keeps them in a locked table; a WebSocket's or a
 * SignalR connection's is touched by the one thread that receives its
 * messages).
 */
#ifndef CRIER_TOKEN_BUCKET_H
#define CRIER_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct token_bucket {
    int64_t tokens_milli; /* thousandths of a token */
    int64_t at_ms;        /* when tokens_milli was brought up to date */
    bool started;         /* false: full at the first take */
} token_bucket;

/* Fills b (burst tokens) at now_ms. burst 0 counts as 1. */
void token_bucket_fill(token_bucket *b, unsigned burst, int64_t now_ms);

/* Takes one token at now_ms (a monotonic clock), refilling first at per_s
 * (0 counts as 1) up to burst (0 counts as 1). Returns 0 when there was
 * one, else the milliseconds until there will be (>= 1). A bucket never
 * started is filled first. */
int64_t token_bucket_take(token_bucket *b, unsigned per_s, unsigned burst, int64_t now_ms);

/* Whole seconds to wait for wait_ms (a take's answer), rounded up: what a
 * Retry-After header says. 0 for 0. */
unsigned token_bucket_wait_s(int64_t wait_ms);

#endif
