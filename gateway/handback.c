/* SPDX-License-Identifier: MIT */
/*
 * handback.c - the queue of kept-alive connections given back to the
 * acceptor (see handback.h): a growing array of sockets under back_lock
 * and an eventfd in the acceptor's epoll.
 */
#include "gateway/handback.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"

#define TAG "server"

static pthread_mutex_t back_lock = PTHREAD_MUTEX_INITIALIZER;
static int *queue;         /* back_lock: qlen sockets of qcap */
static size_t qlen, qcap;  /* back_lock */
static bool open_;         /* back_lock: the acceptor takes sockets */
static int wake_fd = -1;   /* set by handback_init, closed by handback_fini */
static const char tag = 0; /* its address is the epoll tag */

const void *handback_tag(void)
{
    return &tag;
}

int handback_init(int epfd)
{
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = (void *)&tag};
    if (wake_fd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, wake_fd, &ev)) {
        LOG_ERR(TAG, "cannot set up the eventfd of kept-alive connections: %s", strerror(errno));
        if (wake_fd >= 0)
            close(wake_fd);
        wake_fd = -1;
        return -1;
    }
    pthread_mutex_lock(&back_lock);
    open_ = true;
    pthread_mutex_unlock(&back_lock);
    return 0;
}

void handback_put(int fd)
{
    pthread_mutex_lock(&back_lock);
    bool queued = false;
    if (open_ && qlen == qcap) {
        size_t cap = qcap ? qcap * 2 : 64;
        int *q = realloc(queue, cap * sizeof(*q));
        if (q) {
            queue = q;
            qcap = cap;
        }
    }
    if (open_ && qlen < qcap) {
        queue[qlen++] = fd;
        queued = true;
        uint64_t one = 1;
        if (write(wake_fd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is full, the acceptor wakes anyway */
        }
    }
    pthread_mutex_unlock(&back_lock);
    if (!queued)
        close(fd); /* the client sees its connection end, as after Connection: close */
}

/* Takes the whole queue (the caller frees it); closing: none is queued
 * after this. */
static int *take_queue(bool closing, size_t *len)
{
    pthread_mutex_lock(&back_lock);
    if (closing)
        open_ = false;
    int *q = queue;
    *len = qlen;
    queue = NULL;
    qlen = qcap = 0;
    pthread_mutex_unlock(&back_lock);
    return q;
}

void handback_take(void (*adopt)(int fd))
{
    uint64_t n;
    if (read(wake_fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: another event took it; the queue says what there is */
    }
    size_t len;
    int *q = take_queue(false, &len);
    for (size_t i = 0; i < len; i++)
        adopt(q[i]);
    free(q);
}

void handback_fini(void)
{
    size_t len;
    int *q = take_queue(true, &len);
    for (size_t i = 0; i < len; i++)
        close(q[i]);
    free(q);
    if (wake_fd >= 0)
        close(wake_fd);
    wake_fd = -1;
}
