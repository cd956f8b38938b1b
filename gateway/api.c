/* SPDX-License-Identifier: MIT */
/*
 * api.c - the plain HTTP API on libmicrohttpd: POST /rooms/{room}/messages,
 * GET /rooms/{room}, GET /healthz, GET /metrics. Handlers run on an MHD
 * thread (http.c has three).
 *
 * A publish through a shared backplane is answered when the backplane has
 * numbered it, a room info read when the backplane has read it: the request
 * waits meanwhile (api_wait.h: suspended, answered 504 past PUBLISH_WAIT_MS,
 * 503 at shutdown).
 *
 * /metrics and the stats stream (timer thread) read the hub's counters under
 * the hub lock (hub_get_stats), the connection counts of ws.c and http.c as
 * atomics, and those of sse.c and longpoll.c under the held registry's
 * locks (carriers/held.c).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "gateway/api.h"
#include "gateway/api_wait.h"
#include "transports/carriers/publish_pace.h"
#include "gateway/metrics_ops.h"
#include "gateway/metrics_text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/client_addr.h"
#include "common/json_text.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/rate_limits.h"
#include "common/log.h"
#include "common/parse.h"
#include "gateway/config.h"
#include "gateway/http.h"
#include "hub/backlog.h"
#include "hub/backlog_cluster.h"
#include "hub/payload.h"
#include "common/upstream.h"
#include "transports/carriers/http_client.h"
#include "transports/carriers/longpoll.h"
#include "transports/carriers/sse.h"
#include "transports/carriers/ws.h"
#include "transports/signalr/signalr.h"

#define TAG "api"

static const cfg *conf;
static hub *the_hub;

#define PUBLISH_WAIT_MS 10000 /* longest a publish waits for the backplane */
#define PUBLISH_WAIT_TEXT "10"
#define PUBLISH_LATE_TEXT                                                                          \
    "the backplane (Redis) did not answer within " PUBLISH_WAIT_TEXT                               \
    " s; the message may still be published"
#define READ_LATE_TEXT "the backplane (Redis) did not answer within " PUBLISH_WAIT_TEXT " s"

/* A POST body being received (the data of the request's api_wait), and
 * what a publish parked by backpressure (publish_pace.h) keeps until it
 * goes. */
typedef struct publish_req {
    http_body body;
    payload pl; /* parked: the message (may point into body) */
    char target[CFG_NAME_MAX];
    char room[ROOM_NAME_MAX + 1];
    api_wait *w;
    pace_entry pace;
} publish_req;

/* A room info read waiting for the backplane (the data of its api_wait):
 * the room's state, then (Redis) its presence over the cluster. */
typedef struct room_req {
    char room[ROOM_NAME_MAX + 1];
    room_info info;
} room_req;

static void publish_req_free(void *data)
{
    publish_req *p = data;
    payload_free(&p->pl);
    buf_free(&p->body.b);
}

/* {"error": text} */
static json_t *error_json(const char *text)
{
    return api_wait_error(text);
}

/* The answer to a publish: status, and its body in *body. */
static unsigned publish_answer(const publish_result *r, json_t **body)
{
    char text[240];
    if (r->rc == -EAGAIN) {
        snprintf(text, sizeof(text),
                 "the backplane (Redis) cannot take more now: it is unreachable and "
                 "backplane.queue_limit (%u) messages wait, or backplane.max_pending_bytes "
                 "(%zu) of publishes wait for its answer; try again later",
                 conf->backplane.queue_limit, conf->backplane.max_pending_bytes);
        *body = error_json(text);
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (r->rc == -EIO) {
        *body = error_json("the connection to the backplane (Redis) was lost before it "
                           "answered: the message may or may not be published");
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (r->rc == -ENOSPC) {
        snprintf(text, sizeof(text),
                 "too many rooms: limits.max_rooms (%u) reached; try again later",
                 conf->limits.max_rooms);
        *body = error_json(text);
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (r->rc) {
        snprintf(text, sizeof(text), "cannot publish: %s", strerror(-r->rc));
        *body = error_json(text);
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (r->queued && r->id) {
        *body = json_pack("{s:I,s:s,s:b}", "id", (json_int_t)r->id, "epoch", r->epoch, "queued", 1);
        return MHD_HTTP_ACCEPTED;
    }
    if (r->queued) {
        *body = json_pack("{s:b}", "queued", 1);
        return MHD_HTTP_ACCEPTED;
    }
    *body = json_pack("{s:I,s:s}", "id", (json_int_t)r->id, "epoch", r->epoch);
    return MHD_HTTP_CREATED;
}

/* Any thread: how the hub or the backplane ended a publish. */
static void publish_answered(void *arg, const publish_result *r)
{
    json_t *body = NULL;
    unsigned status = publish_answer(r, &body);
    api_wait_answer_json(arg, status, body);
}

void api_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
    api_rooms_init(h);
}

static enum MHD_Result reply_too_big(struct MHD_Connection *conn)
{
    return http_reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                            "message is larger than limits.max_message_bytes (%zu bytes)",
                            conf->limits.max_message_bytes);
}

/* A SignalR client method name: 1 to 63 letters, digits or '_'. */
static bool is_target_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n >= CFG_NAME_MAX || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

bool api_take_target(http_call *call, const cfg *c, const char **target, enum MHD_Result *ret)
{
    *target = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "target");
    if (*target && !is_target_name(*target)) {
        *ret = http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "target must be 1 to 63 letters, digits or '_'");
        return false;
    }
    if (*target && !cfg_publish_target_allowed(c, *target)) {
        *ret = http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "target '%s' is not in the publish_targets of any hub", *target);
        return false;
    }
    return true;
}

/* limits.rate.publish for HTTP publishes, per client address: 429 with
 * Retry-After past it. Returns true when refused (*ret: the answer). */
static bool publish_rate_refused(http_call *call, enum MHD_Result *ret)
{
    if (!rate_limit_on(RATE_PUBLISH))
        return false;
    char addr[CLIENT_ADDR_MAX];
    http_client_addr(call->conn, addr, sizeof(addr));
    int64_t wait = rate_limit_addr(RATE_PUBLISH, addr, clock_now_ms(), "HTTP publish answered 429");
    if (!wait)
        return false;
    *ret = http_reply_refused(call->conn, MHD_HTTP_TOO_MANY_REQUESTS, token_bucket_wait_s(wait),
                              "rate limit: too many messages from this address");
    return true;
}

/* Timer thread: a parked publish goes now (unless its client left). */
static void parked_go(void *arg)
{
    publish_req *p = arg;
    if (api_wait_is_answered(p->w)) { /* the client is gone: not published */
        api_wait_cancel(p->w);
        return;
    }
    publish_opts opt = {.target = p->target[0] ? p->target : NULL};
    hub_publish_async(the_hub, p->room, p->pl.data, p->pl.len, &opt, publish_answered, p->w);
}

/* Timer or main thread: a parked publish waited limits.publish_wait_ms. */
static void parked_refuse(void *arg)
{
    publish_req *p = arg;
    api_wait_answer_retry(p->w, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "subscribers are behind: the message was not published within "
                          "limits.publish_wait_ms; try again later",
                          1);
}

/* Backpressure: while subscribers that read are behind, the publish waits
 * (parked, publish_pace.h) instead of being queued now; with
 * limits.publish_wait_ms 0 it is refused at once. Returns true when it was
 * parked or refused (*ret: the reply); false: publish now. */
static bool publish_paced(http_call *call, api_wait *w, enum MHD_Result *ret)
{
    publish_req *p = api_wait_data(w);
    int64_t wait = conf->limits.publish_wait_ms;
    if (wait == 0) {
        if (!backlog_holding())
            return false;
        backlog_count_paced(PACE_HTTP);
        api_wait_cancel(w); /* no answer will come from elsewhere */
        *ret = http_reply_refused(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, 1,
                                  "subscribers are behind: try again later");
        return true;
    }
    p->pace = (pace_entry){
        .deadline = clock_now_ms() + wait, .go = parked_go, .refuse = parked_refuse, .arg = p};
    if (!publish_pace_park(&p->pace, PACE_HTTP))
        return false;
    *ret = api_wait_reply(call, w);
    return true;
}

static enum MHD_Result publish_finish(http_call *call, api_wait *w)
{
    publish_req *p = api_wait_data(w);
    enum MHD_Result refused;
    if (p->body.too_big)
        return reply_too_big(call->conn);
    if (publish_rate_refused(call, &refused))
        return refused;
    const char *ct =
        MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    char err[256];
    const char *target;
    if (!api_take_target(call, conf, &target, &refused))
        return refused;
    if (payload_from_body(&p->pl, p->body.b.data ? p->body.b.data : "", p->body.b.len,
                          payload_is_json_type(ct), err, sizeof(err)))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    /* Kept with the request (publish_req_free), in case it waits. */
    snprintf(p->target, sizeof(p->target), "%s", target ? target : "");
    snprintf(p->room, sizeof(p->room), "%s", call->room);
    p->w = w;
    /* The answer's reference: publish_answered, or a parked publish's refusal. */
    api_wait_send(w, (int64_t)conf->limits.publish_wait_ms + PUBLISH_WAIT_MS, PUBLISH_LATE_TEXT);
    enum MHD_Result paced;
    if (publish_paced(call, w, &paced))
        return paced;
    publish_opts opt = {.target = target};
    hub_publish_async(the_hub, call->room, p->pl.data, p->pl.len, &opt, publish_answered, w);
    return api_wait_reply(call, w);
}

enum MHD_Result api_publish(http_call *call)
{
    api_wait *w = *call->state;
    if (call->first) {
        /* Refuse at once what Content-Length says is too big. */
        const char *cl = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t declared = 0;
        if (cl && parse_u64(cl, &declared) && declared > conf->limits.max_message_bytes)
            return reply_too_big(call->conn);
        return MHD_YES;
    }
    if (!w) {
        w = api_wait_new(call, sizeof(publish_req), publish_req_free);
        if (!w)
            return MHD_NO;
    }
    if (api_wait_sent(w)) /* resumed: the answer is in */
        return api_wait_reply(call, w);
    publish_req *p = api_wait_data(w);
    if (*call->upload_size)
        return http_body_take(&p->body, call, conf->limits.max_message_bytes) ? MHD_YES : MHD_NO;
    return publish_finish(call, w);
}

/* A room's info: {"room","epoch","last_id","subscribers":{...}}. */
static json_t *room_info_json(const char *room, const char *epoch, uint64_t last_id,
                              const unsigned subscribers[SUB_KIND_COUNT])
{
    return json_pack("{s:s,s:s,s:I,s:{s:I,s:I,s:I}}", "room", room, "epoch", epoch, "last_id",
                     (json_int_t)last_id, "subscribers", "websocket",
                     (json_int_t)subscribers[SUB_WS], "sse", (json_int_t)subscribers[SUB_SSE],
                     "long_polling", (json_int_t)subscribers[SUB_LONGPOLL]);
}

/* Replies with body (a JSON value, taken). */
static enum MHD_Result reply_json_value(struct MHD_Connection *conn, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return MHD_NO;
    return http_reply_take(conn, status, "application/json", text, strlen(text));
}

/* Any thread, no lock: the room's presence over every live node, added to
 * its info as "cluster" (null when the backplane did not answer). */
static void room_presence_answered(void *arg, int rc, const presence_list *l)
{
    api_wait *w = arg;
    const room_req *q = api_wait_data(w);
    json_t *j = room_info_json(q->room, q->info.epoch, q->info.last_id, q->info.subscribers);
    json_t *cluster = rc ? json_null()
                         : json_pack("{s:I,s:I,s:I,s:I}", "subscribers", (json_int_t)l->connections,
                                     "nodes", (json_int_t)l->nodes, "users", (json_int_t)l->users,
                                     "anonymous", (json_int_t)l->anonymous);
    if (j && cluster)
        json_object_set_new(j, "cluster", cluster);
    else
        json_decref(cluster);
    api_wait_answer_json(w, MHD_HTTP_OK, j);
}

/* With Redis: GET /rooms/{room} adds the cluster's totals. */
static bool room_info_clustered(void)
{
    return conf->backplane.type == CFG_BACKPLANE_REDIS;
}

/* Any thread: where a room with no member on this node stands, from the
 * backplane. */
static void room_state_answered(void *arg, int rc, const char *epoch, uint64_t last_id)
{
    api_wait *w = arg;
    room_req *q = api_wait_data(w);
    char text[ROOM_NAME_MAX + 32];
    if (rc == -ENOENT) {
        snprintf(text, sizeof(text), "no such room: %s", q->room);
        api_wait_answer_json(w, MHD_HTTP_NOT_FOUND, error_json(text));
    } else if (rc) {
        api_wait_answer_json(w, MHD_HTTP_SERVICE_UNAVAILABLE,
                             error_json("the backplane (Redis) is unreachable"));
    } else if (room_info_clustered()) {
        snprintf(q->info.epoch, sizeof(q->info.epoch), "%s", epoch);
        q->info.last_id = last_id;
        hub_presence_get(the_hub, q->room, 0, room_presence_answered, w);
    } else {
        api_wait_answer_json(
            w, MHD_HTTP_OK, room_info_json(q->room, epoch, last_id, (unsigned[SUB_KIND_COUNT]){0}));
    }
}

enum MHD_Result api_room_info(http_call *call)
{
    if (*call->state) /* resumed: the answer is in */
        return api_wait_reply(call, *call->state);
    api_wait *w = api_wait_start(call, sizeof(room_req), NULL, PUBLISH_WAIT_MS, READ_LATE_TEXT);
    if (!w)
        return MHD_NO;
    room_req *q = api_wait_data(w);
    snprintf(q->room, sizeof(q->room), "%s", call->room);
    room_info info;
    int rc = hub_room_info_async(the_hub, call->room, &info, room_state_answered, w);
    if (rc == -EINPROGRESS)
        return api_wait_reply(call, w);
    if (!rc && room_info_clustered()) {
        q->info = info;
        hub_presence_get(the_hub, call->room, 0, room_presence_answered, w);
        return api_wait_reply(call, w);
    }
    api_wait_cancel(w); /* no lookup */
    if (rc)
        return http_reply_error(call->conn, MHD_HTTP_NOT_FOUND, "no such room: %s", call->room);
    return reply_json_value(call->conn, MHD_HTTP_OK,
                            room_info_json(call->room, info.epoch, info.last_id, info.subscribers));
}

enum MHD_Result api_healthz(http_call *call)
{
    char body[128];
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"ok\",\"backplane\":{\"type\":\"%s\",\"connected\":%s}}",
                     conf->backplane.type == CFG_BACKPLANE_REDIS ? "redis" : "memory",
                     hub_bp_connected(the_hub) ? "true" : "false");
    return http_reply_json(call->conn, MHD_HTTP_OK, body, (size_t)n);
}

/* The memory limits' gauges and refusal counters (README: Configuration). */
static bool metrics_limits(buf *b, const hub_stats *st)
{
    bool ok =
        buf_printf(b,
                   "# HELP crier_history_bytes Bytes all rooms' history counts (history.max_bytes "
                   "bounds it).\n"
                   "# TYPE crier_history_bytes gauge\ncrier_history_bytes %" PRIu64 "\n"
                   "# HELP crier_history_max_bytes The configured history.max_bytes.\n"
                   "# TYPE crier_history_max_bytes gauge\ncrier_history_max_bytes %zu\n"
                   "# HELP crier_history_evicted_total Messages dropped early to keep within "
                   "history.max_bytes.\n"
                   "# TYPE crier_history_evicted_total counter\n"
                   "crier_history_evicted_total %" PRIu64 "\n"
                   "# HELP crier_signalr_pending_connections SignalR connections negotiated "
                   "whose transport has not started.\n"
                   "# TYPE crier_signalr_pending_connections gauge\n"
                   "crier_signalr_pending_connections %u\n"
                   "# HELP crier_websocket_fragment_bytes Bytes held for unfinished WebSocket "
                   "messages.\n"
                   "# TYPE crier_websocket_fragment_bytes gauge\n"
                   "crier_websocket_fragment_bytes %zu\n",
                   st->history_bytes, conf->history.max_bytes, st->history_evicted,
                   sr_pending_connections(), ws_fragment_bytes());
    ok = ok && metrics_family(b, "crier_limit_refusals_total", "counter",
                              "Requests refused (or messages evicted) by a resource limit.");
    for (int k = 0; ok && k < LIMIT_FIRST_RATE; k++)
        ok = metrics_labelled(b, "crier_limit_refusals_total", "limit", limit_name((limit_kind)k),
                              limit_refusals((limit_kind)k));
    ok = ok && metrics_family(b, "crier_rate_limited_total", "counter",
                              "Connections, requests and messages refused by limits.rate.");
    for (int k = 0; ok && k < RATE_KINDS; k++)
        ok = metrics_labelled(b, "crier_rate_limited_total", "kind", rate_kind_name((rate_kind)k),
                              rate_limited_total((rate_kind)k));
    return ok;
}

/* Calls to backends (README "Upstream hub methods"). */
static bool metrics_upstream(buf *b)
{
    bool ok = metrics_family(b, "crier_upstream_calls_total", "counter",
                             "Calls to backends (hub methods, frames, events, connect checks) by "
                             "outcome.");
    for (int r = 0; ok && r < UP_R_COUNT; r++)
        ok = metrics_labelled(b, "crier_upstream_calls_total", "result",
                              up_result_name((up_result)r), up_calls_total((up_result)r));
    return ok && buf_printf(b,
                            "# HELP crier_upstream_in_flight Calls to backends waiting for an "
                            "answer (upstream.max_in_flight bounds them).\n"
                            "# TYPE crier_upstream_in_flight gauge\ncrier_upstream_in_flight %u\n"
                            "# HELP crier_upstream_events_dropped_total Events not sent: "
                            "upstream.events_queue were waiting.\n"
                            "# TYPE crier_upstream_events_dropped_total counter\n"
                            "crier_upstream_events_dropped_total %" PRIu64 "\n",
                            hc_in_flight(), hc_events_dropped());
}

/* How the WebSockets are spread over the workers ("workers"). */
static bool metrics_workers(buf *b)
{
    bool ok = buf_printf(b, "# HELP crier_websocket_worker_connections WebSocket connections per "
                            "worker (libwebsockets service thread).\n"
                            "# TYPE crier_websocket_worker_connections gauge\n");
    for (unsigned i = 0; ok && i < ws_workers(); i++)
        ok = buf_printf(b, "crier_websocket_worker_connections{worker=\"%u\"} %u\n", i,
                        ws_worker_connections(i));
    return ok;
}

/* Backpressure (README "Slow subscribers"): publishers made to wait, and
 * the fanout backlog they wait for. */
static bool metrics_backpressure(buf *b)
{
    bool ok = metrics_family(b, "crier_publish_paced_total", "counter",
                             "Publishers made to wait for subscribers that are behind: HTTP "
                             "publishes parked (or refused 503 with limits.publish_wait_ms 0), "
                             "WebSocket reads paused.");
    for (int k = 0; ok && k < PACE_KINDS; k++)
        ok = metrics_labelled(b, "crier_publish_paced_total", "transport",
                              pace_kind_name((pace_kind)k), backlog_paced_total((pace_kind)k));
    return ok && buf_printf(b,
                            "# HELP crier_fanout_behind Subscriber queues past half of "
                            "limits.send_queue that still drain (publishers wait for them).\n"
                            "# TYPE crier_fanout_behind gauge\ncrier_fanout_behind %u\n"
                            "# HELP crier_publish_in_flight This node's publishes sent to the "
                            "backplane and not come back yet (a quarter of limits.send_queue "
                            "of them make publishers wait).\n"
                            "# TYPE crier_publish_in_flight gauge\ncrier_publish_in_flight %ld\n"
                            "# HELP crier_publish_parked HTTP publishes waiting for the backlog.\n"
                            "# TYPE crier_publish_parked gauge\ncrier_publish_parked %u\n"
                            "# HELP crier_backlog_remote_holders Other nodes whose subscriber "
                            "queues are behind (publishers here wait for them too).\n"
                            "# TYPE crier_backlog_remote_holders gauge\n"
                            "crier_backlog_remote_holders %u\n"
                            "# HELP crier_subscribers_stalled_total Behind queues that did not "
                            "shrink for limits.subscriber_stall_ms (no longer waited for).\n"
                            "# TYPE crier_subscribers_stalled_total counter\n"
                            "crier_subscribers_stalled_total %" PRIu64 "\n",
                            backlog_behind(), backlog_in_flight(), publish_pace_parked(),
                            backlog_remote_holders(), backlog_stalled_total());
}

/* Prometheus text format. */
enum MHD_Result api_metrics(http_call *call)
{
    hub_stats st;
    hub_get_stats(the_hub, &st);
    unsigned streams = sse_streams(), polls = lp_held(), all_http = http_connections();
    unsigned other_http = all_http > streams + polls ? all_http - streams - polls : 0;
    buf b = {0};
    bool ok = buf_printf(
        &b,
        "# HELP crier_rooms Rooms with members or history.\n"
        "# TYPE crier_rooms gauge\ncrier_rooms %" PRIu64 "\n"
        "# HELP crier_messages_published_total Messages published.\n"
        "# TYPE crier_messages_published_total counter\n"
        "crier_messages_published_total %" PRIu64 "\n"
        "# HELP crier_messages_delivered_total Room messages queued to subscribers (protocol "
        "records apart: crier_protocol_frames_total).\n"
        "# TYPE crier_messages_delivered_total counter\n"
        "crier_messages_delivered_total %" PRIu64 "\n"
        "# HELP crier_subscribers_dropped_total Subscribers dropped for a full send queue.\n"
        "# TYPE crier_subscribers_dropped_total counter\n"
        "crier_subscribers_dropped_total %" PRIu64 "\n"
        "# HELP crier_subscribers Room memberships per transport.\n"
        "# TYPE crier_subscribers gauge\n"
        "crier_subscribers{transport=\"websocket\"} %" PRIu64 "\n"
        "crier_subscribers{transport=\"sse\"} %" PRIu64 "\n"
        "crier_subscribers{transport=\"long_polling\"} %" PRIu64 "\n"
        "# HELP crier_connections Open connections by transport (http: every other HTTP "
        "connection, kept-alive ones included).\n"
        "# TYPE crier_connections gauge\n"
        "crier_connections{transport=\"websocket\"} %u\n"
        "crier_connections{transport=\"sse\"} %u\n"
        "crier_connections{transport=\"long_polling\"} %u\n"
        "crier_connections{transport=\"http\"} %u\n"
        "# HELP crier_backplane_connected 1 when the backplane (Redis) is reachable, or memory.\n"
        "# TYPE crier_backplane_connected gauge\ncrier_backplane_connected %d\n",
        st.rooms, st.published, st.delivered, st.dropped, st.subscribers[SUB_WS],
        st.subscribers[SUB_SSE], st.subscribers[SUB_LONGPOLL], ws_connections(), streams, polls,
        other_http, hub_bp_connected(the_hub) ? 1 : 0);
    ok = ok && metrics_limits(&b, &st) && metrics_upstream(&b) && metrics_ops(&b, &st) &&
         metrics_workers(&b) && metrics_backpressure(&b);
    struct MHD_Response *r =
        ok ? MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY) : NULL;
    buf_free(&b);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result ret = http_queue(call->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* The numbers behind the stats stream. */
typedef struct stats_sample {
    int64_t at_ms;
    uint64_t published, delivered;
} stats_sample;

void api_stats_tick(int64_t now_ms)
{
    static stats_sample last;
    hub_stats st;
    hub_get_stats(the_hub, &st);
    double secs = last.at_ms ? (double)(now_ms - last.at_ms) / 1000.0 : 0;
    double in_rate = secs > 0 ? (double)(st.published - last.published) / secs : 0;
    double out_rate = secs > 0 ? (double)(st.delivered - last.delivered) / secs : 0;
    last = (stats_sample){now_ms, st.published, st.delivered};
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "{\"connections\":{\"websocket\":%u,\"sse\":%u,\"long_polling\":%u},"
                     "\"rooms\":%" PRIu64 ",\"messages_in_per_s\":%.1f,"
                     "\"messages_out_per_s\":%.1f,\"published\":%" PRIu64 ",\"delivered\":%" PRIu64
                     ",\"dropped\":%" PRIu64 ",\"protocol_frames\":%" PRIu64 "}",
                     ws_connections(), sse_streams(), lp_held(), st.rooms, in_rate, out_rate,
                     st.published, st.delivered, st.dropped, st.protocol_frames);
    publish_opts opt = {.transient = true};
    uint64_t id;
    hub_publish(the_hub, API_STATS_ROOM, body, (size_t)n, &opt, &id);
}
