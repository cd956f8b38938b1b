/* SPDX-License-Identifier: MIT */
/*
 * ws_owner.c - the hub WebSocket upgrades waiting for the backplane's
 * claim of their connection token (ws_owner.h): owns the list of them, the
 * queue of answers, and the eventfd that wakes the acceptor.
 *
 * A waiting entry has two references: the acceptor's (while it is in
 * `waiting`) and the claim's (until the acceptor took its answer off the
 * queue, or, after ws_owner_fini, until the callback ran). The entry's fd,
 * head_len, addr, who and link belong to the acceptor; taken is written
 * by the callback before it queues the entry under done_lock, and read by
 * the acceptor after it took it off under the same lock.
 *
 * done_lock (level 6, a leaf: nothing is called under it but the
 * eventfd's write, which takes no lock) guards `answers` and acceptor_gone.
 * See docs/concurrency.md.
 */
#include "gateway/ws_owner.h"

#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/client_addr.h"
#include "common/clock.h"
#include "common/list.h"
#include "common/log.h"
#include "common/linger.h"
#include "gateway/raw_reply.h"
#include "transports/carriers/ws.h"
#include "transports/signalr/signalr.h"

#define TAG "signalr"
#define WS_KEY_MAX 64 /* bytes of a Sec-WebSocket-Key kept (a real one is 24) */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define BOUNCE_REASON "this connection is held by another node"
#define BOUNCE_QUIET_MS 200 /* a bounced socket closes this long after the client's first frame */
#define BOUNCE_WAIT_MS 2000 /* ... or this long after the 101 */
#define BOUNCE_MAX 1024     /* bounced sockets open at once (more: closed at once) */

/* A bounced socket: upgraded, waiting to be closed (acceptor). */
typedef struct bounce_conn {
    int fd;
    int64_t close_at;
    bool heard; /* the client sent its first frame */
    list_node link;
} bounce_conn;

typedef struct owner_wait {
    atomic_int refs;
    int fd;
    size_t head_len;
    struct sockaddr_storage addr;
    access_principal *who;
    list_node link;        /* acceptor: in `waiting` */
    list_node answer_link; /* done_lock: in `answers` */
    char ws_key[WS_KEY_MAX + 1];
    sr_ws_claim_result result; /* the answer */
} owner_wait;

static const cfg *conf;
static int wake_fd = -1;
static char wake_tag;
static int epoll_fd = -1;
static list_node waiting = LIST_INIT(waiting);   /* acceptor */
static list_node bouncing = LIST_INIT(bouncing); /* acceptor */
static unsigned bounce_count;                    /* acceptor */
static unsigned wait_count;                      /* acceptor */
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static list_node answers = LIST_INIT(answers); /* done_lock */
static bool acceptor_gone;                     /* done_lock */

int ws_owner_init(const cfg *c, int epfd)
{
    conf = c;
    epoll_fd = epfd;
    if (c->backplane.type != CFG_BACKPLANE_REDIS)
        return 0;
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &wake_tag};
    if (wake_fd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, wake_fd, &ev)) {
        LOG_ERR(TAG, "cannot make the WebSocket claims' eventfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

const void *ws_owner_wake_tag(void)
{
    return &wake_tag;
}

unsigned ws_owner_waiting(void)
{
    return wait_count;
}

static void wait_unref(owner_wait *w)
{
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    access_unref(w->who);
    free(w);
}

/* The backplane's thread (or the acceptor's): the claim's answer, queued. */
static void claimed(void *arg, sr_ws_claim_result r)
{
    owner_wait *w = arg;
    w->result = r;
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

unsigned ws_owner_start(int fd, const struct sockaddr_storage *addr, size_t head_len,
                        access_principal *who, const char *id, size_t id_len, rh_span ws_key,
                        const char **error)
{
    if (ws_key.len > WS_KEY_MAX) {
        *error = "Sec-WebSocket-Key is too long";
        return 400;
    }
    if (wake_fd < 0 ||
        (conf->limits.max_connections && wait_count >= conf->limits.max_connections)) {
        *error = "too many WebSocket connections waiting for the backplane";
        return 503;
    }
    owner_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        *error = "out of memory";
        return 503;
    }
    atomic_init(&w->refs, 2);
    w->fd = fd;
    w->head_len = head_len;
    w->addr = *addr;
    w->who = who;
    memcpy(w->ws_key, ws_key.p, ws_key.len);
    w->ws_key[ws_key.len] = '\0';
    list_push_back(&waiting, &w->link);
    wait_count++;
    sr_ws_claim(id, id_len, claimed, w);
    return 0;
}

/* The client closed its side while it waited (its head is still unread:
 * only a hang-up tells). */
static bool client_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Ends a bounced socket: the close frame (1013, try again), gently. */
static void bounce_close(bounce_conn *b)
{
    static const char frame[] = "\x88\x29\x03\xf5" BOUNCE_REASON;
    _Static_assert(sizeof(BOUNCE_REASON) - 1 + 2 == 0x29, "the close frame's length");
    if (write(b->fd, frame, sizeof(frame) - 1) < 0) {
        /* the client is gone: nothing to tell */
    }
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, b->fd, NULL);
    shutdown(b->fd, SHUT_WR);
    linger_add(b->fd, clock_now_ms());
    list_remove(&b->link);
    bounce_count--;
    free(b);
}

/* Reads and drops what the client sent; false when it is gone (or the
 * read failed). */
static bool drain(int fd)
{
    char junk[4096];
    for (;;) {
        ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
        if (n > 0)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
}

bool ws_owner_bounce_event(void *ptr)
{
    list_for_each_safe (n, next, &bouncing) {
        bounce_conn *b = list_entry(n, bounce_conn, link);
        if (b != ptr)
            continue;
        if (!drain(b->fd)) {
            epoll_ctl(epoll_fd, EPOLL_CTL_DEL, b->fd, NULL);
            close(b->fd);
            list_remove(&b->link);
            bounce_count--;
            free(b);
        } else if (!b->heard) {
            b->heard = true;
            b->close_at = clock_now_ms() + BOUNCE_QUIET_MS;
        }
        return true;
    }
    return false;
}

void ws_owner_tick(int64_t now_ms)
{
    list_for_each_safe (n, next, &bouncing) {
        bounce_conn *b = list_entry(n, bounce_conn, link);
        if (now_ms >= b->close_at)
            bounce_close(b);
    }
}

/* A stateful reconnect that landed on a node that does not hold it: 101,
 * and a while later a close frame (1013, try again), nothing read but
 * dropped: the client opens its next socket. The close waits until the
 * client has resent what it had (its Sequence record first): the official
 * client's resend fails, and it starts a new connection, when the socket
 * closes before. */
static void bounce(owner_wait *w)
{
    char head[4096];
    for (size_t left = w->head_len; left;) { /* the head, read at last */
        ssize_t n = recv(w->fd, head, left < sizeof(head) ? left : sizeof(head), MSG_DONTWAIT);
        if (n <= 0) {
            close(w->fd);
            return;
        }
        left -= (size_t)n;
    }
    bounce_conn *b = bounce_count < BOUNCE_MAX ? calloc(1, sizeof(*b)) : NULL;
    if (!b) {
        close(w->fd);
        return;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char in[WS_KEY_MAX + sizeof(WS_GUID)], accept[64];
    int n = snprintf(in, sizeof(in), "%s" WS_GUID, w->ws_key);
    if (n < 0 || !EVP_Digest(in, (size_t)n, md, &md_len, EVP_sha1(), NULL)) {
        close(w->fd);
        return;
    }
    EVP_EncodeBlock((unsigned char *)accept, md, (int)md_len);
    char out[256];
    int len = snprintf(out, sizeof(out),
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                       accept);
    if (len <= 0 || (size_t)len >= sizeof(out) || write(w->fd, out, (size_t)len) != len) {
        free(b);
        close(w->fd);
        return;
    }
    LOG_DBG(TAG, "a stateful reconnect for a connection of another node: upgraded, to close 1013");
    b->fd = w->fd;
    b->close_at = clock_now_ms() + BOUNCE_WAIT_MS;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = b};
    list_push_back(&bouncing, &b->link);
    bounce_count++;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, b->fd, &ev))
        bounce_close(b);
}

/* The answer for w: the socket goes to libwebsockets, is bounced, or is
 * answered 404 gently (its head is unread: a plain close would reset the
 * socket and could lose the answer), logged once. */
static void settle(owner_wait *w)
{
    if (client_gone(w->fd)) {
        close(w->fd);
    } else if (w->result == SR_WS_TAKEN) {
        ws_adopt(w->fd, w->head_len, w->who); /* ws.c takes the reference */
        w->who = NULL;
    } else if (w->result == SR_WS_ELSEWHERE) {
        bounce(w);
    } else {
        char addr[CLIENT_ADDR_MAX];
        client_addr_format((struct sockaddr *)&w->addr, NULL, NULL, false, addr, sizeof(addr));
        LOG_INFO(TAG, "404 to %s: a WebSocket for an unknown connection (or one of a dead node)",
                 addr);
        raw_reply_error(w->fd, 404, NULL, "no such connection");
        shutdown(w->fd, SHUT_WR);
        linger_add(w->fd, clock_now_ms());
    }
    w->fd = -1;
}

void ws_owner_answers(void)
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
        owner_wait *w = list_entry(n, owner_wait, answer_link);
        list_remove(n);
        settle(w);
        list_remove(&w->link);
        wait_count--;
        wait_unref(w); /* the acceptor's */
        wait_unref(w); /* the claim's */
    }
}

void ws_owner_fini(void)
{
    if (wake_fd < 0)
        return;
    list_node got = LIST_INIT(got);
    pthread_mutex_lock(&done_lock);
    acceptor_gone = true;
    list_move_all(&got, &answers);
    pthread_mutex_unlock(&done_lock);
    for (list_node *n; (n = list_first(&got));) {
        list_remove(n);
        wait_unref(list_entry(n, owner_wait, answer_link)); /* the claim's */
    }
    for (list_node *n; (n = list_first(&waiting));) {
        owner_wait *w = list_entry(n, owner_wait, link);
        raw_reply_error(w->fd, 503, NULL, "shutting down");
        close(w->fd);
        list_remove(n);
        wait_count--;
        wait_unref(w); /* the acceptor's; a claim still running holds its own */
    }
    while (!list_empty(&bouncing))
        bounce_close(list_entry(list_first(&bouncing), bounce_conn, link));
    close(wake_fd);
    wake_fd = -1;
}
