/* SPDX-License-Identifier: MIT */
/*
 * ws.c - WebSocket connections on libwebsockets: adoption, frames, close
 * codes, keep-alive pings. What a connection is for comes from the router
 * (ws_open_fn): a session with a sub to drain and a receive hook.
 *
 * The acceptor hands over sockets whose upgrade request it only peeked at;
 * the service thread adopts them and lws reads the request from byte 0.
 * A connection's sub is drained with one write at a time: up to
 * WS_FRAMES_PER_WRITEABLE queued frames, framed here into the worker's
 * buffer and sent in one raw write (no extension such as permessage-deflate
 * is offered, so frames go out as they are). A woken connection is written
 * by its service thread at once (write_now); what follows a full batch, and
 * anything else due (PINGs, closes, a partial write lws holds), goes through
 * SERVER_WRITEABLE, which lws calls once the socket polls writable. The
 * message's shared bytes are only read: several workers send one message
 * at once.
 *
 * Workers ("workers" in the config, 0: one per core): each is an lws
 * context on a libev epoll loop of its own (create_on_epoll) with its own
 * service thread, since this lws build has
 * LWS_MAX_SMP 1 (one service thread per context). The acceptor gives each
 * socket to the worker holding the fewest connections, and the connection
 * stays there: one room's members are spread over all workers, and a
 * publish wakes each worker that has one of them (the hub's wake puts the
 * connection on its own worker's pending list), so all cores write it.
 *
 * "latency": both modes set TCP_NODELAY on every socket. "low": a woken
 * connection is asked for a write at once. "efficient": a wake after a
 * quiet moment (the worker flushed nothing for coalesce_ms) is flushed at
 * once; one within coalesce_ms of the last flush waits for that window's
 * end, when every connection woken meanwhile is asked for one write of all
 * it has queued by then (Nagle's rule, per worker).
 *
 * Keep-alive is ours, not lws's validity timers (which keep every
 * connection in one sorted list: with 10000 connections each reschedule
 * walked it, a quarter of a core at rest). Once a second the service thread
 * walks the connections: a PING to those due one, and a close for those
 * silent (no frame, no PONG) for 2 * limits.keepalive_s + 5 s.
 *
 * Backpressure: after a message from a connection, while the fanout
 * backlog holds (hub/backlog.h), that connection is not read any more
 * (lws_rx_flow_control) until it no longer does (pace_reads,
 * resume_reads): a publishing client is read at the fanout's pace.
 *
 * Threading (lws is single-threaded per context; this build has LWS_MAX_SMP 1):
 * - a worker's service thread runs every lws callback of its context and
 *   is the only one to call lws functions on it, except
 *   lws_cancel_service(), which any thread may call;
 * - other threads hand work over through the worker's two lists, the
 *   adoption queue and the pending list (under its pending_lock), then call
 *   lws_cancel_service(); the service thread drains both in
 *   LWS_CALLBACK_EVENT_WAIT_CANCELLED;
 * - ws_wake runs on a publisher's thread with the sub lock held: it only
 *   puts the connection on its worker's pending list (lock order: hub, sub,
 *   pending_lock);
 * - a connection's ws_conn is touched by its worker's thread only (but its
 *   pending fields, under that worker's pending_lock).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/ws.h"

#include <errno.h>
#include <ev.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/client_addr.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/linger.h"
#include "common/list.h"
#include "common/http_status.h"
#include "common/latency.h"
#include "common/log.h"
#include "hub/backlog.h"
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
#define WS_WORKERS_MAX 64       /* the config's limit for "workers" */
#define WS_RESUME_CHECK_MS 10   /* paused readers look this often whether to read again */

_Static_assert(LWS_PRE <= MSG_HEADROOM, "lws frame headers must fit the message headroom");

struct ws_worker;

/* latency "efficient": how long after a flush that followed a quiet moment
 * further wakes still count as the same publish's fanout (serve_pending). */
#define WS_BURST_MAX_US (10 * LWS_US_PER_MS)

typedef struct ws_conn {
    struct lws *wsi;
    struct ws_worker *w;          /* set once, by its service thread */
    ws_session sess;              /* sess.s is drained; sess.ops told of input */
    bool opened;                  /* service thread: sess is set */
    atomic_bool on_pending;       /* written under its worker's pending_lock; read
                                     without it by mark_pending's fast path */
    struct ws_conn *pending_next; /* its worker's pending_lock */
    list_node link;               /* service thread: in all_conns once established */
    char *rx;                     /* service thread: the message being received */
    size_t rx_len;
    size_t rx_cap;         /* service thread: bytes of rx, counted in rx_held */
    bool rx_discard;       /* service thread: skip the rest of this message */
    int64_t last_rx_ms;    /* service thread: a frame or a PONG came */
    int64_t last_ping_ms;  /* service thread */
    bool ping_due;         /* service thread: send a PING when writable */
    bool silent;           /* service thread: close it, it stopped answering */
    bool unmasked;         /* service thread: it sent an unmasked frame (ws_guard) */
    bool rx_paused;        /* service thread: not read while the fanout backlog holds */
    list_node paused_link; /* service thread: in paused_conns while rx_paused */
    /* service thread, for the connection log lines (log.access) */
    int64_t opened_ms;
    unsigned close_code; /* sent or received; 0: none (the socket just went) */
    bool peer_closed;    /* the client sent the Close first */
    bool closing;        /* service thread: the server closes it (close_with) */
    char *path;          /* the upgrade's path (no query), only with log.access on */
} ws_conn;

typedef struct adoption {
    int fd;
    size_t head_len;       /* bytes of its upgrade request */
    access_principal *who; /* a reference: the wsi's opaque user data once adopted */
} adoption;

/* A timer of ours on a worker's libev loop (see worker_schedule). */
typedef struct ws_ev_timer {
    ev_timer ev; /* first: the libev callback gets its address */
    lws_sorted_usec_list_t *sul;
    sul_cb_t cb;
} ws_ev_timer;

/* One lws context and its service thread. */
typedef struct ws_worker {
    unsigned index;
    struct lws_context *context; /* set before its thread starts, then read-only */
    struct lws_vhost *vhost;     /* likewise */
    /* libev's epoll loop the context runs on (NULL: lws's own poll()):
     * main creates it before the thread starts and destroys it after the
     * context, the service thread runs it. */
    struct ev_loop *loop;
    pthread_t thread;
    bool started;       /* main: thread runs */
    atomic_uint queued; /* handed over, not adopted yet */
    atomic_uint live;   /* connections its lws holds; queued + live: the acceptor's choice */
    pthread_mutex_t pending_lock;
    bool context_open;     /* pending_lock: lws_cancel_service may be called */
    ws_conn *pending;      /* pending_lock: connections with news for the service thread */
    adoption *adopt_queue; /* pending_lock */
    size_t adopt_len, adopt_cap;
    list_node all_conns;               /* service thread: newest first */
    lws_sorted_usec_list_t sweep_sul;  /* service thread: the keep-alive sweep */
    lws_sorted_usec_list_t flush_sul;  /* service thread: latency "efficient" */
    bool flush_scheduled;              /* service thread: flush_sul runs soon */
    lws_usec_t last_flush_us;          /* service thread: the last coalesced flush */
    lws_usec_t burst_us;               /* service thread: the last flush after a quiet moment */
    unsigned char *batch_buf;          /* service thread: LWS_PRE + WS_BATCH_MAX */
    list_node paused_conns;            /* service thread: rx_paused (backpressure) */
    lws_sorted_usec_list_t resume_sul; /* service thread: resume_reads */
    ws_ev_timer ev_timers[2];          /* service thread, on libev: flush_sul, resume_sul */
    /* service thread: the pending connections being written
     * (request_writable_for_pending), room for every established one */
    ws_conn **due;
    size_t due_cap;
    size_t established; /* service thread: connections in all_conns */
} ws_worker;

static const cfg *conf;
static ws_open_fn open_session;
/* Set by ws_start before any other thread runs, then read-only; kept after
 * ws_stop, so that /metrics may still read the counters. */
static ws_worker *workers;
static unsigned nworkers;
static bool stopped;           /* main: ws_stop has run */
static unsigned next_worker;   /* acceptor: where the search for the least loaded starts */
static atomic_bool stopping;   /* close every connection with 1001 */
static atomic_bool stop_loop;  /* leave the service loop */
static atomic_uint queued_fds; /* handed over, not adopted yet */
static atomic_int live_wsi;    /* connections lws holds */
/* Bytes of receive buffers held for unfinished messages (a message split
 * over frames, or a frame over reads), every connection's: written by the
 * service threads, read by /metrics. limits.max_fragment_bytes_total. */
static atomic_size_t rx_held;

/* --------------------------------------------------------- cross-thread */

/* w's pending_lock held, any thread: wakes its service thread, unless
 * ws_stop has begun destroying the context (a publish or the backplane may
 * still wake a connection then; lws_cancel_service on a destroyed context
 * would write to a closed, maybe reused, pipe). */
static void wake_service_locked(ws_worker *w)
{
    if (w->context_open)
        lws_cancel_service(w->context);
}

/* Any thread. Puts c on its worker's pending list; the first entry wakes
 * the worker. A connection already on it is left alone without the lock:
 * what its waker queued before is seen by the write the service thread
 * asks for after it takes c off the list (it clears the flag first). */
static void mark_pending(ws_conn *c)
{
    ws_worker *w = c->w;
    if (atomic_load(&c->on_pending))
        return;
    pthread_mutex_lock(&w->pending_lock);
    if (!atomic_load(&c->on_pending)) {
        bool signal = w->pending == NULL;
        atomic_store(&c->on_pending, true);
        c->pending_next = w->pending;
        w->pending = c;
        if (signal)
            wake_service_locked(w);
    }
    pthread_mutex_unlock(&w->pending_lock);
}

/* The hub's wake for a drained sub (sub lock held, any thread). */
static void ws_wake(sub *s)
{
    mark_pending(s->owner);
}

/* Acceptor: the worker holding the fewest connections (the search starts
 * one further each time, so that equal ones take turns). */
static ws_worker *choose_worker(void)
{
    ws_worker *best = &workers[next_worker % nworkers];
    for (unsigned i = 1; i < nworkers; i++) {
        ws_worker *w = &workers[(next_worker + i) % nworkers];
        if (atomic_load(&w->queued) + atomic_load(&w->live) <
            atomic_load(&best->queued) + atomic_load(&best->live))
            best = w;
    }
    next_worker = (next_worker + 1) % nworkers;
    return best;
}

void ws_adopt(int fd, size_t head_len, access_principal *who)
{
    /* Both latency modes: the kernel adds no delay of its own (ws.c batches). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ws_worker *w = choose_worker();
    atomic_fetch_add(&queued_fds, 1);
    atomic_fetch_add(&w->queued, 1);
    pthread_mutex_lock(&w->pending_lock);
    if (w->adopt_len == w->adopt_cap) {
        size_t cap = w->adopt_cap ? w->adopt_cap * 2 : 64;
        adoption *q = realloc(w->adopt_queue, cap * sizeof(*q));
        if (!q) {
            pthread_mutex_unlock(&w->pending_lock);
            close(fd);
            access_unref(who);
            atomic_fetch_sub(&w->queued, 1);
            atomic_fetch_sub(&queued_fds, 1);
            return;
        }
        w->adopt_queue = q;
        w->adopt_cap = cap;
    }
    w->adopt_queue[w->adopt_len++] = (adoption){fd, head_len, who};
    wake_service_locked(w);
    pthread_mutex_unlock(&w->pending_lock);
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

static void adopt_queued(ws_worker *w)
{
    pthread_mutex_lock(&w->pending_lock);
    adoption *fds = w->adopt_queue;
    size_t n = w->adopt_len;
    w->adopt_queue = NULL;
    w->adopt_len = w->adopt_cap = 0;
    pthread_mutex_unlock(&w->pending_lock);
    for (size_t i = 0; i < n; i++) {
        if (atomic_load(&stopping)) {
            close(fds[i].fd);
            access_unref(fds[i].who);
            atomic_fetch_sub(&w->queued, 1);
            atomic_fetch_sub(&queued_fds, 1);
            continue;
        }
        ws_guard_watch(fds[i].fd, fds[i].head_len);
        struct lws *wsi = lws_adopt_socket_vhost(w->vhost, fds[i].fd);
        if (wsi) {
            /* Set before lws reads a byte (this thread runs its reads):
             * the principal stays with the wsi until LWS_CALLBACK_WSI_DESTROY. */
            lws_set_opaque_user_data(wsi, fds[i].who);
        } else {
            LOG_WARN(TAG, "libwebsockets could not adopt a connection"); /* it closed fd */
            access_unref(fds[i].who);
        }
        atomic_fetch_sub(&w->queued, 1);
        atomic_fetch_sub(&queued_fds, 1);
    }
    free(fds);
}

static void on_ev_timer(struct ev_loop *loop, ev_timer *ev, int revents)
{
    (void)loop;
    (void)revents;
    ws_ev_timer *t = (ws_ev_timer *)ev;
    t->cb(t->sul);
}

/* Service thread: cb(sul) in us microseconds, as lws_sul_schedule, for the
 * timers that must fire on time (flush_sul, resume_sul). On libev they are
 * ev_timers of the worker's loop: lws 4.1's libev plugin sets its one timer
 * only when it is not already running, so a sul due before the one it waits
 * for fires late (up to the keep-alive sweep's second). */
static void worker_schedule(ws_worker *w, lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us)
{
    if (!w->loop) {
        lws_sul_schedule(w->context, 0, sul, cb, us);
        return;
    }
    ws_ev_timer *t = &w->ev_timers[sul == &w->flush_sul ? 0 : 1];
    ev_timer_stop(w->loop, &t->ev);
    t->sul = sul;
    t->cb = cb;
    ev_now_update(w->loop); /* the loop's time is that of its last wake-up */
    ev_timer_init(&t->ev, on_ev_timer, (ev_tstamp)us / LWS_US_PER_SEC, 0.);
    ev_timer_start(w->loop, &t->ev);
}

static void write_now(ws_conn *c);

/* The woken connections are written (write_now) once the list is taken
 * and its lock let go: a write takes the sub's lock, which comes before
 * pending_lock. Nothing closes a connection meanwhile (only this thread
 * does, and write_now leaves closing to the callback). */
static void request_writable_for_pending(ws_worker *w)
{
    size_t n = 0;
    pthread_mutex_lock(&w->pending_lock);
    for (ws_conn *c = w->pending; c; c = c->pending_next) {
        atomic_store(&c->on_pending, false);
        if (n < w->due_cap)
            w->due[n++] = c;
        else /* no room (out of memory): lws's way */
            lws_callback_on_writable(c->wsi);
    }
    w->pending = NULL;
    pthread_mutex_unlock(&w->pending_lock);
    for (size_t i = 0; i < n; i++)
        write_now(w->due[i]);
}

/* latency "efficient": every connection woken since the last flush gets
 * its one write. */
static void flush_now(ws_worker *w)
{
    w->last_flush_us = lws_now_usecs();
    request_writable_for_pending(w);
}

static void flush_pending(lws_sorted_usec_list_t *sul)
{
    ws_worker *w = lws_container_of(sul, ws_worker, flush_sul);
    w->flush_scheduled = false;
    flush_now(w);
}

/* EVENT_WAIT_CANCELLED: the woken connections are asked for a write now
 * (latency "low", or stopping), or when the coalescing timer fires. */
static void serve_pending(ws_worker *w)
{
    if (conf->latency == CFG_LATENCY_LOW || atomic_load(&stopping)) {
        request_writable_for_pending(w);
        return;
    }
    if (w->flush_scheduled)
        return;
    pthread_mutex_lock(&w->pending_lock);
    bool any = w->pending != NULL;
    pthread_mutex_unlock(&w->pending_lock);
    if (!any)
        return;
    /* As Nagle does for one socket: after a quiet moment (no flush for
     * coalesce_ms) the news goes out at once; within coalesce_ms of the last
     * flush it waits for the window's end, with whatever else comes. One
     * publish wakes a room's members over a few ms: wakes within a quarter
     * of the window (at most WS_BURST_MAX_US) after a flush that followed a
     * quiet moment are part of that burst and go at once too. */
    lws_usec_t window = (lws_usec_t)conf->coalesce_ms * LWS_US_PER_MS;
    lws_usec_t now = lws_now_usecs();
    if (now - w->last_flush_us >= window) {
        w->burst_us = now;
        flush_now(w);
        return;
    }
    lws_usec_t burst = window / 4 < WS_BURST_MAX_US ? window / 4 : WS_BURST_MAX_US;
    if (now - w->burst_us < burst) {
        request_writable_for_pending(w); /* the same burst: the window stays */
        return;
    }
    lws_usec_t since = now - w->last_flush_us;
    w->flush_scheduled = true;
    worker_schedule(w, &w->flush_sul, flush_pending, window - since);
}

static void request_writable_for_all(ws_worker *w)
{
    list_for_each_safe (n, next, &w->all_conns)
        lws_callback_on_writable(list_entry(n, ws_conn, link)->wsi);
}

/* A connection the server closes is read again (and never paused after):
 * what the client sent meanwhile must be read (lws discards it while the
 * close goes on), or the kernel answers the final close() with a reset that
 * discards what was still unsent, the close frame among it. */
static void unpause_for_close(ws_conn *c, struct lws *wsi)
{
    c->closing = true;
    if (!c->rx_paused)
        return;
    list_remove(&c->paused_link);
    c->rx_paused = false;
    lws_rx_flow_control(wsi, 1);
}

static int close_with(struct lws *wsi, enum lws_close_status code, const char *reason)
{
    ws_conn *c = lws_wsi_user(wsi);
    if (c && !c->close_code)
        c->close_code = (unsigned)code;
    if (c)
        unpause_for_close(c, wsi);
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
    c->w = lws_context_user(lws_get_context(wsi));
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

/* Service thread: w's established connections counted, and its due array
 * grown to hold them all (a failed growth leaves the extra ones to lws's
 * writable callback). */
static void count_established(ws_worker *w, int delta)
{
    w->established += (size_t)delta;
    if (w->established <= w->due_cap)
        return;
    size_t cap = w->due_cap ? w->due_cap * 2 : 64;
    ws_conn **due = realloc(w->due, cap * sizeof(*due));
    if (!due)
        return;
    w->due = due;
    w->due_cap = cap;
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
    list_push_front(&c->w->all_conns, &c->link);
    count_established(c->w, 1);
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
    ws_worker *w = lws_container_of(sul, ws_worker, sweep_sul);
    int64_t now = clock_now_ms();
    int64_t every = (int64_t)conf->limits.keepalive_s * MS_PER_S;
    int64_t hangup = 2 * every + WS_HANGUP_GRACE_MS;
    list_for_each_safe (n, next, &w->all_conns) {
        ws_conn *c = list_entry(n, ws_conn, link);
        if (now - c->last_rx_ms >= hangup && !c->rx_paused) { /* paused: unread, not silent */
            c->silent = true;
            lws_callback_on_writable(c->wsi);
        } else if (now - c->last_ping_ms >= every && now - c->last_rx_ms >= every) {
            c->ping_due = true;
            lws_callback_on_writable(c->wsi);
        }
    }
    lws_sul_schedule(w->context, 0, sul, keepalive_sweep, LWS_US_PER_SEC);
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
    if (c->rx_paused) {
        list_remove(&c->paused_link);
        c->rx_paused = false;
    }
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
    ws_worker *w = c->w;
    pthread_mutex_lock(&w->pending_lock);
    if (atomic_load(&c->on_pending)) {
        for (ws_conn **pp = &w->pending; *pp; pp = &(*pp)->pending_next) {
            if (*pp == c) {
                *pp = c->pending_next;
                break;
            }
        }
    }
    atomic_store(&c->on_pending, false);
    pthread_mutex_unlock(&w->pending_lock);
    if (!list_empty(&c->link)) { /* it was established */
        list_remove(&c->link);
        count_established(w, -1);
    }
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

/* The header of an unmasked server frame of len bytes (text, or binary);
 * returns its size. */
static size_t frame_header(unsigned char *h, size_t len, bool binary)
{
    h[0] = binary ? 0x82 : 0x81; /* FIN, text or binary */
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

/* Frames taken for one write, framed into the worker's batch_buf, or, for
 * one frame larger than WS_BATCH_MAX, into a buffer of its own. */
typedef struct batch {
    msg *m[WS_FRAMES_PER_WRITEABLE];
    int n;
    unsigned char *own; /* malloc'd: LWS_PRE + a large frame */
    size_t used;        /* bytes framed */
} batch;

static unsigned char *batch_bytes(ws_worker *w, batch *bt)
{
    return (bt->own ? bt->own : w->batch_buf) + LWS_PRE;
}

/* Writes what the batch holds in one raw write, tells the session, and
 * empties it. Returns false when the write failed: then the messages go
 * back to the front of the queue, in order, for whoever drains it next (a
 * resumed SignalR connection resends them on its new socket; otherwise the
 * queue goes with the connection). */
static bool write_batch(ws_conn *c, struct lws *wsi, batch *bt)
{
    sub *s = c->sess.s;
    bool ok = lws_write(wsi, batch_bytes(c->w, bt), bt->used, LWS_WRITE_RAW) >= (int)bt->used;
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
    free(bt->own);
    bt->own = NULL;
    bt->n = 0;
    bt->used = 0;
    return ok;
}

/* Adds m to the batch, framing it. Returns 1, or 0 when it does not fit
 * (the batch is full) or -ENOMEM: then m stays the caller's. */
static int batch_add(ws_worker *w, batch *bt, sub *s, msg *m)
{
    msg_bytes b = msg_get(m, s->fmt, s->target);
    size_t need = 10 + b.len; /* the largest header, and the payload */
    if (bt->n == WS_FRAMES_PER_WRITEABLE || (bt->n && bt->used + need > WS_BATCH_MAX))
        return 0;
    if (!bt->n && need > WS_BATCH_MAX && !(bt->own = malloc(LWS_PRE + need)))
        return -ENOMEM;
    unsigned char *out = batch_bytes(w, bt) + bt->used;
    size_t h = frame_header(out, b.len, msg_format_is_binary(s->fmt));
    memcpy(out + h, b.base, b.len);
    bt->used += h + b.len;
    bt->m[bt->n++] = m;
    return 1;
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

static int drain(ws_conn *c, struct lws *wsi, bool direct);

/* One write per callback: a PING when one is due, else the queued frames
 * (a batch of them when there is a backlog); then asks for another
 * callback while more is queued. */
static int on_writable(ws_conn *c, struct lws *wsi)
{
    /* A close frame is on its way or sent: ours (close_with), or lws's own
     * for a protocol error (1007 for invalid UTF-8, 1002), after which lws
     * still calls this while it waits for the client's answer. Nothing may
     * follow it (RFC 6455 5.5.1). A client that sent unmasked frames will
     * not answer the close (ws_guard reads nothing more of it): the
     * connection ends now rather than after lws's wait for the answer. */
    if (c->closing || lws_get_close_length(wsi))
        return c->unmasked ? -1 : 0;
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
        c->w->batch_buf[LWS_PRE] = 'k';
        if (lws_write(wsi, c->w->batch_buf + LWS_PRE, 1, LWS_WRITE_PING) < 0)
            return -1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    return drain(c, wsi, false);
}

/* The service thread's write for c that lws did not ask for (write_now),
 * where the SERVER_WRITEABLE callback would close c: lws is asked for that
 * callback, which finds the same state and closes it. */
static int ask_writable(struct lws *wsi)
{
    lws_callback_on_writable(wsi);
    return 0;
}

/* Writes up to WS_FRAMES_PER_WRITEABLE queued frames of c in one write;
 * asks for another SERVER_WRITEABLE while more is queued. direct: called
 * by write_now, not by lws: what would close c is left to the callback. */
static int drain(ws_conn *c, struct lws *wsi, bool direct)
{
    sub *s = c->sess.s;
    batch bt = {.n = 0};
    bool dropped = false, ending = false, more = false;
    sub_end_reason why = SUB_END_NONE;
    msg *m = NULL;
    int added = 1;
    while ((m = take_next(c, s, &dropped, &ending, &more, &why)) != NULL) {
        if ((added = batch_add(c->w, &bt, s, m)) != 1) {
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
    if (dropped || (added < 0 && !bt.n)) {
        for (int i = 0; i < bt.n; i++)
            msg_unref(bt.m[i]);
        free(bt.own);
        if (direct)
            return ask_writable(wsi);
        return dropped ? close_with(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue full")
                       : close_with(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    }
    if (bt.n) {
        if (!write_batch(c, wsi, &bt))
            return direct ? ask_writable(wsi) : -1;
        if (more || ending || atomic_load(&stopping))
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (direct && (ending || atomic_load(&stopping)))
        return ask_writable(wsi);
    if (ending)
        return close_ended(c, wsi, why);
    return atomic_load(&stopping)
               ? close_with(wsi, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down")
               : 0;
}

/* Service thread, for a connection the hub woke: its queued frames are
 * written at once, not after a round through the event loop. lws's way
 * (lws_callback_on_writable, then SERVER_WRITEABLE once the socket polls
 * writable) costs two epoll_ctl and an event per delivery, as much as a
 * third of the send() itself at 10000 subscribers. Only in the plain case:
 * anything else due on c (a PING, a close of ours or lws's, the client's
 * close, a partial write lws holds, shutdown) goes through the callback. */
static void write_now(ws_conn *c)
{
    struct lws *wsi = c->wsi;
    if (c->unmasked || c->sess.refuse_code || c->silent || c->ping_due || c->closing ||
        c->peer_closed || atomic_load(&stopping) || lws_get_close_length(wsi) ||
        lws_partial_buffered(wsi)) {
        lws_callback_on_writable(wsi);
        return;
    }
    drain(c, wsi, true);
}

/* Backpressure (hub/backlog.h): while subscribers that read are behind,
 * connections that send are not read (lws_rx_flow_control): a publisher's
 * frames wait in its socket. Every WS_RESUME_CHECK_MS the paused ones are
 * read again once the backlog no longer holds. Per worker: its own paused
 * list and timer, on its own service thread. */
static void resume_reads(lws_sorted_usec_list_t *sul)
{
    ws_worker *w = lws_container_of(sul, ws_worker, resume_sul);
    if (backlog_holding()) {
        worker_schedule(w, &w->resume_sul, resume_reads, WS_RESUME_CHECK_MS * LWS_US_PER_MS);
        return;
    }
    int64_t now = clock_now_ms();
    list_for_each_safe (n, next, &w->paused_conns) {
        ws_conn *c = list_entry(n, ws_conn, paused_link);
        list_remove(&c->paused_link);
        c->rx_paused = false;
        c->last_rx_ms = now; /* its PONGs may have waited unread */
        lws_rx_flow_control(c->wsi, 1);
    }
}

/* After a message from c: stop reading c while the backlog holds. */
static void pace_reads(ws_conn *c, struct lws *wsi)
{
    if (c->rx_paused || c->closing || !backlog_holding())
        return;
    ws_worker *w = c->w;
    c->rx_paused = true;
    if (list_empty(&w->paused_conns))
        worker_schedule(w, &w->resume_sul, resume_reads, WS_RESUME_CHECK_MS * LWS_US_PER_MS);
    list_push_back(&w->paused_conns, &c->paused_link);
    lws_rx_flow_control(wsi, 0);
    backlog_count_paced(PACE_WEBSOCKET);
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
    if (c->closing) /* its close frame is on its way: what follows is read and dropped */
        return 0;
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
        if (code)
            return close_with(wsi, (enum lws_close_status)code, why);
        pace_reads(c, wsi);
        return 0;
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
    if (code)
        return close_with(wsi, (enum lws_close_status)code, why);
    pace_reads(c, wsi);
    return 0;
}

/* CLOSED of a connection the server closed: lws has written the close
 * frame, shut the socket down for writing and closes it next. Unread bytes
 * from the client (a publisher's frames sent after the close) would turn
 * that close() into a reset, and a reset makes the client lose what it had
 * not read yet: the close frame. So the socket lingers (common/linger.h) on
 * a duplicate: read and dropped for up to a second, then closed. */
static void linger_after_close(ws_conn *c, struct lws *wsi)
{
    if (!c || !c->closing || atomic_load(&stopping))
        return;
    int fd = dup(lws_get_socket_fd(wsi));
    if (fd < 0)
        return;
    shutdown(fd, SHUT_WR); /* lws did already; FIN after the close frame */
    linger_add(fd, clock_now_ms());
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    ws_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        ws_worker *w = lws_context_user(lws_get_context(wsi));
        if (atomic_load(&stop_loop) && w->loop) {
            ev_break(w->loop, EVBREAK_ALL); /* lws_service returns to service_main */
            return 0;
        }
        adopt_queued(w);
        serve_pending(w);
        if (atomic_load(&stopping))
            request_writable_for_all(w);
        return 0;
    }
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return open_connection(c, wsi);
    case LWS_CALLBACK_ADD_HEADERS: /* the 101 answer to an upgrade */
        return c && c->opened ? add_headers(c, wsi, in) : 0;
    case LWS_CALLBACK_ESTABLISHED:
        on_established(c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        ws_guard_forget(lws_get_socket_fd(wsi));
        linger_after_close(c, wsi);
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
    case LWS_CALLBACK_PROTOCOL_INIT: {                 /* main, inside lws_create_context */
        struct lws_context *cx = lws_get_context(wsi); /* w->context is not set yet */
        ws_worker *w = lws_context_user(cx);
        lws_sul_schedule(cx, 0, &w->sweep_sul, keepalive_sweep, LWS_US_PER_SEC);
        break;
    }
    case LWS_CALLBACK_WSI_CREATE: /* both come in pairs for every adopted socket */
        atomic_fetch_add(&live_wsi, 1);
        atomic_fetch_add(&((ws_worker *)lws_context_user(lws_get_context(wsi)))->live, 1);
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c) { /* an upgrade that never got to CLOSED */
            free(c->path);
            c->path = NULL;
        }
        atomic_fetch_sub(&live_wsi, 1);
        atomic_fetch_sub(&((ws_worker *)lws_context_user(lws_get_context(wsi)))->live, 1);
        access_unref(lws_get_opaque_user_data(wsi)); /* the principal ws_adopt was given */
        lws_set_opaque_user_data(wsi, NULL);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* rx_buffer_size: lws mallocs this (+ LWS_PRE) for every connection at
 * the upgrade and keeps it for the connection's life, to hand received
 * payload to on_receive in pieces; the default (pt_serv_buf_size, 4 KiB)
 * was two thirds of an idle WebSocket's memory. on_receive gathers any
 * size itself, so a small piece costs only more callbacks for big client
 * messages. tx_packet_size: the most lws sends in one send(); without it
 * lws takes rx_buffer_size for that too, so it keeps the 4 KiB it had. */
#define WS_RX_PIECE 512
#define WS_TX_PACKET 4096
static struct lws_protocols protocols[] = {
    {"crier", callback, sizeof(ws_conn), WS_RX_PIECE, 0, NULL, WS_TX_PACKET},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* On libev, lws_service runs the loop until ev_break (EVENT_WAIT_CANCELLED
 * once stop_loop is set); on poll(), it returns after every poll. */
static void *service_main(void *arg)
{
    ws_worker *w = arg;
    ws_guard_enter_thread(on_unmasked);
    while (!atomic_load(&stop_loop))
        if (lws_service(w->context, 0) < 0)
            break;
    ws_guard_leave_thread();
    return NULL;
}

/* libwebsockets' log lines, as ours: its errors at warn, its warnings at
 * debug. lws takes both always (ws_start) and crier's level, which a reload
 * changes (log_set_level, an atomic), decides here which are printed: lws's
 * own level is a plain global of the library, set once before its threads
 * run, and is never written while they read it. Any lws service thread. */
static void lws_log_to_ours(int level, const char *line)
{
    if (!(level & LLL_ERR) && !log_enabled(LOG_LEVEL_DEBUG))
        return;
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

/* "workers": 0 is one per core. */
static unsigned worker_count(const cfg *c)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = c->workers ? c->workers : cores > 0 ? (unsigned)cores : 1;
    return n > WS_WORKERS_MAX ? WS_WORKERS_MAX : n;
}

/* Main: w's context on an epoll loop of its own (libev, through lws's
 * libev plugin, package libwebsockets-evlib-ev). lws's default poll() asks
 * the kernel about every connection on every wake-up: with thousands of
 * connections per worker that was a fifth of the CPU of a fanout; epoll
 * reports only the ready ones. The loop is "foreign" to lws: lws installs
 * no signal handler on it, and service_main stops it. Leaves w->context
 * NULL when either is missing: the context then runs on poll(). */
static void create_on_epoll(struct lws_context_creation_info *info, ws_worker *w)
{
    w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
    if (!w->loop) {
        LOG_WARN(TAG, "no epoll loop (libev): WebSocket worker %u runs on poll()", w->index);
        return;
    }
    void *loops[1] = {w->loop};
    info->options |= LWS_SERVER_OPTION_LIBEV;
    info->foreign_loops = loops;
    w->context = lws_create_context(info);
    info->options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
    info->foreign_loops = NULL;
    if (w->context)
        return;
    ev_loop_destroy(w->loop);
    w->loop = NULL;
    LOG_WARN(TAG,
             "libwebsockets' libev plugin is missing (package libwebsockets-evlib-ev): "
             "WebSocket worker %u runs on poll()",
             w->index);
}

/* Main: w's context (its PROTOCOL_INIT schedules the keep-alive sweep). */
static int create_context(const cfg *c, ws_worker *w)
{
    static lws_retry_bo_t keepalive; /* zero: no lws validity timers (keepalive_sweep) */
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
    info.user = w;
    w->batch_buf = malloc(LWS_PRE + WS_BATCH_MAX);
    if (!w->batch_buf)
        return -1;
    create_on_epoll(&info, w);
    if (!w->context)
        w->context = lws_create_context(&info);
    if (!w->context)
        return -1;
    w->vhost = lws_get_vhost_by_name(w->context, "crier");
    return w->vhost ? 0 : -1;
}

int ws_start(const cfg *c, ws_open_fn open)
{
    conf = c;
    open_session = open;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_to_ours); /* filtered by lws_log_to_ours */
    unsigned n = worker_count(c);
    workers = calloc(n, sizeof(*workers));
    if (!workers) {
        LOG_ERR(TAG, "cannot create the libwebsockets workers");
        return -1;
    }
    nworkers = n;
    for (unsigned i = 0; i < n; i++) {
        workers[i].index = i;
        pthread_mutex_init(&workers[i].pending_lock, NULL);
        list_init(&workers[i].all_conns);
        list_init(&workers[i].paused_conns);
    }
    for (unsigned i = 0; i < n; i++) {
        ws_worker *w = &workers[i];
        if (create_context(c, w)) {
            LOG_ERR(TAG, "cannot create the libwebsockets context");
            ws_stop(0);
            return -1;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        ws_worker *w = &workers[i];
        if (pthread_create(&w->thread, NULL, service_main, w)) {
            LOG_ERR(TAG, "cannot start the libwebsockets service thread");
            ws_stop(0);
            return -1;
        }
        w->started = true;
        char name[16];
        snprintf(name, sizeof(name), "crier-ws-%u", i);
        pthread_setname_np(w->thread, name); /* per-thread CPU in /proc, top -H, perf */
        pthread_mutex_lock(&w->pending_lock);
        w->context_open = true;
        pthread_mutex_unlock(&w->pending_lock);
    }
    LOG_INFO(TAG, "%u WebSocket worker%s, latency %s, %s", n, n == 1 ? "" : "s",
             c->latency == CFG_LATENCY_LOW ? "low" : "efficient",
             workers[0].loop ? "epoll (libev)" : "poll()");
    return 0;
}

unsigned ws_workers(void)
{
    return nworkers;
}

unsigned ws_worker_connections(unsigned i)
{
    ws_worker *w = i < nworkers ? &workers[i] : NULL;
    return w ? atomic_load(&w->queued) + atomic_load(&w->live) : 0;
}

/* Main: w's queued sockets that were never adopted. */
static void drop_queued(ws_worker *w)
{
    pthread_mutex_lock(&w->pending_lock);
    for (size_t i = 0; i < w->adopt_len; i++) {
        close(w->adopt_queue[i].fd);
        access_unref(w->adopt_queue[i].who);
    }
    free(w->adopt_queue);
    w->adopt_queue = NULL;
    w->adopt_len = w->adopt_cap = 0;
    pthread_mutex_unlock(&w->pending_lock);
}

/* Main: wakes every running worker. */
static void wake_all(void)
{
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_mutex_lock(&workers[i].pending_lock);
        wake_service_locked(&workers[i]);
        pthread_mutex_unlock(&workers[i].pending_lock);
    }
}

void ws_stop(int grace_ms)
{
    if (!workers || stopped)
        return;
    stopped = true;
    atomic_store(&stopping, true);
    wake_all();
    for (int waited = 0; waited < grace_ms && ws_connections(); waited += WS_STOP_POLL_MS)
        usleep(WS_STOP_POLL_MS * 1000);
    atomic_store(&stop_loop, true);
    wake_all();
    for (unsigned i = 0; i < nworkers; i++)
        if (workers[i].started)
            pthread_join(workers[i].thread, NULL);
    /* No other thread wakes a worker from here on: a CLOSED hook run by
     * one context's destruction may wake a connection of another. */
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_mutex_lock(&workers[i].pending_lock);
        workers[i].context_open = false;
        pthread_mutex_unlock(&workers[i].pending_lock);
    }
    for (unsigned i = 0; i < nworkers; i++) {
        ws_worker *w = &workers[i];
        if (w->context)
            lws_context_destroy(w->context);
        w->context = NULL;
        if (w->loop) { /* after the context: its close stopped its watchers */
            ev_timer_stop(w->loop, &w->ev_timers[0].ev);
            ev_timer_stop(w->loop, &w->ev_timers[1].ev);
            ev_loop_destroy(w->loop);
        }
        w->loop = NULL;
        drop_queued(w);
        free(w->batch_buf);
        w->batch_buf = NULL;
        free(w->due);
        w->due = NULL;
        w->due_cap = 0;
    }
}
