/* SPDX-License-Identifier: MIT */
/*
 * request_head.c - the request head reader and checker (request_head.h).
 * Lines must end with CRLF; each complete line is checked as soon as it is
 * there, so a malformed request is refused before its head is complete.
 */
#include "gateway/request_head.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/parse.h"

static const char *const known_methods[] = {"GET",    "POST",    "PUT",  "HEAD",
                                            "DELETE", "OPTIONS", "PATCH"};
#define N_METHODS (sizeof(known_methods) / sizeof(known_methods[0]))

bool rh_span_is(rh_span s, const char *lit)
{
    return s.p && strlen(lit) == s.len && !strncasecmp(s.p, lit, s.len);
}

static rh_result fail(request_head *h, unsigned status, const char *error)
{
    free(h->path);
    free(h->query);
    h->path = h->query = NULL;
    h->status = status;
    h->error = error;
    return RH_ERROR;
}

/* RFC 9110 tchar: the characters of a token (method, field name). */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* The bytes before the first space (all of them while there is none) can
 * still begin a method crier serves. */
static bool method_prefix_ok(const char *data, size_t len)
{
    const char *sp = memchr(data, ' ', len);
    size_t n = sp ? (size_t)(sp - data) : len;
    for (size_t i = 0; i < N_METHODS; i++) {
        size_t ml = strlen(known_methods[i]);
        if (sp ? n == ml && !memcmp(data, known_methods[i], ml)
               : n <= ml && !memcmp(data, known_methods[i], n))
            return true;
    }
    return false;
}

/* Finds the end of the line at p: *eol at its CR. 1: a complete line;
 * 0: not complete yet; -1: a bare CR or LF (error set). */
static int line_end(request_head *h, const char *p, const char *end, const char **eol)
{
    for (const char *q = p; q < end; q++) {
        if (*q == '\n')
            return fail(h, 400, "bare LF in the request head: lines must end with CRLF"), -1;
        if (*q == '\r') {
            if (q + 1 == end)
                return 0;
            if (q[1] != '\n')
                return fail(h, 400, "bare CR in the request head"), -1;
            *eol = q;
            return 1;
        }
    }
    return 0;
}

/* Splits the target into its path, percent-decoded, and its raw query. */
static bool split_target(request_head *h)
{
    const char *t = h->target.p;
    size_t len = h->target.len;
    const char *q = memchr(t, '?', len);
    size_t plen = q ? (size_t)(q - t) : len;
    h->path = malloc(plen + 1);
    h->query = malloc(q ? len - plen : 1);
    if (!h->path || !h->query)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < plen; i++) {
        int hi, lo;
        if (t[i] == '%' && i + 2 < plen && (hi = parse_hex_digit(t[i + 1])) >= 0 &&
            (lo = parse_hex_digit(t[i + 2])) >= 0) {
            h->path[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            h->path[n++] = t[i];
        }
    }
    h->path[n] = '\0';
    if (q)
        memcpy(h->query, q + 1, len - plen - 1);
    h->query[q ? len - plen - 1 : 0] = '\0';
    return true;
}

/* "METHOD SP target SP HTTP/1.x": 0, or -1 with the error set. */
static int check_request_line(request_head *h, const char *p, size_t len)
{
    const char *sp1 = memchr(p, ' ', len);
    if (!sp1)
        return fail(h, 400, "malformed request line"), -1;
    const char *t = sp1 + 1, *end = p + len;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t)
        return fail(h, 400, "malformed request line"), -1;
    h->method = (rh_span){p, (size_t)(sp1 - p)};
    h->target = (rh_span){t, (size_t)(sp2 - t)};
    for (const char *c = t; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return fail(h, 400, "control character in the request target"), -1;
    const char *v = sp2 + 1;
    size_t vl = (size_t)(end - v);
    if (vl == 8 && !memcmp(v, "HTTP/1.", 7) && (v[7] == '0' || v[7] == '1')) {
        h->http_minor = v[7] - '0';
        return 0;
    }
    if (vl == 8 && !memcmp(v, "HTTP/", 5) && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
        v[7] >= '0' && v[7] <= '9')
        return fail(h, 505, "HTTP version not supported: use HTTP/1.1"), -1;
    return fail(h, 400, "malformed request line"), -1;
}

bool rh_list_has(rh_span v, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (e - s == tl && !strncasecmp(v.p + s, tok, tl))
            return true;
    }
    return false;
}

static bool span_has(rh_span v, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= v.len; i++)
        if (!strncasecmp(v.p + i, needle, nl))
            return true;
    return false;
}

/* Content-Length: one decimal number that fits 63 bits. */
static bool parse_length(rh_span v, uint64_t *out)
{
    return v.len <= 18 && parse_u64_n(v.p, v.len, out);
}

/* Notes the fields routing and framing depend on. 0, or -1 with the error. */
static int note_field(request_head *h, rh_span name, rh_span value)
{
    if (rh_span_is(name, "Content-Length")) {
        if (h->has_content_length)
            return fail(h, 400, "more than one Content-Length header"), -1;
        h->has_content_length = true;
        if (!parse_length(value, &h->content_length))
            return fail(h, 400, "Content-Length must be a decimal number"), -1;
    } else if (rh_span_is(name, "Transfer-Encoding")) {
        if (h->chunked)
            return fail(h, 400, "more than one Transfer-Encoding header"), -1;
        if (!rh_span_is(value, "chunked"))
            return fail(h, 400, "Transfer-Encoding must be exactly \"chunked\""), -1;
        h->chunked = true;
    } else if (rh_span_is(name, "Authorization")) {
        if (h->authorization.p)
            return fail(h, 400, "more than one Authorization header"), -1;
        h->authorization = value;
    } else if (rh_span_is(name, "Cookie")) {
        if (!h->cookie.p)
            h->cookie = value;
        h->cookie_bytes += value.len + 1;
        h->cookie_pairs++;
        for (size_t i = 0; i < value.len; i++)
            h->cookie_pairs += value.p[i] == ';';
    } else if (rh_span_is(name, "Upgrade")) {
        h->upgrade_websocket |= rh_list_has(value, "websocket");
    } else if (rh_span_is(name, "Connection")) {
        h->connection_upgrade |= rh_list_has(value, "upgrade");
    } else if (rh_span_is(name, "Accept")) {
        h->accept_event_stream |= span_has(value, "text/event-stream");
    } else if (rh_span_is(name, "Sec-WebSocket-Version")) {
        h->ws_version = value;
        h->ws_version_count++;
    } else if (rh_span_is(name, "Sec-WebSocket-Key")) {
        h->ws_key = value;
        h->ws_key_count++;
    } else if (rh_span_is(name, "X-Real-IP")) {
        if (!h->x_real_ip.p)
            h->x_real_ip = value;
    } else if (rh_span_is(name, "X-Forwarded-For")) {
        if (!h->x_forwarded_for.p)
            h->x_forwarded_for = value;
    } else if (rh_span_is(name, "Origin")) {
        if (!h->origin_count++)
            h->origin = value;
    } else if (rh_span_is(name, "Host") && !h->host.p) {
        h->host = value;
    }
    if (h->chunked && h->has_content_length)
        return fail(h, 400, "Content-Length and Transfer-Encoding together"), -1;
    return 0;
}

/* "name: value" with the value's surrounding whitespace dropped. */
static int check_field(request_head *h, const char *p, size_t len)
{
    if (*p == ' ' || *p == '\t')
        return fail(h, 400, "obs-fold (a header line starting with whitespace)"), -1;
    const char *colon = memchr(p, ':', len), *end = p + len;
    if (!colon)
        return fail(h, 400, "header line without a colon"), -1;
    if (colon == p)
        return fail(h, 400, "empty header field name"), -1;
    for (const char *c = p; c < colon; c++) {
        if (*c == ' ' || *c == '\t')
            return fail(h, 400, "whitespace in or before the colon of a header field name"), -1;
        if (!is_tchar((unsigned char)*c))
            return fail(h, 400, "invalid character in a header field name"), -1;
    }
    const char *v = colon + 1;
    for (const char *c = v; c < end; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return fail(h, 400, "control character in a header value"), -1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    h->fields++;
    return note_field(h, (rh_span){p, (size_t)(colon - p)}, (rh_span){v, (size_t)(end - v)});
}

rh_result request_head_parse(const char *data, size_t len, request_head *h)
{
    memset(h, 0, sizeof(*h));
    if (!method_prefix_ok(data, len))
        return fail(h, 400, "malformed HTTP request");
    const char *p = data, *end = data + len, *eol = NULL;
    int r = line_end(h, p, end, &eol);
    if (r <= 0)
        return r < 0 ? RH_ERROR : RH_INCOMPLETE;
    if (check_request_line(h, p, (size_t)(eol - p)))
        return RH_ERROR;
    for (p = eol + 2; (r = line_end(h, p, end, &eol)) > 0; p = eol + 2) {
        if (eol == p) {
            h->head_len = (size_t)(eol + 2 - data);
            if (h->chunked && h->http_minor == 0)
                return fail(h, 400, "Transfer-Encoding in an HTTP/1.0 request");
            if (!split_target(h))
                return fail(h, 503, "out of memory");
            return RH_COMPLETE;
        }
        if (check_field(h, p, (size_t)(eol - p)))
            return RH_ERROR;
    }
    return r < 0 ? RH_ERROR : RH_INCOMPLETE;
}

void request_head_free(request_head *h)
{
    free(h->path);
    free(h->query);
    h->path = h->query = NULL;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* 16 bytes in base64: 22 characters of the alphabet, then "==". */
static bool ws_key_is_valid(rh_span k)
{
    if (k.len != 24 || k.p[22] != '=' || k.p[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (b64_value(k.p[i]) < 0)
            return false;
    return (b64_value(k.p[21]) & 0x0f) == 0; /* no bits past the 16th byte */
}

unsigned request_head_ws_error(const request_head *h, const char **error)
{
    if (!rh_span_is(h->method, "GET") || h->http_minor < 1) {
        *error = "a WebSocket handshake is a GET request in HTTP/1.1";
        return 400;
    }
    if (!h->connection_upgrade) {
        *error = "a WebSocket handshake needs Connection: Upgrade";
        return 400;
    }
    if (h->ws_version_count != 1 || !rh_span_is(h->ws_version, "13")) {
        *error = "unsupported Sec-WebSocket-Version: this server speaks version 13";
        return 426;
    }
    if (h->ws_key_count != 1 || !ws_key_is_valid(h->ws_key)) {
        *error = "Sec-WebSocket-Key must be one base64 value of 16 bytes (24 characters)";
        return 400;
    }
    return 0;
}
