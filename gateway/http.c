/* SPDX-License-Identifier: MIT */
/*
 * http.c - the libmicrohttpd daemon of the one port: hands each request to
 * the handler of the endpoint the router names (router.h; the handlers are
 * the last columns of routes.h), answers what no handler takes (the
 * router's 400, 404, 405 with Allow and 414; stray upgrades; HEAD on a
 * stream or a poll; OPTIONS, a CORS preflight, before any handler) and
 * gives every handler one place to free its state.
 * Sockets come from the acceptor (server.c) through http_adopt; MHD never
 * listens itself. The handlers' replies and bodies are the carrier's
 * (transports/carriers/http_call.c), which this file gives the two things
 * only it knows at start (http_call_init): which daemon serves one request
 * per connection, and how to abort a request (the watchdog's).
 *
 * There are three daemons with the same callbacks, chosen by the acceptor
 * (http_adopt) from a connection's first request: the main one; one for
 * long polls, so that a publisher's POST never queues behind a thousand
 * poll answers (and polls batch what arrives meanwhile); and one for event
 * streams. The main daemon has a per-connection memory pool sized for
 * limits.max_header_bytes. The stream daemon, with a pool of
 * STREAM_POOL_BYTES, takes event streams whose request headers are small:
 * libmicrohttpd 0.9.75 touches all of a connection's pool once a response
 * is queued, and an idle stream holds its pool for its whole life, so this
 * is most of what an idle SSE client costs. 2432 bytes take a browser's
 * EventSource request (some 15 fields, 600 bytes: 1.6 KB of pool; up to
 * 1792 bytes of headers and field records) and leave the stream's writes
 * at least STREAM_WRITE_BYTES, some 2 KB after a small request. A stream
 * daemon connection serves one request and closes (http_queue says
 * "Connection: close": the one_request hook), so a later request with
 * bigger headers never meets the small pool. The poll daemon has a small
 * pool too, POLL_POOL_BYTES (the same heads; a poll writes no stream): a
 * held poll keeps what it touched of its pool, and libmicrohttpd zeroes
 * all of it (9.5 KB at the default header limit) to keep a connection
 * alive for its next request. So once a poll's answer is out, its
 * kept-alive connection goes back to the acceptor (hand_back, handback.h),
 * which reads the next request's head with all its checks and routes it
 * afresh, as a new connection's; libmicrohttpd closes its side (the
 * descriptor, not the connection). Polls and streams with larger heads, and
 * a poll the client sent more behind (pipelined), go to the main daemon.
 *
 * Threading: MHD_USE_INTERNAL_POLLING_THREAD, so every callback here runs on
 * the thread of the connection's daemon: one thread each for the main and
 * poll daemons, and a pool of "workers" threads (one per core by default)
 * for the stream daemon, so that one room's streams are written by every
 * core (MHD gives each added connection to one of the pool's threads, and
 * it stays there). Everything the handlers share is under a lock;
 * per-connection state is touched by that connection's thread only. http_adopt (MHD_add_connection)
 * is safe from the acceptor thread because each daemon has its inter-thread channel (ITC).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "gateway/http.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/client_addr.h"
#include "common/clock.h"
#include "common/list.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/rate_limits.h"
#include "gateway/api.h"
#include "common/refusals.h"
#include "common/sock_bytes.h"
#include "gateway/api_wait.h"
#include "gateway/cluster_api.h"
#include "gateway/users_api.h"
#include "gateway/guard.h"
#include "gateway/handback.h"
#include "common/linger.h"
#include "gateway/presence_api.h"
#include "gateway/raw_reply.h"
#include "gateway/request_head.h"
#include "gateway/router.h"
#include "gateway/static.h"
#include "transports/carriers/http_call.h"
#include "transports/carriers/http_cors.h"
#include "transports/plain/poll.h"
#include "transports/plain/sse.h"
#include "transports/signalr/signalr.h"

#define TAG "http"
#define HTTP_STREAM_THREADS_MAX 64 /* the config's limit for "workers" */

static struct MHD_Daemon *daemons[HTTP_DAEMONS]; /* set at start, cleared once all stopped */
static size_t pool_bytes[HTTP_DAEMONS];          /* set once at start */
static const http_daemon daemon_ids[HTTP_DAEMONS] = {HTTP_MAIN, HTTP_STREAMS, HTTP_POLLS};
/* The daemon whose thread this is (a stream pool thread's daemon info
 * names itself, not the stream daemon): set by the first callback that
 * runs on an MHD thread, from the cls each daemon's callbacks get. */
static _Thread_local const http_daemon *thread_daemon;

/* libmicrohttpd's use of a connection's pool, measured on 0.9.75: the
 * header block, about 64 bytes per header field for its record of it, and
 * a few hundred bytes to build the reply's headers. A stream needs room
 * for its writes too. Past the pool it answers an HTML 431 or, worse,
 * closes without a word; the acceptor refuses such a request itself. */
#define FIELD_BYTES 64
#define REPLY_BYTES 256
#define FREE_FIELDS 16 /* fields max_header_bytes has room for already */
#define STREAM_POOL_BYTES 2432
#define STREAM_WRITE_BYTES 384
#define POLL_POOL_BYTES 2048 /* the stream daemon's, less the writes: takes the same heads */
/* About what a connection holds on the heap besides its pool (MHD's
 * connection, crier's watch, request and subscriber state), for memtrim. */
#define CONN_HEAP_BYTES 1536
static atomic_uint connections;
static atomic_uint requests_open; /* seen by on_request, not yet completed */
static atomic_size_t freed_bytes; /* by closed connections, since http_take_freed */
/* A socket whose peer is gone (set at start): what a handed-back
 * connection's descriptor names until MHD closes it. */
static int dead_fd = -1;

static size_t limit_pool_bytes; /* set once at start: the limit rule's pool */

static size_t head_block_need(const http_head_size *hs)
{
    return hs->len + (size_t)hs->fields * FIELD_BYTES + REPLY_BYTES;
}

bool http_head_within_limit(const http_head_size *hs)
{
    return head_block_need(hs) <= limit_pool_bytes;
}

bool http_headers_fit(const http_head_size *hs, http_daemon d)
{
    size_t need = head_block_need(hs) + hs->cookie_bytes + (size_t)hs->cookie_pairs * FIELD_BYTES;
    return need + (d == HTTP_STREAMS ? STREAM_WRITE_BYTES : 0) <= pool_bytes[d];
}

/* ------------------------------------------------------------ watchdog */

/* A kept-alive connection must bring its next request's headers within
 * limits.header_timeout_s, as the first request had to at the acceptor:
 * from the end of one request to the start of the next, a connection is
 * on the clock, and the timer shuts the socket of one that runs over (MHD
 * then closes it). MHD's own idle timeout would let a client that trickles
 * a byte at a time hold a connection for ever. */
typedef struct conn_watch {
    int fd;
    int64_t waiting_since; /* 0 while a request is being served */
    int64_t body_due;      /* the request's body must be in by then; 0: it is */
    bool shut;
    bool aborted;          /* answered outside MHD (http_abort, or 408 by the timer):
                              MHD only closes it now */
    access_principal *who; /* a reference to who the request being served is,
                              for log lines (any thread's, so under the lock) */
    char line[160];        /* "METHOD /path" of the request being served, for log
                              lines: written under the lock by its MHD thread */
    list_node link;        /* in `watched` */
} conn_watch;

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static list_node watched = LIST_INIT(watched); /* watch_lock */
static int64_t header_timeout_ms, body_timeout_ms;
/* upstream.connect is set (set once at start): the plain SSE stream and
 * long poll are checked against the room rules with the connect proxy's
 * principal, in their handler (plain/connect.c), not here. */
static bool connect_proxy;
static size_t body_limit; /* limits.max_message_bytes: no route takes a larger body */

static conn_watch *watch_start(struct MHD_Connection *conn)
{
    conn_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    w->fd = ci ? ci->connect_fd : -1;
    w->waiting_since = clock_now_ms();
    pthread_mutex_lock(&watch_lock);
    list_push_front(&watched, &w->link);
    pthread_mutex_unlock(&watch_lock);
    return w;
}

/* MHD calls this before it closes the socket. */
static void watch_stop(conn_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&watch_lock);
    list_remove(&w->link);
    access_principal *who = w->who;
    pthread_mutex_unlock(&watch_lock);
    access_unref(who);
    free(w);
}

static conn_watch *watch_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The connection's socket, or -1. */
static int watch_fd(struct MHD_Connection *conn)
{
    const conn_watch *w = watch_of(conn);
    return w ? w->fd : -1;
}

/* A request's headers are in: its body (if any) is on the clock now. */
static void request_started(struct MHD_Connection *conn, const char *method, const char *url)
{
    conn_watch *w = watch_of(conn);
    if (!w)
        return;
    pthread_mutex_lock(&watch_lock);
    snprintf(w->line, sizeof(w->line), "%.16s %.140s", method, url); /* url: no query */
    w->waiting_since = 0;
    w->body_due = clock_now_ms() + body_timeout_ms;
    pthread_mutex_unlock(&watch_lock);
}

static void request_ended(struct MHD_Connection *conn)
{
    conn_watch *w = watch_of(conn);
    if (!w)
        return;
    pthread_mutex_lock(&watch_lock);
    w->waiting_since = clock_now_ms();
    w->body_due = 0;
    w->line[0] = '\0';
    access_principal *who = w->who;
    w->who = NULL;
    pthread_mutex_unlock(&watch_lock);
    access_unref(who);
}

/* The request's principal (a new reference), for its log lines. */
static void watch_set_user(struct MHD_Connection *conn, access_principal *who)
{
    conn_watch *w = watch_of(conn);
    if (!w)
        return;
    access_ref(who);
    pthread_mutex_lock(&watch_lock);
    access_principal *old = w->who;
    w->who = who;
    pthread_mutex_unlock(&watch_lock);
    access_unref(old);
}

/* http_call_hooks.user_label: MHD thread of conn, which alone sets and
 * drops the principal of the request it serves (so it stays while read). */
static const char *user_label(struct MHD_Connection *conn)
{
    if (!guard_enabled())
        return NULL;
    conn_watch *w = watch_of(conn);
    pthread_mutex_lock(&watch_lock);
    const access_principal *who = w ? w->who : NULL;
    pthread_mutex_unlock(&watch_lock);
    return access_user_label(who);
}

/* http_call_hooks.request_line: MHD thread of conn, which alone writes it. */
static const char *request_line(struct MHD_Connection *conn)
{
    conn_watch *w = watch_of(conn);
    return w && w->line[0] ? w->line : NULL;
}

/* MHD thread, each call after the first: false when the request was
 * already answered outside MHD (then it must only be closed). done: its
 * body is all in, and off the clock. */
static bool body_progress(struct MHD_Connection *conn, bool done)
{
    conn_watch *w = watch_of(conn);
    if (!w)
        return true;
    pthread_mutex_lock(&watch_lock);
    bool live = !w->aborted;
    if (done)
        w->body_due = 0;
    pthread_mutex_unlock(&watch_lock);
    return live;
}

/* Writes the error answer to a connection (w locked, not aborted yet) and
 * marks it aborted; logs it once with the peer's address. */
static void abort_locked(conn_watch *w, unsigned status, const char *error)
{
    w->aborted = true;
    w->body_due = 0;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char addr[CLIENT_ADDR_MAX];
    bool peer = w->fd >= 0 && !getpeername(w->fd, (struct sockaddr *)&ss, &sl);
    client_addr_format(peer ? (struct sockaddr *)&ss : NULL, NULL, NULL, false, addr, sizeof(addr));
    const char *line = w->line[0] ? w->line : "no request line";
    if (guard_enabled())
        LOG_INFO(TAG, "%u to %s user %s: %s [%s]", status, addr, access_user_label(w->who), error,
                 line);
    else
        LOG_INFO(TAG, "%u to %s: %s [%s]", status, addr, error, line);
    if (w->fd >= 0)
        raw_reply_error(w->fd, status, NULL, error);
}

/* http_abort's work (http_call.h), registered at start: the watchdog owns
 * the socket's state. */
static enum MHD_Result abort_request(struct MHD_Connection *conn, unsigned status,
                                     const char *error)
{
    conn_watch *w = watch_of(conn);
    int keep = -1;
    if (w) {
        pthread_mutex_lock(&watch_lock);
        if (!w->aborted && w->fd >= 0) {
            abort_locked(w, status, error);
            shutdown(w->fd, SHUT_WR);
            keep = dup(w->fd); /* MHD closes its fd; this one lingers */
        }
        pthread_mutex_unlock(&watch_lock);
    }
    if (keep >= 0)
        linger_add(keep, clock_now_ms());
    return MHD_NO; /* MHD closes the connection without reading the rest */
}

size_t http_take_freed(void)
{
    return atomic_exchange(&freed_bytes, 0);
}

void http_tick(int64_t now_ms)
{
    pthread_mutex_lock(&watch_lock);
    list_for_each_safe (n, next, &watched) {
        conn_watch *w = list_entry(n, conn_watch, link);
        if (w->body_due && now_ms > w->body_due && !w->aborted && !w->shut && w->fd >= 0) {
            /* A body that trickles or never ends: answer, then shut the
             * socket so that MHD, which may be waiting to read, closes it. */
            abort_locked(w, 408, "the request body did not arrive within limits.body_timeout_s");
            shutdown(w->fd, SHUT_RDWR);
            w->shut = true;
        }
        if (w->waiting_since && !w->shut && now_ms - w->waiting_since > header_timeout_ms &&
            w->fd >= 0) {
            shutdown(w->fd, SHUT_RDWR);
            w->shut = true;
            LOG_DBG(TAG, "closed a connection with no request after %" PRId64 " ms",
                    now_ms - w->waiting_since);
        }
    }
    pthread_mutex_unlock(&watch_lock);
}

/* ------------------------------------------------------------ dispatch */

/* Upgrade lists "websocket" (as a token, as the acceptor reads it). */
static bool is_upgrade_request(struct MHD_Connection *conn)
{
    const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    return up && rh_list_has((rh_span){up, strlen(up)}, "websocket");
}

/* The resume cursor of a plain WebSocket upgrade, if any, parses. */
static bool ws_cursor_is_valid(struct MHD_Connection *conn)
{
    const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *epoch = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "epoch");
    uint64_t v;
    return (!since || parse_u64(since, &v)) && (!epoch || hub_epoch_is_valid(epoch)) &&
           (since || !epoch);
}

/* A WebSocket path reaches MHD only when the acceptor did not hand it to
 * libwebsockets: no Upgrade header, or an upgrade that came later on a
 * kept-alive connection (routing is per connection, not per request). */
static enum MHD_Result answer_ws_path(struct MHD_Connection *conn)
{
    if (!is_upgrade_request(conn))
        return http_reply_error_with(conn, 426, "Upgrade", "websocket",
                                     "this endpoint needs a WebSocket upgrade");
    if (!ws_cursor_is_valid(conn))
        return http_reply_error_with(conn, MHD_HTTP_BAD_REQUEST, "Connection", "close",
                                     "since must be a non-negative integer and epoch 1 to 15 "
                                     "letters or digits");
    return http_reply_error_with(conn, MHD_HTTP_BAD_REQUEST, "Connection", "close",
                                 "a WebSocket upgrade must be the first request on its connection");
}

/* A SignalR WebSocket upgrade that reached MHD: the acceptor found its
 * token unknown or already used (404; 403 for a connect-proxy verdict that
 * does not verify), or it came on a kept-alive
 * connection (400). */
static enum MHD_Result answer_hub_upgrade(struct MHD_Connection *conn, const cfg_hub *hb)
{
    const char *token = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "id");
    const char *rooms = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, SR_REJOIN_PARAM);
    const char *bad = sr_rejoin_error(hb, rooms, rooms ? strlen(rooms) : 0, false);
    if (bad)
        return http_reply_error_with(conn, MHD_HTTP_BAD_REQUEST, "Connection", "close", "%s", bad);
    if (token && !sr_ws_acceptable(hb, token, strlen(token))) {
        const char *error = NULL;
        unsigned status = sr_ws_refusal(hb, token, strlen(token), &error);
        return http_reply_error(conn, status, "%s", error);
    }
    return answer_ws_path(conn);
}

/* --- the handlers routes.h names that are not a module's own --- */

/* /rooms/{room}/ws: only what did not become a WebSocket comes here; a body
 * is read and dropped (on_request cuts it off past the limit). */
static enum MHD_Result ws_path_only(http_call *call)
{
    if (*call->upload_size) {
        *call->upload_size = 0;
        return MHD_YES;
    }
    return answer_ws_path(call->conn);
}

/* {hub}: SignalR's SSE, long polls, sends and DELETE; an upgrade that
 * reached MHD is answered here. */
static enum MHD_Result hub_request(http_call *call)
{
    if (!call->first && !strcmp(call->method, "GET") && is_upgrade_request(call->conn))
        return answer_hub_upgrade(call->conn, call->arg);
    return sr_request(call);
}

/* /stats/events: the dashboard's stream, an event stream of a local room. */
static enum MHD_Result stats_events(http_call *call)
{
    call->room = API_STATS_ROOM;
    return plain_sse_handle(call);
}

/* A file under the web root: call->arg is the path. */
static enum MHD_Result static_get(http_call *call)
{
    return static_handle(call, call->arg);
}

/* --- what a HEAD of a streamed or held GET answers: its content type --- */

typedef const char *(*held_type_fn)(struct MHD_Connection *conn);

static const char *held_sse(struct MHD_Connection *conn)
{
    (void)conn;
    return "text/event-stream";
}

static const char *held_json(struct MHD_Connection *conn)
{
    (void)conn;
    return "application/json";
}

/* A hub path's GET is an event stream when asked for one, else a poll. */
static const char *held_hub(struct MHD_Connection *conn)
{
    return http_wants_event_stream(conn) ? "text/event-stream" : "application/octet-stream";
}

static ssize_t no_body(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)cls;
    (void)pos;
    (void)out;
    (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

/* The block size MHD is given for the empty body of a HEAD on a held
 * route (no byte of it is ever read). */
#define HEAD_BLOCK_BYTES 256

/* HEAD on a held route: the headers at once (200, the content type), no
 * stream opened and nothing held; the query is not looked at. */
static enum MHD_Result answer_head_held(struct MHD_Connection *conn, const char *type)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HEAD_BLOCK_BYTES, no_body, NULL, NULL);
    return http_queue_uncached(conn, MHD_HTTP_OK, r, type);
}

/* --- the endpoints' handlers: the last four columns of routes.h --- */

typedef struct endpoint {
    http_handler handle;
    http_completed completed;
    bool early;        /* the handler sees the headers-only first call too */
    held_type_fn head; /* HEAD answered at once with this content type; NULL: by handle */
} endpoint;

#define ENDPOINT(name, pattern, methods, get, needs, access, handle, completed, early, head)       \
    [EP_##name] = {handle, completed, early, head},
static const endpoint endpoints[ROUTE_ENDPOINTS] = {ROUTE_TABLE(ENDPOINT)};
#undef ENDPOINT

/* Per request, kept in MHD's con_cls until the request completes. */
typedef struct http_req {
    const endpoint *ep; /* NULL: answer with the error below */
    const cfg_hub *hub;
    route_access access; /* the route's "access" column */
    void *state;
    unsigned error_status;
    unsigned retry_after_s;    /* a 429's Retry-After */
    const char *error, *allow; /* constant strings (router.h) */
    const char *preflight;     /* OPTIONS on an endpoint: the methods it takes */
    char room[ROOM_NAME_MAX + 1];
    uint64_t body_bytes; /* of the request body so far */

    access_principal *who; /* who it proved to be (a reference), NULL: anonymous */
    bool challenge;        /* the error is guard.h's 401: with WWW-Authenticate */

    /* for the access log (log.access) */
    route_endpoint endpoint;
    int64_t started_ms;
    uint64_t out_at_start; /* sock_bytes_written then (log.access on) */
    bool event_stream;     /* Accept: text/event-stream (a SignalR SSE GET) */
    bool hand_back;        /* a poll daemon request that keeps its connection alive */
    char method[16];
} http_req;

/* Decides on the first call (headers only) what the request gets. MHD
 * hands over the path percent-decoded, and not the raw query (MHD's
 * arguments are read where needed), which routing here does not need. */
static void resolve(http_req *req, const char *url, const char *method)
{
    route_result r;
    router_route(&(route_request){.method = router_method(method, strlen(method)), .path = url},
                 &r);
    /* A method the pages do not take is 405 only for a file that is there;
     * only GET gets its answer from the handler (a 404 page or the file). */
    if (r.endpoint == EP_STATIC && (!r.status || r.status == MHD_HTTP_METHOD_NOT_ALLOWED) &&
        strcmp(method, "GET") && !static_exists(url)) {
        r.status = MHD_HTTP_NOT_FOUND;
        r.error = "no such endpoint";
    }
    req->hub = r.hub;
    req->endpoint = r.endpoint;
    if (!r.status && !strcmp(method, "OPTIONS")) {
        req->preflight = r.methods; /* answered before any handler or access check */
        return;
    }
    if (!r.status && endpoints[r.endpoint].handle) {
        req->ep = &endpoints[r.endpoint];
        req->access = r.access;
        if (r.room) {
            memcpy(req->room, r.room, r.room_len); /* a valid name: ROOM_NAME_MAX at most */
            req->room[r.room_len] = '\0';
        }
        return;
    }
    req->error_status = r.status ? r.status : MHD_HTTP_NOT_FOUND;
    req->error = r.error ? r.error : "no such endpoint";
    req->allow = r.allow;
}

/* limits.rate.request, on the first call: a request from a client address
 * past its rate gets 429 with Retry-After (answered on the next call, so
 * the connection stays open) and no handler. Every request counts, the
 * kept-alive ones too. */
static void check_request_rate(struct MHD_Connection *conn, http_req *req)
{
    if (!rate_limit_on(RATE_REQUEST))
        return;
    char addr[CLIENT_ADDR_MAX];
    http_client_addr(conn, addr, sizeof(addr));
    int64_t wait = rate_limit_addr(RATE_REQUEST, addr, clock_now_ms(), "request answered 429");
    if (!wait)
        return;
    req->ep = NULL;
    req->error_status = MHD_HTTP_TOO_MANY_REQUESTS;
    req->error = "rate limit: too many requests from this address";
    req->retry_after_s = token_bucket_wait_s(wait);
}

/* The head's size as the limits.max_header_bytes rule counts it (what
 * libmicrohttpd parsed of it: the request line, each "name: value" line). */
static enum MHD_Result add_field_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    http_head_size *hs = cls;
    size_t line = strlen(key) + (value ? strlen(value) : 0) + 2;
    if (kind == MHD_HEADER_KIND) {
        hs->len += line + 2; /* ": " and CRLF */
        hs->fields++;
    } else {
        hs->len += line; /* a query argument: '=' and '&' */
    }
    return MHD_YES;
}

/* The acceptor checks the head of a connection's first request; the next
 * ones on a kept-alive connection reach libmicrohttpd directly, whose pool
 * on the main daemon has room for cookies besides the limit, so their size
 * is checked here: over the limit, 431 as at the acceptor. */
static void check_head_size(struct MHD_Connection *conn, http_req *req, const char *method,
                            const char *url, const char *version)
{
    http_head_size hs = {strlen(method) + strlen(url) + strlen(version) + 6, 0, 0, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, add_field_size, &hs);
    if (http_head_within_limit(&hs))
        return;
    req->ep = NULL;
    req->error_status = MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
    req->error = "request headers are larger than limits.max_header_bytes (every field past "
                 "the 16th counts 64 bytes more)";
}

static enum MHD_Result answer_error(struct MHD_Connection *conn, http_req *req, const char *method,
                                    const char *url)
{
    if (req->error_status == MHD_HTTP_TOO_MANY_REQUESTS)
        return http_reply_refused(conn, req->error_status, req->retry_after_s, req->error);
    if (req->error_status == MHD_HTTP_METHOD_NOT_ALLOWED)
        return http_reply_error_with(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Allow", req->allow,
                                     "method %s is not allowed here; use %s", method, req->allow);
    if (req->error_status == MHD_HTTP_NOT_FOUND)
        return http_reply_not_found(conn, url);
    if (req->challenge) /* guard.h's 401 */
        return http_reply_error_with(conn, req->error_status, GUARD_CHALLENGE_NAME,
                                     GUARD_CHALLENGE_VALUE, "%s", req->error);
    return http_reply_error(conn, req->error_status, "%s", req->error);
}

/* No body may be larger than limits.max_message_bytes: a handler that
 * reads one refuses it itself (http_body_take); any other body (one
 * nobody reads) is cut off here, answered 413, once past the limit. */
static bool over_body_limit(struct MHD_Connection *conn, const http_req *req)
{
    if (req->body_bytes <= body_limit)
        return false;
    abort_request(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                  "request body is larger than limits.max_message_bytes");
    return true;
}

/* --- access: who the request is, and whether its route lets it in --- */

static enum MHD_Result count_authorization(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    (void)kind;
    (void)value;
    if (!strcasecmp(key, "Authorization"))
        ++*(unsigned *)cls;
    return MHD_YES;
}

/* The access_token argument (MHD has decoded it) as a raw query again,
 * percent-encoded, for auth_authenticate; NULL when there is none (or on
 * ENOMEM: then only the header is looked at). */
static char *token_query(struct MHD_Connection *conn)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *t = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "access_token");
    char *q = t ? malloc(sizeof("access_token=") + 3 * strlen(t)) : NULL;
    if (!q)
        return NULL;
    char *o = q + sprintf(q, "access_token=");
    for (const unsigned char *c = (const unsigned char *)t; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            strchr("-._~", *c)) {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    *o = '\0';
    return q;
}

/* First call, a route that serves the request: who it is (one verification
 * per request), kept in req and on the connection's log lines; a refusal
 * (guard.h) replaces the endpoint with the error, answered on the next
 * call like any other error (its body, if any, is dropped). */
static void authorize(struct MHD_Connection *conn, http_req *req, const char *url,
                      const char *method)
{
    route_access need = guard_need(req->access, url);
    if (!guard_enabled() || need == RIGHT_NONE)
        return;
    unsigned authorizations = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_authorization, &authorizations);
    guard_refusal no = {0};
    if (authorizations > 1) {
        no = (guard_refusal){MHD_HTTP_BAD_REQUEST, "more than one Authorization header"};
    } else {
        const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        char *query = token_query(conn);
        req->who = guard_authenticate(need, authz, query, clock_wall_ms(), &no);
        free(query);
        watch_set_user(conn, req->who);
        bool proxied = connect_proxy && strcmp(method, "HEAD") &&
                       (req->ep == &endpoints[EP_EVENTS] || req->ep == &endpoints[EP_POLL]);
        if (!no.status && !proxied) /* proxied: plain/connect.c checks the proxy's rights */
            no = guard_check(need, req->who, req->room);
    }
    if (!no.status)
        return;
    if (no.status == MHD_HTTP_UNAUTHORIZED || no.status == MHD_HTTP_FORBIDDEN)
        refused_count(REFUSED_AUTH);
    req->ep = NULL;
    req->error_status = no.status;
    req->error = no.error;
    req->challenge = no.status == MHD_HTTP_UNAUTHORIZED;
}

/* A handler's argument: the hub of a hub path, else the whole path
 * (however long: the web pages' handler takes it). */
static const void *call_arg(const http_req *req, const char *url)
{
    return req->hub ? (const void *)req->hub : url;
}

/* The client asks to keep the connection for another request: HTTP/1.1
 * without "Connection: close" (what libmicrohttpd keeps alive, for the
 * replies crier makes on the poll daemon). */
static bool keeps_alive(struct MHD_Connection *conn, const char *version)
{
    const char *c = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION);
    return version && !strcmp(version, MHD_HTTP_VERSION_1_1) && !(c && strcasestr(c, "close"));
}

/* MHD calls this once with the headers, then with each piece of the body,
 * then once more with none. Answers go out from the second call on: one
 * queued on the first makes MHD close the connection instead of keeping it
 * alive. Routes that take a body see the first call too, to refuse an
 * oversized one before it is read (then closing is right). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    thread_daemon = cls;
    http_req *req = *con_cls;
    if (req && !body_progress(conn, *upload_data_size == 0))
        return MHD_NO;
    if (req)
        req->body_bytes += *upload_data_size;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        *con_cls = req;
        atomic_fetch_add(&requests_open, 1);
        req->started_ms = clock_now_ms();
        if (log_access_on())
            req->out_at_start = sock_bytes_written(watch_fd(conn));
        snprintf(req->method, sizeof(req->method), "%s", method);
        req->event_stream = http_wants_event_stream(conn);
        req->hand_back = *thread_daemon == HTTP_POLLS && keeps_alive(conn, version);
        resolve(req, url, method);
        check_request_rate(conn, req);
        check_head_size(conn, req, method, url, version);
        request_started(conn, method, url);
        if (req->ep)
            authorize(conn, req, url, method);
        if (!req->ep || !req->ep->early || !strcmp(method, "HEAD"))
            return MHD_YES;
        http_call call = {conn,        method,           call_arg(req, url), req->room, true,
                          upload_data, upload_data_size, &req->state,        req->who};
        return req->ep->handle(&call);
    }
    if (!req->ep) {
        if (*upload_data_size) { /* a body nobody will use */
            *upload_data_size = 0;
            return over_body_limit(conn, req) ? MHD_NO : MHD_YES;
        }
        if (req->preflight)
            return http_cors_preflight(conn, req->preflight);
        return answer_error(conn, req, method, url);
    }
    if (req->ep->head && !strcmp(method, "HEAD"))
        return answer_head_held(conn, req->ep->head(conn));
    http_call call = {conn,        method,           call_arg(req, url), req->room, false,
                      upload_data, upload_data_size, &req->state,        req->who};
    enum MHD_Result ret = req->ep->handle(&call);
    return ret == MHD_YES && over_body_limit(conn, req) ? MHD_NO : ret;
}

/* The access log's transport field: what carried the request. */
static const char *transport_of(const http_req *req)
{
    switch (req->endpoint) {
    case EP_EVENTS:
    case EP_STATS:
        return "sse";
    case EP_POLL:
        return "long_polling";
    case EP_WS:
        return "websocket";
    case EP_NEGOTIATE:
        return "signalr";
    case EP_HUB:
        if (strcmp(req->method, "GET"))
            return "signalr";
        return req->event_stream ? "signalr_sse" : "signalr_long_polling";
    default:
        return "http";
    }
}

/* Why a request ended, in a word (MHD's termination code). */
static const char *ended_why(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return "done";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
    case MHD_REQUEST_TERMINATED_READ_ERROR:
        return "client_gone";
    default:
        return "error";
    }
}

/* log.access: one line per request at its end (an SSE stream's or a long
 * poll's end too: its duration is how long it was held). The path is
 * MHD's, without the query (where access_token would be). */
static void access_line(struct MHD_Connection *conn, const http_req *req,
                        enum MHD_RequestTerminationCode toe)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
    unsigned status = ci ? ci->http_status : 0;
    const char *line = request_line(conn);
    const char *path = line ? strchr(line, ' ') : NULL;
    char addr[CLIENT_ADDR_MAX];
    http_client_addr(conn, addr, sizeof(addr));
    uint64_t out = sock_bytes_written(watch_fd(conn));
    log_field f[] = {
        LOG_STR("method", req->method),
        LOG_STR("path", path ? path + 1 : "?"),
        LOG_NUM("status", status),
        LOG_NUM("bytes_in", req->body_bytes),
        LOG_NUM("bytes_out", out > req->out_at_start ? out - req->out_at_start : 0),
        LOG_NUM("duration_ms", clock_now_ms() - req->started_ms),
        LOG_STR("client", addr),
        LOG_STR("user", guard_enabled() ? access_user_label(req->who) : "-"),
        LOG_STR("transport", transport_of(req)),
        LOG_STR("end", ended_why(toe)),
    };
    log_fields(LOG_LEVEL_INFO, "access", f, sizeof(f) / sizeof(f[0]), "%s %s %u", req->method,
               path ? path + 1 : "?", status);
}

/* MHD thread, once a poll daemon request's answer is out and MHD is about
 * to wait for the next request: the socket goes back to the acceptor (a
 * duplicate of it; handback.h), and conn's descriptor now names dead_fd's
 * socket, where MHD reads the end at once and closes it. Should either
 * step fail, the connection ends (as after Connection: close). */
static void hand_back(struct MHD_Connection *conn)
{
    int fd = watch_fd(conn);
    if (fd < 0)
        return;
    int keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (keep < 0 || dead_fd < 0 || dup2(dead_fd, fd) < 0) {
        if (keep >= 0)
            close(keep);
        shutdown(fd, SHUT_RDWR);
        return;
    }
    handback_put(keep);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    http_req *req = *con_cls;
    if (req && log_access_on())
        access_line(conn, req, toe);
    request_ended(conn);
    if (!req)
        return;
    bool back = req->hand_back && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (req->ep && req->ep->completed && req->state)
        req->ep->completed(req->state); /* the held watch (held_watch.h) lets go of the fd */
    access_unref(req->who);
    free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&requests_open, 1);
    if (back)
        hand_back(conn);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    thread_daemon = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = watch_start(conn);
    } else {
        watch_stop(*socket_context);
        *socket_context = NULL;
        atomic_fetch_sub(&connections, 1);
        atomic_fetch_add(&freed_bytes, pool_bytes[*(const http_daemon *)cls] + CONN_HEAP_BYTES);
    }
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

/* poll(), not epoll: with epoll, libmicrohttpd 0.9.75 sometimes never reads
 * the request of a socket given to it with MHD_add_connection during a
 * burst of new connections (seen at 10000 SSE clients: a few hundred sat
 * unread until the watchdog closed them). poll() costs O(active
 * connections) a loop; suspended streams and polls are not in its set. */
static struct MHD_Daemon *start_daemon(http_daemon d, unsigned limit, unsigned idle_timeout,
                                       size_t pool, unsigned threads)
{
    void *id = (void *)&daemon_ids[d];
    /* With a pool, each thread gets limit / threads: each gets all of it. */
    return MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, id, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
        MHD_OPTION_CONNECTION_LIMIT, limit * threads, MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, id, MHD_OPTION_THREAD_POOL_SIZE,
        threads > 1 ? threads : 0, MHD_OPTION_END);
}

/* "workers": 0 is one per core. */
static unsigned stream_threads(const cfg *c)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = c->workers ? c->workers : cores > 0 ? (unsigned)cores : 1;
    return n > HTTP_STREAM_THREADS_MAX ? HTTP_STREAM_THREADS_MAX : n;
}

/* The stream daemon serves one request per connection (http_call.h).
 * Called in conn's callbacks, so on its daemon's thread. */
static bool one_request(struct MHD_Connection *conn)
{
    (void)conn;
    return thread_daemon && *thread_daemon == HTTP_STREAMS;
}

int http_start(const cfg *c)
{
    http_call_init(&(http_call_hooks){one_request, abort_request, user_label, request_line},
                   c->trust_proxy);
    connect_proxy = c->upstream.connect[0] != '\0';
    static_init(c);
    router_set_available(NEEDS_WEB, static_enabled()); /* the web root is there */
    /* MHD 0.9.75 deadlocks when a socket added with MHD_add_connection meets
     * its connection limit, so the limit sits above anything the process can
     * open and the acceptor enforces the real cap. */
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    unsigned limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000
                         ? 1000000
                         : (unsigned)rl.rlim_cur + 1024;
    unsigned idle_timeout = c->limits.keepalive_s * 2 + 30;
    header_timeout_ms = (int64_t)c->limits.header_timeout_s * MS_PER_S;
    body_timeout_ms = (int64_t)c->limits.body_timeout_s * MS_PER_S;
    body_limit = c->limits.max_message_bytes;
    limit_pool_bytes = (size_t)c->limits.max_header_bytes + FREE_FIELDS * FIELD_BYTES + REPLY_BYTES;
    /* libmicrohttpd parses a copy of a Cookie header in the pool, with a
     * record per cookie: room for as much again as the limit. */
    pool_bytes[HTTP_MAIN] = limit_pool_bytes + (size_t)c->limits.max_header_bytes;
    pool_bytes[HTTP_STREAMS] = STREAM_POOL_BYTES;
    pool_bytes[HTTP_POLLS] = POLL_POOL_BYTES;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0) {
        dead_fd = pair[0];
        close(pair[1]);
    } else {
        LOG_WARN(TAG, "socketpair: %s; an answered long poll closes its connection",
                 strerror(errno));
    }
    bool started = true;
    for (int d = 0; d < HTTP_DAEMONS; d++)
        started &= (daemons[d] = start_daemon((http_daemon)d, limit, idle_timeout, pool_bytes[d],
                                              d == HTTP_STREAMS ? stream_threads(c) : 1)) != NULL;
    if (!started) {
        LOG_ERR(TAG, "cannot start libmicrohttpd");
        http_stop();
        return -1;
    }
    return 0;
}

int http_adopt(int fd, const struct sockaddr *addr, socklen_t addr_len, http_daemon d)
{
    atomic_fetch_add(&connections, 1);
    if (MHD_add_connection(daemons[d], fd, addr, addr_len) != MHD_YES) {
        atomic_fetch_sub(&connections, 1);
        LOG_WARN(TAG, "libmicrohttpd refused a connection: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void http_finish_requests(int timeout_ms)
{
    for (int waited = 0; atomic_load(&requests_open) && waited < timeout_ms; waited += 5) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* The other daemons' threads still read daemons[] (one_request, for
 * http_queue) while one stops: the array is cleared only once all of them
 * have stopped. */
void http_stop(void)
{
    for (int d = 0; d < HTTP_DAEMONS; d++)
        if (daemons[d])
            MHD_stop_daemon(daemons[d]);
    for (int d = 0; d < HTTP_DAEMONS; d++)
        daemons[d] = NULL;
    if (dead_fd >= 0)
        close(dead_fd);
    dead_fd = -1;
}

unsigned http_connections(void)
{
    return atomic_load(&connections);
}
