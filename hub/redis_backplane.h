/* SPDX-License-Identifier: MIT */
/*
 * redis_backplane.h - the Redis backplane (see backplane.h): several crier
 * nodes share rooms through one Redis server, with hiredis's async API on
 * a thread of its own.
 */
#ifndef CRIER_REDIS_BACKPLANE_H
#define CRIER_REDIS_BACKPLANE_H

#include <stddef.h>
#include <stdint.h>

#include "hub/backplane.h"
#include "hub/hub.h"

typedef struct redis_options {
    const char *host;
    int port;
    unsigned db;
    const char *password;        /* "" or NULL: none */
    const char *prefix;          /* of every key and channel */
    unsigned connect_timeout_ms; /* also how long a PING may go unanswered */
    unsigned queue_limit;        /* publishes kept while Redis is unreachable */
    size_t max_pending_bytes;    /* publishes' bytes not yet answered by Redis */
    size_t history_size;         /* messages kept per room (stream length) */
    int64_t history_ttl_ms;      /* how long they are kept */
} redis_options;

/* Starts the backplane's thread, which connects (and reconnects, with
 * backoff) on its own; the hub is told through hub_bp_link. Returns NULL
 * when the thread cannot start. The strings in opt are copied. */
backplane *redis_backplane_start(const redis_options *opt, hub *h);

/* Stops the thread, detaches from the hub, and answers pending publishes
 * -EIO. Call after the transports are stopped (nothing may publish any
 * more), before hub_destroy. What is asked of it afterwards (a release of
 * a connection being freed) is dropped. */
void redis_backplane_stop(backplane *bp);

/* What /metrics shows of the Redis backplane. */
typedef struct redis_figures {
    bool on;                 /* a Redis backplane runs */
    uint64_t reconnects;     /* links made again after the first, since start */
    size_t queued;           /* work items waiting for the Redis thread */
    size_t queued_publishes; /* of which publishes (backplane.queue_limit bounds them
                                while Redis is down) */
    size_t pending_bytes;    /* publish bytes Redis has not answered yet */
} redis_figures;

/* Any thread that may serve /metrics (the queue is read under qlock): the
 * backplane's figures, zero when none runs. */
void redis_backplane_figures(redis_figures *out);

/* Stops it if need be, and frees it. */
void redis_backplane_free(backplane *bp);

#endif
