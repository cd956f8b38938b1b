/* SPDX-License-Identifier: MIT */
/*
 * linger.c - sockets held briefly after a final answer (linger.h).
 */
#include "common/linger.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_MS 1000
#define LINGER_BYTES (256 * 1024) /* read and dropped, at most, per socket */
#define LINGER_MAX 256            /* sockets lingering at once */

typedef struct lingering {
    int fd;
    int64_t until;
    size_t dropped;
} lingering;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static lingering list[LINGER_MAX]; /* lock */
static unsigned count;             /* lock */

void linger_add(int fd, int64_t now_ms)
{
    pthread_mutex_lock(&lock);
    bool held = count < LINGER_MAX;
    if (held)
        list[count++] = (lingering){fd, now_ms + LINGER_MS, 0};
    pthread_mutex_unlock(&lock);
    if (!held)
        close(fd);
}

/* Reads and drops what is there; true when the socket is done with. */
static bool drain(lingering *l, int64_t now_ms)
{
    static char scratch[16384]; /* timer thread only */
    while (l->dropped < LINGER_BYTES) {
        ssize_t n = recv(l->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
        if (n < 0)
            break;
        l->dropped += (size_t)n;
    }
    return now_ms >= l->until;
}

void linger_tick(int64_t now_ms)
{
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < count;) {
        if (drain(&list[i], now_ms)) {
            close(list[i].fd);
            list[i] = list[--count];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&lock);
}

void linger_close_all(void)
{
    pthread_mutex_lock(&lock);
    while (count)
        close(list[--count].fd);
    pthread_mutex_unlock(&lock);
}
