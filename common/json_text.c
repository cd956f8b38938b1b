/* SPDX-License-Identifier: MIT */
/*
 * json_text.c - JSON string literals and error bodies from untrusted bytes
 * (json_text.h).
 */
#include "common/json_text.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when
 * the bytes there are not one (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t min, cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, min = 0x80, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, min = 0x800, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Where to cut s (len bytes) to at most max bytes without splitting a
 * character. */
static size_t clip_len(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80 && max - n < 3)
        n--;
    return n;
}

bool buf_append_str(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

bool buf_json_string(buf *b, const char *s, size_t len, size_t max)
{
    bool clipped = max && len > max;
    if (clipped)
        len = clip_len(s, len, max);
    const unsigned char *u = (const unsigned char *)s;
    bool ok = buf_append(b, "\"", 1);
    size_t run = 0; /* bytes at u + i - run still to copy as they are */
    for (size_t i = 0; ok && i < len;) {
        unsigned char c = u[i];
        const char *esc = NULL;
        char hex[8];
        size_t seq = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(hex, sizeof(hex), "\\u%04x", c);
            esc = hex;
        } else if (c >= 0x80 && (seq = utf8_seq_len(u + i, len - i)) == 0) {
            esc = "\\ufffd"; /* not UTF-8: one replacement per byte */
            seq = 1;
        }
        if (!esc) {
            run += seq;
            i += seq;
            continue;
        }
        ok = buf_append(b, u + i - run, run) && buf_append_str(b, esc);
        run = 0;
        i += seq;
    }
    return ok && buf_append(b, u + len - run, run) && buf_append_str(b, clipped ? "...\"" : "\"");
}

bool buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    bool ok =
        text && vsnprintf(text, (size_t)n + 1, fmt, again) == n && buf_append(b, text, (size_t)n);
    free(text);
    va_end(again);
    return ok;
}

bool buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return ok;
}

char *json_text_clip(const char *s, size_t max)
{
    size_t len = strlen(s), n = clip_len(s, len, max);
    char *out = malloc(n + 4);
    if (!out)
        return NULL;
    memcpy(out, s, n);
    strcpy(out + n, n < len ? "..." : "");
    return out;
}

char *json_error_body(const char *text, size_t *len)
{
    buf b = {0};
    if (!buf_append_str(&b, "{\"error\":") || !buf_json_string(&b, text, strlen(text), 0) ||
        !buf_append(&b, "}", 2)) {
        buf_free(&b);
        return NULL;
    }
    if (len)
        *len = b.len - 1;
    return buf_take(&b);
}
