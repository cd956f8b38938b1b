/* SPDX-License-Identifier: MIT */
/*
 * presence_api.h - GET /rooms/{room}/presence (README "Presence"): who is
 * in a room, from this node or, with Redis, from every live node. Handlers
 * run on an MHD thread.
 */
#ifndef CRIER_PRESENCE_API_H
#define CRIER_PRESENCE_API_H

#include <stdint.h>

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"

void presence_api_init(const cfg *c, hub *h);
enum MHD_Result api_presence(http_call *call);
void api_presence_completed(void *state);

/* Timer thread: answers lookups that waited too long for the backplane. */
void presence_api_tick(int64_t now_ms);

/* Answers every lookup still waiting, and lets none wait from now on.
 * Before http_stop. */
void presence_api_shutdown(void);

#endif
