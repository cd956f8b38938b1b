/* SPDX-License-Identifier: MIT */
/*
 * node_stats.h - every node's figures (uptime, version, connections,
 * memory, CPU, message counters) for the cluster view (GET /cluster/nodes):
 * this node's from a provider the gateway sets, the other nodes' asked
 * over the backplane's cluster messages (as the server API's user ops,
 * users_cluster.c), waiting for as many answers as nodes received the
 * question, at most HUB_OP_WAIT_MS (then partial).
 *
 * Threading: node_stats_set_provider once at start, before any request;
 * the rest on any thread with no lock held (node_stats.c's stats_lock is a
 * leaf lock). done and the provider are called with no lock held.
 */
#ifndef CRIER_NODE_STATS_H
#define CRIER_NODE_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "hub/hub.h"

/* This node's figures: a new JSON object (NULL: out of memory). */
typedef json_t *(*node_stats_fn)(void);

/* nodes: a JSON array of objects (taken; NULL: out of memory), each with
 * "node" (the backplane's node id, "local" without one) and the provider's
 * fields; partial: a node that received the question did not answer. */
typedef void (*node_stats_done_fn)(void *arg, json_t *nodes, bool partial);

void node_stats_set_provider(node_stats_fn fn);

/* Asks every node (this one answers at once); done later, or before this
 * returns without a shared backplane. */
void hub_node_stats_async(hub *h, node_stats_done_fn done, void *arg);

/* Backplane thread: a cluster message that belongs to node stats (a
 * question or an answer) is handled and true returned; false otherwise. */
bool node_stats_message(hub *h, json_t *m);

/* Timer thread: questions waiting past HUB_OP_WAIT_MS are answered partial. */
void node_stats_tick(int64_t now_ms);

/* hub_destroy: every question still waiting is answered partial. */
void node_stats_finish_all(void);

#endif
