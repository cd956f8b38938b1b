/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.c - per-key token buckets in a fixed, set-associative table
 * (see ratelimit.h). A key hashes to a set of WAYS entries; a new key takes
 * a free entry of its set, or the one used least recently. Tokens are
 * counted in thousandths, so that rates need no floating point.
 */
#include "common/ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

#define WAYS 8
#define KEY_MAX 64
#define MILLI 1000

typedef struct entry {
    char key[KEY_MAX]; /* "" when free */
    int64_t tokens_milli;
    int64_t at_ms; /* when tokens_milli was brought up to date; also "last used" */
} entry;

struct ratelimit {
    pthread_mutex_t lock;
    entry *e; /* nsets * WAYS */
    size_t nsets;
    int64_t rate; /* tokens a second */
    int64_t burst_milli;
};

ratelimit *ratelimit_create(size_t slots, unsigned rate_per_s, unsigned burst)
{
    ratelimit *rl = calloc(1, sizeof(*rl));
    size_t nsets = slots < WAYS ? 1 : (slots + WAYS - 1) / WAYS;
    if (!rl || !(rl->e = calloc(nsets * WAYS, sizeof(entry)))) {
        free(rl);
        return NULL;
    }
    rl->nsets = nsets;
    rl->rate = rate_per_s ? rate_per_s : 1;
    rl->burst_milli = (int64_t)(burst ? burst : 1) * MILLI;
    pthread_mutex_init(&rl->lock, NULL);
    return rl;
}

void ratelimit_destroy(ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->e);
    free(rl);
}

/* Lock held: key's entry in its set, made (full bucket) when missing. */
static entry *find_or_make(ratelimit *rl, const char *key, int64_t now_ms)
{
    entry *set = &rl->e[(str_hash(key) % rl->nsets) * WAYS];
    entry *victim = &set[0];
    for (int i = 0; i < WAYS; i++) {
        if (set[i].key[0] && !strcmp(set[i].key, key))
            return &set[i];
        if (!set[i].key[0])
            victim = &set[i]; /* a free one is the best victim */
        else if (victim->key[0] && set[i].at_ms < victim->at_ms)
            victim = &set[i];
    }
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    victim->tokens_milli = rl->burst_milli;
    victim->at_ms = now_ms;
    return victim;
}

int64_t ratelimit_take(ratelimit *rl, const char *key, int64_t now_ms)
{
    char k[KEY_MAX]; /* as stored: cut */
    snprintf(k, sizeof(k), "%s", key);
    pthread_mutex_lock(&rl->lock);
    entry *e = find_or_make(rl, k, now_ms);
    if (now_ms > e->at_ms) {
        int64_t add = (now_ms - e->at_ms) * rl->rate; /* thousandths */
        e->tokens_milli =
            add >= rl->burst_milli - e->tokens_milli ? rl->burst_milli : e->tokens_milli + add;
        e->at_ms = now_ms;
    }
    int64_t wait = 0;
    if (e->tokens_milli >= MILLI)
        e->tokens_milli -= MILLI;
    else
        wait = (MILLI - e->tokens_milli + rl->rate - 1) / rl->rate; /* ms to the next token */
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

size_t ratelimit_keys(ratelimit *rl)
{
    size_t n = 0;
    pthread_mutex_lock(&rl->lock);
    for (size_t i = 0; i < rl->nsets * WAYS; i++)
        n += rl->e[i].key[0] != 0;
    pthread_mutex_unlock(&rl->lock);
    return n;
}
