/* SPDX-License-Identifier: MIT */
/*
 * server.c - the one port. An acceptor thread owns the listening socket and
 * peeks (never reads) at each new connection until its request headers are
 * complete, then hands the untouched socket to whom the router (router.h)
 * names: libwebsockets (a WebSocket upgrade its protocol takes) or
 * libmicrohttpd (everything else: to its stream, long-poll or main daemon,
 * see http.c), so each library parses the request from its first byte. It
 * also runs the timer thread and the start and drain sequence.
 *
 * Threads: main (waits for a signal, then drains), acceptor, timer, the lws
 * service thread (ws.c), the polling threads of MHD's three daemons (http.c),
 * the held-socket watcher (held_watch.c) and, with Redis, the backplane's
 * thread (redis_backplane.c). Acceptor state (the pending list, ws_proxy.c's waiting list) belongs
 * to the acceptor thread alone.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "gateway/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/client_addr.h"
#include "common/clock.h"
#include "common/cors.h"
#include "common/refusals.h"
#include "common/version.h"
#include "common/list.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/rate_limits.h"
#include "common/access.h"
#include "gateway/api.h"
#include "gateway/api_wait.h"
#include "gateway/cluster_api.h"
#include "hub/node_stats.h"
#include "gateway/presence_api.h"
#include "transports/carriers/publish_pace.h"
#include "gateway/guard.h"
#include "gateway/handback.h"
#include "gateway/http.h"
#include "common/linger.h"
#include "gateway/memtrim.h"
#include "gateway/raw_reply.h"
#include "gateway/reload.h"
#include "gateway/request_head.h"
#include "gateway/router.h"
#include "gateway/users_api.h"
#include "gateway/ws_proxy.h"
#include "gateway/ws_owner.h"
#include "hub/backlog.h"
#include "hub/backlog_cluster.h"
#include "hub/hub.h"
#include "hub/redis_backplane.h"
#include "transports/carriers/http_client.h"
#include "transports/carriers/longpoll.h"
#include "transports/carriers/sse.h"
#include "transports/carriers/ws.h"
#include "transports/plain/connect.h"
#include "transports/plain/poll.h"
#include "transports/plain/sse.h"
#include "transports/plain/ws.h"
#include "transports/signalr/signalr.h"

#define TAG "server"
#define FD_RESERVE 64 /* files kept free for logs, pipes, epoll and the like */

/* The acceptor: epoll events taken per wait, and how long a wait lasts at
 * most (the header deadlines are checked after each). */
#define ACCEPT_EVENTS 256
#define ACCEPT_WAIT_MS 100
/* Accepts pause this long when the process runs out of files or memory. */
#define ACCEPT_PAUSE_MS 100
/* At most one "refused N connection(s)" line this often. */
#define REFUSED_LOG_EVERY_MS 60000
#define LISTEN_BACKLOG 4096

/* The timer thread wakes every TIMER_TICK_MS (long-poll, watchdog, linger
 * and publish deadlines); room expiry and stats every EXPIRE_EVERY_MS;
 * SignalR's pings, acks and purges every SIGNALR_TICK_MS. */
#define TIMER_TICK_MS 100
#define EXPIRE_EVERY_MS 1000
#define SIGNALR_TICK_MS 250

/* At shutdown, how long WebSockets and held requests get to finish. */
#define SHUTDOWN_DRAIN_MS 2000

/* A connection whose request headers are still arriving. */
typedef struct pending_conn {
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int64_t deadline;
    char line[160]; /* "METHOD /path" once the head is in, for log lines; "" before */
    bool returned;  /* back from the poll daemon (handback.h): not a new connection */
    list_node link; /* in `pending`: FIFO, which is deadline order */
} pending_conn;

static const cfg *conf;
static int listen_fd = -1, epoll_fd = -1;
static list_node pending = LIST_INIT(pending); /* acceptor thread */
static unsigned pend_count;
static atomic_uint max_connections; /* set by main (start, SIGHUP), read by the acceptor */
static atomic_bool stop_threads;
static char *peek_buf;
static int64_t accept_paused_until;

/* ------------------------------------------------------------- routing */

/* The WebSocket protocols, by endpoint (the routes whose GET goes to
 * WEBSOCKET or SIGNALR in routes.h): may the acceptor hand an upgrade of
 * the route to libwebsockets (acceptor thread), and the session it opens
 * there (lws service thread) for who (the principal the acceptor found,
 * borrowed: ws.c holds it for the connection's life). */
typedef struct ws_protocol {
    bool (*accepts)(const route_result *r, const char *query);
    int (*open)(const route_result *r, const char *query, access_principal *who, ws_session *out);
} ws_protocol;

/* /rooms/{room}/ws: its resume cursor, if any, must parse. */
static bool plain_accepts(const route_result *r, const char *query)
{
    (void)r;
    return plain_ws_query_is_valid(query);
}

/* A route's {room}, NUL-terminated, into room; false when it is too long
 * to be one. */
static bool route_room(const route_result *r, char room[ROOM_NAME_MAX + 1])
{
    if (!r->room || r->room_len > ROOM_NAME_MAX)
        return false;
    memcpy(room, r->room, r->room_len);
    room[r->room_len] = '\0';
    return true;
}

static int plain_open(const route_result *r, const char *query, access_principal *who,
                      ws_session *out)
{
    char room[ROOM_NAME_MAX + 1];
    if (!route_room(r, room))
        return -1;
    return plain_ws_open(room, query, who, out);
}

/* {hub}: SignalR knows whether the connection id is one to take. */
static bool hub_accepts(const route_result *r, const char *query)
{
    size_t len = 0;
    const char *rooms = query_value(query, SR_REJOIN_PARAM, &len); /* bad: MHD answers 400 */
    return !sr_rejoin_error(r->hub, rooms, len, true) &&
           sr_ws_acceptable(r->hub, r->conn_id, r->conn_id_len);
}

static int hub_open(const route_result *r, const char *query, access_principal *who,
                    ws_session *out)
{
    return sr_ws_open(r->hub, r->conn_id, r->conn_id_len, query, who, out);
}

static const ws_protocol ws_protocols[ROUTE_ENDPOINTS] = {
    [EP_WS] = {plain_accepts, plain_open},
    [EP_HUB] = {hub_accepts, hub_open},
};

/* lws service thread: what an upgrade becomes (ws.c's router). */
static int open_websocket(const char *path, const char *query, access_principal *who,
                          ws_session *out)
{
    route_result r;
    router_route(
        &(route_request){.method = M_GET, .path = path, .query = query, .upgrade_websocket = true},
        &r);
    const ws_protocol *p = &ws_protocols[r.endpoint];
    return r.carrier == ROUTE_TO_WEBSOCKET && p->open ? p->open(&r, query, who, out) : -1;
}

/* The libmicrohttpd daemon of each carrier but libwebsockets. */
static const http_daemon daemon_of[] = {
    [ROUTE_TO_MAIN] = HTTP_MAIN,
    [ROUTE_TO_STREAMS] = HTTP_STREAMS,
    [ROUTE_TO_POLLS] = HTTP_POLLS,
    [ROUTE_TO_WEBSOCKET] = HTTP_MAIN, /* a refused upgrade: MHD answers it */
};

/* Who serves a connection: libwebsockets, a libmicrohttpd daemon, or
 * nobody (status: the acceptor answers it). who: the principal of a
 * WebSocket upgrade (a reference, handed to ws.c with the socket).
 * proxied: a plain WebSocket that waits for upstream.connect first
 * (ws_proxy.h), for its room. */
typedef struct destination {
    bool websocket, proxied;
    bool claim; /* a hub WebSocket whose token another node may hold (ws_owner.h) */
    const char *conn_id;
    size_t conn_id_len;
    char room[ROOM_NAME_MAX + 1];
    size_t head_len;
    http_daemon daemon;
    unsigned status;
    const char *error, *extra_header;
    access_principal *who;
} destination;

/* A WebSocket handshake's Origin is one to take (README "Origins and
 * CORS"): any, without cors.allowed_origins; else none (a client that is no
 * browser), one the list allows, or the origin of the host the request was
 * sent to (a page crier serves itself). Two Origin headers are refused. A
 * browser always sends Origin, so a page of another site that opens a
 * WebSocket here (cross-site WebSocket hijacking) is refused. */
static bool ws_origin_ok(const request_head *h)
{
    if (!cors_enabled() || !h->origin_count)
        return true;
    return h->origin_count == 1 &&
           (cors_origin_allowed(h->origin.p, h->origin.len) ||
            cors_same_origin(h->origin.p, h->origin.len, h->host.p, h->host.len));
}

/* Where a request goes by what it asks for (router.h): an upgrade the
 * router sends to libwebsockets goes there if its protocol takes it (else
 * to the main daemon, which answers it); anything else to its daemon. The
 * acceptor answers none of the router's errors: the daemon does. */
static destination route_by_request(const request_head *h)
{
    route_result r;
    route_request rq = {.method = router_method(h->method.p, h->method.len),
                        .path = h->path,
                        .query = h->query,
                        .upgrade_websocket = h->upgrade_websocket,
                        .accept_event_stream = h->accept_event_stream};
    router_route(&rq, &r);
    destination to = {.daemon = daemon_of[r.carrier], .head_len = h->head_len};
    const ws_protocol *p = &ws_protocols[r.endpoint];
    to.websocket = r.carrier == ROUTE_TO_WEBSOCKET && p->accepts && p->accepts(&r, h->query);
    to.proxied = to.websocket && r.endpoint == EP_WS && ws_proxy_enabled();
    to.claim =
        to.websocket && r.endpoint == EP_HUB && sr_ws_needs_claim(r.hub, r.conn_id, r.conn_id_len);
    to.conn_id = r.conn_id; /* in h's query */
    to.conn_id_len = r.conn_id_len;
    if (to.proxied && !route_room(&r, to.room)) {
        to.status = 400;
        to.error = "invalid room name";
    } else if (to.websocket && !ws_origin_ok(h)) {
        to.status = 403;
        to.error = "origin not allowed";
        refused_count(REFUSED_ORIGIN);
    } else if (to.websocket && (to.status = request_head_ws_error(h, &to.error)) == 426) {
        to.extra_header = "Sec-WebSocket-Version: 13";
    }
    return to;
}

/* A span of the head as a NUL-terminated copy (malloc'd); NULL when absent
 * (or on ENOMEM: then it counts as absent). */
static char *span_dup(rh_span s)
{
    return s.p ? strndup(s.p, s.len) : NULL;
}

/* An upgrade the protocol takes, with a sound handshake: who presents what
 * (Authorization, ?access_token=), and may it? A refusal is answered here,
 * before the upgrade (401 with WWW-Authenticate, or 403). */
static void authorize_upgrade(const request_head *h, destination *to)
{
    if (!guard_enabled())
        return;
    route_result r;
    router_route(
        &(route_request){
            .method = M_GET, .path = h->path, .query = h->query, .upgrade_websocket = true},
        &r);
    route_access need = guard_need(r.access, h->path);
    if (need == RIGHT_NONE)
        return;
    char *authz = span_dup(h->authorization);
    guard_refusal no;
    to->who = guard_authenticate(need, authz, h->query, clock_wall_ms(), &no);
    free(authz);
    char room[ROOM_NAME_MAX + 1] = "";
    if (!no.status && r.room && !route_room(&r, room))
        no = (guard_refusal){400, "invalid room name"}; /* fail closed (the router took it) */
    else if (!no.status && !to->proxied) /* proxied: ws_proxy.c checks the proxy's rights */
        no = guard_check(need, to->who, room);
    if (!no.status && r.endpoint == EP_HUB) /* a SignalR connection's later request: its user's */
        no.status = sr_ws_admit(r.hub, r.conn_id, r.conn_id_len, to->who, &no.error);
    if (!no.status)
        return;
    if (no.status == 401 || no.status == 403)
        refused_count(REFUSED_AUTH);
    to->status = no.status;
    to->error = no.error;
    to->extra_header = no.status == 401 ? GUARD_CHALLENGE_LINE : NULL;
}

/* Decides who serves a complete, well-formed head: libwebsockets for an
 * upgrade it takes (if its handshake is sound); else the libmicrohttpd
 * daemon for what it asks, if its headers fit there (a stream that does
 * not fit the stream daemon goes to the main one, and so does a poll with
 * more than its head arrived: a body, or a request sent behind it, which
 * the poll daemon, handing its connection back after one answer, would
 * not serve); else nobody. peeked: the bytes that have arrived. */
static destination route(const request_head *h, size_t peeked)
{
    destination to = route_by_request(h);
    if (to.websocket && !to.status)
        authorize_upgrade(h, &to);
    if (to.websocket)
        return to;
    /* An allowed Origin comes back in the reply's CORS headers, which take
     * room in the stream daemon's small pool too. */
    size_t reply_extra =
        cors_origin_allowed(h->origin.p, h->origin.len) ? h->origin.len + CORS_REPLY_BYTES : 0;
    http_head_size hs = {h->head_len, h->fields, h->cookie_bytes, h->cookie_pairs};
    http_head_size reply = hs;
    reply.len += reply_extra;
    if (!http_head_within_limit(&hs)) {
        to.status = 431;
        to.error = "request headers are larger than limits.max_header_bytes (every field past "
                   "the 16th counts 64 bytes more)";
    } else if (!http_headers_fit(&hs, HTTP_MAIN)) {
        to.status = 431;
        to.error = "the Cookie headers are too large: with their cookies (64 bytes each) they "
                   "take more than limits.max_header_bytes besides the header block";
    } else if (!http_headers_fit(&reply, to.daemon) ||
               (to.daemon == HTTP_POLLS && peeked > h->head_len)) {
        to.daemon = HTTP_MAIN;
    }
    return to;
}

/* ------------------------------------------------------------ acceptor */

static void pend_unlink(pending_conn *p)
{
    list_remove(&p->link);
    pend_count--;
}

/* The connection that has waited longest, or NULL. */
static pending_conn *pend_oldest(void)
{
    list_node *n = list_first(&pending);
    return n ? list_entry(n, pending_conn, link) : NULL;
}

static void pend_drop_as(pending_conn *p, unsigned status, const char *extra_header,
                         const char *error, const access_principal *who);

static void pend_drop(pending_conn *p, unsigned status, const char *extra_header, const char *error)
{
    pend_drop_as(p, status, extra_header, error, NULL);
}

/* Ends a connection the acceptor still holds, with a JSON error answer
 * (status 0: none), logged once (with the user who, when auth is on). */
static void pend_drop_as(pending_conn *p, unsigned status, const char *extra_header,
                         const char *error, const access_principal *who)
{
    if (status) {
        char addr[CLIENT_ADDR_MAX];
        client_addr_format((struct sockaddr *)&p->addr, NULL, NULL, false, addr, sizeof(addr));
        const char *line = p->line[0] ? p->line : "no request line";
        if (status == 408)
            LOG_DBG(TAG, "%u to %s: %s [%s]", status, addr, error, line);
        else if (guard_enabled())
            LOG_INFO(TAG, "%u to %s user %s: %s [%s]", status, addr, access_user_label(who), error,
                     line);
        else
            LOG_INFO(TAG, "%u to %s: %s [%s]", status, addr, error, line);
        raw_reply_error(p->fd, status, extra_header, error);
    }
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    pend_unlink(p);
    free(p);
}

/* Ends a connection the acceptor still holds with an answer, gently: its
 * unread head would make close() reset the socket, and the client could
 * lose the answer, so the socket lingers (linger.h). Logs nothing. */
static void pend_refuse_lingering(pending_conn *p, unsigned status, const char *extra_header,
                                  const char *error)
{
    raw_reply_error(p->fd, status, extra_header, error);
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
    shutdown(p->fd, SHUT_WR);
    linger_add(p->fd, clock_now_ms());
    pend_unlink(p);
    free(p);
}

/* Copies span s into out (cap bytes) when it fits, else its last cap - 1
 * bytes (the last X-Forwarded-For entry is what counts). NULL when absent. */
static const char *span_tail(rh_span s, char *out, size_t cap)
{
    if (!s.p)
        return NULL;
    size_t n = s.len < cap ? s.len : cap - 1;
    memcpy(out, s.p + s.len - n, n);
    out[n] = '\0';
    return out;
}

/* The client address of a complete head: the peer's, or with trust_proxy
 * the one its proxy reports, as http_client_addr reads it. */
static void head_client_addr(const pending_conn *p, const request_head *h, char *out, size_t cap)
{
    char real[CLIENT_ADDR_MAX], xff[CLIENT_ADDR_MAX];
    const char *r = conf->trust_proxy ? span_tail(h->x_real_ip, real, sizeof(real)) : NULL;
    const char *x = conf->trust_proxy ? span_tail(h->x_forwarded_for, xff, sizeof(xff)) : NULL;
    if (r && h->x_real_ip.len >= sizeof(real))
        r = NULL; /* cut: no IP literal */
    client_addr_format((const struct sockaddr *)&p->addr, r, x, conf->trust_proxy, out, cap);
}

/* limits.rate.connect: a new connection from a client address past its
 * rate is answered 429 with Retry-After, before any upgrade or handler.
 * Returns true when it was. */
static bool connect_refused(pending_conn *p, const request_head *h)
{
    if (!rate_limit_on(RATE_CONNECT))
        return false;
    char addr[CLIENT_ADDR_MAX];
    head_client_addr(p, h, addr, sizeof(addr));
    int64_t wait = rate_limit_addr(RATE_CONNECT, addr, clock_now_ms(), "connection answered 429");
    if (!wait)
        return false;
    char retry[32];
    refused_count(REFUSED_RATE);
    snprintf(retry, sizeof(retry), "Retry-After: %u", token_bucket_wait_s(wait));
    pend_refuse_lingering(p, 429, retry, "rate limit: too many connections from this address");
    return true;
}

/* A plain WebSocket upgrade that waits for upstream.connect: ws_proxy.c
 * holds the socket from now on (the token's principal, if any, is not
 * used: the proxy's is), or it is answered here (503). */
static void hand_to_proxy(pending_conn *p, const request_head *h, destination *to)
{
    access_unref(to->who);
    to->who = NULL;
    const char *error = NULL;
    unsigned status = ws_proxy_start(p->fd, &p->addr, h, to->room, &error);
    if (status) {
        pend_drop(p, status, NULL, error);
        return;
    }
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
    pend_unlink(p);
    free(p);
}

/* A hub WebSocket whose token this node does not hold: ws_owner.c holds
 * the socket until the backplane's claim (then libwebsockets, or 404), or
 * it is answered here (503). */
static void hand_to_claim(pending_conn *p, const request_head *h, destination *to)
{
    const char *error = NULL;
    unsigned status = ws_owner_start(p->fd, &p->addr, to->head_len, to->who, to->conn_id,
                                     to->conn_id_len, h->ws_key, &error);
    if (status) {
        pend_drop(p, status, NULL, error);
        access_unref(to->who);
        return;
    }
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
    pend_unlink(p);
    free(p);
}

static void hand_over(pending_conn *p, destination to)
{
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
    pend_unlink(p);
    if (to.websocket)
        ws_adopt(p->fd, to.head_len, to.who); /* ws.c takes the reference */
    else
        http_adopt(p->fd, (struct sockaddr *)&p->addr, p->addr_len, to.daemon);
    free(p);
}

/* "METHOD /path" of h into p->line: the path only (the query can carry
 * access_token), cut to fit. */
static void note_line(pending_conn *p, const request_head *h)
{
    snprintf(p->line, sizeof(p->line), "%.*s %.140s",
             (int)(h->method.len < 16 ? h->method.len : 16), h->method.p, h->path ? h->path : "?");
}

/* Peeks at what has arrived (events: what epoll reported); hands over once
 * the head is complete and sound, refuses it as soon as it is not. A client
 * that closed its side before its head was complete is let go at once. */
static void pend_try(pending_conn *p, uint32_t events)
{
    size_t cap = conf->limits.max_header_bytes;
    ssize_t n = recv(p->fd, peek_buf, cap, MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        pend_drop(p, 0, NULL, NULL);
        return;
    }
    if (n < 0)
        return;
    request_head h;
    rh_result r = request_head_parse(peek_buf, (size_t)n, &h);
    if (r == RH_ERROR) {
        pend_drop(p, h.status, NULL, h.error);
    } else if (r == RH_INCOMPLETE) {
        if ((size_t)n >= cap)
            pend_drop(p, 431, NULL, "request headers are larger than limits.max_header_bytes");
        else if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            pend_drop(p, 0, NULL, NULL); /* half a request, and the client is gone */
        /* else edge-triggered: the next segment brings the next event */
    } else if ((note_line(p, &h), !p->returned && connect_refused(p, &h))) {
        request_head_free(&h);
    } else {
        destination to = route(&h, (size_t)n);
        if (to.status) {
            pend_drop_as(p, to.status, to.extra_header, to.error, to.who);
            access_unref(to.who);
        } else if (to.proxied) {
            hand_to_proxy(p, &h, &to);
        } else if (to.claim) {
            hand_to_claim(p, &h, &to);
        } else {
            hand_over(p, to);
        }
        request_head_free(&h);
    }
}

static unsigned open_connections(void)
{
    return pend_count + ws_proxy_waiting() + ws_owner_waiting() + ws_connections() +
           http_connections();
}

/* Answers 503 to a connection over limits.max_connections. Logs the first
 * refusal, then at most one line a minute with the count since. */
static void refuse_over_capacity(int fd)
{
    static int64_t next_log;
    static unsigned refused;
    raw_reply_error(fd, 503, NULL, "too many open connections");
    close(fd);
    refused++;
    refused_count(REFUSED_LIMIT);
    int64_t now = clock_now_ms();
    if (now >= next_log) {
        LOG_WARN(TAG, "refused %u connection(s): %u open, limits.max_connections is %u", refused,
                 open_connections(), atomic_load(&max_connections));
        refused = 0;
        next_log = now + REFUSED_LOG_EVERY_MS;
    }
}

/* Acceptor: p (fd and address set) waits for its head from now. */
static void pend_add(pending_conn *p)
{
    p->deadline = clock_now_ms() + (int64_t)conf->limits.header_timeout_s * MS_PER_S;
    list_push_back(&pending, &p->link);
    pend_count++;
    /* Edge-triggered: a peek consumes nothing, so level-triggered epoll
     * would report a half-sent request again and again. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = p};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, p->fd, &ev))
        pend_drop(p, 0, NULL, NULL);
}

static void accept_all(void)
{
    for (;;) {
        pending_conn *p = calloc(1, sizeof(*p));
        if (!p)
            return;
        p->addr_len = sizeof(p->addr);
        p->fd = accept4(listen_fd, (struct sockaddr *)&p->addr, &p->addr_len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (p->fd < 0) {
            int err = errno;
            free(p);
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                LOG_WARN(TAG, "accept: %s; pausing accepts for %d ms", strerror(err),
                         ACCEPT_PAUSE_MS);
                accept_paused_until = clock_now_ms() + ACCEPT_PAUSE_MS;
                epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, NULL);
            }
            return;
        }
        if (open_connections() >= atomic_load(&max_connections)) {
            refuse_over_capacity(p->fd);
            free(p);
            continue;
        }
        pend_add(p);
    }
}

/* A kept-alive connection back from the poll daemon (handback.h): its next
 * request's head is read as a new connection's, on the same clock
 * (limits.header_timeout_s from now, the end of the previous request). */
static void adopt_returned(int fd)
{
    pending_conn *p = calloc(1, sizeof(*p));
    if (p) {
        p->fd = fd;
        p->returned = true; /* limits.rate.connect counted it once */
        p->addr_len = sizeof(p->addr);
        if (getpeername(fd, (struct sockaddr *)&p->addr, &p->addr_len) == 0) {
            pend_add(p);
            return;
        }
    }
    free(p);
    close(fd); /* out of memory, or the client is gone */
}

static void resume_accepting(void)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    accept_paused_until = 0;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
}

static void *acceptor_main(void *arg)
{
    (void)arg;
    struct epoll_event evs[ACCEPT_EVENTS];
    while (!atomic_load(&stop_threads)) {
        int n = epoll_wait(epoll_fd, evs, ACCEPT_EVENTS, ACCEPT_WAIT_MS);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == ws_proxy_wake_tag())
                ws_proxy_answers();
            else if (evs[i].data.ptr == ws_owner_wake_tag())
                ws_owner_answers();
            else if (evs[i].data.ptr == handback_tag())
                handback_take(adopt_returned);
            else if (evs[i].data.ptr && ws_owner_bounce_event(evs[i].data.ptr))
                continue;
            else if (evs[i].data.ptr)
                pend_try(evs[i].data.ptr, evs[i].events);
            else
                accept_all();
        }
        int64_t now = clock_now_ms();
        ws_owner_tick(now);
        for (pending_conn *p; (p = pend_oldest()) && p->deadline <= now;) {
            /* A kept-alive connection ends without a word, as libmicrohttpd
             * ends its own: a client may be sending its next request now. */
            pend_drop(p, p->returned ? 0 : 408, NULL,
                      "request headers did not arrive within limits.header_timeout_s");
        }
        if (accept_paused_until && now >= accept_paused_until)
            resume_accepting();
    }
    handback_fini();
    for (pending_conn *p; (p = pend_oldest());)
        pend_drop(p, 0, NULL, NULL);
    ws_proxy_fini();
    ws_owner_fini();
    return NULL;
}

/* --------------------------------------------------------------- timers */

static void *timer_main(void *arg)
{
    hub *h = arg;
    int64_t next_keepalive = clock_now_ms() + (int64_t)conf->limits.keepalive_s * MS_PER_S;
    int64_t next_expire = 0, next_signalr = 0;
    while (!atomic_load(&stop_threads)) {
        publish_pace_sleep(TIMER_TICK_MS); /* parked publishes go as a hold ends */
        int64_t now = clock_now_ms();
        sub_deadlines_sweep(clock_wall_ms()); /* e.g. tokens expiring on live connections */
        lp_tick(now);
        http_tick(now);
        linger_tick(now);
        if (now >= next_keepalive) {
            sse_keepalive();
            next_keepalive = now + (int64_t)conf->limits.keepalive_s * MS_PER_S;
        }
        backlog_cluster_tick(now); /* this node's backlog, told to the other nodes */
        publish_pace_tick(now);    /* publishes waiting for the fanout backlog */
        api_wait_tick(now);        /* API requests that waited too long (504) */
        hub_presence_tick(h, now); /* users gone past the grace, presence events */
        hub_user_ops_tick(h, now); /* server API ops whose nodes did not all answer */
        node_stats_tick(now);      /* cluster view questions likewise */
        /* Long polls answered and streams ended give their memory back too. */
        size_t freed = http_take_freed();
        if (now >= next_expire) {
            freed += hub_expire(h, now);
            api_stats_tick(now);
            log_tick(); /* the "suppressed N lines" warning */
            next_expire = now + EXPIRE_EVERY_MS;
        }
        memtrim_freed(freed, now);
        if (now >= next_signalr) {
            sr_tick(now);
            next_signalr = now + SIGNALR_TICK_MS;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- listener */

static int open_listener(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port_s[8];
    snprintf(port_s, sizeof(port_s), "%d", port);
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc) {
        LOG_ERR(TAG, "cannot resolve listen address %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, LISTEN_BACKLOG)) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        LOG_ERR(TAG, "cannot listen on %s:%d: %s", host, port, strerror(err));
    return fd;
}

static unsigned resolve_max_connections(const cfg *c)
{
    static unsigned warned_for = 0; /* main thread */
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    unsigned fit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1100000
                       ? 1000000
                       : (unsigned)(rl.rlim_cur > FD_RESERVE ? rl.rlim_cur - FD_RESERVE : 1);
    if (c->limits.max_connections == 0)
        return fit;
    if (c->limits.max_connections > fit && warned_for != c->limits.max_connections)
        LOG_WARN(TAG, "limits.max_connections %u is more than the open-file limit allows; using %u",
                 c->limits.max_connections, fit);
    warned_for = c->limits.max_connections;
    return c->limits.max_connections < fit ? c->limits.max_connections : fit;
}

/* Raises the soft open-file limit to the hard one: a gateway holds one
 * file per client. */
static void raise_file_limit(void)
{
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---------------------------------------------------------- run, drain */

static backplane *the_backplane;

/* Gives every endpoint's handlers the configuration and the hub. Before any
 * thread starts: the backplane's thread may call into SignalR (a message
 * from another node) as soon as it runs. */
static void init_protocols(const cfg *c, hub *h)
{
    api_init(c, h);
    presence_api_init(c, h);
    users_api_init(c, h);
    cluster_api_init(c, h);
    plain_sse_init(c, h);
    plain_poll_init(c, h);
    plain_connect_init(c);
    plain_ws_init(c, h);
    sr_init(c, h);
}

/* True when the config names a backend (README "Upstream hub methods"). */
static bool upstream_used(const cfg *c)
{
    if (c->upstream.url[0] || c->upstream.events[0] || c->upstream.connect[0])
        return true;
    for (unsigned i = 0; i < c->nhubs; i++)
        for (unsigned k = 0; k < c->hubs[i].nmethods; k++)
            if (c->hubs[i].methods[k].action == CFG_ACTION_UPSTREAM)
                return true;
    return false;
}

/* The curl thread (carriers/http_client.c), when a backend is named. */
static int start_upstream(const cfg *c)
{
    if (!upstream_used(c))
        return 0;
    hc_options o = {.max_in_flight = c->upstream.max_in_flight,
                    .events_queue = c->upstream.events_queue,
                    .max_answer_bytes = c->upstream.max_answer_bytes};
    return hc_start(&o);
}

/* Starts the configured backplane (none for "memory"). Returns -1 when it
 * cannot start. */
static int start_backplane(const cfg *c, hub *h)
{
    if (c->backplane.type != CFG_BACKPLANE_REDIS)
        return 0;
    redis_options ro = {.host = c->backplane.host,
                        .port = c->backplane.port,
                        .db = c->backplane.db,
                        .password = c->backplane.password,
                        .prefix = c->backplane.key_prefix,
                        .connect_timeout_ms = c->backplane.connect_timeout_ms,
                        .queue_limit = c->backplane.queue_limit,
                        .max_pending_bytes = c->backplane.max_pending_bytes,
                        .history_size = c->history.size,
                        .history_ttl_ms = (int64_t)c->history.ttl_s * MS_PER_S};
    the_backplane = redis_backplane_start(&ro, h);
    if (!the_backplane)
        return -1;
    sr_cluster_init(c, the_backplane);
    return 0;
}

static void drain(hub *h, pthread_t acceptor, pthread_t timer)
{
    LOG_INFO(TAG, "draining: no new connections; closing WebSockets, ending streams");
    atomic_store(&stop_threads, true);
    pthread_join(acceptor, NULL);
    pthread_join(timer, NULL);
    close(listen_fd);
    close(epoll_fd);
    /* SignalR clients get a Close record first; their transports end once it
     * is sent. MHD 0.9.75 aborts in MHD_stop_daemon while a request is
     * suspended: let nothing suspend again and release every held request. */
    sr_shutdown();
    sse_shutdown();
    sse_stop(); /* the flusher: nothing parked stays held back */
    lp_shutdown();
    publish_pace_shutdown(); /* parked publishes: 503 */
    api_wait_shutdown();
    ws_stop(SHUTDOWN_DRAIN_MS);
    /* Calls to backends end now (answered "shutting down"): a negotiate
     * waiting for upstream.connect is resumed before MHD stops. The curl
     * thread calls into SignalR and the hub, so it stops before they go. */
    hc_stop();
    http_finish_requests(SHUTDOWN_DRAIN_MS);
    http_stop();
    linger_close_all();
    redis_backplane_stop(the_backplane); /* nothing publishes now */
    sr_fini();
    redis_backplane_free(the_backplane);
    hub_destroy(h);
}

/* Any thread: a room's auth.rooms rule asks for presence events. */
static bool room_presence_events(void *arg, const char *room)
{
    return access_room_presence_events(arg, room);
}

/* The start line: version, config file, address, transports, backplane
 * (its address only: never a password), the connection cap. */
static void log_start(const cfg *c)
{
    char bp[400];
    if (c->backplane.type == CFG_BACKPLANE_REDIS)
        snprintf(bp, sizeof(bp), "redis %s:%d/%u prefix %s", c->backplane.host, c->backplane.port,
                 c->backplane.db, c->backplane.key_prefix);
    else
        snprintf(bp, sizeof(bp), "memory");
    const char *file = reload_config_path();
    log_field f[] = {
        LOG_STR("version", crier_version()),
        LOG_STR("config", file ? file : "(defaults)"),
        LOG_STR("backplane", bp),
    };
    log_fields(LOG_LEVEL_INFO, TAG, f, sizeof(f) / sizeof(f[0]),
               "crier %s listening on %s:%d (config %s; backplane %s; websocket %s, sse %s, long "
               "polling %s; up to %u connections)",
               crier_version(), c->listen_host, c->listen_port, file ? file : "(defaults)", bp,
               c->transports.websocket ? "on" : "off", c->transports.sse ? "on" : "off",
               c->transports.long_polling ? "on" : "off", atomic_load(&max_connections));
}

unsigned server_set_max_connections(const cfg *c)
{
    unsigned n = resolve_max_connections(c);
    atomic_store(&max_connections, n);
    return n;
}

unsigned server_connections_open(void)
{
    return ws_connections() + http_connections();
}

int server_run(const cfg *c)
{
    conf = c;
    guard_init(c);
    raise_file_limit();
    server_set_max_connections(c);
    peek_buf = malloc(c->limits.max_header_bytes);
    hub_options ho = {.history_size = c->history.size,
                      .history_ttl_ms = (int64_t)c->history.ttl_s * MS_PER_S,
                      .max_rooms = c->limits.max_rooms,
                      .max_rooms_per_sub = c->limits.max_rooms_per_connection,
                      .history_max_bytes = c->history.max_bytes,
                      .presence_events = room_presence_events,
                      .presence_arg = (void *)c};
    backlog_set_stall_ms(c->limits.subscriber_stall_ms);
    /* Publishes still on their way through the backplane land in every
     * queue at once when they come back: a quarter of a queue of them at
     * most, with a queue at its mark (half), leaves room for what is read
     * before a publisher is paced. */
    backlog_set_flight_max(c->limits.send_queue / 4 ? (long)c->limits.send_queue / 4 : 1);
    publish_pace_init();
    hub *h = peek_buf && !rate_limits_init(c) ? hub_create(&ho) : NULL;
    if (h)
        init_protocols(c, h);
    if (!h || start_backplane(c, h) || start_upstream(c)) {
        hc_stop();
        redis_backplane_free(the_backplane);
        the_backplane = NULL;
        hub_destroy(h);
        rate_limits_fini();
        free(peek_buf);
        return 1;
    }
    listen_fd = open_listener(c->listen_host, c->listen_port);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    router_init(c);
    cors_init(c);
    if (listen_fd < 0 || epoll_fd < 0 || ws_proxy_init(c, epoll_fd) || ws_owner_init(c, epoll_fd) ||
        handback_init(epoll_fd) || ws_start(c, open_websocket) || sse_start(c) || http_start(c)) {
        if (listen_fd >= 0)
            close(listen_fd);
        if (epoll_fd >= 0)
            close(epoll_fd);
        ws_proxy_fini();
        ws_owner_fini();
        handback_fini();
        ws_stop(0);
        sse_stop();
        http_stop();
        hc_stop();
        redis_backplane_free(the_backplane);
        hub_destroy(h);
        rate_limits_fini();
        free(peek_buf);
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
    pthread_t acceptor, timer;
    pthread_create(&acceptor, NULL, acceptor_main, NULL);
    pthread_create(&timer, NULL, timer_main, h);
    log_start(c);
    if (!c->cors.nallowed_origins)
        LOG_WARN(TAG, "cors.allowed_origins is not set: a WebSocket is taken from a page of any "
                      "site, and no other site's page may use the HTTP endpoints (README \"Origins "
                      "and CORS\")");

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    int sig = 0;
    while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
        reload_run(); /* gateway/reload.c: the config again, on this thread */
    LOG_INFO(TAG, "%s received", sig == SIGINT ? "SIGINT" : "SIGTERM");
    drain(h, acceptor, timer);
    rate_limits_fini();
    free(peek_buf);
    LOG_INFO(TAG, "stopped");
    return 0;
}
