/* SPDX-License-Identifier: MIT */
/*
 * ws_owner.c - the hub WebSocket upgrades waiting for the backplane's
 * claim of their connection token (ws_owner.h): what the claim's answer
 * does with the socket, and the bounced sockets. The waiting list, the
 * queue of answers and the eventfd are an acceptor_wait (acceptor_wait.h,
 * its threading rules): the entry's who and ws_key belong to the acceptor;
 * result is written by the claim's callback before aw_done, and read by
 * settle after. See docs/concurrency.md.
 */
#include "gateway/ws_owner.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/client_addr.h"
#include "common/clock.h"
#include "common/list.h"
#include "common/log.h"
#include "common/linger.h"
#include "gateway/acceptor_wait.h"
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
    aw_entry e;
    access_principal *who;
    char ws_key[WS_KEY_MAX + 1];
    sr_ws_claim_result result; /* the answer */
} owner_wait;

static void settle(aw_entry *e);
static void release(aw_entry *e);

static const cfg *conf;
static int epoll_fd = -1;
static acceptor_wait waits =
    ACCEPTOR_WAIT_INIT(waits, TAG, "the WebSocket claims'", settle, release);
static list_node bouncing = LIST_INIT(bouncing); /* acceptor */
static unsigned bounce_count;                    /* acceptor */

int ws_owner_init(const cfg *c, int epfd)
{
    conf = c;
    epoll_fd = epfd;
    if (c->backplane.type != CFG_BACKPLANE_REDIS)
        return 0;
    return aw_init(&waits, epfd);
}

const void *ws_owner_wake_tag(void)
{
    return &waits;
}

unsigned ws_owner_waiting(void)
{
    return aw_waiting(&waits);
}

/* Any thread: the last reference went. */
static void release(aw_entry *e)
{
    owner_wait *w = (owner_wait *)e;
    access_unref(w->who);
    free(w);
}

/* The backplane's thread (or the acceptor's): the claim's answer, queued. */
static void claimed(void *arg, sr_ws_claim_result r)
{
    owner_wait *w = arg;
    w->result = r;
    aw_done(&waits, &w->e);
}

unsigned ws_owner_start(int fd, const struct sockaddr_storage *addr, size_t head_len,
                        access_principal *who, const char *id, size_t id_len, rh_span ws_key,
                        const char **error)
{
    if (ws_key.len > WS_KEY_MAX) {
        *error = "Sec-WebSocket-Key is too long";
        return 400;
    }
    if (!aw_on(&waits) ||
        (conf->limits.max_connections && aw_waiting(&waits) >= conf->limits.max_connections)) {
        *error = "too many WebSocket connections waiting for the backplane";
        return 503;
    }
    owner_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        *error = "out of memory";
        return 503;
    }
    w->who = who;
    memcpy(w->ws_key, ws_key.p, ws_key.len);
    w->ws_key[ws_key.len] = '\0';
    aw_add(&waits, &w->e, fd, head_len, addr);
    sr_ws_claim(id, id_len, claimed, w);
    return 0;
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
    for (size_t left = w->e.head_len; left;) { /* the head, read at last */
        ssize_t n = recv(w->e.fd, head, left < sizeof(head) ? left : sizeof(head), MSG_DONTWAIT);
        if (n <= 0) {
            close(w->e.fd);
            return;
        }
        left -= (size_t)n;
    }
    bounce_conn *b = bounce_count < BOUNCE_MAX ? calloc(1, sizeof(*b)) : NULL;
    if (!b) {
        close(w->e.fd);
        return;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char in[WS_KEY_MAX + sizeof(WS_GUID)], accept[64];
    int n = snprintf(in, sizeof(in), "%s" WS_GUID, w->ws_key);
    if (n < 0 || !EVP_Digest(in, (size_t)n, md, &md_len, EVP_sha1(), NULL)) {
        close(w->e.fd);
        return;
    }
    EVP_EncodeBlock((unsigned char *)accept, md, (int)md_len);
    char out[256];
    int len = snprintf(out, sizeof(out),
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                       accept);
    if (len <= 0 || (size_t)len >= sizeof(out) || write(w->e.fd, out, (size_t)len) != len) {
        free(b);
        close(w->e.fd);
        return;
    }
    LOG_DBG(TAG, "a stateful reconnect for a connection of another node: upgraded, to close 1013");
    b->fd = w->e.fd;
    b->close_at = clock_now_ms() + BOUNCE_WAIT_MS;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = b};
    list_push_back(&bouncing, &b->link);
    bounce_count++;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, b->fd, &ev))
        bounce_close(b);
}

/* Acceptor: the answer for e: the socket goes to libwebsockets, is
 * bounced, or is answered 404 (before the upgrade), logged once. */
static void settle(aw_entry *e)
{
    owner_wait *w = (owner_wait *)e;
    if (w->result == SR_WS_TAKEN) {
        ws_adopt(e->fd, e->head_len, w->who); /* ws.c takes the reference */
        w->who = NULL;
    } else if (w->result == SR_WS_ELSEWHERE) {
        bounce(w);
    } else {
        char addr[CLIENT_ADDR_MAX];
        client_addr_format((struct sockaddr *)&e->addr, NULL, NULL, false, addr, sizeof(addr));
        LOG_INFO(TAG, "404 to %s: a WebSocket for an unknown connection (or one of a dead node)",
                 addr);
        aw_refuse(e, 404, "no such connection");
    }
}

void ws_owner_answers(void)
{
    aw_answers(&waits);
}

void ws_owner_fini(void)
{
    if (!aw_on(&waits))
        return;
    aw_fini(&waits);
    while (!list_empty(&bouncing))
        bounce_close(list_entry(list_first(&bouncing), bounce_conn, link));
}
