/* SPDX-License-Identifier: MIT */
/*
 * proc_stats.h - this process's own figures from /proc/self (resident memory,
 * CPU seconds, open and maximum file descriptors, start time), for the
 * process_* metrics and the dashboard's node list. Any thread; each call
 * reads /proc afresh (a few system calls, meant for scrapes, not hot paths).
 */
#ifndef CRIER_PROC_STATS_H
#define CRIER_PROC_STATS_H

#include <stdint.h>

struct proc_stats {
    uint64_t rss_bytes;  /* resident memory (statm's resident x page size) */
    double cpu_seconds;  /* user + system CPU since start, all threads */
    uint64_t open_fds;   /* entries in /proc/self/fd */
    uint64_t max_fds;    /* RLIMIT_NOFILE soft limit */
    double start_time_s; /* process start, seconds since the Unix epoch */
};

/* Fills *out; fields that cannot be read are left 0. Returns 0 when every
 * field was read, -1 otherwise. */
int proc_stats_read(struct proc_stats *out);

/* Seconds since this process started (from proc_stats_start_mark). */
double proc_stats_uptime_s(void);

/* Remembers "now" as the process start for proc_stats_uptime_s; main calls
 * it first thing. Without it the uptime comes from /proc/self/stat. */
void proc_stats_start_mark(void);

#endif
