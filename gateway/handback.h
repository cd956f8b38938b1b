/* SPDX-License-Identifier: MIT */
/*
 * handback.h - kept-alive connections given back to the acceptor between
 * two requests. The long-poll daemon (http.c) serves one request with a
 * small memory pool, then hands its socket back (a duplicate of it): the
 * acceptor reads the next request's head as that of a new connection, with
 * all its checks (limits.max_header_bytes, limits.header_timeout_s), and
 * routes it afresh, so an idle poller holds no libmicrohttpd pool between
 * polls and every later request still meets the documented header limit.
 *
 * Threading: handback_put may be called by any thread (the poll daemon's);
 * everything else is the acceptor's (handback_init on main before it
 * starts, handback_fini when it stops, or on main when the start fails). back_lock (a leaf, level
 * 6: nothing is taken under it but the eventfd's write, which takes no lock) guards the queue and
 * `open`. See docs/concurrency.md.
 */
#ifndef CRIER_HANDBACK_H
#define CRIER_HANDBACK_H

#include <stdbool.h>

/* Main, before the acceptor starts: the eventfd joins epfd (data.ptr
 * handback_tag()). Returns 0 or -1 (logged). */
int handback_init(int epfd);

/* The epoll tag of the queue's eventfd. */
const void *handback_tag(void);

/* Any thread: queues fd (a connected socket whose next request has not
 * been read) for the acceptor, which owns it from now. Closes it instead
 * when the acceptor does not take any (not started, or stopped). */
void handback_put(int fd);

/* Acceptor thread, on its tag's event: gives each queued socket to adopt,
 * which owns it then. */
void handback_take(void (*adopt)(int fd));

/* Acceptor thread, at its end: closes what is queued; later puts close
 * their socket at once. */
void handback_fini(void);

#endif
