/* SPDX-License-Identifier: MIT */
/*
 * http.c - the libmicrohttpd daemon of the one port: routes each request to
 * its handler (api.c, sse.c, longpoll.c), answers what no handler takes
 * (404, 405 with Allow, stray upgrades) and gives every handler one place to
 * free its state. Sockets come from the acceptor (server.c) through
 * http_adopt; MHD never listens itself.
 *
 * Threading: MHD_USE_INTERNAL_POLLING_THREAD, so every callback here runs on
 * MHD's thread. http_adopt (MHD_add_connection) is safe from the acceptor
 * thread because the daemon has its inter-thread channel (ITC).
 */
#include "gateway/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "gateway/api.h"
#include "gateway/log.h"
#include "transports/longpoll.h"
#include "transports/sse.h"

#define TAG "http"

static struct MHD_Daemon *daemon_;
static atomic_uint connections;

/* What a path names. */
typedef enum {
    ROUTE_NONE,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_ROOM,
    ROUTE_EVENTS,
    ROUTE_POLL,
    ROUTE_MESSAGES,
    ROUTE_WS,
} route_kind;

typedef struct route {
    route_kind kind;
    const char *method; /* the one method it serves */
    http_handler handle;
    http_completed completed;
    bool enabled;
} route;

static route routes[] = {
    [ROUTE_NONE] = {ROUTE_NONE, NULL, NULL, NULL, false},
    [ROUTE_HEALTHZ] = {ROUTE_HEALTHZ, "GET", api_healthz, NULL, true},
    [ROUTE_METRICS] = {ROUTE_METRICS, "GET", api_metrics, NULL, true},
    [ROUTE_ROOM] = {ROUTE_ROOM, "GET", api_room_info, NULL, true},
    [ROUTE_EVENTS] = {ROUTE_EVENTS, "GET", sse_handle, sse_completed, true},
    [ROUTE_POLL] = {ROUTE_POLL, "GET", lp_handle, lp_completed, true},
    [ROUTE_MESSAGES] = {ROUTE_MESSAGES, "POST", api_publish, api_publish_completed, true},
    [ROUTE_WS] = {ROUTE_WS, "GET", NULL, NULL, true},
};

/* ------------------------------------------------------------- replies */

enum MHD_Result http_reply_json(struct MHD_Connection *conn, unsigned status, const char *body,
                                size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Writes s as the inside of a JSON string (quotes and control characters
 * escaped). Returns the length written, stopping short of cap. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

static enum MHD_Result reply_error_v(struct MHD_Connection *conn, unsigned status,
                                     const char *extra_header, const char *extra_value,
                                     const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static enum MHD_Result reply_error_v(struct MHD_Connection *conn, unsigned status,
                                     const char *extra_header, const char *extra_value,
                                     const char *fmt, va_list ap)
{
    char text[512], body[1200];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"error\":\"");
    n += json_escape(body + n, sizeof(body) - n - 3, text);
    memcpy(body + n, "\"}", 3);
    n += 2;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (extra_header)
        MHD_add_response_header(r, extra_header, extra_value);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result http_reply_error(struct MHD_Connection *conn, unsigned status, const char *fmt,
                                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result ret = reply_error_v(conn, status, NULL, NULL, fmt, ap);
    va_end(ap);
    return ret;
}

static enum MHD_Result reply_error_with(struct MHD_Connection *conn, unsigned status,
                                        const char *header, const char *value, const char *fmt,
                                        ...) __attribute__((format(printf, 5, 6)));

static enum MHD_Result reply_error_with(struct MHD_Connection *conn, unsigned status,
                                        const char *header, const char *value, const char *fmt,
                                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result ret = reply_error_v(conn, status, header, value, fmt, ap);
    va_end(ap);
    return ret;
}

bool http_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 20)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* ------------------------------------------------------------- routing */

/* Splits "/rooms/{room}[/suffix]" and the fixed paths. The room is returned
 * as a span of url; its validity is checked by the caller. */
static route_kind parse_path(const char *url, const char **room, size_t *room_len)
{
    if (!strcmp(url, "/healthz"))
        return ROUTE_HEALTHZ;
    if (!strcmp(url, "/metrics"))
        return ROUTE_METRICS;
    if (strncmp(url, "/rooms/", 7))
        return ROUTE_NONE;
    *room = url + 7;
    const char *slash = strchr(*room, '/');
    *room_len = slash ? (size_t)(slash - *room) : strlen(*room);
    if (!slash)
        return ROUTE_ROOM;
    static const struct {
        const char *suffix;
        route_kind kind;
    } suffixes[] = {{"/events", ROUTE_EVENTS},
                    {"/poll", ROUTE_POLL},
                    {"/messages", ROUTE_MESSAGES},
                    {"/ws", ROUTE_WS}};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        if (!strcmp(slash, suffixes[i].suffix))
            return suffixes[i].kind;
    return ROUTE_NONE;
}

static bool is_upgrade_request(struct MHD_Connection *conn)
{
    const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    return up && strcasestr(up, "websocket");
}

/* A WebSocket path reaches MHD only when the acceptor did not hand it to
 * libwebsockets: no Upgrade header, or an upgrade that came later on a
 * kept-alive connection (routing is per connection, not per request). */
static enum MHD_Result answer_ws_path(struct MHD_Connection *conn)
{
    if (!is_upgrade_request(conn))
        return reply_error_with(conn, 426, "Upgrade", "websocket",
                                "this endpoint needs a WebSocket upgrade");
    return reply_error_with(conn, MHD_HTTP_BAD_REQUEST, "Connection", "close",
                            "a WebSocket upgrade must be the first request on its connection");
}

/* Per request, kept in MHD's con_cls until the request completes. */
typedef struct http_req {
    const route *route; /* NULL: answer with the error below */
    void *state;
    unsigned error_status;
    char error[160];
    char room[ROOM_NAME_MAX + 1];
} http_req;

static void set_error(http_req *req, unsigned status, const char *text)
{
    req->error_status = status;
    snprintf(req->error, sizeof(req->error), "%s", text);
}

/* Decides on the first call (headers only) what the request gets. */
static void resolve(http_req *req, const char *url, const char *method)
{
    const char *room = NULL;
    size_t room_len = 0;
    route_kind kind = parse_path(url, &room, &room_len);
    const route *rt = &routes[kind];
    if (kind == ROUTE_NONE || !rt->enabled)
        set_error(req, MHD_HTTP_NOT_FOUND, "no such endpoint");
    else if (strcmp(method, rt->method))
        set_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    else if (room && !room_name_is_valid(room, room_len))
        set_error(req, MHD_HTTP_BAD_REQUEST,
                  "invalid room name: use 1 to 128 characters of A-Z a-z 0-9 . _ - :");
    else
        req->route = rt;
    if (room && room_len <= ROOM_NAME_MAX)
        memcpy(req->room, room, room_len);
}

static enum MHD_Result answer_error(struct MHD_Connection *conn, http_req *req,
                                    const char *method, const char *url)
{
    if (req->error_status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        const route *rt = &routes[parse_path(url, &(const char *){NULL}, &(size_t){0})];
        return reply_error_with(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Allow", rt->method,
                                "method %s is not allowed here; use %s", method, rt->method);
    }
    if (req->error_status == MHD_HTTP_NOT_FOUND)
        return http_reply_error(conn, MHD_HTTP_NOT_FOUND, "no such endpoint: %s", url);
    return http_reply_error(conn, req->error_status, "%s", req->error);
}

/* MHD calls this once with the headers, then with each piece of the body,
 * then once more with none. Answers go out on that last call: a response
 * queued earlier makes MHD close the connection instead of keeping it
 * alive. Only a publish looks at the headers early, to refuse an oversized
 * body before reading it. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls;
    (void)version;
    http_req *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        *con_cls = req;
        resolve(req, url, method);
        if (!req->route || req->route->kind != ROUTE_MESSAGES)
            return MHD_YES;
    } else if (!req->route || !req->route->handle) {
        if (*upload_data_size) { /* a body nobody will use */
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (!req->route)
            return answer_error(conn, req, method, url);
    }
    if (req->route->kind == ROUTE_WS)
        return answer_ws_path(conn);
    http_call call = {conn, req->room, upload_data, upload_data_size, &req->state};
    return req->route->handle(&call);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    http_req *req = *con_cls;
    if (!req)
        return;
    if (req->route && req->route->completed && req->state)
        req->route->completed(req->state);
    free(req);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)conn;
    (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        atomic_fetch_sub(&connections, 1);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    LOG_DBG(TAG, "libmicrohttpd: %s", text);
}

/* ---------------------------------------------------------------- set-up */

int http_start(const cfg *c, hub *h)
{
    routes[ROUTE_EVENTS].enabled = c->transports.sse;
    routes[ROUTE_POLL].enabled = c->transports.long_polling;
    routes[ROUTE_WS].enabled = c->transports.websocket;
    api_init(c, h);
    sse_init(c, h);
    lp_init(c, h);
    /* MHD 0.9.75 deadlocks when a socket added with MHD_add_connection meets
     * its connection limit, so the limit sits above anything the process can
     * open and the acceptor enforces the real cap. */
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    unsigned limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000
                         ? 1000000
                         : (unsigned)rl.rlim_cur + 1024;
    unsigned idle_timeout = c->limits.keepalive_s * 2 + 30;
    daemon_ = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
        MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(c->limits.max_header_bytes + 8192), MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
    if (!daemon_) {
        LOG_ERR(TAG, "cannot start libmicrohttpd");
        return -1;
    }
    return 0;
}

int http_adopt(int fd, const struct sockaddr *addr, socklen_t addr_len)
{
    atomic_fetch_add(&connections, 1);
    if (MHD_add_connection(daemon_, fd, addr, addr_len) != MHD_YES) {
        atomic_fetch_sub(&connections, 1);
        LOG_WARN(TAG, "libmicrohttpd refused a connection: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void http_stop(void)
{
    if (daemon_)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}

unsigned http_connections(void)
{
    return atomic_load(&connections);
}
