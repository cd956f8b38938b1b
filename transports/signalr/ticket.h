/* SPDX-License-Identifier: MIT */
/*
 * signalr/ticket.h - the connect proxy's verdict carried in a clustered
 * connection token. With upstream.connect and the Redis backplane,
 * negotiate makes no connection (the node that first carries it does), so
 * what the proxy accepted (user id, room rights, expiry) travels in the
 * token the client presents on every request:
 *
 *   BASE "." PAYLOAD "." MAC
 *
 * BASE is the 22-character random token (the connection's key everywhere:
 * registry, Redis, node messages), PAYLOAD the base64url of compact JSON
 * {"u": user|null, "s": [subscribe patterns], "p": [publish patterns],
 * "e": expires_ms}, MAC the base64url of HMAC-SHA256 with
 * upstream.connect_secret over "crier-connect-v1\n" HUB "\n" BASE "."
 * PAYLOAD: a token made for one hub, or altered anywhere, does not verify.
 *
 * Pure: no I/O, no locks; any thread.
 */
#ifndef CRIER_SIGNALR_TICKET_H
#define CRIER_SIGNALR_TICKET_H

#include <stdbool.h>
#include <stddef.h>

#include "common/access.h"

#define SR_TICKET_BASE_LEN 22      /* TOKEN_LEN */
#define SR_TICKET_PAYLOAD_MAX 1024 /* bytes of payload JSON (the token stays URL-sized) */

/* The whole token (malloc'd) for base and who, or NULL with *error: the
 * principal does not fit SR_TICKET_PAYLOAD_MAX, or ENOMEM. */
char *sr_ticket_make(const char *secret, const char *hub, const char *base,
                     const access_principal *who, const char **error);

/* True when token (len bytes) has a ticket after its base: base "." ... */
bool sr_ticket_present(const char *token, size_t len);

/* Verifies token (len bytes) for hub and returns the principal it carries
 * (proxied, one reference), or NULL with *error (no ticket, altered, not
 * signed with secret, malformed, ENOMEM). */
access_principal *sr_ticket_read(const char *secret, const char *hub, const char *token, size_t len,
                                 const char **error);

#endif
