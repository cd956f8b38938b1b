/* SPDX-License-Identifier: MIT */
/*
 * held_watch.h - notices at once when the client of a held MHD connection
 * (a suspended long poll, an idle event stream) closes its socket.
 *
 * libmicrohttpd 0.9.75 on poll() leaves suspended connections out of its
 * poll set, so it sees a client's close only when it next writes. One
 * watcher thread keeps an epoll set of the sockets of held requests
 * (EPOLLRDHUP, one shot) and calls the holder's `gone` hook; the holder
 * resumes its connection, and MHD ends and frees it.
 *
 * A peer that half-closes (shutdown(SHUT_WR)) after a complete request
 * counts as gone too: browsers never do that, and nginx treats a held
 * request the same way.
 *
 * Threading: hw_watch and hw_unwatch from any thread, with no sub lock
 * held (the watcher calls `gone` with its own lock held, and `gone` takes
 * a sub lock: lock order watch, then sub). `gone` runs on the watcher
 * thread, at most once per watch, never after hw_unwatch returned. The
 * holder must call hw_unwatch before MHD closes the socket (its
 * completed hook runs before that), so the watcher never touches a socket
 * number that was reused.
 */
#ifndef CRIER_HELD_WATCH_H
#define CRIER_HELD_WATCH_H

typedef struct hw_entry hw_entry;

/* Watches fd until hw_unwatch; gone(arg) when its peer closed or reset it.
 * Returns NULL when the fd cannot be watched (then the request is held as
 * before: until its deadline or next write). */
hw_entry *hw_watch(int fd, void (*gone)(void *arg), void *arg);

/* Stops watching; NULL is ignored. After it, gone is not running and will
 * not run for this entry. */
void hw_unwatch(hw_entry *e);

/* Sockets watched now. Any thread. */
unsigned hw_watched(void);

#endif
