/* SPDX-License-Identifier: MIT */
/*
 * plain/poll.c - the plain room long poll: GET /rooms/{room}/poll with the
 * cursor the client holds (since=N, and the epoch=E it is in).
 *
 * A poll joins its room with the cursor `since`: the hub replays what
 * history holds after it, so a poll with something to answer answers at
 * once; otherwise the long-poll carrier (carriers/longpoll.c) holds it
 * until the room has something, its deadline (limits.poll_timeout_s)
 * passes or the drain releases it. Each answer ends the membership; the
 * client polls again with since=last_id and history fills what came in
 * between. The answer's last_id never passes a message the answer does not
 * carry (plain_poll_join_cursor_locked, plain_poll_build_answer). A poll
 * without since joins from now.
 *
 * Threading: the handler and the carrier's hooks (room_poll_answer,
 * room_poll_ended) run on the MHD thread of the request. `room_poll.since`
 * is set before the hold and read under the sub lock after. The room's
 * epoch is read before the sub lock is taken: the hub lock comes before a
 * sub's, never after. `conf` and `the_hub` are set once by plain_poll_init.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/plain/poll.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json_text.h"
#include "common/latency.h"
#include "common/limits.h"
#include "common/parse.h"
#include "transports/carriers/longpoll.h"
#include "transports/plain/common.h"
#include "transports/plain/connect.h"
#include "transports/plain/ending.h"

typedef struct room_poll {
    sub s;
    /* The cursor the client holds: its since, or where a from-now join
     * started. Set before the hold, read under the sub lock after. */
    uint64_t since;
    char epoch[MSG_EPOCH_MAX]; /* the client's epoch, "" for none */
    char room[]; /* its NUL-terminated name, as long as it is (a held poll's size counts) */
} room_poll;

static const cfg *conf;
static hub *the_hub;

void plain_poll_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

uint64_t plain_poll_join_cursor_locked(const sub *s)
{
    for (size_t i = 0; i < s->q.count; i++) {
        msg *m = sendq_at(&s->q, i);
        /* presence events and messages to a user or connection (no id) are
         * not the room's: past them, the hub queued live messages since the
         * join, which began before the first */
        if (!m->presence && !m->to)
            return m->id ? m->id - 1 : 0;
    }
    /* Nothing queued: last_id is still the join's, unless the hub dropped
     * s already (then what it lost is unknown: 0 asks history for all). */
    return s->dropped ? 0 : s->last_id;
}

char *plain_poll_build_answer(sub *s, uint64_t cursor, const char *cursor_epoch, const char *epoch,
                              size_t *len_out)
{
    buf out = {0};
    /* Nothing taken: the sub's cursor, the join's or past what the hub
     * queued (all of which went into earlier answers: a poll answers
     * once). A dropped sub lost what was queued, so the client keeps its
     * own cursor, in its own epoch, and the next poll takes the lost
     * messages from history (or learns of a gap). */
    uint64_t last = s->dropped ? cursor : s->last_id;
    if (s->dropped && cursor_epoch && *cursor_epoch)
        epoch = cursor_epoch;
    bool ok = buf_append_str(&out, "{");
    msg *m = sendq_peek(&s->q);
    if (m && m->gap) { /* a resume that lost something says so first */
        msg_bytes info = msg_data(m);
        ok = buf_append_str(&out, "\"gap\":") && buf_append(&out, info.base, info.len) &&
             buf_append_str(&out, ",");
        last = m->id; /* polling on from here asks for nothing lost again */
        sendq_pop(&s->q);
    }
    ok = ok && buf_append_str(&out, "\"messages\":[");
    bool first = true;
    int64_t now = 0; /* read once, at the answer's first room message */
    while (ok && (m = sendq_peek(&s->q)) != NULL) {
        if (m->id && m->id <= cursor && cursor_epoch && *cursor_epoch &&
            !strcmp(m->epoch, cursor_epoch)) {
            sendq_pop(&s->q); /* the client had it (from a node ahead of this one) */
            continue;
        }
        msg_bytes b = msg_get(m, MSG_FMT_JSON, NULL);
        if (!first && out.len + b.len > LP_ANSWER_SOFT_MAX)
            break; /* last stays at the last message taken */
        if (!first)
            ok = buf_append_str(&out, ",");
        ok = ok && buf_append(&out, b.base, b.len);
        if (m->id) { /* a message to a user or connection has none: not the room's cursor */
            last = m->id;
            latency_observe((now ? now : (now = clock_now_ms())) - m->created_ms);
        }
        first = false;
        sendq_pop(&s->q);
    }
    ok = ok && buf_printf(&out, "],\"last_id\":%" PRIu64 ",\"epoch\":\"%s\"", last, epoch);
    if (ok && s->end_reason == SUB_END_DISCONNECTED) { /* the server API's: stop polling */
        const char *why = s->end_text ? s->end_text : sub_end_reason_text(s->end_reason);
        ok = buf_append_str(&out, ",\"error\":") && buf_json_string(&out, why, strlen(why), 0);
    }
    ok = ok && buf_append_str(&out, "}");
    if (!ok) {
        buf_free(&out);
        return NULL;
    }
    *len_out = out.len;
    return buf_take(&out);
}

/* MHD thread, the carrier's answer hook: what is queued, then the poll
 * leaves the room. */
static enum MHD_Result room_poll_answer(http_call *call, void *session, sub *s, lp_reason why)
{
    room_poll *p = session;
    (void)why;
    /* The room's epoch first: the hub lock comes before a sub's, never after. */
    room_info info = {0};
    hub_room_info(the_hub, p->room, &info);
    pthread_mutex_lock(&s->lock);
    size_t len = 0;
    char *body = plain_poll_build_answer(s, p->since, p->epoch, info.epoch, &len);
    pthread_mutex_unlock(&s->lock);
    hub_leave(the_hub, s);
    if (!body)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, SUB_CONN_ID_HEADER, s->conn_id); /* this poll's, README */
    return http_queue_uncached(call->conn, MHD_HTTP_OK, r, "application/json");
}

/* MHD thread, the carrier's ended hook: the request is over. */
static void room_poll_ended(void *session)
{
    room_poll *p = session;
    hub_leave(the_hub, &p->s);
    sub_fini(&p->s);
    free(p);
}

static const lp_hold_ops room_poll_ops = {room_poll_answer, room_poll_ended};

/* Checks since and epoch; on a bad one answers 400 into *refused. */
static bool query_is_valid(http_call *call, const char *since_text, const char *epoch,
                           uint64_t *since, enum MHD_Result *refused)
{
    if (since_text && !parse_u64(since_text, since))
        *refused =
            http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                             "since must be a non-negative integer, got '%.64s'", since_text);
    else if (epoch && !hub_epoch_is_valid(epoch))
        *refused = http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                    "epoch must be 1 to 15 letters or digits");
    else if (epoch && !since_text) /* as on /ws: an epoch alone names no position */
        *refused = http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                    "epoch needs since: poll with since=N&epoch=E");
    else
        return true;
    return false;
}

enum MHD_Result plain_poll_handle(http_call *call)
{
    if (*call->state && !plain_connect_is_ask(*call->state))
        return lp_resume(call);
    const char *v = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *epoch = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "epoch");
    uint64_t since = 0;
    enum MHD_Result refused;
    if (!query_is_valid(call, v, epoch, &since, &refused))
        return refused;
    access_principal *who = NULL;
    if (plain_connect_step(call, "long_polling", &who, &refused) != PLAIN_ASK_GO)
        return refused; /* waiting for upstream.connect, or refused by it */
    size_t room_len = strnlen(call->room, ROOM_NAME_MAX);
    room_poll *p = calloc(1, sizeof(*p) + room_len + 1);
    if (!p) {
        access_unref(who);
        return MHD_NO;
    }
    sub_init(&p->s, SUB_LONGPOLL, MSG_FMT_JSON, conf->limits.send_queue);
    memcpy(p->room, call->room, room_len); /* calloc'd: NUL-terminated */
    if (v && epoch)
        snprintf(p->epoch, sizeof(p->epoch), "%s", epoch);
    int rc = sub_set_identity(&p->s, who ? who->user : NULL, NULL);
    if (!rc)
        rc = v ? hub_resume(the_hub, call->room, &p->s, since, epoch)
               : hub_join(the_hub, call->room, &p->s, 0, true);
    if (rc) {
        access_unref(who);
        sub_fini(&p->s);
        free(p);
        return plain_reply_join_refused(call, rc);
    }
    /* The hub may deliver from the moment the join returns: the cursor of a
     * from-now join is read under the sub lock, from before what came. */
    pthread_mutex_lock(&p->s.lock);
    p->since = v ? since : plain_poll_join_cursor_locked(&p->s);
    pthread_mutex_unlock(&p->s.lock);
    /* At the token's exp the poll is answered with what it has (sub_end_with
     * ends the hold); the next one meets the gateway's check. */
    plain_end_at_expiry(&p->s, who);
    access_unref(who);
    lp_conn *c =
        lp_prepare(call, &p->s, (int64_t)conf->limits.poll_timeout_s * MS_PER_S, &room_poll_ops, p);
    return c ? lp_hold(call, c) : MHD_NO;
}

void plain_poll_completed(void *state)
{
    if (plain_connect_is_ask(state))
        plain_connect_completed(state);
    else
        lp_completed(state);
}
