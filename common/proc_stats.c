/* SPDX-License-Identifier: MIT */
/*
 * proc_stats.c - reads /proc/self for proc_stats.h. No state but the start
 * mark, written once by main before any thread starts.
 */
#include "common/proc_stats.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double start_wall_s; /* set by proc_stats_start_mark, then read only */

static double wall_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_rss(uint64_t *rss)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    int ok;

    if (!f)
        return -1;
    ok = fscanf(f, "%llu %llu", &size, &resident) == 2;
    fclose(f);
    if (!ok)
        return -1;
    *rss = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
}

/* utime, stime (fields 14, 15) and starttime (22) of /proc/self/stat; the
 * command name (field 2) may hold spaces, so parsing starts after its ')'. */
static int read_stat(double *cpu_s, double *start_s)
{
    char line[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    unsigned long long utime = 0, stime = 0, starttime = 0;
    long ticks = sysconf(_SC_CLK_TCK);
    char *p;
    int n;

    if (!f)
        return -1;
    p = fgets(line, sizeof line, f);
    fclose(f);
    if (!p || !(p = strrchr(line, ')')) || ticks <= 0)
        return -1;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) cutime cstime priority nice
     * num_threads itrealvalue starttime(22) */
    n = sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
               "%*d %llu",
               &utime, &stime, &starttime);
    if (n != 3)
        return -1;
    *cpu_s = (double)(utime + stime) / (double)ticks;

    /* starttime is in ticks after boot: boot time + starttime = wall start */
    f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long btime = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    if (!btime)
        return -1;
    *start_s = (double)btime + (double)starttime / (double)ticks;
    return 0;
}

static int count_fds(uint64_t *n)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    uint64_t count = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            count++;
    closedir(d);
    *n = count > 0 ? count - 1 : 0; /* the directory's own descriptor */
    return 0;
}

int proc_stats_read(struct proc_stats *out)
{
    struct rlimit rl;
    int rc = 0;

    memset(out, 0, sizeof *out);
    rc |= read_rss(&out->rss_bytes);
    rc |= read_stat(&out->cpu_seconds, &out->start_time_s);
    rc |= count_fds(&out->open_fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
    else
        rc = -1;
    return rc ? -1 : 0;
}

void proc_stats_start_mark(void)
{
    start_wall_s = wall_now_s();
}

double proc_stats_uptime_s(void)
{
    struct proc_stats st;

    if (start_wall_s > 0)
        return wall_now_s() - start_wall_s;
    if (proc_stats_read(&st) != 0 || st.start_time_s <= 0)
        return 0;
    return wall_now_s() - st.start_time_s;
}
