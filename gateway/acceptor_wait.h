/* SPDX-License-Identifier: MIT */
/*
 * acceptor_wait.h - an acceptor-side wait for an asynchronous verdict from
 * another thread: the acceptor parks an upgrade's socket (its head still
 * unread) in a waiting list, another thread answers later, and an eventfd
 * in the acceptor's epoll wakes it to act on the verdict. No thread waits.
 * Used by ws_proxy.c (the connect proxy's verdict) and ws_owner.c (the
 * backplane's claim); each keeps its own policy: what the verdict is (in
 * its own struct that embeds an aw_entry) and what becomes of the socket
 * (its settle callback).
 *
 * Threading: the acceptor thread does everything here but aw_done, which
 * any thread may call (once per entry): it queues the entry under the
 * wait's done_lock and writes the eventfd under it. Each entry has two
 * references: the acceptor's (while it is in `waiting`) and the verdict's
 * (until the acceptor took it off the queue, or, after aw_fini, until
 * aw_done ran). The entry's fd, head_len, addr and link, and whatever the
 * user keeps for the acceptor, belong to the acceptor; the verdict is
 * written before aw_done and read by settle, after the acceptor took the
 * entry off the queue under the same lock.
 *
 * done_lock (level 6, a leaf: nothing is called under it but the
 * eventfd's write, which takes no lock) guards `answers` and `gone`. See
 * docs/concurrency.md ("acceptor_wait").
 */
#ifndef CRIER_ACCEPTOR_WAIT_H
#define CRIER_ACCEPTOR_WAIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/list.h"

/* One waiting socket; the user's entry embeds it. */
typedef struct aw_entry {
    atomic_int refs;
    int fd;          /* acceptor; -1 after settle */
    size_t head_len; /* the head's bytes, unread */
    struct sockaddr_storage addr;
    list_node link;        /* acceptor: in `waiting` */
    list_node answer_link; /* done_lock: in `answers` */
} aw_entry;

typedef struct acceptor_wait {
    const char *tag;  /* the log's tag */
    const char *what; /* names the eventfd in the error log */
    /* Acceptor: the verdict for e came and its client is still there: hand
     * e->fd over or answer it (the socket is settle's then). */
    void (*settle)(aw_entry *e);
    /* Any thread: the last reference to e went; frees it. */
    void (*release)(aw_entry *e);
    int wake_fd;
    list_node waiting; /* acceptor */
    unsigned count;    /* acceptor */
    pthread_mutex_t done_lock;
    list_node answers; /* done_lock */
    bool gone;         /* done_lock: after aw_fini */
} acceptor_wait;

/* A wait defined in place (a static), off until aw_init. */
#define ACCEPTOR_WAIT_INIT(name, tag_, what_, settle_, release_)                                   \
    {                                                                                              \
        .tag = (tag_), .what = (what_), .settle = (settle_), .release = (release_), .wake_fd = -1, \
        .waiting = LIST_INIT((name).waiting), .done_lock = PTHREAD_MUTEX_INITIALIZER,              \
        .answers = LIST_INIT((name).answers)                                                       \
    }

/* Acceptor thread, before it waits: its eventfd joins epfd (data.ptr q).
 * Returns 0 or -1 (logged). */
int aw_init(acceptor_wait *q, int epfd);

/* True after a successful aw_init (until aw_fini). */
bool aw_on(const acceptor_wait *q);

/* Sockets waiting now. */
unsigned aw_waiting(const acceptor_wait *q);

/* Acceptor: e (zeroed but for the user's fields) waits with its socket fd
 * now, two references taken. Ask for the verdict after this. */
void aw_add(acceptor_wait *q, aw_entry *e, int fd, size_t head_len,
            const struct sockaddr_storage *addr);

/* Any thread, once per entry, after it wrote the verdict: queues e for the
 * acceptor and wakes it (or, after aw_fini, drops the verdict's reference). */
void aw_done(acceptor_wait *q, aw_entry *e);

/* Acceptor, when the eventfd (data.ptr q) fired: settles every entry whose
 * verdict came (a client that hung up meanwhile is just closed). */
void aw_answers(acceptor_wait *q);

/* Acceptor: answers e's socket status {"error": error} before any upgrade,
 * gently (the head is unread: a plain close would reset the socket and
 * could lose the answer). The caller logs. */
void aw_refuse(aw_entry *e, unsigned status, const char *error);

/* Acceptor thread, as it ends: answers the waiting sockets 503 and closes
 * them; a verdict that comes later only drops its reference. */
void aw_fini(acceptor_wait *q);

#endif
