/* SPDX-License-Identifier: MIT */
/*
 * presence_api.h - GET /rooms/{room}/presence (README "Presence"): who is
 * in a room, from this node or, with Redis, from every live node. Handlers
 * run on an MHD thread.
 */
#ifndef CRIER_PRESENCE_API_H
#define CRIER_PRESENCE_API_H

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"

void presence_api_init(const cfg *c, hub *h);
enum MHD_Result api_presence(http_call *call);
/* Its completed hook: api_wait_completed (api_wait.h). */

#endif
