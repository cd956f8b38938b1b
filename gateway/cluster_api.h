/* SPDX-License-Identifier: MIT */
/*
 * cluster_api.h - GET /cluster/nodes: every node of the cluster with its
 * uptime, version, connections, memory, CPU and message counters (the
 * dashboard's cluster view). Handler on an MHD thread; routes.h access
 * ADMIN.
 */
#ifndef CRIER_CLUSTER_API_H
#define CRIER_CLUSTER_API_H

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"

/* Main thread, at start: sets this node's figures for node_stats.h. */
void cluster_api_init(const cfg *c, hub *h);

/* GET /cluster/nodes (completed hook: api_wait_completed). */
enum MHD_Result cluster_api_nodes(http_call *call);

#endif
