/* SPDX-License-Identifier: MIT */
/*
 * metrics_ops.h - the operator's part of /metrics (README "Metrics"): the
 * process_* figures in the Prometheus convention, crier_build_info, HTTP
 * answers by status class, refused connections by reason, the
 * publish-to-write latency histogram, protocol frames, the Redis queue and
 * reconnects, reloads and suppressed log lines. gateway/api.c writes the
 * rest and calls this.
 *
 * Threading: any MHD thread (what it reads is atomic, or read under its
 * owner's lock by the function named in the .c).
 */
#ifndef CRIER_METRICS_OPS_H
#define CRIER_METRICS_OPS_H

#include <stdbool.h>

#include "common/buf.h"
#include "hub/hub.h"

/* Appends the families above to b; false on ENOMEM. */
bool metrics_ops(buf *b, const hub_stats *st);

#endif
