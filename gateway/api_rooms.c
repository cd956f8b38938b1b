/* SPDX-License-Identifier: MIT */
/*
 * api_rooms.c - the paged read endpoints of the server API: GET
 * /rooms/{room}/history (a room's kept messages after a cursor, as a long
 * poll carries them) and GET /rooms (this node's rooms, sorted by name,
 * with their counts). Query parameters: api_query.c.
 *
 * A shared room's history lives in the backplane (Redis): the request is
 * suspended while it is read (api_wait.h) and answered from the
 * backplane's thread, which builds the answer; the memory backplane's is
 * answered at once. An answer carries at most HISTORY_ANSWER_SOFT_MAX
 * bytes of messages (at least one message): past it "more" is true and
 * the client asks again from last_id.
 *
 * Threading: handlers on the main MHD thread; history_answered on the
 * backplane's thread. `the_hub` is set once (api_rooms_init, from
 * api_init) before any request.
 *
 * Threads and locks: docs/concurrency.md
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/json_text.h"
#include "gateway/api.h"
#include "gateway/api_query.h"
#include "gateway/api_wait.h"

#define HISTORY_ANSWER_SOFT_MAX (1u << 20) /* bytes of messages in one answer, about */

#define HISTORY_WAIT_MS 10000 /* longest a read waits for the backplane (then 504) */
#define HISTORY_LATE_TEXT "the backplane (Redis) did not answer within 10 s"

static hub *the_hub;

void api_rooms_init(hub *h)
{
    the_hub = h;
}

/* The answer to a page as JSON text (malloc'd, NUL-terminated), or NULL on
 * ENOMEM: {"room","epoch","messages":[...],"last_id","gap","more"}.
 * last_id is the cursor to go on from: the last message's id, or the
 * room's last id when there is none. */
static char *history_json(const char *room, const history_page *pg)
{
    buf b = {0};
    bool ok = buf_printf(&b, "{\"room\":\"%s\",\"epoch\":\"%s\",\"messages\":[", room, pg->epoch);
    uint64_t last = pg->last_id;
    bool more = pg->more;
    for (size_t i = 0; ok && i < pg->n; i++) {
        msg_bytes m = msg_get(pg->msgs[i], MSG_FMT_JSON, NULL);
        if (i && b.len + m.len > HISTORY_ANSWER_SOFT_MAX) {
            more = true; /* last stays at the last message taken */
            break;
        }
        ok = (!i || buf_append_str(&b, ",")) && buf_append(&b, m.base, m.len);
        last = pg->msgs[i]->id;
    }
    ok = ok &&
         buf_printf(&b, "],\"last_id\":%" PRIu64 ",\"gap\":%s,\"more\":%s}", last,
                    pg->gap ? "true" : "false", more ? "true" : "false") &&
         buf_append(&b, "", 1);
    if (!ok) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}

/* {"error": text} as JSON text, malloc'd (NULL on ENOMEM). */
static char *error_text(const char *text)
{
    return json_error_body(text, NULL);
}

/* The status and body for a page that could not be read. */
static unsigned page_error(int rc, const char *room, char **body)
{
    char text[ROOM_NAME_MAX + 48];
    if (rc == -ENOENT) {
        snprintf(text, sizeof(text), "no such room: %s", room);
        *body = error_text(text);
        return MHD_HTTP_NOT_FOUND;
    }
    *body = error_text(rc == -EIO ? "the backplane (Redis) is unreachable"
                                  : "out of memory reading the room's history");
    return MHD_HTTP_SERVICE_UNAVAILABLE;
}

/* A history read waiting for the backplane: the data of its api_wait. */
typedef struct history_wait {
    char room[ROOM_NAME_MAX + 1];
} history_wait;

/* The backplane's thread (or this one, out of memory): the page. */
static void history_answered(void *arg, history_page *pg)
{
    api_wait *w = arg;
    const history_wait *hw = api_wait_data(w);
    char *body = NULL;
    unsigned status = MHD_HTTP_OK;
    if (pg->rc)
        status = page_error(pg->rc, hw->room, &body);
    else
        body = history_json(hw->room, pg);
    api_wait_answer(w, status, body);
}

enum MHD_Result api_room_history(http_call *call)
{
    if (*call->state) /* resumed: the answer is in */
        return api_wait_reply(call, *call->state);
    api_history_params prm;
    char err[256];
    struct MHD_Connection *c = call->conn;
    if (!api_history_params_parse(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"),
                                  MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"),
                                  MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "epoch"),
                                  &prm, err, sizeof(err)))
        return http_reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", err);
    api_wait *w =
        api_wait_start(call, sizeof(history_wait), NULL, HISTORY_WAIT_MS, HISTORY_LATE_TEXT);
    if (!w)
        return MHD_NO;
    history_wait *hw = api_wait_data(w);
    snprintf(hw->room, sizeof(hw->room), "%s", call->room);
    history_query q = {.since = prm.since, .epoch = prm.epoch, .limit = prm.limit};
    history_page pg;
    int rc = hub_history_async(the_hub, call->room, &q, &pg, history_answered, w);
    if (rc == -EINPROGRESS)
        return api_wait_reply(call, w);
    api_wait_cancel(w); /* answered here, at once */
    char *body = NULL;
    unsigned status = rc ? page_error(rc, call->room, &body) : MHD_HTTP_OK;
    if (!rc)
        body = history_json(call->room, &pg);
    history_page_clear(&pg);
    if (!body)
        return MHD_NO;
    return http_reply_take(c, status, "application/json", body, strlen(body));
}

/* {"room","epoch","last_id","subscribers":{...}}: what GET /rooms/{room}
 * answers; and what this node's history keeps of it (the dashboard's rooms). */
static json_t *room_entry_json(const room_entry *e)
{
    return json_pack("{s:s,s:s,s:I,s:{s:I,s:I,s:I},s:{s:I,s:I}}", "room", e->name, "epoch",
                     e->epoch, "last_id", (json_int_t)e->last_id, "subscribers", "websocket",
                     (json_int_t)e->subscribers[SUB_WS], "sse", (json_int_t)e->subscribers[SUB_SSE],
                     "long_polling", (json_int_t)e->subscribers[SUB_LONGPOLL], "history",
                     "messages", (json_int_t)e->history_messages, "bytes",
                     (json_int_t)e->history_bytes);
}

static char *rooms_json(const room_entry *e, size_t n, bool more)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new(list, room_entry_json(&e[i]))) {
            json_decref(list);
            list = NULL;
        }
    json_t *body = list ? json_pack("{s:o,s:o}", "rooms", list, "next",
                                    more && n ? json_string(e[n - 1].name) : json_null())
                        : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

enum MHD_Result api_rooms_list(http_call *call)
{
    api_rooms_params prm;
    char err[256];
    struct MHD_Connection *c = call->conn;
    if (!api_rooms_params_parse(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"),
                                MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after"),
                                &prm, err, sizeof(err)))
        return http_reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", err);
    room_entry *e = malloc(prm.limit * sizeof(*e));
    if (!e)
        return MHD_NO;
    bool more;
    size_t n = hub_list_rooms(the_hub, prm.after, e, prm.limit, &more);
    char *text = rooms_json(e, n, more);
    free(e);
    if (!text)
        return MHD_NO;
    return http_reply_take(c, MHD_HTTP_OK, "application/json", text, strlen(text));
}
