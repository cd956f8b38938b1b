/* SPDX-License-Identifier: MIT */
/*
 * ws_proxy.c - the connect proxy (upstream.connect) for the plain
 * WebSocket: owns the list of upgrades waiting for the backend's verdict,
 * the queue of verdicts, and the eventfd that wakes the acceptor.
 *
 * A waiting entry has two references: the acceptor's (while it is in
 * `waiting`) and the call's (until the acceptor took its verdict off the
 * queue, or, after ws_proxy_fini, until the callback ran). The entry's fd,
 * head_len, room, addr and link belong to the acceptor; who, status and
 * error are written by the callback before it queues the entry under
 * done_lock, and read by the acceptor after it took it off under the same
 * lock.
 *
 * done_lock (level 6, a leaf: nothing is called under it but the eventfd's
 * write, which takes no lock) guards `answers` and acceptor_gone. See docs/concurrency.md.
 */
#include "gateway/ws_proxy.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/access.h"
#include "common/client_addr.h"
#include "common/clock.h"
#include "hub/hub.h"
#include "common/list.h"
#include "common/log.h"
#include "common/upstream.h"
#include "common/linger.h"
#include "gateway/raw_reply.h"
#include "transports/carriers/http_client.h"
#include "transports/carriers/ws.h"

#define TAG "ws_proxy"
#define QUERY_KEYS_MAX 64 /* query parameters passed on, as plain/connect.c's */

typedef struct proxy_wait {
    atomic_int refs;
    int fd;
    size_t head_len;
    struct sockaddr_storage addr;
    char room[ROOM_NAME_MAX + 1];
    list_node link;        /* acceptor: in `waiting` */
    list_node answer_link; /* done_lock: in `answers` */
    access_principal *who; /* the verdict: accepted (a reference) */
    unsigned status;       /* refused */
    char *error;
} proxy_wait;

static const cfg *conf;
static int wake_fd = -1;
static char wake_tag;
static list_node waiting = LIST_INIT(waiting); /* acceptor */
static unsigned wait_count;                    /* acceptor */
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static list_node answers = LIST_INIT(answers); /* done_lock */
static bool acceptor_gone;                     /* done_lock */

int ws_proxy_init(const cfg *c, int epfd)
{
    conf = c;
    if (!c->upstream.connect[0])
        return 0;
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &wake_tag};
    if (wake_fd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, wake_fd, &ev)) {
        LOG_ERR(TAG, "cannot make the connect proxy's eventfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

bool ws_proxy_enabled(void)
{
    return conf && conf->upstream.connect[0];
}

const void *ws_proxy_wake_tag(void)
{
    return &wake_tag;
}

unsigned ws_proxy_waiting(void)
{
    return wait_count;
}

static void wait_unref(proxy_wait *w)
{
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    access_unref(w->who);
    free(w->error);
    free(w);
}

/* Any thread (the curl thread mostly): the verdict, queued for the acceptor. */
static void wait_done(void *arg, up_transfer t, long status, const char *body, size_t len)
{
    proxy_wait *w = arg;
    w->who = up_connect_read(t, status, body, len, conf->upstream.connect, &w->status, &w->error);
    pthread_mutex_lock(&done_lock);
    bool gone = acceptor_gone;
    if (!gone) {
        list_push_back(&answers, &w->answer_link);
        uint64_t one = 1;
        if (write(wake_fd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is full, so the acceptor is woken anyway */
        }
    }
    pthread_mutex_unlock(&done_lock);
    if (gone)
        wait_unref(w);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A query key or value percent-decoded ('+' a space), as MHD decodes its
 * arguments; a decoded NUL ends it. NULL unless UTF-8 (or on ENOMEM). */
static json_t *query_text(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = 0, lo = 0;
        if (s[i] == '%' && i + 2 < len && (hi = hex_digit(s[i + 1])) >= 0 &&
            (lo = hex_digit(s[i + 2])) >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    json_t *j = json_stringn(out, strnlen(out, n));
    free(out);
    return j;
}

/* The raw query as {"key": "value", ...} (the first of each key). */
static json_t *query_object(const char *query)
{
    json_t *o = json_object();
    for (const char *p = query; o && p && *p && json_object_size(o) < QUERY_KEYS_MAX;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        json_t *k = klen ? query_text(p, klen) : NULL;
        json_t *v = k ? (eq ? query_text(eq + 1, len - klen - 1) : json_string("")) : NULL;
        if (k && v && !json_object_get(o, json_string_value(k)))
            json_object_set(o, json_string_value(k), v);
        json_decref(k);
        json_decref(v);
        p = end ? end + 1 : p + len;
    }
    return o;
}

static void set_span(json_t *o, const char *key, rh_span s)
{
    json_t *v = s.p ? json_stringn(s.p, s.len) : NULL;
    if (v)
        json_object_set_new(o, key, v);
}

/* {"hub": null, "headers": {Cookie?, Authorization?}, "query", "room",
 * "transport": "websocket"}: what plain/connect.c sends for SSE. */
static char *ask_body(const request_head *h, const char *room)
{
    json_t *o = json_object(), *headers = json_object();
    set_span(headers, "Cookie", h->cookie);
    set_span(headers, "Authorization", h->authorization);
    json_object_set_new(o, "hub", json_null());
    json_object_set_new(o, "headers", headers);
    json_object_set_new(o, "query", query_object(h->query));
    json_object_set_new(o, "room", json_string(room));
    json_object_set_new(o, "transport", json_string("websocket"));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

unsigned ws_proxy_start(int fd, const struct sockaddr_storage *addr, const request_head *h,
                        const char *room, const char **error)
{
    if (wait_count >= conf->upstream.max_in_flight) {
        *error = "too many connections waiting for upstream.connect";
        return 503;
    }
    char *body = ask_body(h, room);
    proxy_wait *w = body ? calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        free(body);
        *error = "out of memory";
        return 503;
    }
    atomic_init(&w->refs, 2);
    w->fd = fd;
    w->head_len = h->head_len;
    w->addr = *addr;
    snprintf(w->room, sizeof(w->room), "%s", room);
    list_push_back(&waiting, &w->link);
    wait_count++;
    hc_post(conf->upstream.connect, body, strlen(body), conf->upstream.timeout_ms, false, wait_done,
            w);
    return 0;
}

/* The client closed its side while it waited (its head is still unread:
 * only a hang-up tells). */
static bool client_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Answers a refusal before the upgrade, gently (the head is unread: a plain
 * close would reset the socket and could lose the answer), logged once. */
static void refuse(proxy_wait *w, unsigned status, const char *error)
{
    char addr[CLIENT_ADDR_MAX];
    client_addr_format((struct sockaddr *)&w->addr, NULL, NULL, false, addr, sizeof(addr));
    LOG_INFO(TAG, "%u to %s (room %s): %s", status, addr, w->room, error);
    raw_reply_error(w->fd, status, NULL, error);
    shutdown(w->fd, SHUT_WR);
    linger_add(w->fd, clock_now_ms());
}

/* The verdict for w: hand the socket to libwebsockets with the proxy's
 * principal if it may subscribe to the room, else answer. */
static void settle(proxy_wait *w)
{
    if (client_gone(w->fd)) {
        close(w->fd);
    } else if (!w->who) {
        refuse(w, w->status ? w->status : 502, w->error ? w->error : "refused by the upstream");
    } else {
        access_verdict v = access_room(conf, w->who, w->room, ACCESS_SUBSCRIBE);
        if (v == ACCESS_ALLOWED)
            ws_adopt(w->fd, w->head_len, access_ref(w->who)); /* ws.c takes the reference */
        else
            refuse(w, access_status(v), access_reason(v, ACCESS_SUBSCRIBE));
    }
    w->fd = -1;
}

void ws_proxy_answers(void)
{
    uint64_t count;
    if (read(wake_fd, &count, sizeof(count)) < 0) {
        /* EAGAIN: already read; the queue tells what came */
    }
    list_node got = LIST_INIT(got);
    pthread_mutex_lock(&done_lock);
    list_move_all(&got, &answers);
    pthread_mutex_unlock(&done_lock);
    for (list_node *n; (n = list_first(&got));) {
        proxy_wait *w = list_entry(n, proxy_wait, answer_link);
        list_remove(n);
        settle(w);
        list_remove(&w->link);
        wait_count--;
        wait_unref(w); /* the acceptor's */
        wait_unref(w); /* the call's */
    }
}

void ws_proxy_fini(void)
{
    if (!ws_proxy_enabled())
        return;
    list_node got = LIST_INIT(got);
    pthread_mutex_lock(&done_lock);
    acceptor_gone = true;
    list_move_all(&got, &answers);
    pthread_mutex_unlock(&done_lock);
    for (list_node *n; (n = list_first(&got));) {
        list_remove(n);
        wait_unref(list_entry(n, proxy_wait, answer_link)); /* the call's */
    }
    for (list_node *n; (n = list_first(&waiting));) {
        proxy_wait *w = list_entry(n, proxy_wait, link);
        raw_reply_error(w->fd, 503, NULL, "shutting down");
        close(w->fd);
        list_remove(n);
        wait_count--;
        wait_unref(w); /* the acceptor's; a call still running holds its own */
    }
    if (wake_fd >= 0)
        close(wake_fd);
    wake_fd = -1;
}
