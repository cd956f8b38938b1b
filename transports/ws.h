/* SPDX-License-Identifier: MIT */
/*
 * ws.h - WebSocket subscribers on libwebsockets: GET /rooms/{room}/ws.
 * libwebsockets runs on its own service thread (ws.c); from other threads
 * only ws_adopt, ws_wants_path, ws_connections and ws_stop may be called.
 */
#ifndef CRIER_WS_H
#define CRIER_WS_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/config.h"
#include "hub/hub.h"

/* Creates the lws context and starts its service thread. Returns 0 or -1. */
int ws_start(const cfg *c, hub *h);

/* True when an upgrade request for this (decoded) path is served by lws. */
bool ws_wants_path(const char *path, size_t len);

/* Queues an accepted socket, whose upgrade request has not been read, for
 * the service thread to adopt. Any thread; the socket is owned by ws.c. */
void ws_adopt(int fd);

/* Closes every WebSocket with 1001, waits up to grace_ms for them to go,
 * then stops the service thread and destroys the context. Main thread. */
void ws_stop(int grace_ms);

/* WebSocket connections held now, adopted ones not yet upgraded included. */
unsigned ws_connections(void);

#endif
