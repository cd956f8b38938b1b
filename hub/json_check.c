/* SPDX-License-Identifier: MIT */
/*
 * json_check.c - a recursive-descent JSON syntax checker (see json_check.h).
 * Published bodies are kept as sent, so crier only needs to know they are
 * valid; parsing them into a tree would cost allocations per message and
 * would refuse numbers larger than 64 bits.
 */
#include "hub/json_check.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef struct cursor {
    const unsigned char *s;
    size_t len, pos;
    int depth;
    const char *what;
} cursor;

static bool fail(cursor *c, const char *what)
{
    if (!c->what)
        c->what = what;
    return false;
}

static void skip_space(cursor *c)
{
    while (c->pos < c->len) {
        unsigned char ch = c->s[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            return;
        c->pos++;
    }
}

static bool literal(cursor *c, const char *word)
{
    size_t n = strlen(word);
    if (c->len - c->pos < n || memcmp(c->s + c->pos, word, n))
        return fail(c, "invalid literal");
    c->pos += n;
    return true;
}

static bool digits(cursor *c)
{
    size_t start = c->pos;
    while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9')
        c->pos++;
    return c->pos > start || fail(c, "invalid number");
}

static bool number(cursor *c)
{
    if (c->s[c->pos] == '-')
        c->pos++;
    if (c->pos < c->len && c->s[c->pos] == '0')
        c->pos++;
    else if (!digits(c))
        return false;
    if (c->pos < c->len && c->s[c->pos] == '.') {
        c->pos++;
        if (!digits(c))
            return false;
    }
    if (c->pos < c->len && (c->s[c->pos] == 'e' || c->s[c->pos] == 'E')) {
        c->pos++;
        if (c->pos < c->len && (c->s[c->pos] == '+' || c->s[c->pos] == '-'))
            c->pos++;
        if (!digits(c))
            return false;
    }
    return true;
}

/* One UTF-8 sequence starting at a byte >= 0x80: well-formed, shortest
 * form, no surrogates, at most U+10FFFF. */
static bool utf8_sequence(cursor *c)
{
    unsigned char b = c->s[c->pos];
    int extra;
    uint32_t cp, min;
    if (b >= 0xC2 && b <= 0xDF) {
        extra = 1, cp = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        extra = 2, cp = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        extra = 3, cp = b & 0x07, min = 0x10000;
    } else {
        return fail(c, "invalid UTF-8");
    }
    if (c->len - c->pos <= (size_t)extra)
        return fail(c, "invalid UTF-8");
    for (int i = 1; i <= extra; i++) {
        unsigned char cont = c->s[c->pos + (size_t)i];
        if ((cont & 0xC0) != 0x80)
            return fail(c, "invalid UTF-8");
        cp = (cp << 6) | (cont & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(c, "invalid UTF-8");
    c->pos += (size_t)extra + 1;
    return true;
}

static bool escape(cursor *c)
{
    c->pos++; /* the backslash */
    if (c->pos >= c->len)
        return fail(c, "unterminated string");
    unsigned char e = c->s[c->pos++];
    if (strchr("\"\\/bfnrt", e) && e)
        return true;
    if (e != 'u')
        return fail(c, "invalid escape");
    for (int i = 0; i < 4; i++, c->pos++) {
        if (c->pos >= c->len || !strchr("0123456789abcdefABCDEF", c->s[c->pos]) || !c->s[c->pos])
            return fail(c, "invalid \\u escape");
    }
    return true;
}

static bool string(cursor *c)
{
    c->pos++; /* the opening quote */
    while (c->pos < c->len) {
        unsigned char ch = c->s[c->pos];
        if (ch == '"') {
            c->pos++;
            return true;
        }
        if (ch < 0x20)
            return fail(c, "control character in string");
        if (ch == '\\') {
            if (!escape(c))
                return false;
        } else if (ch >= 0x80) {
            if (!utf8_sequence(c))
                return false;
        } else {
            c->pos++;
        }
    }
    return fail(c, "unterminated string");
}

static bool value(cursor *c);

/* An array or an object: open and close are its brackets. */
static bool container(cursor *c, char close, bool object)
{
    if (++c->depth > JSON_CHECK_MAX_DEPTH)
        return fail(c, "nesting too deep");
    c->pos++;
    skip_space(c);
    if (c->pos < c->len && c->s[c->pos] == close) {
        c->pos++;
        c->depth--;
        return true;
    }
    for (;;) {
        skip_space(c);
        if (object) {
            if (c->pos >= c->len || c->s[c->pos] != '"')
                return fail(c, "expected a string key");
            if (!string(c))
                return false;
            skip_space(c);
            if (c->pos >= c->len || c->s[c->pos] != ':')
                return fail(c, "expected ':'");
            c->pos++;
        }
        if (!value(c))
            return false;
        skip_space(c);
        if (c->pos >= c->len)
            return fail(c, "unexpected end of input");
        if (c->s[c->pos] == close) {
            c->pos++;
            c->depth--;
            return true;
        }
        if (c->s[c->pos] != ',')
            return fail(c, object ? "expected ',' or '}'" : "expected ',' or ']'");
        c->pos++;
    }
}

static bool value(cursor *c)
{
    skip_space(c);
    if (c->pos >= c->len)
        return fail(c, "unexpected end of input");
    switch (c->s[c->pos]) {
    case '{':
        return container(c, '}', true);
    case '[':
        return container(c, ']', false);
    case '"':
        return string(c);
    case 't':
        return literal(c, "true");
    case 'f':
        return literal(c, "false");
    case 'n':
        return literal(c, "null");
    default:
        if (c->s[c->pos] == '-' || (c->s[c->pos] >= '0' && c->s[c->pos] <= '9'))
            return number(c);
        return fail(c, "unexpected character");
    }
}

static void locate(const cursor *c, json_check_error *err)
{
    err->line = 1;
    err->column = 1;
    for (size_t i = 0; i < c->pos && i < c->len; i++) {
        if (c->s[i] == '\n') {
            err->line++;
            err->column = 1;
        } else {
            err->column++;
        }
    }
}

int json_check(const char *s, size_t len, json_check_error *err)
{
    cursor c = {.s = (const unsigned char *)s, .len = len};
    bool ok = value(&c);
    if (ok) {
        skip_space(&c);
        if (c.pos != c.len)
            ok = fail(&c, "text after the JSON value");
    }
    if (ok)
        return 0;
    locate(&c, err);
    err->what = c.what ? c.what : "invalid JSON";
    return -1;
}
