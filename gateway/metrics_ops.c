/* SPDX-License-Identifier: MIT */
/*
 * metrics_ops.c - the operator's metric families (metrics_ops.h), in the
 * Prometheus text format 0.0.4: a HELP and a TYPE line per family, then its
 * samples; the histogram's buckets are cumulative, with +Inf, _sum and
 * _count.
 */
#include "gateway/metrics_ops.h"

#include <inttypes.h>

#include "common/http_status.h"
#include "common/json_text.h"
#include "common/latency.h"
#include "common/log.h"
#include "common/proc_stats.h"
#include "common/refusals.h"
#include "common/version.h"
#include "gateway/metrics_text.h"
#include "gateway/reload.h"
#include "hub/redis_backplane.h"

static bool process_figures(buf *b)
{
    struct proc_stats ps = {0};
    proc_stats_read(&ps);
    return metrics_family(b, "process_resident_memory_bytes", "gauge",
                          "Resident memory size in bytes.") &&
           buf_printf(b, "process_resident_memory_bytes %" PRIu64 "\n", ps.rss_bytes) &&
           metrics_family(b, "process_cpu_seconds_total", "counter",
                          "Total user and system CPU time spent in seconds.") &&
           buf_printf(b, "process_cpu_seconds_total %.2f\n", ps.cpu_seconds) &&
           metrics_family(b, "process_open_fds", "gauge", "Number of open file descriptors.") &&
           buf_printf(b, "process_open_fds %" PRIu64 "\n", ps.open_fds) &&
           metrics_family(b, "process_max_fds", "gauge",
                          "Maximum number of open file descriptors (limits.max_connections "
                          "comes from it).") &&
           buf_printf(b, "process_max_fds %" PRIu64 "\n", ps.max_fds) &&
           metrics_family(b, "process_start_time_seconds", "gauge",
                          "Start time of the process since unix epoch in seconds.") &&
           buf_printf(b, "process_start_time_seconds %.2f\n", ps.start_time_s) &&
           metrics_family(b, "crier_build_info", "gauge",
                          "crier's version, as a label; always 1.") &&
           buf_printf(b, "crier_build_info{version=\"%s\"} 1\n", crier_version());
}

static bool answers(buf *b)
{
    bool ok = metrics_family(b, "crier_http_responses_total", "counter",
                             "HTTP answers sent, by status class (101: WebSocket upgrades taken).");
    for (unsigned c = 1; ok && c <= 5; c++)
        ok = buf_printf(b, "crier_http_responses_total{code=\"%uxx\"} %" PRIu64 "\n", c,
                        http_status_total(c));
    ok = ok && metrics_family(
                   b, "crier_connections_refused_total", "counter",
                   "Connections and requests refused before being served, by reason: "
                   "limit (limits.max_connections), rate (limits.rate.connect), auth (401/403), "
                   "origin (a WebSocket Origin not allowed).");
    for (int r = 0; ok && r < REFUSED_REASONS; r++)
        ok = metrics_labelled(b, "crier_connections_refused_total", "reason",
                              refused_name((refused_reason)r), refused_total((refused_reason)r));
    return ok;
}

static bool latency(buf *b)
{
    latency_snapshot ls;
    latency_read(&ls);
    bool ok = metrics_family(b, "crier_delivery_latency_seconds", "histogram",
                             "Time from a room message's acceptance on this node to its write to a "
                             "subscriber's socket (ms resolution).");
    for (int i = 0; ok && i < LATENCY_BOUNDS; i++)
        ok = buf_printf(b, "crier_delivery_latency_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                        latency_bound_ms[i] / 1000.0, ls.cumulative[i]);
    return ok && buf_printf(b,
                            "crier_delivery_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                            "crier_delivery_latency_seconds_sum %.3f\n"
                            "crier_delivery_latency_seconds_count %" PRIu64 "\n",
                            ls.cumulative[LATENCY_BOUNDS], (double)ls.sum_ms / 1000.0,
                            ls.cumulative[LATENCY_BOUNDS]);
}

static bool redis_figures_of(buf *b)
{
    redis_figures rf;
    redis_backplane_figures(&rf);
    return metrics_family(b, "crier_redis_queue", "gauge",
                          "Work waiting for the Redis thread (0 without the Redis backplane).") &&
           buf_printf(b, "crier_redis_queue %zu\n", rf.queued) &&
           metrics_family(
               b, "crier_redis_queued_publishes", "gauge",
               "Publishes waiting for Redis (backplane.queue_limit bounds them while it is "
               "down).") &&
           buf_printf(b, "crier_redis_queued_publishes %zu\n", rf.queued_publishes) &&
           metrics_family(b, "crier_redis_pending_bytes", "gauge",
                          "Bytes of publishes Redis has not answered yet "
                          "(backplane.max_pending_bytes bounds them).") &&
           buf_printf(b, "crier_redis_pending_bytes %zu\n", rf.pending_bytes) &&
           metrics_family(b, "crier_redis_reconnects_total", "counter",
                          "Links to Redis made again after the first.") &&
           buf_printf(b, "crier_redis_reconnects_total %" PRIu64 "\n", rf.reconnects);
}

bool metrics_ops(buf *b, const hub_stats *st)
{
    return process_figures(b) && answers(b) && latency(b) && redis_figures_of(b) &&
           metrics_family(b, "crier_protocol_frames_total", "counter",
                          "Protocol records queued to connections (SignalR handshake replies, "
                          "completions, pings, closes); not in crier_messages_delivered_total.") &&
           buf_printf(b, "crier_protocol_frames_total %" PRIu64 "\n", st->protocol_frames) &&
           metrics_family(b, "crier_config_reloads_total", "counter",
                          "SIGHUP reloads, by result (refused: the running config kept).") &&
           buf_printf(b,
                      "crier_config_reloads_total{result=\"applied\"} %u\n"
                      "crier_config_reloads_total{result=\"refused\"} %u\n",
                      reload_count(0), reload_count(1)) &&
           metrics_family(b, "crier_log_lines_suppressed_total", "counter",
                          "Info and debug lines dropped past log.max_lines_per_s.") &&
           buf_printf(b, "crier_log_lines_suppressed_total %llu\n", log_suppressed_total());
}
