/* SPDX-License-Identifier: MIT */
/*
 * json_check.h - checks that bytes are one JSON text (RFC 8259) without
 * building it: no allocation, numbers of any size, strings checked for
 * UTF-8, nesting bounded. Pure; any thread.
 */
#ifndef CRIER_JSON_CHECK_H
#define CRIER_JSON_CHECK_H

#include <stddef.h>

#define JSON_CHECK_MAX_DEPTH 128

typedef struct json_check_error {
    int line;   /* 1-based */
    int column; /* 1-based, in bytes */
    const char *what;
} json_check_error;

/* Returns 0 when s[0..len) is exactly one JSON value (white space around
 * allowed), -1 with *err filled otherwise. */
int json_check(const char *s, size_t len, json_check_error *err);

#endif
