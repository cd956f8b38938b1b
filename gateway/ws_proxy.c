/* SPDX-License-Identifier: MIT */
/*
 * ws_proxy.c - the connect proxy (upstream.connect) for the plain
 * WebSocket: what is asked and what the verdict does with the socket. The
 * waiting list, the queue of verdicts and the eventfd are an acceptor_wait
 * (acceptor_wait.h, its threading rules): the entry's room belongs to the
 * acceptor; who, status and error are written by the call's callback
 * before aw_done, and read by settle after. See docs/concurrency.md.
 */
#include "gateway/ws_proxy.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/access.h"
#include "common/client_addr.h"
#include "hub/hub.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/upstream.h"
#include "gateway/acceptor_wait.h"
#include "transports/carriers/http_client.h"
#include "transports/carriers/ws.h"

#define TAG "ws_proxy"
#define QUERY_KEYS_MAX 64 /* query parameters passed on, as plain/connect.c's */

typedef struct proxy_wait {
    aw_entry e;
    char room[ROOM_NAME_MAX + 1];
    access_principal *who; /* the verdict: accepted (a reference) */
    unsigned status;       /* refused */
    char *error;
} proxy_wait;

static void settle(aw_entry *e);
static void release(aw_entry *e);

static const cfg *conf;
static acceptor_wait waits = ACCEPTOR_WAIT_INIT(waits, TAG, "the connect proxy's", settle, release);

int ws_proxy_init(const cfg *c, int epfd)
{
    conf = c;
    if (!c->upstream.connect[0])
        return 0;
    return aw_init(&waits, epfd);
}

bool ws_proxy_enabled(void)
{
    return conf && conf->upstream.connect[0];
}

const void *ws_proxy_wake_tag(void)
{
    return &waits;
}

unsigned ws_proxy_waiting(void)
{
    return aw_waiting(&waits);
}

/* Any thread: the last reference went. */
static void release(aw_entry *e)
{
    proxy_wait *w = (proxy_wait *)e;
    access_unref(w->who);
    free(w->error);
    free(w);
}

/* Any thread (the curl thread mostly): the verdict, queued for the acceptor. */
static void wait_done(void *arg, up_transfer t, long status, const char *body, size_t len)
{
    proxy_wait *w = arg;
    w->who = up_connect_read(t, status, body, len, conf->upstream.connect, &w->status, &w->error);
    aw_done(&waits, &w->e);
}

/* A query key or value percent-decoded ('+' a space), as MHD decodes its
 * arguments; a decoded NUL ends it. NULL unless UTF-8 (or on ENOMEM). */
static json_t *query_text(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = 0, lo = 0;
        if (s[i] == '%' && i + 2 < len && (hi = parse_hex_digit(s[i + 1])) >= 0 &&
            (lo = parse_hex_digit(s[i + 2])) >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    json_t *j = json_stringn(out, strnlen(out, n));
    free(out);
    return j;
}

/* The raw query as {"key": "value", ...} (the first of each key). */
static json_t *query_object(const char *query)
{
    json_t *o = json_object();
    for (const char *p = query; o && p && *p && json_object_size(o) < QUERY_KEYS_MAX;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        json_t *k = klen ? query_text(p, klen) : NULL;
        json_t *v = k ? (eq ? query_text(eq + 1, len - klen - 1) : json_string("")) : NULL;
        if (k && v && !json_object_get(o, json_string_value(k)))
            json_object_set(o, json_string_value(k), v);
        json_decref(k);
        json_decref(v);
        p = end ? end + 1 : p + len;
    }
    return o;
}

static void set_span(json_t *o, const char *key, rh_span s)
{
    json_t *v = s.p ? json_stringn(s.p, s.len) : NULL;
    if (v)
        json_object_set_new(o, key, v);
}

/* {"hub": null, "headers": {Cookie?, Authorization?}, "query", "room",
 * "transport": "websocket"}: what plain/connect.c sends for SSE. */
static char *ask_body(const request_head *h, const char *room)
{
    json_t *o = json_object(), *headers = json_object();
    set_span(headers, "Cookie", h->cookie);
    set_span(headers, "Authorization", h->authorization);
    json_object_set_new(o, "hub", json_null());
    json_object_set_new(o, "headers", headers);
    json_object_set_new(o, "query", query_object(h->query));
    json_object_set_new(o, "room", json_string(room));
    json_object_set_new(o, "transport", json_string("websocket"));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

unsigned ws_proxy_start(int fd, const struct sockaddr_storage *addr, const request_head *h,
                        const char *room, const char **error)
{
    if (aw_waiting(&waits) >= conf->upstream.max_in_flight) {
        *error = "too many connections waiting for upstream.connect";
        return 503;
    }
    char *body = ask_body(h, room);
    proxy_wait *w = body ? calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        free(body);
        *error = "out of memory";
        return 503;
    }
    snprintf(w->room, sizeof(w->room), "%s", room);
    aw_add(&waits, &w->e, fd, h->head_len, addr);
    hc_post(conf->upstream.connect, body, strlen(body), conf->upstream.timeout_ms, false, wait_done,
            w);
    return 0;
}

/* Answers a refusal before the upgrade, logged once. */
static void refuse(proxy_wait *w, unsigned status, const char *error)
{
    char addr[CLIENT_ADDR_MAX];
    client_addr_format((struct sockaddr *)&w->e.addr, NULL, NULL, false, addr, sizeof(addr));
    LOG_INFO(TAG, "%u to %s (room %s): %s", status, addr, w->room, error);
    aw_refuse(&w->e, status, error);
}

/* Acceptor: the verdict for e: hand the socket to libwebsockets with the
 * proxy's principal if it may subscribe to the room, else answer. */
static void settle(aw_entry *e)
{
    proxy_wait *w = (proxy_wait *)e;
    if (!w->who) {
        refuse(w, w->status ? w->status : 502, w->error ? w->error : "refused by the upstream");
    } else {
        access_verdict v = access_room(conf, w->who, w->room, ACCESS_SUBSCRIBE);
        if (v == ACCESS_ALLOWED)
            ws_adopt(e->fd, e->head_len, access_ref(w->who)); /* ws.c takes the reference */
        else
            refuse(w, access_status(v), access_reason(v, ACCESS_SUBSCRIBE));
    }
}

void ws_proxy_answers(void)
{
    aw_answers(&waits);
}

void ws_proxy_fini(void)
{
    if (ws_proxy_enabled())
        aw_fini(&waits);
}
