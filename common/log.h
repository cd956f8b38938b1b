/* SPDX-License-Identifier: MIT */
/*
 * log.h - one line per event on stderr: time, level, module tag, message,
 * and optional fields; as text ("2026-... info  tag: msg k=v") or, with
 * log.format "json", one JSON object a line (time, level, tag, msg and the
 * fields). Info and debug lines are limited to log.max_lines_per_s: past
 * it they are dropped and counted, and one warning a second names how
 * many ("suppressed N lines"). Tokens and API keys are never passed here.
 *
 * Any thread; each line is written with one call, so lines never mix. The
 * settings are atomics (log_configure: main thread, start and SIGHUP).
 */
#ifndef CRIER_LOG_H
#define CRIER_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG } log_level;

/* Returns 0 and sets the level for a name (error|warn|info|debug), or -1. */
int log_set_level_name(const char *name);
void log_set_level(log_level level);
int log_enabled(log_level level);

/* log.format (json or text), log.access, log.max_lines_per_s (0: none). */
void log_configure(bool json, bool access, unsigned max_lines_per_s);
bool log_access_on(void);
bool log_json(void);

/* A field of a line: a text (str set) or a number. */
typedef struct log_field {
    const char *key;
    const char *str; /* NULL: num */
    long long num;
} log_field;

#define LOG_STR(k, v) ((log_field){(k), log_or_dash(v), 0})
static inline const char *log_or_dash(const char *v)
{
    return v ? v : "-";
}

#define LOG_NUM(k, v) ((log_field){(k), NULL, (long long)(v)})

void log_write(log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A line with n fields after the message. */
void log_fields(log_level level, const char *tag, const log_field *fields, size_t n,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Once a second (the timer): writes the "suppressed" line when lines were
 * dropped. Returns the lines dropped since start. */
unsigned long long log_tick(void);

/* Lines dropped since start (for /metrics). */
unsigned long long log_suppressed_total(void);

#define LOG_ERR(tag, ...) log_write(LOG_LEVEL_ERROR, tag, __VA_ARGS__)
#define LOG_WARN(tag, ...) log_write(LOG_LEVEL_WARN, tag, __VA_ARGS__)
#define LOG_INFO(tag, ...) log_write(LOG_LEVEL_INFO, tag, __VA_ARGS__)
#define LOG_DBG(tag, ...)                                                                          \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_write(LOG_LEVEL_DEBUG, tag, __VA_ARGS__);                                          \
    } while (0)

#endif
