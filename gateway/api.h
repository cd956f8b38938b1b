/* SPDX-License-Identifier: MIT */
/*
 * api.h - the plain HTTP API: publish, room info, history, the room list,
 * health. Handlers run on
 * an MHD thread (http.c has three).
 */
#ifndef CRIER_API_H
#define CRIER_API_H

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"

void api_init(const cfg *c, hub *h);
enum MHD_Result api_publish(http_call *call);
enum MHD_Result api_room_info(http_call *call);
/* GET /rooms/{room}/history and GET /rooms (api_rooms.c). */
enum MHD_Result api_room_history(http_call *call);
enum MHD_Result api_rooms_list(http_call *call);
enum MHD_Result api_healthz(http_call *call);
enum MHD_Result api_metrics(http_call *call);

/* MHD thread: the request's ?target= (NULL when absent) in *target, for a
 * publish (a room's, or the users API's send). False, with *ret the 400
 * answered, when it is not a SignalR client method name (1 to 63 letters,
 * digits or '_') or in no hub's publish_targets (c). */
bool api_take_target(http_call *call, const cfg *c, const char **target, enum MHD_Result *ret);

/* The room the stats stream (GET /stats/events) is served from. */
#define API_STATS_ROOM HUB_LOCAL_PREFIX "stats"

/* Timer thread, once a second: publishes a stats snapshot to the stats
 * stream's listeners, if any. */
void api_stats_tick(int64_t now_ms);

/* api_rooms.c's hub, from api_init. Main thread, at start. */
void api_rooms_init(hub *h);

#endif
