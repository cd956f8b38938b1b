/* SPDX-License-Identifier: MIT */
/*
 * json_text.h - JSON text from bytes a client sent: string literals that
 * are always valid JSON (quotes, backslashes and control characters
 * escaped, invalid UTF-8 replaced by U+FFFD), cut to a bound when asked,
 * and the {"error": "..."} bodies built from them. Everything is built in
 * a growing buf (buf.h); no fixed-size buffer. No locking: a buffer
 * belongs to whoever builds it.
 */
#ifndef CRIER_JSON_TEXT_H
#define CRIER_JSON_TEXT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* At most this many bytes of a client's text are echoed in an error. */
#define JSON_ECHO_MAX 128

/* Appends s (len bytes) as a JSON string literal, quotes included. With
 * max > 0 and len > max, only the first max bytes (cut at a character
 * boundary) go in, followed by "...". Returns false on ENOMEM. */
bool buf_json_string(buf *b, const char *s, size_t len, size_t max);

/* buf_append of a NUL-terminated literal. */
bool buf_append_str(buf *b, const char *s);

/* printf into the buffer, as long as it needs. Returns false on ENOMEM. */
bool buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

bool buf_vprintf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* s cut to max bytes at a character boundary, "..." appended when cut:
 * for quoting a client's text inside a message. Returns a malloc'd NUL-
 * terminated copy (invalid UTF-8 stays; buf_json_string replaces it), or
 * NULL on ENOMEM. */
char *json_text_clip(const char *s, size_t max);

/* {"error":"<text>"} as a malloc'd NUL-terminated string; *len (if not
 * NULL) gets its length. NULL on ENOMEM. */
char *json_error_body(const char *text, size_t *len);

#endif
