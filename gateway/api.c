/* SPDX-License-Identifier: MIT */
/*
 * api.c - the plain HTTP API on libmicrohttpd: POST /rooms/{room}/messages,
 * GET /rooms/{room}, GET /healthz, GET /metrics. Runs on the MHD thread.
 */
#include "gateway/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"
#include "hub/payload.h"
#include "transports/longpoll.h"
#include "transports/sse.h"
#include "transports/ws.h"

#define TAG "api"

static const cfg *conf;
static hub *the_hub;

/* A POST body being received. */
typedef struct publish_req {
    http_body body;
} publish_req;

void api_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
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
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static enum MHD_Result publish_finish(http_call *call, publish_req *p)
{
    if (p->body.too_big)
        return reply_too_big(call->conn);
    const char *ct = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    payload pl;
    char err[256];
    const char *target = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "target");
    if (target && !is_target_name(target))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "target must be 1 to 63 letters, digits or '_'");
    if (payload_from_body(&pl, p->body.b.data ? p->body.b.data : "", p->body.b.len,
                          payload_is_json_type(ct), err, sizeof(err)))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    uint64_t id = 0;
    publish_opts opt = {.target = target};
    int rc = hub_publish(the_hub, call->room, pl.data, pl.len, &opt, &id);
    payload_free(&pl);
    if (rc)
        return http_reply_error(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot publish: %s",
                                strerror(-rc));
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"id\":%" PRIu64 "}", id);
    return http_reply_json(call->conn, MHD_HTTP_CREATED, body, (size_t)n);
}

enum MHD_Result api_publish(http_call *call)
{
    publish_req *p = *call->state;
    if (call->first) {
        /* Refuse at once what Content-Length says is too big. */
        const char *cl = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t declared = 0;
        if (cl && http_parse_u64(cl, &declared) && declared > conf->limits.max_message_bytes)
            return reply_too_big(call->conn);
        return MHD_YES;
    }
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return MHD_NO;
        *call->state = p;
    }
    if (*call->upload_size)
        return http_body_take(&p->body, call, conf->limits.max_message_bytes) ? MHD_YES : MHD_NO;
    return publish_finish(call, p);
}

void api_publish_completed(void *state)
{
    publish_req *p = state;
    buf_free(&p->body.b);
    free(p);
}

enum MHD_Result api_room_info(http_call *call)
{
    room_info info;
    if (hub_room_info(the_hub, call->room, &info))
        return http_reply_error(call->conn, MHD_HTTP_NOT_FOUND, "no such room: %s", call->room);
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "{\"room\":\"%s\",\"epoch\":\"%s\",\"last_id\":%" PRIu64
                     ",\"subscribers\":{\"websocket\":%u,\"sse\":%u,\"long_polling\":%u}}",
                     call->room, info.epoch, info.last_id, info.subscribers[SUB_WS],
                     info.subscribers[SUB_SSE], info.subscribers[SUB_LONGPOLL]);
    return http_reply_json(call->conn, MHD_HTTP_OK, body, (size_t)n);
}

enum MHD_Result api_healthz(http_call *call)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    return http_reply_json(call->conn, MHD_HTTP_OK, ok, sizeof(ok) - 1);
}

/* Prometheus text format. */
enum MHD_Result api_metrics(http_call *call)
{
    hub_stats st;
    hub_get_stats(the_hub, &st);
    char body[2048];
    int n = snprintf(
        body, sizeof(body),
        "# HELP crier_rooms Rooms with members or history.\n"
        "# TYPE crier_rooms gauge\ncrier_rooms %" PRIu64 "\n"
        "# HELP crier_messages_published_total Messages published.\n"
        "# TYPE crier_messages_published_total counter\n"
        "crier_messages_published_total %" PRIu64 "\n"
        "# HELP crier_messages_delivered_total Messages queued to subscribers.\n"
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
        "# HELP crier_connections Open connections per server library.\n"
        "# TYPE crier_connections gauge\n"
        "crier_connections{library=\"libwebsockets\"} %u\n"
        "crier_connections{library=\"libmicrohttpd\"} %u\n",
        st.rooms, st.published, st.delivered, st.dropped, st.subscribers[SUB_WS],
        st.subscribers[SUB_SSE], st.subscribers[SUB_LONGPOLL], ws_connections(),
        http_connections());
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result ret = MHD_queue_response(call->conn, MHD_HTTP_OK, r);
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
                     "\"messages_out_per_s\":%.1f,\"published\":%" PRIu64
                     ",\"delivered\":%" PRIu64 ",\"dropped\":%" PRIu64 "}",
                     ws_connections(), sse_streams(), lp_held(), st.rooms, in_rate, out_rate,
                     st.published, st.delivered, st.dropped);
    publish_opts opt = {.transient = true};
    uint64_t id;
    hub_publish(the_hub, API_STATS_ROOM, body, (size_t)n, &opt, &id);
}
