/* SPDX-License-Identifier: MIT */
/*
 * ws_guard.c - closes WebSocket connections that send unmasked frames
 * (ws_guard.h): a frame scanner and the recv() that feeds it.
 */
#include "transports/carriers/ws_guard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ------------------------------------------------------------- scanner */

/* Bytes of a frame header whose first two bytes are h0 h1: 2, the
 * extended length, and the 4-byte mask when present. */
static unsigned header_size(unsigned char h1)
{
    unsigned len7 = h1 & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h1 & 0x80) ? 4 : 0);
}

static uint64_t payload_length(const unsigned char *h)
{
    unsigned len7 = h[1] & 0x7f;
    if (len7 < 126)
        return len7;
    uint64_t n = 0;
    for (unsigned i = 0; i < (len7 == 126 ? 2u : 8u); i++)
        n = n << 8 | h[2 + i];
    return n;
}

size_t ws_frame_scan_feed(ws_frame_scan *s, const unsigned char *data, size_t len)
{
    size_t i = 0;
    if (s->unmasked)
        return 0;
    while (i < len) {
        if (s->head_left) {
            uint64_t take = len - i < s->head_left ? len - i : s->head_left;
            s->head_left -= take;
            i += (size_t)take;
            continue;
        }
        if (s->payload_left) {
            uint64_t take = len - i < s->payload_left ? len - i : s->payload_left;
            s->payload_left -= take;
            i += (size_t)take;
            continue;
        }
        if (s->hdr_len == 1 && !(data[i] & 0x80)) {
            s->unmasked = true;
            return i;
        }
        s->hdr[s->hdr_len++] = data[i++];
        if (s->hdr_len >= 2 && s->hdr_len == header_size(s->hdr[1])) {
            s->payload_left = payload_length(s->hdr);
            s->hdr_len = 0;
        }
    }
    return len;
}

/* ---------------------------------------------------------------- recv */

typedef struct watch {
    bool on;
    bool closing;
    void *owner;
    ws_frame_scan scan;
} watch;

/* Each service thread has its own table, of the sockets it adopted. */
static _Thread_local bool service_thread;
static _Thread_local ws_guard_fn on_unmasked;
static _Thread_local watch *table; /* indexed by fd */
static _Thread_local size_t table_len;

void ws_guard_enter_thread(ws_guard_fn fn)
{
    on_unmasked = fn;
    service_thread = true;
}

void ws_guard_leave_thread(void)
{
    free(table);
    table = NULL;
    table_len = 0;
    service_thread = false;
}

static watch *watch_of(int fd)
{
    return fd >= 0 && (size_t)fd < table_len && table[fd].on ? &table[fd] : NULL;
}

void ws_guard_watch(int fd, size_t head_len)
{
    if (fd < 0)
        return;
    if ((size_t)fd >= table_len) {
        size_t n = table_len ? table_len : 256;
        while (n <= (size_t)fd)
            n *= 2;
        watch *t = realloc(table, n * sizeof(*t));
        if (!t)
            return; /* unwatched: lws alone, as before */
        memset(t + table_len, 0, (n - table_len) * sizeof(*t));
        table = t;
        table_len = n;
    }
    table[fd] = (watch){.on = true, .scan = {.head_left = head_len}};
}

bool ws_guard_bind(int fd, void *owner)
{
    watch *w = watch_of(fd);
    if (!w)
        return false;
    w->owner = owner;
    return w->scan.unmasked;
}

void ws_guard_closing(int fd)
{
    watch *w = watch_of(fd);
    if (w)
        w->closing = true;
}

void ws_guard_forget(int fd)
{
    watch *w = watch_of(fd);
    if (w)
        *w = (watch){0};
}

/* The C library's recv, for everyone: lws, libmicrohttpd, hiredis and
 * crier's own calls all come through here. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    watch *w = service_thread && !(flags & MSG_PEEK) ? watch_of(fd) : NULL;
    if (!w)
        return recvfrom(fd, buf, len, flags, NULL, NULL);
    if (w->closing)
        return 0;
    if (w->scan.unmasked) {
        errno = EAGAIN;
        return -1;
    }
    ssize_t n = recvfrom(fd, buf, len, flags, NULL, NULL);
    if (n <= 0)
        return n;
    size_t ok = ws_frame_scan_feed(&w->scan, buf, (size_t)n);
    if (ok == (size_t)n)
        return n;
    if (w->owner && on_unmasked)
        on_unmasked(w->owner);
    if (ok)
        return (ssize_t)ok;
    errno = EAGAIN;
    return -1;
}
