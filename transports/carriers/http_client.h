/* SPDX-License-Identifier: MIT */
/*
 * http_client.h - POSTs to backends (upstream hub methods, events, the
 * connect proxy) with libcurl's multi interface on a thread of its own:
 * callers hand a call over (a queue, then curl_multi_wakeup) and get its
 * outcome in a callback; no caller thread ever waits for a backend.
 * Connections to a backend are kept alive and reused (the multi handle's
 * connection cache). Knows no rooms and no protocol: it moves bytes.
 *
 * Threading: hc_post and the counters from any thread; hc_start and hc_stop
 * on main (before the transports start, after they stopped). The done
 * callback runs on the curl thread with no lock held, or, for a call
 * refused at once (busy, stopped, not started), on the caller's thread
 * before hc_post returns: a caller must be ready for both.
 */
#ifndef CRIER_HTTP_CLIENT_H
#define CRIER_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/upstream.h"

/* A call's outcome: t, and with UP_SENT_OK the HTTP status and the body
 * (len bytes, not NUL-terminated; borrowed for the call). */
typedef void (*hc_done_fn)(void *arg, up_transfer t, long status, const char *body, size_t len);

typedef struct hc_options {
    unsigned max_in_flight;  /* calls (not events) queued or running; past it: busy */
    unsigned events_queue;   /* events queued or running; past it: dropped */
    size_t max_answer_bytes; /* past it: UP_SENT_TOO_LARGE */
} hc_options;

/* Starts the curl thread. Returns 0 or -1. */
int hc_start(const hc_options *o);

/* POSTs body (len bytes of JSON, taken: freed here) to url (copied) within
 * timeout_ms; done(arg, ...) is called exactly once. event: fire and
 * forget (counted against events_queue; done may be NULL). */
void hc_post(const char *url, char *body, size_t len, unsigned timeout_ms, bool event,
             hc_done_fn done, void *arg);

/* Ends every call (done with UP_SENT_STOPPED, on main for those not yet
 * answered) and joins the thread; later hc_post calls are answered
 * UP_SENT_STOPPED at once. */
void hc_stop(void);

/* Calls queued or running now (events not counted). */
unsigned hc_in_flight(void);

/* Events dropped because events_queue were waiting (or out of memory). */
uint64_t hc_events_dropped(void);

#endif
