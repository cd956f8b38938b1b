/* SPDX-License-Identifier: MIT */
/*
 * log.c - the logger (see log.h). The level, format and limits are atomics;
 * the line limit counts lines in the current second (a compare-and-swap
 * starts the next second) and drops info and debug lines past it.
 */
#include "common/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048

static atomic_int current_level = LOG_LEVEL_INFO;
static atomic_bool json_format, access_on;
static atomic_uint max_per_s;
static atomic_llong window_s;       /* the second lines are counted in */
static atomic_uint in_window;       /* info/debug lines in it */
static atomic_uint dropped_now;     /* dropped since the last "suppressed" line */
static atomic_ullong dropped_total; /* since start */
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

void log_configure(bool json, bool access, unsigned max_lines_per_s)
{
    atomic_store(&json_format, json);
    atomic_store(&access_on, access);
    atomic_store(&max_per_s, max_lines_per_s);
}

bool log_access_on(void)
{
    return atomic_load(&access_on);
}

bool log_json(void)
{
    return atomic_load(&json_format);
}

/* May an info or debug line go now? */
static bool admit(void)
{
    unsigned max = atomic_load(&max_per_s);
    if (!max)
        return true;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec, w = atomic_load(&window_s);
    if (now != w && atomic_compare_exchange_strong(&window_s, &w, now))
        atomic_store(&in_window, 0);
    if (atomic_fetch_add(&in_window, 1) < max)
        return true;
    atomic_fetch_add(&dropped_now, 1);
    atomic_fetch_add(&dropped_total, 1);
    return false;
}

static void write_line(const char *line, size_t n)
{
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

/* Printable ASCII only (logs are read in terminals and parsed as JSON):
 * other bytes become '?'. */
static void clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

static size_t timestamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return n;
}

static void emit_json(log_level level, const char *tag, const char *msg, const log_field *f,
                      size_t nf)
{
    char when[40];
    timestamp(when, sizeof(when));
    json_t *o = json_object();
    if (!o)
        return;
    json_object_set_new(o, "time", json_string(when));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "tag", json_string(tag));
    json_object_set_new(o, "msg", json_string(msg));
    for (size_t i = 0; i < nf; i++) {
        if (f[i].str) {
            char *v = strdup(f[i].str);
            if (v) {
                clean(v);
                json_object_set_new(o, f[i].key, json_string(v));
            }
            free(v);
        } else {
            json_object_set_new(o, f[i].key, json_integer(f[i].num));
        }
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return;
    size_t n = strlen(text);
    text[n] = '\n'; /* over the NUL: written by length */
    write_line(text, n + 1);
    free(text);
}

static void emit_text(log_level level, const char *tag, const char *msg, const log_field *f,
                      size_t nf)
{
    char line[LINE_MAX_BYTES];
    size_t n = timestamp(line, sizeof(line));
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %-5s %s: %s", level_names[level], tag, msg);
    for (size_t i = 0; i < nf && n < sizeof(line); i++) {
        int m = f[i].str ? snprintf(line + n, sizeof(line) - n, " %s=%s", f[i].key, f[i].str)
                         : snprintf(line + n, sizeof(line) - n, " %s=%lld", f[i].key, f[i].num);
        if (m > 0)
            n += (size_t)m;
    }
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n] = '\0';
    clean(line);
    line[n++] = '\n';
    write_line(line, n);
}

static void emit(log_level level, const char *tag, const char *msg, const log_field *f, size_t nf)
{
    if (atomic_load(&json_format))
        emit_json(level, tag, msg, f, nf);
    else
        emit_text(level, tag, msg, f, nf);
}

static void vlog(log_level level, const char *tag, const log_field *f, size_t nf, const char *fmt,
                 va_list ap) __attribute__((format(printf, 5, 0)));

static void vlog(log_level level, const char *tag, const log_field *f, size_t nf, const char *fmt,
                 va_list ap)
{
    if (!log_enabled(level) || (level >= LOG_LEVEL_INFO && !admit()))
        return;
    char msg[LINE_MAX_BYTES / 2];
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    clean(msg);
    emit(level, tag, msg, f, nf);
}

void log_write(log_level level, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, tag, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_fields(log_level level, const char *tag, const log_field *fields, size_t n,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, tag, fields, n, fmt, ap);
    va_end(ap);
}

unsigned long long log_suppressed_total(void)
{
    return atomic_load(&dropped_total);
}

unsigned long long log_tick(void)
{
    unsigned d = atomic_exchange(&dropped_now, 0);
    if (d && log_enabled(LOG_LEVEL_WARN)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "suppressed %u lines (log.max_lines_per_s is %u)", d,
                 atomic_load(&max_per_s));
        log_field f = LOG_NUM("suppressed", d);
        emit(LOG_LEVEL_WARN, "log", msg, &f, 1);
    }
    return atomic_load(&dropped_total);
}
