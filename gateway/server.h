/* SPDX-License-Identifier: MIT */
/*
 * server.h - the one port: listener, acceptor, timers, start and drain.
 */
#ifndef CRIER_SERVER_H
#define CRIER_SERVER_H

#include "gateway/config.h"

/* Starts every thread, serves until SIGINT or SIGTERM arrives (they must be
 * blocked in the calling thread before, with SIGHUP: see main.c), then
 * drains and stops. Each SIGHUP meanwhile reloads the config
 * (gateway/reload.h) on the calling thread.
 * Returns 0 after a clean stop, 1 when the server could not start. */
int server_run(const cfg *c);

/* limits.max_connections from c (0: what the open-file limit allows), for
 * the acceptor's next accept. Main thread (start, SIGHUP). Returns it. */
unsigned server_set_max_connections(const cfg *c);

/* The WebSocket and HTTP connections open now (SSE streams and long polls
 * included), as limits.max_connections counts them but for the sockets the
 * acceptor has not handed over yet. Any thread (atomic counters). */
unsigned server_connections_open(void);

#endif
