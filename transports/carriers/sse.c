/* SPDX-License-Identifier: MIT */
/*
 * sse.c - Server-Sent Events streams on libmicrohttpd: the carrier. What a
 * stream carries (its sub: room or SignalR connection, format) is set up by
 * a protocol (transports/plain/sse.c, transports/signalr/transports.c).
 *
 * A stream is an MHD response fed by a content reader that drains one sub.
 * The reader copies as many queued events as fit into MHD's buffer (one
 * write for a batch); when nothing is queued it suspends the connection,
 * and the sub's wake resumes it. Returning 0 without suspending would make
 * MHD spin.
 *
 * Latency (the config's "latency", as for WebSockets): "low" resumes a
 * parked stream as soon as a message is queued for it (one write per
 * message while the client keeps up). "efficient" (the default) puts a
 * parked stream that gets news on the pending array instead; the flusher
 * thread (crier-sse-flush) resumes every stream on it at once after a quiet
 * moment (no round for coalesce_ms), else at the end of the coalesce_ms
 * window the last round opened, and each reader then copies all its queue
 * into one answer: fewer writes, resumes and poll rounds per delivery under
 * load, at up to coalesce_ms more latency. A stream that is writing (not parked) takes
 * what is queued at its next read either way.
 *
 * Threading: the reader and the handlers run on the MHD thread of the
 * stream's daemon (a stream stays on one; http.c has three). sse_wake
 * runs on the publisher's thread with the sub lock held; it only calls
 * MHD_resume_connection, which is safe from any thread on a connection that
 * is suspended (tracked in `suspended`, under the sub lock), puts the
 * stream on the pending array (pend_lock, taken under a sub lock), or shuts
 * the socket of a dropped stream. The flusher holds flush_lock for a round
 * (flush_lock, then a sub lock; pend_lock is taken alone there) and
 * sse_completed takes flush_lock and pend_lock to take a stream out of the
 * array, so a stream is never freed under a round. Every live stream is in
 * the registry of held connections (held.h, kind HELD_STREAM), whose lock
 * comes before any sub lock.
 *
 * A stream whose client closes its socket ends at once, even while its
 * reader is parked (MHD does not look at a suspended socket): the watcher
 * of held connections (held_watch.h) calls sse_gone on its thread, which
 * marks it `gone`, shuts the socket and resumes it; the reader then ends
 * the stream with an error and MHD closes it. The watch is set when the
 * stream starts and cleared (with no sub lock held) in sse_completed,
 * before MHD closes the socket.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/sse.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/clock.h"
#include "common/latency.h"
#include "common/log.h"
#include "transports/carriers/held.h"
#include "transports/carriers/held_watch.h"

#define TAG "sse"

/* The response's own buffer (MHD_create_response_from_callback's block
 * size), held, zeroed, for the stream's whole life. libmicrohttpd 0.9.75
 * uses it only for a stream without chunked encoding (HTTP/1.0 clients):
 * a chunked (HTTP/1.1) stream's reader writes into the connection's pool,
 * as much as it has room for (strace: 2269-byte writes of several events
 * with this at 128). 128 B: 900 B lighter per idle stream than 1 KiB. */
#define SSE_BLOCK 128
/* A comment line: keeps proxies and clients from timing an idle stream out. */
#define SSE_KEEPALIVE ":\n\n"

typedef struct sse_conn {
    sub *s;
    struct MHD_Connection *conn;
    int fd;                    /* set once; -1 when unknown; valid until sse_completed */
    uint32_t pend_idx;         /* pend_lock: its slot in pend_arr; PEND_NONE: not pending */
    hw_entry *watch;           /* MHD thread */
    const char *hello;         /* MHD thread: sent first, then NULL */
    struct MHD_Response *resp; /* MHD thread: until the reader's first call, whose headers it
                                  frees then (http_forget_headers); the connection holds it */
    sse_farewell_fn farewell;  /* set once; NULL: none */
    buf farewell_buf;          /* MHD thread: what a farewell built */
    /* The flags share one word (an idle stream's size counts): */
    bool farewell_sent; /* MHD thread */
    bool suspended;     /* sub lock */
    bool closing;       /* sub lock: shutdown; end after what is queued */
    bool keepalive_due; /* sub lock */
    bool gone;          /* sub lock: the client closed its socket */
    size_t offset;      /* MHD thread: bytes of the queue head already sent */
    void (*ended)(void *session);
    void *session;
    held reg; /* in the registry from sse_stream to sse_completed */
} sse_conn;

/* ------------------------------------------- latency "efficient": flusher */

static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER; /* held for a round */
static pthread_mutex_t pend_lock = PTHREAD_MUTEX_INITIALIZER;  /* a leaf lock */
static pthread_cond_t pend_cond = PTHREAD_COND_INITIALIZER;    /* pend_lock: news or stop */
#define PEND_NONE UINT32_MAX
/* The pending streams: an array, so that a stream pays no link for it. */
static sse_conn **pend_arr;       /* pend_lock: pend_len used of pend_cap */
static size_t pend_len, pend_cap; /* pend_lock */
static sse_conn **round_arr;      /* flush_lock: the round's streams (NULL: none) */
static size_t round_cap;          /* flush_lock */
static bool flusher_stop;         /* pend_lock */
static bool coalescing;           /* pend_lock: the flusher runs; wakes go to pend_arr */
static unsigned wait_ms;          /* set once by sse_start: coalesce_ms */
static pthread_t flusher;         /* set once by sse_start */
static bool flusher_started;      /* main thread */

/* Flusher thread (or sse_stop), flush_lock held: resumes every stream
 * pending now. The pending array becomes the round's (and the round's the
 * next pending one), so a wake meanwhile pends for the next round; no
 * stream of the round is freed before it ends (sse_completed waits for
 * flush_lock). */
static void flush_round(void)
{
    pthread_mutex_lock(&pend_lock);
    sse_conn **round = pend_arr;
    size_t n = pend_len, cap = pend_cap;
    pend_arr = round_arr;
    pend_cap = round_cap;
    pend_len = 0;
    round_arr = round;
    round_cap = cap;
    for (size_t i = 0; i < n; i++)
        if (round[i])
            round[i]->pend_idx = PEND_NONE;
    pthread_mutex_unlock(&pend_lock);
    for (size_t i = 0; i < n; i++) {
        sse_conn *c = round[i];
        if (!c)
            continue; /* its stream ended meanwhile */
        pthread_mutex_lock(&c->s->lock);
        if (c->suspended && c->conn) {
            c->suspended = false;
            MHD_resume_connection(c->conn);
        }
        pthread_mutex_unlock(&c->s->lock);
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The flusher: waits for a first pending stream; if the last round began
 * coalesce_ms ago or more, resumes it at once, else at the end of that
 * window, with all that are pending by then. */
static void *flusher_main(void *arg)
{
    (void)arg;
    int64_t last_round_ms = INT64_MIN / 2; /* when the last round began */
    pthread_setname_np(pthread_self(), "crier-sse-flush");
    pthread_mutex_lock(&pend_lock);
    while (!flusher_stop) {
        if (!pend_len) {
            pthread_cond_wait(&pend_cond, &pend_lock);
            continue;
        }
        pthread_mutex_unlock(&pend_lock);
        /* Nagle's rule: after a quiet moment at once, else at the end of
         * the window that the last round opened. */
        int64_t due = last_round_ms + wait_ms, now = clock_now_ms();
        if (now < due)
            sleep_ms((unsigned)(due - now));
        pthread_mutex_lock(&flush_lock);
        last_round_ms = clock_now_ms();
        flush_round();
        pthread_mutex_unlock(&flush_lock);
        pthread_mutex_lock(&pend_lock);
    }
    pthread_mutex_unlock(&pend_lock);
    return NULL;
}

int sse_start(const cfg *c)
{
    if (c->latency != CFG_LATENCY_EFFICIENT)
        return 0;
    wait_ms = c->coalesce_ms;
    flusher_stop = false;
    if (pthread_create(&flusher, NULL, flusher_main, NULL)) {
        LOG_ERR(TAG, "cannot start the SSE flusher thread");
        return -1;
    }
    flusher_started = true;
    pthread_mutex_lock(&pend_lock);
    coalescing = true;
    pthread_mutex_unlock(&pend_lock);
    return 0;
}

void sse_stop(void)
{
    if (!flusher_started)
        return;
    pthread_mutex_lock(&pend_lock);
    coalescing = false; /* wakes resume at once from now on */
    flusher_stop = true;
    pthread_cond_signal(&pend_cond);
    pthread_mutex_unlock(&pend_lock);
    pthread_join(flusher, NULL);
    flusher_started = false;
    pthread_mutex_lock(&flush_lock);
    flush_round(); /* nothing stays parked: MHD must not stop with it suspended */
    free(round_arr);
    round_arr = NULL;
    round_cap = 0;
    pthread_mutex_lock(&pend_lock);
    free(pend_arr); /* empty: wakes no longer pend */
    pend_arr = NULL;
    pend_cap = pend_len = 0;
    pthread_mutex_unlock(&pend_lock);
    pthread_mutex_unlock(&flush_lock);
}

/* Sub lock held: resumes c's parked reader now, or (coalescing) once the
 * flusher's wait is over. */
static void resume_reader(sse_conn *c)
{
    pthread_mutex_lock(&pend_lock);
    if (coalescing && c->pend_idx != PEND_NONE) {
        pthread_mutex_unlock(&pend_lock); /* pending already */
        return;
    }
    if (coalescing && pend_len == pend_cap) {
        size_t cap = pend_cap ? pend_cap * 2 : 64;
        sse_conn **arr = realloc(pend_arr, cap * sizeof(*arr));
        if (arr) {
            pend_arr = arr;
            pend_cap = cap;
        }
    }
    if (coalescing && pend_len < pend_cap) {
        c->pend_idx = (uint32_t)pend_len;
        pend_arr[pend_len++] = c;
        if (pend_len == 1)
            pthread_cond_signal(&pend_cond);
        pthread_mutex_unlock(&pend_lock);
        return;
    }
    pthread_mutex_unlock(&pend_lock); /* "low", stopping, or out of memory: now */
    c->suspended = false;
    MHD_resume_connection(c->conn);
}

/* Sub lock held, any thread: news for the stream. A dropped stream whose
 * reader is not parked is blocked writing to a client that does not read:
 * shut its socket, so that MHD notices now rather than at its idle timeout. */
static void sse_wake(sub *s)
{
    sse_conn *c = s->owner;
    if (c->suspended && c->conn && !s->dropped && !s->ending) {
        resume_reader(c); /* news: at once or after coalesce_ms (latency) */
    } else if (c->suspended && c->conn) {
        c->suspended = false; /* dropped or ending: no reason to wait */
        MHD_resume_connection(c->conn);
    } else if (s->dropped && c->fd >= 0) {
        shutdown(c->fd, SHUT_RDWR);
    }
}

/* Watcher thread: the client closed the stream's socket. The shutdown
 * also ends a reader that is not parked but blocked on a full socket. */
static void sse_gone(void *arg)
{
    sse_conn *c = arg;
    pthread_mutex_lock(&c->s->lock);
    c->gone = true;
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    if (c->suspended && c->conn) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
    pthread_mutex_unlock(&c->s->lock);
}

/* Sub lock held. Copies queued events into out, at most max bytes. */
static size_t copy_queued(sse_conn *c, char *out, size_t max)
{
    sub *s = c->s;
    size_t n = 0;
    int64_t now = 0; /* read once, at the batch's first room message */
    msg *m;
    while (n < max && (m = sendq_peek(&s->q)) != NULL) {
        if (m->id && !c->offset)
            latency_observe((now ? now : (now = clock_now_ms())) - m->created_ms);
        msg_bytes b = msg_get(m, s->fmt, s->target);
        size_t take = b.len - c->offset;
        if (take > max - n)
            take = max - n;
        memcpy(out + n, b.base + c->offset, take);
        n += take;
        c->offset += take;
        if (c->offset == b.len) {
            c->offset = 0;
            sendq_pop(&s->q);
        }
    }
    return n;
}

static size_t copy_literal(char *out, size_t max, const char *s)
{
    size_t len = strlen(s);
    if (len > max)
        return 0; /* MHD always offers more than a few bytes; try next call */
    memcpy(out, s, len);
    return len;
}

/* MHD thread: the content reader. */
static ssize_t read_stream(void *cls, uint64_t pos, char *out, size_t max)
{
    sse_conn *c = cls;
    sub *s = c->s;
    ssize_t ret;
    (void)pos;
    if (c->resp) { /* the header block is out: an idle stream keeps no records of it */
        http_forget_headers(c->resp);
        c->resp = NULL;
    }
    pthread_mutex_lock(&s->lock);
    if (c->gone) {
        pthread_mutex_unlock(&s->lock);
        return MHD_CONTENT_READER_END_WITH_ERROR; /* nobody to write to */
    }
    size_t n = 0;
    if (c->hello) {
        /* A first line flushes the headers, so clients see the stream open. */
        n = copy_literal(out, max, c->hello);
        if (n)
            c->hello = NULL;
    }
    if (s->dropped)
        c->offset = 0; /* the hub emptied the queue; nothing is half sent any more */
    else
        n += copy_queued(c, out + n, max - n); /* when closing too: flush the queue */
    if (!n && s->ending && s->end_reason && !s->dropped && c->farewell && !c->farewell_sent) {
        const char *last = c->farewell(s, &c->farewell_buf); /* the server's reason, last */
        n = last ? copy_literal(out, max, last) : 0;
        c->farewell_sent = n || !last;
    }
    if (n) {
        ret = (ssize_t)n;
    } else if (s->dropped || s->ending || c->closing) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (c->keepalive_due) {
        c->keepalive_due = false;
        ret = (ssize_t)copy_literal(out, max, SSE_KEEPALIVE);
    } else {
        c->suspended = true;
        MHD_suspend_connection(c->conn);
        ret = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

unsigned sse_streams(void)
{
    return held_count(HELD_STREAM);
}

enum MHD_Result sse_stream(http_call *call, sub *s, const char *hello, void (*ended)(void *session),
                           void *session)
{
    return sse_stream_with(call, s, hello, NULL, ended, session);
}

enum MHD_Result sse_stream_with(http_call *call, sub *s, const char *hello,
                                sse_farewell_fn farewell, void (*ended)(void *session),
                                void *session)
{
    sse_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        ended(session);
        return MHD_NO;
    }
    c->s = s;
    c->conn = call->conn;
    c->hello = hello;
    c->farewell = farewell;
    c->ended = ended;
    c->session = session;
    c->pend_idx = PEND_NONE;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(call->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    *call->state = c;
    held_init(&c->reg, HELD_STREAM, c);
    if (held_add(&c->reg))
        c->closing = true; /* shutting down; not yet attached: no sub lock needed */
    pthread_mutex_lock(&s->lock);
    sub_attach(s, sse_wake, c);
    pthread_mutex_unlock(&s->lock);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, read_stream, c, NULL);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    if (s->conn_id[0]) /* the member's connection id, for the server API */
        MHD_add_response_header(r, SUB_CONN_ID_HEADER, s->conn_id);
    enum MHD_Result ret = http_queue(call->conn, MHD_HTTP_OK, r);
    if (ret == MHD_YES)
        c->resp = r; /* queued: the connection's reference keeps it */
    MHD_destroy_response(r);
    if (ret == MHD_YES)
        c->watch = hw_watch(c->fd, sse_gone, c);
    return ret;
}

/* MHD thread, once the request is over: after this the reader never runs. */
void sse_completed(void *state)
{
    sse_conn *c = state;
    hw_unwatch(c->watch); /* before MHD closes the socket; no sub lock held */
    held_remove(&c->reg);
    pthread_mutex_lock(&flush_lock); /* not in a flusher's round, and off the list */
    pthread_mutex_lock(&pend_lock);
    if (c->pend_idx != PEND_NONE)
        pend_arr[c->pend_idx] = NULL;
    c->pend_idx = PEND_NONE;
    pthread_mutex_unlock(&pend_lock);
    pthread_mutex_unlock(&flush_lock);
    sub *s = c->s;
    pthread_mutex_lock(&s->lock);
    if (s->owner == c)
        sub_attach(s, NULL, NULL);
    pthread_mutex_unlock(&s->lock);
    c->ended(c->session);
    buf_free(&c->farewell_buf);
    free(c);
}

/* ------------------------------------------------------- all streams */

typedef struct poke_what {
    bool keepalive, closing;
} poke_what;

/* Registry lock held (a walk's hook): marks a stream and wakes it. */
static void poke(void *owner, void *arg)
{
    sse_conn *c = owner;
    const poke_what *what = arg;
    pthread_mutex_lock(&c->s->lock);
    c->keepalive_due |= what->keepalive;
    c->closing |= what->closing;
    if (c->suspended && c->conn) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
    pthread_mutex_unlock(&c->s->lock);
}

void sse_keepalive(void)
{
    held_for_each(HELD_STREAM, poke, &(poke_what){.keepalive = true});
}

void sse_shutdown(void)
{
    held_shutdown(HELD_STREAM, poke, &(poke_what){.closing = true});
}
