/* SPDX-License-Identifier: MIT */
/*
 * server.h - the one port: listener, acceptor, timers, start and drain.
 */
#ifndef CRIER_SERVER_H
#define CRIER_SERVER_H

#include "gateway/config.h"

/* Starts every thread, serves until SIGINT or SIGTERM arrives (they must be
 * blocked in the calling thread before: see main.c), then drains and stops.
 * Returns 0 after a clean stop, 1 when the server could not start. */
int server_run(const cfg *c);

#endif
