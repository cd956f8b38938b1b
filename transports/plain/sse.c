/* SPDX-License-Identifier: MIT */
/*
 * plain/sse.c - the plain room stream: joins the room from now, or resumes
 * it from the cursor the client holds (the Last-Event-ID header an
 * EventSource sends when it reconnects, or ?last_event_id=), in the SSE
 * format (each event's id is the message's "EPOCH:N"), and hands the
 * member to the SSE carrier (carriers/sse.c), which drains it until the
 * client leaves. The member leaves the room when the stream ends. With
 * upstream.events it sends connect/join and leave/disconnect (plain/events.h).
 *
 * Threading: the handler and the stream's end run on the MHD thread of the
 * request; the member's sub belongs to the carrier while it streams.
 * `conf` and `the_hub` are set once by plain_sse_init.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/plain/sse.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/limits.h"
#include "common/parse.h"
#include "transports/carriers/sse.h"
#include "transports/plain/common.h"
#include "transports/plain/connect.h"
#include "transports/plain/ending.h"
#include "transports/plain/events.h"

/* What a stream starts with: a comment (which flushes the headers, so the
 * client sees the stream open) and the reconnection delay, in ms, that an
 * EventSource waits before it reconnects with its Last-Event-ID. */
#define STREAM_HELLO ": crier\nretry: 2000\n\n"

/* A stream's member of its room. */
typedef struct room_stream {
    sub s;
    access_principal *who; /* a reference (NULL: anonymous), for upstream.events */
    char room[ROOM_NAME_MAX + 1];
} room_stream;

static const cfg *conf;
static hub *the_hub;

void plain_sse_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

/* MHD thread: the carrier is done with the stream; leave the room. */
static void room_stream_ended(void *session)
{
    room_stream *rs = session;
    plain_events_closed(conf, &rs->s, rs->room, rs->who);
    hub_leave(the_hub, &rs->s);
    sub_fini(&rs->s);
    access_unref(rs->who);
    free(rs);
}

/* ?since=N[&epoch=E], as a long poll and the plain WebSocket take it (an
 * epoch alone names no position): since=0 without an epoch is what the
 * room's history holds. */
static bool parse_since_query(http_call *call, uint64_t *since, char *epoch, bool *has)
{
    const char *v = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *e = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "epoch");
    *has = v != NULL;
    if ((e && !v) || (v && !parse_u64(v, since)) || (e && !hub_epoch_is_valid(e)))
        return false;
    if (e)
        snprintf(epoch, MSG_EPOCH_MAX, "%s", e);
    return true;
}

/* The resume cursor: the Last-Event-ID header (what EventSource sends when
 * it reconnects: it wins over the URL's) or ?last_event_id=, as "EPOCH:N"
 * or "N"; else ?since=N[&epoch=E]. */
static bool parse_resume_id(http_call *call, uint64_t *since, char *epoch, bool *has)
{
    const char *v = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (!v)
        v = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "last_event_id");
    if (!v)
        return parse_since_query(call, since, epoch, has);
    *has = true;
    return hub_parse_cursor(v, since, epoch);
}

enum MHD_Result plain_sse_handle(http_call *call)
{
    if (*call->state && !plain_connect_is_ask(*call->state))
        return MHD_YES; /* the stream is running; the carrier feeds it */
    uint64_t since = 0;
    char epoch[MSG_EPOCH_MAX] = "";
    bool resume = false;
    if (!parse_resume_id(call, &since, epoch, &resume))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "Last-Event-ID / last_event_id must be EPOCH:N or N, with N a "
                                "non-negative integer; since a non-negative integer and epoch "
                                "1 to 15 letters or digits, with since");
    access_principal *who = NULL;
    enum MHD_Result ret;
    if (plain_connect_step(call, "sse", &who, &ret) != PLAIN_ASK_GO)
        return ret; /* waiting for upstream.connect, or refused by it */
    room_stream *rs = calloc(1, sizeof(*rs));
    if (!rs) {
        access_unref(who);
        return MHD_NO;
    }
    sub_init(&rs->s, SUB_SSE, MSG_FMT_SSE, conf->limits.send_queue);
    int rc = sub_set_identity(&rs->s, who ? who->user : NULL, NULL);
    if (!rc)
        rc = resume ? hub_resume(the_hub, call->room, &rs->s, since, epoch[0] ? epoch : NULL)
                    : hub_join(the_hub, call->room, &rs->s, 0, true);
    if (rc) {
        access_unref(who);
        sub_fini(&rs->s);
        free(rs);
        return plain_reply_join_refused(call, rc);
    }
    plain_end_at_expiry(&rs->s, who); /* ended with an error event at the token's exp */
    rs->who = who;                    /* the stream keeps the reference */
    snprintf(rs->room, sizeof(rs->room), "%s", call->room);
    plain_events_opened(conf, &rs->s, rs->room, rs->who);
    return sse_stream_with(call, &rs->s, STREAM_HELLO, plain_sse_farewell, room_stream_ended, rs);
}

void plain_sse_completed(void *state)
{
    if (plain_connect_is_ask(state))
        plain_connect_completed(state);
    else
        sse_completed(state);
}
