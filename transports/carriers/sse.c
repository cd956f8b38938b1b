/* SPDX-License-Identifier: MIT */
/*
 * sse.c - Server-Sent Events streams on libmicrohttpd.
 *
 * A stream is an MHD response fed by a content reader that drains one sub.
 * The reader copies as many queued events as fit into MHD's buffer (one
 * write for a batch); when nothing is queued it suspends the connection,
 * and the sub's wake resumes it. Returning 0 without suspending would make
 * MHD spin.
 *
 * Threading: the reader and the handlers run on the MHD thread of the
 * stream's daemon (a stream stays on one; http.c has three). sse_wake
 * runs on the publisher's thread with the sub lock held; it only calls
 * MHD_resume_connection, which is safe from any thread on a connection that
 * is suspended (tracked in `suspended`, under the sub lock), or shuts the
 * socket of a dropped stream. The registry (all live streams) has its own
 * lock, taken before any sub lock.
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

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/limits.h"
#include "common/log.h"
#include "transports/carriers/held_watch.h"

#define TAG "sse"
/* The most the content reader is offered at once. Each stream's response
 * holds a buffer this big for its whole life: 1 KiB measured as fast as
 * 4 KiB for fanout (10000 streams × 100 messages) and 3 KB lighter per idle
 * stream. */
#define SSE_BLOCK 1024

typedef struct sse_conn {
    sub *s;
    struct MHD_Connection *conn;
    int fd;              /* set once; -1 when unknown; valid until sse_completed */
    bool suspended;      /* sub lock */
    bool closing;        /* sub lock: shutdown; end after what is queued */
    bool keepalive_due;  /* sub lock */
    bool gone;           /* sub lock: the client closed its socket */
    hw_entry *watch;     /* MHD thread */
    const char *hello;   /* MHD thread: sent first, then NULL */
    size_t offset;       /* MHD thread: bytes of the queue head already sent */
    void (*ended)(void *session);
    void *session;
    struct sse_conn *prev, *next; /* registry */
} sse_conn;

/* The plain room stream's own sub. */
typedef struct room_stream {
    sub s;
} room_stream;

static const cfg *conf;
static hub *the_hub;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static sse_conn *registry;
static bool shutting_down; /* registry_lock */
static unsigned stream_count; /* registry_lock */

void sse_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

/* Sub lock held, any thread: news for the stream. A dropped stream whose
 * reader is not parked is blocked writing to a client that does not read:
 * shut its socket, so that MHD notices now rather than at its idle timeout. */
static void sse_wake(sub *s)
{
    sse_conn *c = s->owner;
    if (c->suspended && c->conn) {
        c->suspended = false;
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
    msg *m;
    while (n < max && (m = sendq_peek(&s->q)) != NULL) {
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
    if (n) {
        ret = (ssize_t)n;
    } else if (s->dropped || s->ending || c->closing) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (c->keepalive_due) {
        c->keepalive_due = false;
        ret = (ssize_t)copy_literal(out, max, ":\n\n");
    } else {
        c->suspended = true;
        MHD_suspend_connection(c->conn);
        ret = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static void registry_add(sse_conn *c)
{
    pthread_mutex_lock(&registry_lock);
    c->next = registry;
    if (registry)
        registry->prev = c;
    registry = c;
    stream_count++;
    if (shutting_down)
        c->closing = true; /* not yet attached: no sub lock needed */
    pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(sse_conn *c)
{
    pthread_mutex_lock(&registry_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        registry = c->next;
    if (c->next)
        c->next->prev = c->prev;
    stream_count--;
    pthread_mutex_unlock(&registry_lock);
}

unsigned sse_streams(void)
{
    pthread_mutex_lock(&registry_lock);
    unsigned n = stream_count;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

enum MHD_Result sse_stream(http_call *call, sub *s, const char *hello,
                           void (*ended)(void *session), void *session)
{
    sse_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        ended(session);
        return MHD_NO;
    }
    c->s = s;
    c->conn = call->conn;
    c->hello = hello;
    c->ended = ended;
    c->session = session;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(call->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    *call->state = c;
    registry_add(c);
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
    enum MHD_Result ret = http_queue(call->conn, MHD_HTTP_OK, r);
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
    registry_remove(c);
    sub *s = c->s;
    pthread_mutex_lock(&s->lock);
    if (s->owner == c)
        sub_attach(s, NULL, NULL);
    pthread_mutex_unlock(&s->lock);
    c->ended(c->session);
    free(c);
}

/* ------------------------------------------------ plain room streams */

static void room_stream_ended(void *session)
{
    room_stream *rs = session;
    hub_leave(the_hub, &rs->s);
    sub_fini(&rs->s);
    free(rs);
}

/* The resume cursor: the Last-Event-ID header (what EventSource sends when
 * it reconnects) or ?last_event_id=, as "EPOCH:N" or "N". */
static bool parse_resume_id(http_call *call, uint64_t *since, char *epoch, bool *has)
{
    const char *v = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (!v)
        v = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "last_event_id");
    *has = v != NULL;
    return !v || hub_parse_cursor(v, since, epoch);
}

enum MHD_Result sse_handle(http_call *call)
{
    if (*call->state)
        return MHD_YES; /* the stream is running; nothing to do per call */
    uint64_t since = 0;
    char epoch[MSG_EPOCH_MAX] = "";
    bool resume = false;
    if (!parse_resume_id(call, &since, epoch, &resume))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "Last-Event-ID / last_event_id must be EPOCH:N or N, with N a "
                                "non-negative integer");
    room_stream *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return MHD_NO;
    sub_init(&rs->s, SUB_SSE, MSG_FMT_SSE, conf->limits.send_queue);
    int rc = resume ? hub_resume(the_hub, call->room, &rs->s, since, epoch[0] ? epoch : NULL)
                    : hub_join(the_hub, call->room, &rs->s, 0, true);
    if (rc) {
        sub_fini(&rs->s);
        free(rs);
        if (rc == -ENOSPC || rc == -EMLINK) /* a limit: logged once per burst */
            return http_reply_refused(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, 0,
                                      limit_join_error(rc));
        return http_reply_error(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot join room");
    }
    return sse_stream(call, &rs->s, ": crier\nretry: 2000\n\n", room_stream_ended, rs);
}

/* ------------------------------------------------------- all streams */

/* Registry lock held: marks c and wakes it. */
static void poke(sse_conn *c, bool keepalive, bool closing)
{
    pthread_mutex_lock(&c->s->lock);
    c->keepalive_due |= keepalive;
    c->closing |= closing;
    if (c->suspended && c->conn) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
    pthread_mutex_unlock(&c->s->lock);
}

void sse_keepalive(void)
{
    pthread_mutex_lock(&registry_lock);
    for (sse_conn *c = registry; c; c = c->next)
        poke(c, true, false);
    pthread_mutex_unlock(&registry_lock);
}

void sse_shutdown(void)
{
    pthread_mutex_lock(&registry_lock);
    shutting_down = true;
    for (sse_conn *c = registry; c; c = c->next)
        poke(c, false, true);
    pthread_mutex_unlock(&registry_lock);
}
