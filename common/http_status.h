/* SPDX-License-Identifier: MIT */
/*
 * http_status.h - HTTP answers counted by status class, for /metrics'
 * crier_http_responses_total{code="2xx"}: every answer crier sends, by
 * libmicrohttpd (http_queue) or by the acceptor itself (refusals before
 * any handler), and each WebSocket upgrade taken (101).
 *
 * Threading: lock-free counters; any thread.
 */
#ifndef CRIER_HTTP_STATUS_H
#define CRIER_HTTP_STATUS_H

#include <stdint.h>

/* Counts one answer with this status (100 .. 599; others are ignored). */
void http_count_status(unsigned status);

/* Answers of class cls (1 .. 5: "1xx" .. "5xx") since start. */
uint64_t http_status_total(unsigned cls);

#endif
