/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.c - per-key token buckets in a fixed, set-associative table
 * (see ratelimit.h). A key hashes to a set of WAYS entries; a new key takes
 * a free entry of its set, or the one used least recently. Each entry is
 * a token bucket (token_bucket.h).
 */
#include "common/ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/token_bucket.h"

#define WAYS 8
#define KEY_MAX 64

typedef struct entry {
    char key[KEY_MAX]; /* "" when free */
    token_bucket b;    /* b.at_ms is also "last used" */
} entry;

struct ratelimit {
    pthread_mutex_t lock;
    entry *e; /* nsets * WAYS */
    size_t nsets;
    unsigned rate; /* tokens a second */
    unsigned burst;
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
    rl->rate = rate_per_s;
    rl->burst = burst;
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
        else if (victim->key[0] && set[i].b.at_ms < victim->b.at_ms)
            victim = &set[i];
    }
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    token_bucket_fill(&victim->b, rl->burst, now_ms);
    return victim;
}

int64_t ratelimit_take(ratelimit *rl, const char *key, int64_t now_ms)
{
    char k[KEY_MAX]; /* as stored: cut */
    snprintf(k, sizeof(k), "%s", key);
    pthread_mutex_lock(&rl->lock);
    entry *e = find_or_make(rl, k, now_ms);
    int64_t wait = token_bucket_take(&e->b, rl->rate, rl->burst, now_ms);
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

void ratelimit_set_rate(ratelimit *rl, unsigned rate_per_s, unsigned burst)
{
    pthread_mutex_lock(&rl->lock);
    rl->rate = rate_per_s;
    rl->burst = burst;
    pthread_mutex_unlock(&rl->lock);
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
