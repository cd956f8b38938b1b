/* SPDX-License-Identifier: MIT */
/*
 * client_addr.h - the client address a log line names: the peer's, or the
 * one a trusted proxy reports. Pure; any thread.
 */
#ifndef CRIER_CLIENT_ADDR_H
#define CRIER_CLIENT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define CLIENT_ADDR_MAX 64

/* Writes into out the peer's address (IPv4 dotted or IPv6), or, when trust
 * is true, the proxy's report of the client: X-Real-IP when it is an IP
 * literal, else the last X-Forwarded-For entry when it is one, else the
 * peer's. A header that is not an IP literal is never copied (log lines
 * stay clean whatever a client sends). peer may be NULL ("unknown"). */
void client_addr_format(const struct sockaddr *peer, const char *x_real_ip,
                        const char *x_forwarded_for, bool trust, char *out, size_t cap);

#endif
