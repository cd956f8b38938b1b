/* SPDX-License-Identifier: MIT */
/*
 * plain/events.h - the upstream.events a plain WebSocket or SSE stream
 * sends (README "Upstream hub methods", Events): connect and join when it
 * opens, leave and disconnect (with the server's reason, if it ended it)
 * when it ends, each with its room and `hub` null. A plain long poll sends
 * none: each poll is a connection of its own (its own connection id), so a
 * connect/disconnect per poll would tell the backend nothing true. The
 * dashboard's stats stream (a node's own room, HUB_LOCAL_PREFIX) sends none.
 * Stateless; any thread (hc_post queues the POST for the curl thread).
 */
#ifndef CRIER_PLAIN_EVENTS_H
#define CRIER_PLAIN_EVENTS_H

#include "common/access.h"
#include "common/cfg.h"
#include "hub/sub.h"

/* Sends "connect" then "join" for s (just joined to room), when
 * upstream.events is set. who: its principal (NULL anonymous). */
void plain_events_opened(const cfg *c, const sub *s, const char *room, const access_principal *who);

/* Sends "leave" then "disconnect" for s, which has ended; the disconnect's
 * reason is the one the server ended s with (the server API's text, "token
 * expired"), none when the client left. Takes s's lock. */
void plain_events_closed(const cfg *c, sub *s, const char *room, const access_principal *who);

#endif
