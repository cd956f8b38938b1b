/* SPDX-License-Identifier: MIT */
/*
 * sse.c - Server-Sent Events subscribers (GET /rooms/{room}/events) on
 * libmicrohttpd.
 *
 * A stream is an MHD response fed by a content reader. The reader copies as
 * many queued events as fit into MHD's buffer (one write for a batch); when
 * nothing is queued it suspends the connection, and the hub's wake resumes
 * it. Returning 0 without suspending would make MHD spin.
 *
 * Threading: the reader and the handlers run on the MHD thread. wake and
 * dropped run on the publisher's thread with the sub lock held; they only
 * set flags and call MHD_resume_connection, which is safe from any thread on
 * a connection that is suspended (tracked in `suspended`, under the sub
 * lock). The registry (all live streams) has its own lock, taken before any
 * sub lock.
 */
#include "transports/sse.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/log.h"

#define TAG "sse"

typedef struct sse_conn {
    sub base; /* first: the hub sees only this */
    struct MHD_Connection *conn;
    int fd;              /* sub lock; -1 once MHD is done with it */
    bool suspended;      /* sub lock */
    bool ending;         /* sub lock: end the stream at the next read */
    bool keepalive_due;  /* sub lock */
    bool hello_sent;     /* MHD thread */
    size_t offset;       /* MHD thread: bytes of the queue head already sent */
    struct sse_conn *prev, *next; /* registry */
} sse_conn;

static const cfg *conf;
static hub *the_hub;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static sse_conn *registry;
static bool shutting_down; /* registry_lock */

static void sse_wake(sub *s)
{
    sse_conn *c = (sse_conn *)s;
    if (c->suspended && c->conn) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
}

/* The stream's queue was full. If the reader is parked, resume it so that it
 * ends the stream; if MHD is blocked writing to a client that does not read,
 * shut the socket so that MHD notices now rather than at its idle timeout. */
static void sse_dropped(sub *s, const char *why)
{
    sse_conn *c = (sse_conn *)s;
    (void)why;
    c->ending = true;
    c->offset = 0; /* the hub emptied the queue; nothing is half sent any more */
    if (c->suspended)
        sse_wake(s);
    else if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
}

static const sub_ops sse_ops = {
    .name = "sse",
    .kind = SUB_SSE,
    .fmt = MSG_FMT_SSE,
    .wake = sse_wake,
    .dropped = sse_dropped,
};

void sse_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

/* Sub lock held. Copies queued events into out, at most max bytes. */
static size_t copy_queued(sse_conn *c, char *out, size_t max)
{
    size_t n = 0;
    msg *m;
    while (n < max && (m = sendq_peek(&c->base.q)) != NULL) {
        msg_bytes b = msg_get(m, MSG_FMT_SSE);
        size_t take = b.len - c->offset;
        if (take > max - n)
            take = max - n;
        memcpy(out + n, b.base + c->offset, take);
        n += take;
        c->offset += take;
        if (c->offset == b.len) {
            c->offset = 0;
            sendq_pop(&c->base.q);
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
    ssize_t ret;
    (void)pos;
    pthread_mutex_lock(&c->base.lock);
    size_t n = 0;
    if (!c->hello_sent) {
        /* A first comment flushes the headers, so clients see the stream open. */
        n = copy_literal(out, max, ": crier\nretry: 2000\n\n");
        c->hello_sent = n > 0;
    }
    n += copy_queued(c, out + n, max - n); /* when ending too: flush what is queued */
    if (n) {
        ret = (ssize_t)n;
    } else if (c->ending) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (c->keepalive_due) {
        c->keepalive_due = false;
        ret = (ssize_t)copy_literal(out, max, ":\n\n");
    } else {
        c->suspended = true;
        MHD_suspend_connection(c->conn);
        ret = 0;
    }
    pthread_mutex_unlock(&c->base.lock);
    return ret;
}

static bool parse_resume_id(http_call *call, uint64_t *since, bool *has)
{
    const char *v = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (!v)
        v = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "last_event_id");
    *has = v != NULL;
    return !v || http_parse_u64(v, since);
}

static void registry_add(sse_conn *c)
{
    pthread_mutex_lock(&registry_lock);
    c->next = registry;
    if (registry)
        registry->prev = c;
    registry = c;
    if (shutting_down) {
        pthread_mutex_lock(&c->base.lock);
        c->ending = true;
        pthread_mutex_unlock(&c->base.lock);
    }
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
    pthread_mutex_unlock(&registry_lock);
}

static enum MHD_Result start_stream(http_call *call, sse_conn *c)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stream, c, NULL);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(call->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result sse_handle(http_call *call)
{
    if (*call->state)
        return MHD_YES; /* the stream is running; nothing to do per call */
    uint64_t since = 0;
    bool resume = false;
    if (!parse_resume_id(call, &since, &resume))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "Last-Event-ID / last_event_id must be a non-negative integer");
    sse_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return MHD_NO;
    sub_init(&c->base, &sse_ops, conf->limits.send_queue);
    c->conn = call->conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(call->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    if (hub_join(the_hub, call->room, &c->base, since, !resume)) {
        sub_fini(&c->base);
        free(c);
        return http_reply_error(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot join room");
    }
    *call->state = c;
    registry_add(c);
    return start_stream(call, c);
}

/* MHD thread, once the request is over: after this the reader never runs. */
void sse_completed(void *state)
{
    sse_conn *c = state;
    hub_leave(the_hub, &c->base);
    registry_remove(c);
    pthread_mutex_lock(&c->base.lock);
    c->conn = NULL;
    c->fd = -1;
    pthread_mutex_unlock(&c->base.lock);
    sub_fini(&c->base);
    free(c);
}

void sse_keepalive(void)
{
    pthread_mutex_lock(&registry_lock);
    for (sse_conn *c = registry; c; c = c->next) {
        pthread_mutex_lock(&c->base.lock);
        c->keepalive_due = true;
        sse_wake(&c->base);
        pthread_mutex_unlock(&c->base.lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

void sse_shutdown(void)
{
    pthread_mutex_lock(&registry_lock);
    shutting_down = true;
    for (sse_conn *c = registry; c; c = c->next) {
        pthread_mutex_lock(&c->base.lock);
        c->ending = true;
        sse_wake(&c->base);
        pthread_mutex_unlock(&c->base.lock);
    }
    pthread_mutex_unlock(&registry_lock);
}
