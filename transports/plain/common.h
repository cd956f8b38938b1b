/* SPDX-License-Identifier: MIT */
/*
 * plain/common.h - what the plain room protocols over HTTP (plain/sse.c,
 * plain/poll.c) share: the reply to a join the hub refused. Any MHD thread.
 */
#ifndef CRIER_PLAIN_COMMON_H
#define CRIER_PLAIN_COMMON_H

#include "transports/carriers/http_call.h"

/* Answers a request whose hub_join or hub_resume returned rc (negative):
 * 503 with the limit's error when a server limit refused it (logged once
 * per burst), else 503 "cannot join room". */
enum MHD_Result plain_reply_join_refused(http_call *call, int rc);

#endif
