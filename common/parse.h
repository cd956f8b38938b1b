/* SPDX-License-Identifier: MIT */
/*
 * parse.h - the small parsers of request text every layer shares: a
 * decimal u64 (since=, Content-Length, negotiateVersion, cursors) and the
 * parameters of a raw (not percent-decoded) query string. Pure; any thread.
 */
#ifndef CRIER_PARSE_H
#define CRIER_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a non-negative decimal integer (no sign, no spaces, 1 to 20
 * digits, fits 64 bits) from the NUL-terminated s (NULL: false). */
bool parse_u64(const char *s, uint64_t *out);

/* The same for the len bytes at s (no NUL needed). */
bool parse_u64_n(const char *s, size_t len, uint64_t *out);

/* The value of a hexadecimal digit (0-9, a-f, A-F), or -1 for any other
 * character. */
int parse_hex_digit(char c);

/* Copies the value of the first key=value parameter of a raw query string
 * ("a=1&b=2", without the '?') into out, NUL-terminated, as it is (not
 * decoded). False when key is absent or its value does not fit in cap
 * bytes with the NUL; query may be NULL. */
bool query_param(const char *query, const char *key, char *out, size_t cap);

/* True when the query has a key=... parameter. */
bool query_has(const char *query, const char *key);

/* The value of the first key=value parameter of a raw query, as a span of
 * query (not decoded, not NUL-terminated: *len bytes), or NULL when key is
 * absent; query may be NULL. */
const char *query_value(const char *query, const char *key, size_t *len);

#endif
