/* SPDX-License-Identifier: MIT */
/*
 * ws.h - WebSocket connections on libwebsockets. ws.c owns the sockets and
 * the frames; what a connection means (a room subscription, a SignalR
 * connection) is decided by the session the router gives it.
 *
 * libwebsockets runs on the service threads of its workers (one lws context
 * each); from other threads only ws_adopt, ws_connections, ws_workers and
 * ws_stop may be called.
 */
#ifndef CRIER_WS_H
#define CRIER_WS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/access.h"
#include "common/cfg.h"
#include "hub/sub.h"

/* Close code 1000 (RFC 6455: normal closure), for protocols that do not
 * include lws. */
#define WS_CLOSE_NORMAL 1000

/* Close code 1013 (IANA registry: Try Again Later), which lws does not name:
 * a server limit was reached, not the client's fault. */
#define WS_CLOSE_TRY_AGAIN_LATER 1013

/* What the protocol spoken over one WebSocket does with it. Service thread;
 * during ws_stop, closed() of the connections still open runs on the main
 * thread, after the service thread has ended. */
typedef struct ws_session_ops {
    /* A complete message arrived (binary: a binary frame). Returns 0, or a
     * close code with *why set: ws.c closes the connection with them. */
    int (*receive)(void *session, const char *data, size_t len, bool binary, const char **why);
    /* The connection is gone; ws.c no longer touches the session's sub. */
    void (*closed)(void *session);
    /* Optional: a message grew past limits.max_message_bytes. Returns a close
     * code with *why, or 0 when the session ends the connection itself (the
     * rest of the message is then discarded). Without it: close 1009. */
    int (*oversize)(void *session, const char **why);
    /* Optional: m (borrowed) was handed to the socket. */
    void (*sent)(void *session, msg *m);
    /* Optional: the server ended the sub for why (sub_end_with) and all it
     * had queued is sent: the close code (with *text, static) to end the
     * connection with. Without it, or 0: 1000. */
    int (*end_code)(void *session, sub_end_reason why, const char **text);
} ws_session_ops;

/* The session of a new connection: the sub ws.c drains (in s->fmt), and
 * what it tells the protocol. */
typedef struct ws_session {
    sub *s;
    const ws_session_ops *ops;
    void *session;
    /* Not 0: a refusal the client is to read as a close frame (e.g. 1013
     * past a server limit): the upgrade completes, then ws.c closes the
     * connection at once with this code and reason (static text). */
    int refuse_code;
    const char *refuse_why;
} ws_session;

/* Decides what an upgrade request becomes (path percent-decoded, query raw)
 * for who, the principal ws_adopt was given (NULL: anonymous): borrowed,
 * valid until the connection's session is closed (ws.c holds a reference
 * for the connection's life; a session that keeps it longer takes its own).
 * Service thread. Returns 0 with *out filled, or -1 to refuse it. */
typedef int (*ws_open_fn)(const char *path, const char *query, access_principal *who,
                          ws_session *out);

/* Creates the lws context and starts its service thread. Returns 0 or -1. */
int ws_start(const cfg *c, ws_open_fn open);

/* Queues an accepted socket, whose upgrade request (head_len bytes, up to
 * its blank line) has not been read, for the service thread to adopt, with
 * who the acceptor found it to be (NULL: anonymous). Any thread; the socket
 * and the reference to who are ws.c's from now on. */
void ws_adopt(int fd, size_t head_len, access_principal *who);

/* Closes every WebSocket with 1001, waits up to grace_ms for them to go,
 * then stops the service thread and destroys the context. Main thread. */
void ws_stop(int grace_ms);

/* Bytes held now for unfinished messages, every connection's (bounded by
 * limits.max_fragment_bytes_total: past it a connection is closed 1013).
 * Any thread. */
size_t ws_fragment_bytes(void);

/* WebSocket connections held now, adopted ones not yet upgraded included. */
unsigned ws_connections(void);

/* The number of workers (lws contexts, each with its service thread) that
 * ws_start started: the config's "workers", or one per core. */
unsigned ws_workers(void);

/* Connections worker i holds now (adopted or queued for it); 0 past the
 * last worker. Any thread, while the workers run. */
unsigned ws_worker_connections(unsigned i);

#endif
