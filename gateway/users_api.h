/* SPDX-License-Identifier: MIT */
/*
 * users_api.h - the server API's users and connections (README "Server
 * API"): messages to a user or one connection, a user's room membership,
 * disconnecting. Handlers run on an MHD thread; an API key is needed
 * (routes.h access API).
 */
#ifndef CRIER_USERS_API_H
#define CRIER_USERS_API_H

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"

/* Main thread, at start. */
void users_api_init(const cfg *c, hub *h);

/* POST /users/{user}/messages, POST /connections/{id}/messages. */
enum MHD_Result users_api_send(http_call *call);

/* PUT and DELETE /rooms/{room}/members/{user}. */
enum MHD_Result users_api_member(http_call *call);

/* DELETE /users/{user}/connections, DELETE /connections/{id}. */
enum MHD_Result users_api_end(http_call *call);

/* Their completed hook: api_wait_completed (api_wait.h). */

#endif
