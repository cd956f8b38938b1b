/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.h - a token bucket per key (a client address), in a table of
 * fixed size: a key not seen lately is forgotten to make room for a new one
 * (the least recently used of its set), so the table never grows, whatever
 * the number of addresses. Any thread; one mutex inside.
 */
#ifndef CRIER_RATELIMIT_H
#define CRIER_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit;

/* slots: keys remembered at most (rounded up to a multiple of 8); a key
 * gets `rate_per_s` tokens a second, up to `burst`. NULL on ENOMEM. */
ratelimit *ratelimit_create(size_t slots, unsigned rate_per_s, unsigned burst);

void ratelimit_destroy(ratelimit *rl);

/* Takes one token of key's bucket at now_ms (a monotonic clock). Returns 0
 * when there was one, else the milliseconds until there will be (>= 1).
 * Keys longer than 63 bytes are cut. */
int64_t ratelimit_take(ratelimit *rl, const char *key, int64_t now_ms);

/* New figures for every key's bucket (a SIGHUP reload); any thread. */
void ratelimit_set_rate(ratelimit *rl, unsigned rate_per_s, unsigned burst);

/* Keys remembered now (for tests): at most the slots asked for, rounded. */
size_t ratelimit_keys(ratelimit *rl);

#endif
