/* SPDX-License-Identifier: MIT */
/*
 * metrics_text.h - the pieces of the Prometheus text format 0.0.4 that
 * /metrics writes (gateway/api.c, gateway/metrics_ops.c): a family's HELP
 * and TYPE lines, and a sample with one label. Pure: appends to the
 * caller's buffer; any thread.
 */
#ifndef CRIER_METRICS_TEXT_H
#define CRIER_METRICS_TEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

/* "# HELP name help\n# TYPE name type\n"; false on ENOMEM. */
bool metrics_family(buf *b, const char *name, const char *type, const char *help);

/* "name{label=\"value\"} n\n" (a counter's sample); false on ENOMEM. */
bool metrics_labelled(buf *b, const char *name, const char *label, const char *value, uint64_t n);

#endif
