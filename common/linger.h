/* SPDX-License-Identifier: MIT */
/*
 * linger.h - a gentle close for a socket answered while its client is still
 * sending (a 413 for a body over the limit). Closing a socket with unread
 * bytes makes the kernel send a reset, and a client that is still writing
 * may then lose the answer it had not read yet. A lingering socket has sent
 * its answer and FIN; it is held for LINGER_MS, reading and dropping at most
 * LINGER_BYTES, then closed.
 *
 * Threading: linger_add from any thread; linger_tick from the timer thread;
 * linger_close_all once the timer has stopped. One lock guards the list.
 */
#ifndef CRIER_LINGER_H
#define CRIER_LINGER_H

#include <stdint.h>

/* Takes fd (a socket whose answer is written; the caller shut its write
 * side), to close within a second. When too many linger already, it is
 * closed at once. */
void linger_add(int fd, int64_t now_ms);

/* Drops what arrived on lingering sockets; closes those done. */
void linger_tick(int64_t now_ms);

/* Closes every lingering socket. */
void linger_close_all(void);

#endif
