/* SPDX-License-Identifier: MIT */
/*
 * ws_guard.h - RFC 6455 5.1: "a server MUST close the connection upon
 * receiving a frame that is not masked" (close code 1002). libwebsockets
 * 4.1.6 reads the mask bit and carries on (the check came in later
 * versions), and it tells its user nothing about the bit, so this module
 * watches the bytes lws reads from each WebSocket socket: it defines
 * recv(), which lws calls for every read of a plain socket (through the
 * PLT: the executable's definition wins), and scans the frame headers in
 * that stream. A frame header with no mask ends what lws is given: the
 * bytes from it on are dropped, later reads find nothing (EAGAIN) until
 * ws.c has sent its close frame, and end-of-file after that.
 *
 * Every other thread, and every socket not being watched, gets the C
 * library's recv unchanged (recvfrom with no address).
 *
 * Threading: everything here runs on an lws service thread (one that
 * called ws_guard_enter_thread); each has a watch table of its own (thread
 * local) for the sockets it adopted. Other threads' recv calls only read a
 * thread-local flag.
 */
#ifndef CRIER_WS_GUARD_H
#define CRIER_WS_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The frame scanner, pure: where the stream stands between reads. */
typedef struct ws_frame_scan {
    uint64_t head_left;    /* bytes of the HTTP request still to pass */
    uint64_t payload_left; /* payload bytes of the current frame still to pass */
    unsigned char hdr[14]; /* the frame header read so far */
    unsigned hdr_len;
    bool unmasked; /* a frame without a mask was seen */
} ws_frame_scan;

/* Feeds len bytes; returns how many of them may go to the parser: len,
 * or fewer when an unmasked frame header begins in them (then unmasked is
 * set, and the count stops at that header's second byte). */
size_t ws_frame_scan_feed(ws_frame_scan *s, const unsigned char *data, size_t len);

/* Called with the session given to ws_guard_bind when its socket sends an
 * unmasked frame. Service thread (from inside an lws read). */
typedef void (*ws_guard_fn)(void *owner);

/* Marks the calling thread as the lws service thread; fn is told of
 * unmasked frames. */
void ws_guard_enter_thread(ws_guard_fn fn);

/* The calling service thread ends: frees its table. */
void ws_guard_leave_thread(void);

/* Service thread: watch fd, an adopted socket whose first head_len bytes are
 * the HTTP upgrade request. */
void ws_guard_watch(int fd, size_t head_len);

/* Service thread: the session of fd's connection, once it has one. Returns
 * true when fd has already sent an unmasked frame (fn is not called then). */
bool ws_guard_bind(int fd, void *owner);

/* Service thread: the close frame is on its way; reads of fd find the end. */
void ws_guard_closing(int fd);

/* Service thread: fd is closed; stop watching it. */
void ws_guard_forget(int fd);

#endif
