/* SPDX-License-Identifier: MIT */
/*
 * held_watch.c - one epoll thread watching the sockets of held requests
 * for the peer's close (see held_watch.h).
 *
 * An entry's memory outlives hw_unwatch a little: an event fetched by
 * epoll_wait just before the unwatch still names it, so hw_unwatch marks it
 * dead and moves it to a list the watcher frees after it has handled what
 * it fetched (each round ends within WAIT_MS).
 *
 * Threading: `watch_lock` guards every entry, the lists and the counters;
 * the watcher thread calls `gone` with it held.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/held_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"

#define TAG "watch"
#define WAIT_MS 1000 /* the longest a freed entry waits for its memory back */
#define MAX_EVENTS 64

struct hw_entry {
    int fd;
    bool live; /* watch_lock: false once unwatched or gone was called */
    void (*gone)(void *arg);
    void *arg;
    hw_entry *next_dead; /* watch_lock: on the dead list */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static int epfd = -1;    /* set once by start() */
static hw_entry *dead;   /* watch_lock: unwatched, freed by the watcher */
static unsigned watched; /* watch_lock */

/* Watcher lock held: frees the entries no fetched event can name any more. */
static void free_dead(void)
{
    while (dead) {
        hw_entry *e = dead;
        dead = e->next_dead;
        free(e);
    }
}

static void *watch_main(void *unused)
{
    (void)unused;
    struct epoll_event ev[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, ev, MAX_EVENTS, WAIT_MS);
        if (n < 0 && errno != EINTR) {
            LOG_ERR(TAG, "epoll_wait: %s; closed clients are noticed late from now on",
                    strerror(errno));
            return NULL;
        }
        pthread_mutex_lock(&watch_lock);
        for (int i = 0; i < n; i++) {
            hw_entry *e = ev[i].data.ptr;
            if (!e->live)
                continue;
            e->live = false; /* one shot: the holder ends the request now */
            e->gone(e->arg);
        }
        free_dead();
        pthread_mutex_unlock(&watch_lock);
    }
}

static void start(void)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    pthread_t t;
    if (epfd < 0 || pthread_create(&t, NULL, watch_main, NULL)) {
        LOG_ERR(TAG, "cannot start the watcher of held requests: closed clients are noticed "
                     "only at their deadline");
        if (epfd >= 0)
            close(epfd);
        epfd = -1;
        return;
    }
    pthread_detach(t);
}

hw_entry *hw_watch(int fd, void (*gone)(void *arg), void *arg)
{
    pthread_once(&once, start);
    if (epfd < 0 || fd < 0)
        return NULL;
    hw_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    *e = (hw_entry){.fd = fd, .live = true, .gone = gone, .arg = arg};
    /* Only the close: data the client sends while it waits (a pipelined
     * request) stays for MHD to read. */
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.ptr = e};
    pthread_mutex_lock(&watch_lock);
    int rc = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    if (!rc)
        watched++;
    pthread_mutex_unlock(&watch_lock);
    if (rc) {
        LOG_WARN(TAG, "cannot watch socket %d: %s", fd, strerror(errno));
        free(e);
        return NULL;
    }
    return e;
}

void hw_unwatch(hw_entry *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&watch_lock);
    /* The socket is still open (MHD closes it after the request's completed
     * hook); ENOENT/EBADF would only mean it was gone already. */
    epoll_ctl(epfd, EPOLL_CTL_DEL, e->fd, NULL);
    e->live = false;
    e->next_dead = dead;
    dead = e;
    watched--;
    pthread_mutex_unlock(&watch_lock);
}

unsigned hw_watched(void)
{
    pthread_mutex_lock(&watch_lock);
    unsigned n = watched;
    pthread_mutex_unlock(&watch_lock);
    return n;
}
