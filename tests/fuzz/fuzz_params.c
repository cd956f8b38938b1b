/* SPDX-License-Identifier: MIT */
/*
 * fuzz_params.c - libFuzzer harness for the small parsers of request text:
 * parse_u64 (since=, Content-Length, SignalR negotiateVersion),
 * hub_parse_cursor ("EPOCH:N" Last-Event-ID and since=), hub_epoch_is_valid,
 * room_name_is_valid, query_param (SignalR id= in a raw query),
 * client_addr_format (X-Real-IP / X-Forwarded-For behind a proxy) and the
 * server API's paged-read parameters (gateway/api_query.c: since, limit,
 * epoch; limit, after: the values one per line, a line of one DEL byte
 * for an absent one). The first byte picks the parser; the rest is its
 * text. Each result is checked
 * against a plain reading of the rule it implements.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/client_addr.h"
#include "common/parse.h"
#include "gateway/api_query.h"
#include "hub/hub.h"
#include "transports/signalr/private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool ok, const char *what, const char *text)
{
    if (!ok) {
        fprintf(stderr, "%s (input \"%s\")\n", what, text);
        abort();
    }
}

/* The reference: 1 to 20 digits whose value fits in 64 bits. */
static bool u64_ref(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (!n || n > 20 || strspn(s, "0123456789") != n)
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno)
        return false;
    *out = v;
    return true;
}

static bool alnum_only(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static void check_u64(const char *t)
{
    uint64_t v = 0, r = 0;
    bool ok = parse_u64(t, &v);
    bool ref = u64_ref(t, &r);
    must(ok == ref && (!ok || v == r), "parse_u64 disagrees with strtoull", t);
}

static void check_cursor(const char *t)
{
    uint64_t since = 0, r = 0;
    char epoch[MSG_EPOCH_MAX + 8];
    memset(epoch, 'x', sizeof(epoch));
    bool ok = hub_parse_cursor(t, &since, epoch);
    const char *colon = strchr(t, ':');
    bool ref;
    if (colon) {
        size_t n = (size_t)(colon - t);
        char e[MSG_EPOCH_MAX];
        ref = n >= 1 && n < MSG_EPOCH_MAX;
        if (ref) {
            memcpy(e, t, n);
            e[n] = '\0';
            ref = alnum_only(e) && u64_ref(colon + 1, &r);
            if (ok)
                must(!strcmp(epoch, e), "hub_parse_cursor: wrong epoch", t);
        }
    } else {
        ref = u64_ref(t, &r);
        if (ok)
            must(epoch[0] == '\0', "hub_parse_cursor: an epoch without a colon", t);
    }
    must(ok == ref, "hub_parse_cursor disagrees with the EPOCH:N rule", t);
    must(!ok || since == r, "hub_parse_cursor: wrong number", t);
    must(epoch[MSG_EPOCH_MAX] == 'x', "hub_parse_cursor: wrote past the epoch", t);
    bool ev = hub_epoch_is_valid(t);
    size_t n = strlen(t);
    must(ev == (n >= 1 && n < MSG_EPOCH_MAX && alnum_only(t)), "hub_epoch_is_valid", t);
}

static void check_room(const char *t, size_t len)
{
    static const char allowed[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:";
    bool ok = room_name_is_valid(t, len);
    bool ref = len >= 1 && len <= ROOM_NAME_MAX;
    for (size_t i = 0; ref && i < len; i++)
        ref = t[i] != '\0' && strchr(allowed, t[i]) != NULL;
    must(ok == ref, "room_name_is_valid", t);
}

static void check_query(const char *t)
{
    char out[64];
    memset(out, 'x', sizeof(out));
    if (query_param(t, "id", out, 24)) {
        must(memchr(out, '\0', 24) != NULL, "query_param: no NUL within cap", t);
        must(!strchr(out, '&'), "query_param: value runs past '&'", t);
    }
    must(out[24] == 'x', "query_param: wrote past cap", t);
}

/* "X-Real-IP\nX-Forwarded-For"; without '\n' there is no X-Real-IP. */
static void check_addr(const char *t, size_t len)
{
    const char *nl = memchr(t, '\n', len);
    char real[256] = "";
    const char *xff = t;
    if (nl) {
        size_t n = (size_t)(nl - t) < sizeof(real) - 1 ? (size_t)(nl - t) : sizeof(real) - 1;
        memcpy(real, t, n);
        real[n] = '\0';
        xff = nl + 1;
    }
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    static const size_t caps[] = {1, 16, CLIENT_ADDR_MAX};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        size_t cap = caps[i];
        char out[CLIENT_ADDR_MAX + 8];
        memset(out, 'x', sizeof(out));
        client_addr_format((const struct sockaddr *)&peer, nl ? real : NULL, xff, true, out, cap);
        must(memchr(out, '\0', cap) != NULL, "client_addr_format: no NUL within cap", t);
        must(out[cap] == 'x', "client_addr_format: wrote past cap", t);
        unsigned char bin[16];
        if (cap == CLIENT_ADDR_MAX)
            must(inet_pton(AF_INET, out, bin) == 1 || inet_pton(AF_INET6, out, bin) == 1,
                 "client_addr_format: not an address", t);
    }
}

#define ABSENT "\x7f"

/* Splits t at '\n' into at most n values (NULL for ABSENT or missing). */
static void split_values(char *t, const char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = t;
        char *nl = t ? strchr(t, '\n') : NULL;
        if (nl)
            *nl = '\0';
        if (t && !strcmp(t, ABSENT))
            v[i] = NULL;
        t = nl ? nl + 1 : NULL;
    }
}

static bool limit_ref(const char *s, uint64_t *v)
{
    *v = API_PAGE_DEFAULT;
    return !s || (u64_ref(s, v) && *v >= 1 && *v <= API_PAGE_MAX);
}

/* err names the first bad parameter, within cap. */
static void check_err(const char *err, size_t cap, const char *name, const char *t)
{
    must(memchr(err, '\0', cap) != NULL, "api params: error not NUL-terminated", t);
    must(!strncmp(err, name, strlen(name)) && err[strlen(name)] == ' ',
         "api params: the error does not name the parameter", t);
}

static void check_history_params(char *t)
{
    const char *v[3];
    split_values(t, v, 3);
    uint64_t since = 0, limit;
    size_t elen = v[2] ? strlen(v[2]) : 0;
    bool since_ok = !v[0] || u64_ref(v[0], &since);
    bool limit_ok = limit_ref(v[1], &limit);
    bool epoch_ok = !v[2] || (elen >= 1 && elen < MSG_EPOCH_MAX && alnum_only(v[2]));
    api_history_params p;
    char err[96];
    memset(err, 'x', sizeof(err));
    bool ok = api_history_params_parse(v[0], v[1], v[2], &p, err, sizeof(err));
    must(ok == (since_ok && limit_ok && epoch_ok), "api_history_params_parse: verdict", t);
    if (ok)
        must(p.since == since && p.limit == limit && !strcmp(p.epoch, v[2] ? v[2] : ""),
             "api_history_params_parse: values", t);
    else
        check_err(err, sizeof(err), !since_ok ? "since" : !limit_ok ? "limit" : "epoch", t);
}

static void check_rooms_params(char *t)
{
    const char *v[2];
    split_values(t, v, 2);
    uint64_t limit;
    bool limit_ok = limit_ref(v[0], &limit);
    size_t alen = v[1] ? strlen(v[1]) : 0;
    bool after_ok = !alen || room_name_is_valid(v[1], alen);
    api_rooms_params p;
    char err[96];
    memset(err, 'x', sizeof(err));
    bool ok = api_rooms_params_parse(v[0], v[1], &p, err, sizeof(err));
    must(ok == (limit_ok && after_ok), "api_rooms_params_parse: verdict", t);
    if (ok)
        must(p.limit == limit && !strcmp(p.after, v[1] ? v[1] : ""),
             "api_rooms_params_parse: values", t);
    else
        check_err(err, sizeof(err), !limit_ok ? "limit" : "after", t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    char *t = malloc(len + 1);
    if (!t)
        return 0;
    memcpy(t, data + 1, len);
    t[len] = '\0';
    switch (data[0] % 7) { /* the first five keep their seeds' meaning */
    case 0:
        check_u64(t);
        break;
    case 1:
        check_cursor(t);
        break;
    case 2:
        check_room(t, len);
        break;
    case 3:
        check_query(t);
        break;
    case 4:
        check_addr(t, len);
        break;
    case 5:
        check_history_params(t);
        break;
    case 6:
        check_rooms_params(t);
        break;
    }
    free(t);
    return 0;
}
