/* SPDX-License-Identifier: MIT */
/*
 * log.c - the logger (see log.h). The level is an atomic, set at start-up.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int current_level = LOG_LEVEL_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_set_level_name(const char *name)
{
    for (int i = 0; i <= LOG_LEVEL_DEBUG; i++) {
        if (!strcmp(name, level_names[i])) {
            log_set_level((log_level)i);
            return 0;
        }
    }
    return -1;
}

void log_set_level(log_level level)
{
    atomic_store(&current_level, (int)level);
}

int log_enabled(log_level level)
{
    return (int)level <= atomic_load(&current_level);
}

void log_write(log_level level, const char *tag, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s %s: ", ts.tv_nsec / 1000000,
                          level_names[level], tag);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
