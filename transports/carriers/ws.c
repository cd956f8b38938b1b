/* SPDX-License-Identifier: MIT */
/*
 * ws.c - WebSocket connections on libwebsockets: adoption, frames, close
 * codes, keep-alive pings. What a connection is for comes from the router
 * (ws_open_fn): a session with a sub to drain and a receive hook.
 *
 * The acceptor hands over sockets whose upgrade request it only peeked at;
 * the service thread adopts them and lws reads the request from byte 0.
 * A connection's sub is drained with one write per SERVER_WRITEABLE (what
 * lws asks): a single frame straight from the message's shared bytes (lws
 * writes the frame header into the MSG_HEADROOM bytes in front of them;
 * server frames are unmasked, so every connection writes the same header
 * bytes there, and only this one service thread ever writes them), or, with
 * a backlog, up to WS_FRAMES_PER_WRITEABLE frames framed here into one
 * buffer and sent in one write (no extension such as permessage-deflate is
 * offered, so frames go out as they are).
 *
 * Keep-alive is ours, not lws's validity timers (which keep every
 * connection in one sorted list: with 10000 connections each reschedule
 * walked it, a quarter of a core at rest). Once a second the service thread
 * walks the connections: a PING to those due one, and a close for those
 * silent (no frame, no PONG) for 2 * limits.keepalive_s + 5 s.
 *
 * Threading (lws is single-threaded; this build has LWS_MAX_SMP 1):
 * - the service thread runs every lws callback and is the only one to call
 *   lws functions, except lws_cancel_service(), which any thread may call;
 * - other threads hand work over through two locked lists, the adoption
 *   queue and the pending list, then call lws_cancel_service(); the service
 *   thread drains both in LWS_CALLBACK_EVENT_WAIT_CANCELLED;
 * - ws_wake runs on a publisher's thread with the sub lock held: it only
 *   puts the connection on the pending list (lock order: hub, sub,
 *   pending_lock).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/ws.h"

#include <errno.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/client_addr.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/list.h"
#include "common/http_status.h"
#include "common/latency.h"
#include "common/log.h"
#include "transports/carriers/ws_guard.h"

#define TAG "ws"
#define WS_FRAMES_PER_WRITEABLE 16
#define WS_BATCH_MAX (64 * 1024) /* bytes of frames sent in one write */
/* A connection silent for two keep-alive periods and this much more is
 * closed. */
#define WS_HANGUP_GRACE_MS 5000
#define WS_RX_FIRST_CAP 4096 /* bytes: the first buffer for a fragmented message */
/* lws's header buffer: limits.max_header_bytes and this much room for
 * what lws keeps beside the headers, within the 16 bits lws counts in. */
#define WS_HEADER_SLACK 1024
#define WS_HEADER_DATA_MAX 65535
#define WS_HEADER_POOL 256      /* header buffers lws may hold at once */
#define WS_STOP_POLL_MS 20      /* ws_stop looks this often whether all closed */
#define WS_QUERY_FRAGMENTS 1000 /* query parameters read at most */

_Static_assert(LWS_PRE <= MSG_HEADROOM, "lws frame headers must fit the message headroom");

typedef struct ws_conn {
    struct lws *wsi;
    ws_session sess;              /* sess.s is drained; sess.ops told of input */
    bool opened;                  /* service thread: sess is set */
    bool on_pending;              /* pending_lock */
    struct ws_conn *pending_next; /* pending_lock */
    list_node link;               /* service thread: in all_conns once established */
    char *rx;                     /* service thread: the message being received */
    size_t rx_len;
    size_t rx_cap;        /* service thread: bytes of rx, counted in rx_held */
    bool rx_discard;      /* service thread: skip the rest of this message */
    int64_t last_rx_ms;   /* service thread: a frame or a PONG came */
    int64_t last_ping_ms; /* service thread */
    bool ping_due;        /* service thread: send a PING when writable */
    bool silent;          /* service thread: close it, it stopped answering */
    bool unmasked;        /* service thread: it sent an unmasked frame (ws_guard) */
    /* service thread, for the connection log lines (log.access) */
    int64_t opened_ms;
    unsigned close_code; /* sent or received; 0: none (the socket just went) */
    bool peer_closed;    /* the client sent the Close first */
    char *path;          /* the upgrade's path (no query), only with log.access on */
} ws_conn;

static const cfg *conf;
static ws_open_fn open_session;
static struct lws_context *context;
static struct lws_vhost *vhost;
static pthread_t service_thread;
static atomic_bool stopping;   /* close every connection with 1001 */
static atomic_bool stop_loop;  /* leave the service loop */
static atomic_uint queued_fds; /* handed over, not adopted yet */
static atomic_int live_wsi;    /* connections lws holds */
/* Bytes of receive buffers held for unfinished messages (a message split
 * over frames, or a frame over reads), every connection's: written by the
 * service thread, read by /metrics. limits.max_fragment_bytes_total. */
static atomic_size_t rx_held;

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static bool context_open; /* pending_lock: lws_cancel_service may be called */
static ws_conn *pending;  /* connections with news for the service thread */
typedef struct adoption {
    int fd;
    size_t head_len;       /* bytes of its upgrade request */
    access_principal *who; /* a reference: the wsi's opaque user data once adopted */
} adoption;
static adoption *adopt_queue; /* pending_lock */
static size_t adopt_len, adopt_cap;

static list_node all_conns = LIST_INIT(all_conns);      /* service thread: newest first */
static lws_sorted_usec_list_t sweep_sul;                /* service thread: the keep-alive sweep */
static unsigned char batch_buf[LWS_PRE + WS_BATCH_MAX]; /* service thread */

/* --------------------------------------------------------- cross-thread */

/* pending_lock held, any thread: wakes the service thread, unless ws_stop
 * has begun destroying the context (a publish or the backplane may still
 * wake a connection then; lws_cancel_service on a destroyed context would
 * write to a closed, maybe reused, pipe). */
static void wake_service_locked(void)
{
    if (context_open)
        lws_cancel_service(context);
}

/* Any thread. Puts c on the pending list; the first entry wakes lws. */
static void mark_pending(ws_conn *c)
{
    bool signal = false;
    pthread_mutex_lock(&pending_lock);
    if (!c->on_pending) {
        signal = pending == NULL;
        c->on_pending = true;
        c->pending_next = pending;
        pending = c;
    }
    if (signal)
        wake_service_locked();
    pthread_mutex_unlock(&pending_lock);
}

/* The hub's wake for a drained sub (sub lock held, any thread). */
static void ws_wake(sub *s)
{
    mark_pending(s->owner);
}

void ws_adopt(int fd, size_t head_len, access_principal *who)
{
    atomic_fetch_add(&queued_fds, 1);
    pthread_mutex_lock(&pending_lock);
    if (adopt_len == adopt_cap) {
        size_t cap = adopt_cap ? adopt_cap * 2 : 64;
        adoption *q = realloc(adopt_queue, cap * sizeof(*q));
        if (!q) {
            pthread_mutex_unlock(&pending_lock);
            close(fd);
            access_unref(who);
            atomic_fetch_sub(&queued_fds, 1);
            return;
        }
        adopt_queue = q;
        adopt_cap = cap;
    }
    adopt_queue[adopt_len++] = (adoption){fd, head_len, who};
    wake_service_locked();
    pthread_mutex_unlock(&pending_lock);
}

size_t ws_fragment_bytes(void)
{
    return atomic_load(&rx_held);
}

unsigned ws_connections(void)
{
    int live = atomic_load(&live_wsi);
    return atomic_load(&queued_fds) + (unsigned)(live > 0 ? live : 0);
}

/* ------------------------------------------------------- service thread */

static void adopt_queued(void)
{
    pthread_mutex_lock(&pending_lock);
    adoption *fds = adopt_queue;
    size_t n = adopt_len;
    adopt_queue = NULL;
    adopt_len = adopt_cap = 0;
    pthread_mutex_unlock(&pending_lock);
    for (size_t i = 0; i < n; i++) {
        if (atomic_load(&stopping)) {
            close(fds[i].fd);
            access_unref(fds[i].who);
            atomic_fetch_sub(&queued_fds, 1);
            continue;
        }
        ws_guard_watch(fds[i].fd, fds[i].head_len);
        struct lws *wsi = lws_adopt_socket_vhost(vhost, fds[i].fd);
        if (wsi) {
            /* Set before lws reads a byte (this thread runs its reads):
             * the principal stays with the wsi until LWS_CALLBACK_WSI_DESTROY. */
            lws_set_opaque_user_data(wsi, fds[i].who);
        } else {
            LOG_WARN(TAG, "libwebsockets could not adopt a connection"); /* it closed fd */
            access_unref(fds[i].who);
        }
        atomic_fetch_sub(&queued_fds, 1);
    }
    free(fds);
}

static void request_writable_for_pending(void)
{
    pthread_mutex_lock(&pending_lock);
    for (ws_conn *c = pending; c; c = c->pending_next) {
        c->on_pending = false;
        lws_callback_on_writable(c->wsi);
    }
    pending = NULL;
    pthread_mutex_unlock(&pending_lock);
}

static void request_writable_for_all(void)
{
    list_for_each_safe (n, next, &all_conns)
        lws_callback_on_writable(list_entry(n, ws_conn, link)->wsi);
}

static int close_with(struct lws *wsi, enum lws_close_status code, const char *reason)
{
    ws_conn *c = lws_wsi_user(wsi);
    if (c && !c->close_code)
        c->close_code = (unsigned)code;
    lws_close_reason(wsi, code, (unsigned char *)reason, strlen(reason));
    return -1;
}

/* The request's query: its URI argument fragments joined with '&'
 * (malloc'd, sized by what lws holds, which max_header_bytes bounds). */
static char *request_query(struct lws *wsi)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    char *query = malloc((size_t)(total > 0 ? total : 0) + 2);
    if (!query)
        return NULL;
    size_t qlen = 0;
    query[0] = '\0';
    for (int i = 0; i < WS_QUERY_FRAGMENTS; i++) {
        int n = lws_hdr_copy_fragment(wsi, query + qlen, total + 2 - (int)qlen,
                                      WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n <= 0)
            break;
        qlen += (size_t)n;
        if (qlen + 2 >= (size_t)total + 2)
            break;
        query[qlen++] = '&';
        query[qlen] = '\0';
    }
    if (qlen && query[qlen - 1] == '&')
        query[--qlen] = '\0';
    return query;
}

/* The client's address for the connection log lines (as the HTTP ones
 * name it: the proxy's report with trust_proxy). */
static void note_client(struct lws *wsi, char out[CLIENT_ADDR_MAX])
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = lws_get_socket_fd(wsi);
    bool peer = fd >= 0 && !getpeername(fd, (struct sockaddr *)&ss, &sl);
    char real[CLIENT_ADDR_MAX] = "", xff[256] = "";
    if (conf->trust_proxy) {
        if (lws_hdr_copy(wsi, real, sizeof(real), WSI_TOKEN_HTTP_X_REAL_IP) <= 0)
            real[0] = '\0';
        if (lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) <= 0)
            xff[0] = '\0';
    }
    client_addr_format(peer ? (struct sockaddr *)&ss : NULL, real[0] ? real : NULL,
                       xff[0] ? xff : NULL, conf->trust_proxy, out, CLIENT_ADDR_MAX);
}

/* FILTER_PROTOCOL_CONNECTION: asks the router what this upgrade is. */
static int open_connection(ws_conn *c, struct lws *wsi)
{
    int plen = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI);
    /* room for the client's address after the path, for the log lines */
    char *path = plen > 0 ? malloc((size_t)plen + 1 + CLIENT_ADDR_MAX) : NULL;
    char *query = path ? request_query(wsi) : NULL;
    int rc = !query || lws_hdr_copy(wsi, path, plen + 1, WSI_TOKEN_GET_URI) <= 0 ||
             open_session(path, query, lws_get_opaque_user_data(wsi), &c->sess);
    free(query);
    if (rc) {
        free(path);
        return 1;
    }
    if (log_access_on()) {
        c->path = path; /* freed on CLOSED */
        note_client(wsi, path + strlen(path) + 1);
    } else {
        free(path);
    }
    c->wsi = wsi;
    c->opened = true;
    list_init(&c->link); /* linked on LWS_CALLBACK_ESTABLISHED */
    return 0;
}

/* ADD_HEADERS: the 101 names the member's connection id (sub.h), which the
 * server API's /connections/{id} takes (README "Server API"). */
static int add_headers(ws_conn *c, struct lws *wsi, void *in)
{
    struct lws_process_html_args *args = in;
    const sub *s = c->sess.s;
    if (!s || !s->conn_id[0])
        return 0;
    unsigned char *p = (unsigned char *)args->p;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)SUB_CONN_ID_HEADER ":",
                                    (const unsigned char *)s->conn_id, (int)strlen(s->conn_id), &p,
                                    p + args->max_len))
        return 0;        /* no room: the upgrade goes on without it */
    args->p = (char *)p; /* lws reads p back (and nothing else) */
    return 0;
}

/* ws_guard: c's socket sent an unmasked frame; on_writable closes it. */
static void on_unmasked(void *owner)
{
    ws_conn *c = owner;
    c->unmasked = true;
    lws_callback_on_writable(c->wsi);
}

/* log.access: a WebSocket's open and close lines (the path names the
 * protocol: /rooms/... plain, a hub's path SignalR). */
static void conn_log(ws_conn *c, const char *event)
{
    if (!c->path || !log_access_on())
        return;
    const char *by = atomic_load(&stopping) ? "shutdown" : c->peer_closed ? "client" : "server";
    log_field f[] = {
        LOG_STR("event", event),
        LOG_STR("path", c->path),
        LOG_STR("transport", "websocket"),
        LOG_STR("client", c->path + strlen(c->path) + 1),
        LOG_NUM("close_code", c->close_code),
        LOG_STR("closed_by", by),
        LOG_NUM("duration_ms", clock_now_ms() - c->opened_ms),
    };
    size_t n = strcmp(event, "open") ? sizeof(f) / sizeof(f[0]) : 4;
    log_fields(LOG_LEVEL_INFO, "access", f, n, "websocket %s %s", event, c->path);
}

/* ESTABLISHED: from now on the hub's wakes reach this connection. */
static void on_established(ws_conn *c)
{
    if (ws_guard_bind(lws_get_socket_fd(c->wsi), c))
        on_unmasked(c);
    sub *s = c->sess.s;
    pthread_mutex_lock(&s->lock);
    sub_attach(s, ws_wake, c);
    bool queued = !sendq_is_empty(&s->q) || s->ending || s->dropped;
    pthread_mutex_unlock(&s->lock);
    list_push_front(&all_conns, &c->link);
    c->opened_ms = c->last_rx_ms = c->last_ping_ms = clock_now_ms();
    http_count_status(101);
    conn_log(c, "open");
    if (queued || c->sess.refuse_code)
        lws_callback_on_writable(c->wsi);
}

/* Once a second: PINGs to the connections due one, and a close for those
 * that stopped answering. O(connections), no lws timer per connection. */
static void keepalive_sweep(lws_sorted_usec_list_t *sul)
{
    int64_t now = clock_now_ms();
    int64_t every = (int64_t)conf->limits.keepalive_s * MS_PER_S;
    int64_t hangup = 2 * every + WS_HANGUP_GRACE_MS;
    list_for_each_safe (n, next, &all_conns) {
        ws_conn *c = list_entry(n, ws_conn, link);
        if (now - c->last_rx_ms >= hangup) {
            c->silent = true;
            lws_callback_on_writable(c->wsi);
        } else if (now - c->last_ping_ms >= every && now - c->last_rx_ms >= every) {
            c->ping_due = true;
            lws_callback_on_writable(c->wsi);
        }
    }
    lws_sul_schedule(context, 0, sul, keepalive_sweep, LWS_US_PER_SEC);
}

/* Service thread: frees c's receive buffer and its share of rx_held. */
static void rx_release(ws_conn *c)
{
    if (c->rx_cap)
        atomic_fetch_sub(&rx_held, c->rx_cap);
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}

/* Service thread: room for need bytes (at most max_message_bytes + 1) in
 * c->rx, grown by doubling, all connections' buffers within
 * limits.max_fragment_bytes_total. Returns 0, -ENOSPC past that, -ENOMEM. */
static int rx_reserve(ws_conn *c, size_t need)
{
    if (need <= c->rx_cap)
        return 0;
    size_t most = conf->limits.max_message_bytes + 1;
    size_t cap = c->rx_cap ? c->rx_cap : WS_RX_FIRST_CAP;
    while (cap < need)
        cap *= 2;
    if (cap > most)
        cap = most;
    size_t grow = cap - c->rx_cap;
    if (atomic_fetch_add(&rx_held, grow) + grow > conf->limits.max_fragment_bytes_total) {
        atomic_fetch_sub(&rx_held, grow);
        return -ENOSPC;
    }
    char *p = realloc(c->rx, cap);
    if (!p) {
        atomic_fetch_sub(&rx_held, grow);
        return -ENOMEM;
    }
    c->rx = p;
    c->rx_cap = cap;
    return 0;
}

static void on_closed(ws_conn *c)
{
    rx_release(c);
    if (c->path && c->opened_ms)
        conn_log(c, "close");
    free(c->path);
    c->path = NULL;
    if (!c->opened)
        return;
    c->opened = false;
    sub *s = c->sess.s;
    pthread_mutex_lock(&s->lock);
    if (s->owner == c)
        sub_attach(s, NULL, NULL);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_lock(&pending_lock);
    for (ws_conn **pp = &pending; *pp; pp = &(*pp)->pending_next) {
        if (*pp == c) {
            *pp = c->pending_next;
            break;
        }
    }
    c->on_pending = false;
    pthread_mutex_unlock(&pending_lock);
    list_remove(&c->link);
    c->sess.ops->closed(c->sess.session);
}

/* Takes the next queued message (a new ref, or NULL) off s's queue. A
 * connection whose sub another connection has taken over (a resumed
 * SignalR connection) takes nothing and reads as ending. *why: the reason
 * the server ends s for, if any. */
static msg *take_next(ws_conn *c, sub *s, bool *dropped, bool *ending, bool *more,
                      sub_end_reason *why)
{
    pthread_mutex_lock(&s->lock);
    if (s->owner != c) {
        pthread_mutex_unlock(&s->lock);
        *dropped = *more = false;
        *ending = true;
        return NULL;
    }
    *dropped = s->dropped;
    *ending = s->ending;
    *why = s->end_reason;
    msg *m = *dropped ? NULL : sendq_peek(&s->q);
    if (m) {
        msg_ref(m);
        sendq_pop(&s->q);
        if (m->id) /* a room message (not a protocol record): written now */
            latency_observe(clock_now_ms() - m->created_ms);
    }
    *more = !sendq_is_empty(&s->q);
    pthread_mutex_unlock(&s->lock);
    return m;
}

/* The header of an unmasked server text frame of len bytes; returns its size. */
static size_t frame_header(unsigned char *h, size_t len)
{
    h[0] = 0x81; /* FIN, text */
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Frames taken for one write. */
typedef struct batch {
    msg *m[WS_FRAMES_PER_WRITEABLE];
    int n;
    size_t used; /* bytes framed into batch_buf */
} batch;

/* Writes what the batch holds (one message: from its own bytes; more: the
 * frames built in batch_buf), tells the session, and empties it. Returns
 * false when the write failed: then the messages go back to the front of
 * the queue, in order, for whoever drains it next (a resumed SignalR
 * connection resends them on its new socket; otherwise the queue goes
 * with the connection). */
static bool write_batch(ws_conn *c, struct lws *wsi, batch *bt)
{
    sub *s = c->sess.s;
    bool ok = true;
    if (bt->n == 1) {
        msg_bytes b = msg_get(bt->m[0], s->fmt, s->target);
        ok = lws_write(wsi, (unsigned char *)b.base, b.len, LWS_WRITE_TEXT) >= (int)b.len;
    } else if (bt->n > 1) {
        ok = lws_write(wsi, batch_buf + LWS_PRE, bt->used, LWS_WRITE_RAW) >= (int)bt->used;
    }
    if (!ok) {
        pthread_mutex_lock(&s->lock);
        for (int i = bt->n; i-- > 0;)
            if (s->owner == c && !s->dropped)
                sendq_push_front(&s->q, bt->m[i]);
        pthread_mutex_unlock(&s->lock);
    }
    for (int i = 0; i < bt->n; i++) {
        if (ok && c->sess.ops->sent)
            c->sess.ops->sent(c->sess.session, bt->m[i]);
        msg_unref(bt->m[i]);
    }
    bt->n = 0;
    bt->used = 0;
    return ok;
}

/* Adds m to the batch, framing it into batch_buf. False when it does not
 * fit (the batch is full): m stays the caller's. */
static bool batch_add(batch *bt, sub *s, msg *m)
{
    msg_bytes b = msg_get(m, s->fmt, s->target);
    if (bt->n == WS_FRAMES_PER_WRITEABLE || (bt->n && bt->used + 10 + b.len > WS_BATCH_MAX))
        return false;
    if (bt->n == 1) { /* a second frame: frame the first one too */
        msg_bytes first = msg_get(bt->m[0], s->fmt, s->target);
        if (first.len + 10 + b.len + 10 > WS_BATCH_MAX)
            return false;
        bt->used = frame_header(batch_buf + LWS_PRE, first.len);
        memcpy(batch_buf + LWS_PRE + bt->used, first.base, first.len);
        bt->used += first.len;
    }
    if (bt->n >= 1) {
        bt->used += frame_header(batch_buf + LWS_PRE + bt->used, b.len);
        memcpy(batch_buf + LWS_PRE + bt->used, b.base, b.len);
        bt->used += b.len;
    }
    bt->m[bt->n++] = m;
    return true;
}

/* All is sent and the sub ends: with the code the session gives for the
 * server's reason (e.g. 4001 for an expired token), else 1000. */
static int close_ended(ws_conn *c, struct lws *wsi, sub_end_reason why)
{
    const char *text = "";
    int code =
        why && c->sess.ops->end_code ? c->sess.ops->end_code(c->sess.session, why, &text) : 0;
    if (!code)
        return close_with(wsi, LWS_CLOSE_STATUS_NORMAL, "");
    return close_with(wsi, (enum lws_close_status)code, text);
}

/* One write per callback: a PING when one is due, else the queued frames
 * (a batch of them when there is a backlog); then asks for another
 * callback while more is queued. */
static int on_writable(ws_conn *c, struct lws *wsi)
{
    sub *s = c->sess.s;
    if (c->unmasked) {
        ws_guard_closing(lws_get_socket_fd(wsi)); /* no close frame will come back */
        return close_with(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, "client frames must be masked");
    }
    if (c->sess.refuse_code)
        return close_with(wsi, (enum lws_close_status)c->sess.refuse_code, c->sess.refuse_why);
    if (c->silent)
        return close_with(wsi, LWS_CLOSE_STATUS_GOINGAWAY, "no answer to pings");
    if (c->ping_due) {
        c->ping_due = false;
        c->last_ping_ms = clock_now_ms();
        /* lws passes on a PONG with a payload only: the PING carries one byte */
        batch_buf[LWS_PRE] = 'k';
        if (lws_write(wsi, batch_buf + LWS_PRE, 1, LWS_WRITE_PING) < 0)
            return -1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    batch bt = {.n = 0};
    bool dropped = false, ending = false, more = false;
    sub_end_reason why = SUB_END_NONE;
    msg *m = NULL;
    while ((m = take_next(c, s, &dropped, &ending, &more, &why)) != NULL) {
        if (!batch_add(&bt, s, m)) {
            /* full: this one goes first next time */
            pthread_mutex_lock(&s->lock);
            if (s->owner == c && !s->dropped && !sendq_push_front(&s->q, m))
                more = true;
            pthread_mutex_unlock(&s->lock);
            msg_unref(m);
            break;
        }
        if (!more)
            break;
    }
    if (dropped) {
        for (int i = 0; i < bt.n; i++)
            msg_unref(bt.m[i]);
        return close_with(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue full");
    }
    if (bt.n) {
        if (!write_batch(c, wsi, &bt))
            return -1;
        if (more || ending || atomic_load(&stopping))
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (ending)
        return close_ended(c, wsi, why);
    return atomic_load(&stopping)
               ? close_with(wsi, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down")
               : 0;
}

static bool message_complete(struct lws *wsi)
{
    return lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
}

/* A message over the size limit: the session may answer it its own way. */
static int on_oversize(ws_conn *c, struct lws *wsi)
{
    const char *why = "message is larger than limits.max_message_bytes";
    int code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
    if (c->sess.ops->oversize)
        code = c->sess.ops->oversize(c->sess.session, &why);
    rx_release(c);
    c->rx_discard = !message_complete(wsi);
    return code ? close_with(wsi, (enum lws_close_status)code, why) : 0;
}

static int on_receive(ws_conn *c, struct lws *wsi, const void *in, size_t len)
{
    c->last_rx_ms = clock_now_ms();
    if (c->rx_discard) {
        c->rx_discard = !message_complete(wsi);
        return 0;
    }
    if (c->rx_len + len > conf->limits.max_message_bytes)
        return on_oversize(c, wsi);
    const char *why = "";
    if (!c->rx_len && message_complete(wsi)) { /* whole in one piece: nothing to hold */
        rx_release(c);                         /* what empty fragments before it held */
        int code = c->sess.ops->receive(c->sess.session, in, len, lws_frame_is_binary(wsi), &why);
        return code ? close_with(wsi, (enum lws_close_status)code, why) : 0;
    }
    int rc = rx_reserve(c, c->rx_len + len + 1);
    if (rc == -ENOSPC) {
        char what[128];
        snprintf(what, sizeof(what),
                 "a WebSocket closed (1013): limits.max_fragment_bytes_total (%zu) reached",
                 conf->limits.max_fragment_bytes_total);
        limit_refused(LIMIT_FRAGMENT_BYTES, what);
        rx_release(c);
        return close_with(wsi, (enum lws_close_status)WS_CLOSE_TRY_AGAIN_LATER,
                          "server busy: too many unfinished fragmented messages, try again later");
    }
    if (rc)
        return close_with(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!message_complete(wsi))
        return 0;
    c->rx[c->rx_len] = '\0';
    int code =
        c->sess.ops->receive(c->sess.session, c->rx, c->rx_len, lws_frame_is_binary(wsi), &why);
    rx_release(c); /* idle connections hold no receive buffer */
    return code ? close_with(wsi, (enum lws_close_status)code, why) : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    ws_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        adopt_queued();
        request_writable_for_pending();
        if (atomic_load(&stopping))
            request_writable_for_all();
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return open_connection(c, wsi);
    case LWS_CALLBACK_ADD_HEADERS: /* the 101 answer to an upgrade */
        return c && c->opened ? add_headers(c, wsi, in) : 0;
    case LWS_CALLBACK_ESTABLISHED:
        on_established(c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        ws_guard_forget(lws_get_socket_fd(wsi));
        on_closed(c);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writable(c, wsi);
    case LWS_CALLBACK_RECEIVE:
        return on_receive(c, wsi, in, len);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && len >= 2 && !c->close_code)
            c->close_code =
                ((unsigned)((const unsigned char *)in)[0] << 8) | ((const unsigned char *)in)[1];
        if (c)
            c->peer_closed = true;
        break;
    case LWS_CALLBACK_RECEIVE_PONG:
        c->last_rx_ms = clock_now_ms();
        return 0;
    case LWS_CALLBACK_PROTOCOL_INIT:
        lws_sul_schedule(lws_get_context(wsi), 0, &sweep_sul, keepalive_sweep, LWS_US_PER_SEC);
        break;
    case LWS_CALLBACK_WSI_CREATE: /* both come in pairs for every adopted socket */
        atomic_fetch_add(&live_wsi, 1);
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c) { /* an upgrade that never got to CLOSED */
            free(c->path);
            c->path = NULL;
        }
        atomic_fetch_sub(&live_wsi, 1);
        access_unref(lws_get_opaque_user_data(wsi)); /* the principal ws_adopt was given */
        lws_set_opaque_user_data(wsi, NULL);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static struct lws_protocols protocols[] = {
    {"crier", callback, sizeof(ws_conn), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *service_main(void *arg)
{
    (void)arg;
    ws_guard_enter_thread(on_unmasked);
    while (!atomic_load(&stop_loop))
        if (lws_service(context, 0) < 0)
            break;
    return NULL;
}

static void lws_log_to_ours(int level, const char *line)
{
    char text[512];
    size_t n = strlen(line);
    if (n >= sizeof(text))
        n = sizeof(text) - 1;
    memcpy(text, line, n);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    text[n] = '\0';
    if (level & LLL_ERR)
        LOG_WARN(TAG, "libwebsockets: %s", text);
    else
        LOG_DBG(TAG, "libwebsockets: %s", text);
}

int ws_start(const cfg *c, ws_open_fn open)
{
    static lws_retry_bo_t keepalive;
    conf = c;
    open_session = open;
    /* No lws validity timers (see the top of the file): keepalive_sweep. */
    keepalive.secs_since_valid_ping = 0;
    keepalive.secs_since_valid_hangup = 0;
    lws_set_log_level(LLL_ERR | (log_enabled(LOG_LEVEL_DEBUG) ? LLL_WARN : 0), lws_log_to_ours);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* the acceptor listens */
    info.protocols = protocols;
    info.vhost_name = "crier";
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.retry_and_idle_policy = &keepalive;
    info.timeout_secs = c->limits.header_timeout_s;
    size_t header_data = c->limits.max_header_bytes + WS_HEADER_SLACK;
    info.max_http_header_data =
        (unsigned short)(header_data > WS_HEADER_DATA_MAX ? WS_HEADER_DATA_MAX : header_data);
    info.max_http_header_pool = WS_HEADER_POOL;
    context = lws_create_context(&info);
    if (!context) {
        LOG_ERR(TAG, "cannot create the libwebsockets context");
        return -1;
    }
    vhost = lws_get_vhost_by_name(context, "crier");
    if (!vhost || pthread_create(&service_thread, NULL, service_main, NULL)) {
        LOG_ERR(TAG, "cannot start the libwebsockets service thread");
        lws_context_destroy(context);
        context = NULL;
        return -1;
    }
    pthread_mutex_lock(&pending_lock);
    context_open = true;
    pthread_mutex_unlock(&pending_lock);
    return 0;
}

void ws_stop(int grace_ms)
{
    if (!context)
        return;
    atomic_store(&stopping, true);
    lws_cancel_service(context);
    for (int waited = 0; waited < grace_ms && ws_connections(); waited += WS_STOP_POLL_MS)
        usleep(WS_STOP_POLL_MS * 1000);
    atomic_store(&stop_loop, true);
    lws_cancel_service(context);
    pthread_join(service_thread, NULL);
    pthread_mutex_lock(&pending_lock);
    context_open = false; /* no other thread wakes it from here on */
    pthread_mutex_unlock(&pending_lock);
    lws_context_destroy(context);
    context = NULL;
    pthread_mutex_lock(&pending_lock);
    for (size_t i = 0; i < adopt_len; i++) {
        close(adopt_queue[i].fd);
        access_unref(adopt_queue[i].who);
    }
    free(adopt_queue);
    adopt_queue = NULL;
    adopt_len = adopt_cap = 0;
    pthread_mutex_unlock(&pending_lock);
}
