/* SPDX-License-Identifier: MIT */
/*
 * acceptor_wait.c - the waiting list, the queue of verdicts and the
 * eventfd of an acceptor-side wait (acceptor_wait.h, which has the
 * threading rules).
 */
#include "gateway/acceptor_wait.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/linger.h"
#include "gateway/raw_reply.h"

int aw_init(acceptor_wait *q, int epfd)
{
    q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = q};
    if (q->wake_fd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, q->wake_fd, &ev)) {
        LOG_ERR(q->tag, "cannot make %s eventfd: %s", q->what, strerror(errno));
        return -1;
    }
    return 0;
}

bool aw_on(const acceptor_wait *q)
{
    return q->wake_fd >= 0;
}

unsigned aw_waiting(const acceptor_wait *q)
{
    return q->count;
}

static void unref(acceptor_wait *q, aw_entry *e)
{
    if (atomic_fetch_sub(&e->refs, 1) == 1)
        q->release(e);
}

void aw_add(acceptor_wait *q, aw_entry *e, int fd, size_t head_len,
            const struct sockaddr_storage *addr)
{
    atomic_init(&e->refs, 2);
    e->fd = fd;
    e->head_len = head_len;
    e->addr = *addr;
    list_push_back(&q->waiting, &e->link);
    q->count++;
}

void aw_done(acceptor_wait *q, aw_entry *e)
{
    pthread_mutex_lock(&q->done_lock);
    bool gone = q->gone;
    if (!gone) {
        list_push_back(&q->answers, &e->answer_link);
        uint64_t one = 1;
        if (write(q->wake_fd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is full, so the acceptor is woken anyway */
        }
    }
    pthread_mutex_unlock(&q->done_lock);
    if (gone)
        unref(q, e);
}

/* The client closed its side while it waited (its head is still unread:
 * only a hang-up tells). */
static bool client_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

void aw_answers(acceptor_wait *q)
{
    uint64_t count;
    if (read(q->wake_fd, &count, sizeof(count)) < 0) {
        /* EAGAIN: already read; the queue tells what came */
    }
    list_node got = LIST_INIT(got);
    pthread_mutex_lock(&q->done_lock);
    list_move_all(&got, &q->answers);
    pthread_mutex_unlock(&q->done_lock);
    for (list_node *n; (n = list_first(&got));) {
        aw_entry *e = list_entry(n, aw_entry, answer_link);
        list_remove(n);
        if (client_gone(e->fd))
            close(e->fd);
        else
            q->settle(e);
        e->fd = -1;
        list_remove(&e->link);
        q->count--;
        unref(q, e); /* the acceptor's */
        unref(q, e); /* the verdict's */
    }
}

void aw_refuse(aw_entry *e, unsigned status, const char *error)
{
    raw_reply_error(e->fd, status, NULL, error);
    shutdown(e->fd, SHUT_WR);
    linger_add(e->fd, clock_now_ms());
}

void aw_fini(acceptor_wait *q)
{
    list_node got = LIST_INIT(got);
    pthread_mutex_lock(&q->done_lock);
    q->gone = true;
    list_move_all(&got, &q->answers);
    pthread_mutex_unlock(&q->done_lock);
    for (list_node *n; (n = list_first(&got));) {
        list_remove(n);
        unref(q, list_entry(n, aw_entry, answer_link)); /* the verdict's */
    }
    for (list_node *n; (n = list_first(&q->waiting));) {
        aw_entry *e = list_entry(n, aw_entry, link);
        raw_reply_error(e->fd, 503, NULL, "shutting down");
        close(e->fd);
        list_remove(n);
        q->count--;
        unref(q, e); /* the acceptor's; a verdict still coming holds its own */
    }
    if (q->wake_fd >= 0)
        close(q->wake_fd);
    q->wake_fd = -1;
}
