/* SPDX-License-Identifier: MIT */
/*
 * plain/ws.h - the plain room protocol over WebSocket (GET /rooms/{room}/ws):
 * the connection receives the room's messages as JSON envelopes, and its
 * text frames publish to the room. Service thread of ws.c.
 */
#ifndef CRIER_PLAIN_WS_H
#define CRIER_PLAIN_WS_H

#include "common/access.h"
#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/ws.h"

void plain_ws_init(const cfg *c, hub *h);

/* True when the query's resume cursor (since, epoch), if any, is well formed.
 * Any thread. */
bool plain_ws_query_is_valid(const char *query);

/* Opens a session on room (a valid name) for who (NULL: anonymous;
 * borrowed, the session keeps a reference). Whether its text frames may
 * publish is decided here, once: a frame the publish right (auth.rooms)
 * does not allow closes the connection with 1008 and the reason. Returns 0
 * or -1. */
int plain_ws_open(const char *room, const char *query, access_principal *who, ws_session *out);

#endif
