/* SPDX-License-Identifier: MIT */
/*
 * live.c - the current configuration, swapped by SIGHUP (live.h): a
 * reference-counted immutable copy behind a pointer that live_lock guards.
 */
#include "common/live.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

typedef struct snap {
    atomic_uint refs; /* the current pointer holds one */
    cfg c;
} snap;

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static snap *current; /* live_lock */
static atomic_uint generation;

static snap *snap_of(const cfg *c)
{
    return (snap *)(void *)((const char *)c - offsetof(snap, c));
}

static void unref(snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        free(s);
}

int live_set(const cfg *c)
{
    snap *s = malloc(sizeof(*s));
    if (!s)
        return -1;
    atomic_init(&s->refs, 1);
    s->c = *c;
    pthread_mutex_lock(&live_lock);
    snap *old = current;
    current = s;
    pthread_mutex_unlock(&live_lock);
    if (old)
        atomic_fetch_add(&generation, 1);
    unref(old);
    return 0;
}

const cfg *live_acquire(void)
{
    pthread_mutex_lock(&live_lock);
    snap *s = current;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&live_lock);
    return s ? &s->c : NULL;
}

void live_release(const cfg *c)
{
    if (c)
        unref(snap_of(c));
}

void live_fini(void)
{
    pthread_mutex_lock(&live_lock);
    snap *old = current;
    current = NULL;
    pthread_mutex_unlock(&live_lock);
    unref(old);
}

unsigned live_generation(void)
{
    return atomic_load(&generation);
}
