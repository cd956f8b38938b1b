/* SPDX-License-Identifier: MIT */
/*
 * metrics_text.c - Prometheus text-format lines (metrics_text.h).
 */
#include "gateway/metrics_text.h"

#include <inttypes.h>

#include "common/json_text.h"

bool metrics_family(buf *b, const char *name, const char *type, const char *help)
{
    return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

bool metrics_labelled(buf *b, const char *name, const char *label, const char *value, uint64_t n)
{
    return buf_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, value, n);
}
