/* SPDX-License-Identifier: MIT */
/*
 * backlog_cluster.h - the fanout backlog across the nodes of a shared
 * backplane. A publisher on one node fills the subscriber queues of every
 * node that has members in the room, so it waits while any of them holds.
 *
 * Each node tells the others whether its own queues hold publishers
 * (backlog_queues_holding, its own stall rule applied): at once when its
 * first queue gets behind or its last one catches up, on the timer when the
 * verdict changes otherwise (a queue judged stalled), and again every
 * HOLD_REFRESH_MS while it holds. The word goes as the hub's own cluster
 * message {"hold": true|false, "from": NODE} to every node (users_cluster.c's
 * channels). Every node keeps the set of other nodes that hold; one is
 * forgotten HOLD_TTL_MS after its last word, so a node that died, or whose
 * "stopped" was lost, holds nobody for longer; the set has at most
 * HOLD_NODES_MAX nodes. backlog_holding (backlog.h) holds while the set is
 * not empty: one atomic load when it is.
 *
 * Threading: announce_lock guards what this node last told (and when); it
 * is taken with a sub lock held (backlog_enter, backlog_leave) or alone (the
 * timer), backlog_lock may be taken under it (the timer's verdict) and the
 * backplane's qlock (cluster_send only queues). holders_lock guards the set
 * of other nodes that hold; a leaf, taken by any thread (backlog_holding,
 * maybe under pace_lock) and by the backplane's thread (their words). The
 * attached backplane is an atomic pointer, set and cleared under
 * announce_lock (hub_set_backplane).
 *
 * Threads and locks: docs/concurrency.md
 */
#ifndef CRIER_BACKLOG_CLUSTER_H
#define CRIER_BACKLOG_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "hub/backplane.h"

#define HOLD_REFRESH_MS 1000 /* a node that holds says so again this often */
#define HOLD_TTL_MS 3000     /* ... and is forgotten this long after its last word */
#define HOLD_NODES_MAX 256   /* other nodes that hold, kept at once */

/* Any thread, no lock held: this node tells bp's other nodes from now on
 * (NULL: tells nobody any more; the other nodes forget it within
 * HOLD_TTL_MS). */
void backlog_cluster_attach(backplane *bp);

/* backlog.c, maybe with a sub lock held: the first queue got behind, or the
 * last one caught up; tells the other nodes when the verdict changed. */
void backlog_cluster_changed(void);

/* Timer thread: tells the other nodes of a verdict changed otherwise, and
 * says "holding" again every HOLD_REFRESH_MS while it holds. */
void backlog_cluster_tick(int64_t now_ms);

/* Backplane thread: a cluster message m; true when it was a node's word
 * (taken), false when it is none. */
bool backlog_cluster_message(const json_t *m);

/* Any thread, no lock held: another node's queues hold publishers. */
bool backlog_remote_holding(void);

/* Other nodes that hold now (crier_backlog_remote_holders). */
unsigned backlog_remote_holders(void);

#endif
