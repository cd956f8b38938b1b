/* SPDX-License-Identifier: MIT */
/*
 * plain/events.c - the upstream.events of plain WebSockets and SSE streams
 * (plain/events.h). Stateless; any thread.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/plain/events.h"

#include <stdlib.h>
#include <string.h>

#include "common/upstream.h"
#include "hub/hub.h"
#include "transports/carriers/http_client.h"

/* Counts how an event's POST ended (as SignalR's events are counted). */
static void event_done(void *arg, up_transfer t, long status, const char *body, size_t len)
{
    const cfg *c = arg;
    (void)body;
    (void)len;
    up_result r = t == UP_SENT_OK && status >= 200 && status <= 299 ? UP_R_OK
                  : t == UP_SENT_OK                                 ? UP_R_HTTP_STATUS
                  : t == UP_SENT_TIMEOUT                            ? UP_R_TIMEOUT
                  : t == UP_SENT_STOPPED                            ? UP_R_STOPPED
                  : t == UP_SENT_TOO_LARGE                          ? UP_R_OK /* answered */
                                                                    : UP_R_UNAVAILABLE;
    up_count(r, c->upstream.events);
}

static void send_event(const cfg *c, const char *event, const sub *s, const char *room,
                       const char *reason, const access_principal *who)
{
    char *body = up_event_body(event, NULL, room, reason, s->conn_id, who);
    if (body)
        hc_post(c->upstream.events, body, strlen(body), c->upstream.timeout_ms, true, event_done,
                (void *)c);
}

/* Whether room's members send events: not a node's own room (the stats
 * stream, /stats/events, which is no client's room). */
static bool sends_events(const cfg *c, const char *room)
{
    return c->upstream.events[0] && strncmp(room, HUB_LOCAL_PREFIX, strlen(HUB_LOCAL_PREFIX));
}

void plain_events_opened(const cfg *c, const sub *s, const char *room, const access_principal *who)
{
    if (!sends_events(c, room))
        return;
    send_event(c, "connect", s, room, NULL, who);
    send_event(c, "join", s, room, NULL, who);
}

void plain_events_closed(const cfg *c, sub *s, const char *room, const access_principal *who)
{
    if (!sends_events(c, room))
        return;
    pthread_mutex_lock(&s->lock);
    sub_end_reason why = s->end_reason;
    char *reason = NULL;
    if (why == SUB_END_DISCONNECTED || why == SUB_END_EXPIRED)
        reason = strdup(why == SUB_END_DISCONNECTED && s->end_text ? s->end_text
                                                                   : sub_end_reason_text(why));
    pthread_mutex_unlock(&s->lock);
    send_event(c, "leave", s, room, NULL, who);
    send_event(c, "disconnect", s, room, reason, who);
    free(reason);
}
