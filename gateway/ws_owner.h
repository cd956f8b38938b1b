/* SPDX-License-Identifier: MIT */
/*
 * ws_owner.h - clustered SignalR: a WebSocket upgrade for a connection
 * token this node does not hold waits in the acceptor for the backplane's
 * claim (no thread waits): when this node becomes the connection's owner
 * (the first transport of a token negotiated anywhere) the socket goes to
 * libwebsockets. When a live node holds it (a stateful reconnect that round
 * robin sent to another node) the upgrade is answered 101 and at once
 * closed with 1013 (try again), no hub record sent or read: the official
 * client's stateful reconnect opens a new socket at each close, and the
 * next one lands on another node, until it reaches the owner, which
 * resumes the connection with nothing lost. When its node is dead (or the
 * token unknown, or closed) it is answered 404 {"error":"no such
 * connection"} before the upgrade, as ASP.NET answers an unknown
 * connection, and the client starts a new connection.
 *
 * Threading: everything here on the acceptor thread but the claim's
 * callback (the backplane's thread, or the acceptor's own when the claim
 * answers at once), which only queues the answer under a small lock and
 * wakes the acceptor's epoll through an eventfd. See docs/concurrency.md
 * ("ws_owner").
 */
#ifndef CRIER_WS_OWNER_H
#define CRIER_WS_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/access.h"
#include "common/cfg.h"
#include "gateway/request_head.h"

/* Acceptor thread, before it waits: with the Redis backplane, its eventfd
 * joins epfd (data.ptr ws_owner_wake_tag()). Returns 0 or -1. */
int ws_owner_init(const cfg *c, int epfd);

/* The epoll data.ptr of the wake-up eventfd. */
const void *ws_owner_wake_tag(void);

/* Takes the socket fd of a hub WebSocket upgrade that passed every other
 * check (head_len: its head's bytes, unread; who: its principal, a
 * reference taken) and claims its token (id, id_len: the id= value).
 * Returns 0 (the socket is ws_owner's now) or the status to answer (503:
 * too many waiting, or out of memory), with *error; then fd and who stay
 * the caller's. */
unsigned ws_owner_start(int fd, const struct sockaddr_storage *addr, size_t head_len,
                        access_principal *who, const char *id, size_t id_len, rh_span ws_key,
                        const char **error);

/* The eventfd fired: hands over or answers every socket whose claim came. */
void ws_owner_answers(void);

/* An epoll event of a socket ws_owner bounces (data.ptr ptr): handled,
 * true; false when ptr is none of them. */
bool ws_owner_bounce_event(void *ptr);

/* Acceptor thread, now and then: closes the bounced sockets due. */
void ws_owner_tick(int64_t now_ms);

/* Sockets waiting for a claim now. */
unsigned ws_owner_waiting(void);

/* Acceptor thread, as it ends: answers the waiting sockets 503 and closes
 * them; a claim answered later only drops its reference. */
void ws_owner_fini(void);

#endif
