/* SPDX-License-Identifier: MIT */
/*
 * longpoll.h - long-poll subscribers on libmicrohttpd:
 * GET /rooms/{room}/poll?since=N. Handlers run on the MHD thread; lp_tick
 * and lp_shutdown may be called from any thread.
 */
#ifndef CRIER_LONGPOLL_H
#define CRIER_LONGPOLL_H

#include <stdint.h>

#include "gateway/http.h"

void lp_init(const cfg *c, hub *h);
enum MHD_Result lp_handle(http_call *call);
void lp_completed(void *state);

/* Answers the held polls whose deadline has passed. */
void lp_tick(int64_t now_ms);

/* Answers every held poll and lets none suspend again. */
void lp_shutdown(void);

#endif
