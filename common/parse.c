/* SPDX-License-Identifier: MIT */
/*
 * parse.c - decimal u64 and raw query-string parameters (see parse.h).
 */
#include "common/parse.h"

#include <string.h>

#define U64_DIGITS_MAX 20 /* UINT64_MAX has 20 digits */

bool parse_u64_n(const char *s, size_t len, uint64_t *out)
{
    if (!s || !len || len > U64_DIGITS_MAX)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool parse_u64(const char *s, uint64_t *out)
{
    return s && parse_u64_n(s, strnlen(s, U64_DIGITS_MAX + 1), out);
}

const char *query_value(const char *query, const char *key, size_t *len)
{
    size_t klen = strlen(key);
    for (const char *p = query; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) || p[klen] != '=')
            continue;
        *len = strcspn(p + klen + 1, "&");
        return p + klen + 1;
    }
    return NULL;
}

bool query_param(const char *query, const char *key, char *out, size_t cap)
{
    size_t n = 0;
    const char *v = query_value(query, key, &n);
    if (!v || n >= cap)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

int parse_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool query_has(const char *query, const char *key)
{
    size_t n;
    return query_value(query, key, &n) != NULL;
}
