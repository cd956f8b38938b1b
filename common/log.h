/* SPDX-License-Identifier: MIT */
/*
 * log.h - one line per event on stderr: time, level, module tag, message.
 * Any thread; each line is written with one call, so lines never mix.
 */
#ifndef CRIER_LOG_H
#define CRIER_LOG_H

typedef enum { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG } log_level;

/* Returns 0 and sets the level for a name (error|warn|info|debug), or -1. */
int log_set_level_name(const char *name);
void log_set_level(log_level level);
int log_enabled(log_level level);

void log_write(log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_ERR(tag, ...) log_write(LOG_LEVEL_ERROR, tag, __VA_ARGS__)
#define LOG_WARN(tag, ...) log_write(LOG_LEVEL_WARN, tag, __VA_ARGS__)
#define LOG_INFO(tag, ...) log_write(LOG_LEVEL_INFO, tag, __VA_ARGS__)
#define LOG_DBG(tag, ...)                                                                          \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_write(LOG_LEVEL_DEBUG, tag, __VA_ARGS__);                                          \
    } while (0)

#endif
