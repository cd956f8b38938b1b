/* SPDX-License-Identifier: MIT */
/*
 * plain/connect.h - the connect proxy (upstream.connect) for the plain SSE
 * stream and long poll: the request waits, suspended, for the backend's
 * verdict, whose user id and room rights become the request's principal.
 */
#ifndef CRIER_PLAIN_CONNECT_H
#define CRIER_PLAIN_CONNECT_H

#include <stdbool.h>

#include "common/access.h"
#include "common/cfg.h"
#include "transports/carriers/http_call.h"

void plain_connect_init(const cfg *c);

typedef enum {
    PLAIN_ASK_GO,   /* go on with *who (a ref, NULL anonymous) */
    PLAIN_ASK_STOP, /* return *ret: waiting, or answered (a refusal) */
} plain_ask_step;

/* MHD thread, the handler's every call while *call->state is NULL or an
 * ask: without upstream.connect, GO with call->who at once; else asks the
 * proxy (transport: "sse" or "long_polling") and STOPs until its verdict,
 * then GOes with the proxy's principal (its rights checked against the
 * room with auth on: 401/403) or STOPs with the refusal answered. */
plain_ask_step plain_connect_step(http_call *call, const char *transport, access_principal **who,
                                  enum MHD_Result *ret);

/* True when state is an ask's (then plain_connect_completed frees it). */
bool plain_connect_is_ask(const void *state);
void plain_connect_completed(void *state);

#endif
