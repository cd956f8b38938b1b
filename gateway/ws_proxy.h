/* SPDX-License-Identifier: MIT */
/*
 * ws_proxy.h - the connect proxy (upstream.connect) for the plain
 * WebSocket (/rooms/{room}/ws): the acceptor parks the upgrade's socket in
 * a "waiting" list while the backend decides (hc_post; no thread waits),
 * then hands it to libwebsockets with the backend's principal, or answers
 * the refusal (401/403, 502/503/504) before any upgrade.
 *
 * Threading: everything here on the acceptor thread but the call's done
 * callback (curl thread, or the acceptor's own when hc_post refuses at
 * once, or main at hc_stop), which only queues the verdict under a small
 * lock and wakes the acceptor's epoll through an eventfd. See
 * docs/concurrency.md ("ws_proxy").
 */
#ifndef CRIER_WS_PROXY_H
#define CRIER_WS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/cfg.h"
#include "gateway/request_head.h"

/* Acceptor thread, before it waits: its eventfd joins epfd (its epoll
 * data.ptr is ws_proxy_wake_tag()). Returns 0 or -1. Nothing is done
 * (and 0 returned) without upstream.connect. */
int ws_proxy_init(const cfg *c, int epfd);

/* True when the proxy is on (upstream.connect is set). */
bool ws_proxy_enabled(void);

/* The epoll data.ptr of the wake-up eventfd. */
const void *ws_proxy_wake_tag(void);

/* Takes the socket fd of a plain WebSocket upgrade that passed the other
 * checks (its head h, room its {room}) and asks the backend. Returns 0
 * (the socket is ws_proxy's now) or the status to answer (503: too many
 * waiting, or out of memory), with *error set; then fd stays the caller's. */
unsigned ws_proxy_start(int fd, const struct sockaddr_storage *addr, const request_head *h,
                        const char *room, const char **error);

/* The eventfd fired: hands over or answers every socket whose verdict came. */
void ws_proxy_answers(void);

/* Sockets waiting for a verdict now. */
unsigned ws_proxy_waiting(void);

/* Acceptor thread, as it ends: answers the waiting sockets 503 and closes
 * them; a verdict that comes later only drops its reference. */
void ws_proxy_fini(void);

#endif
