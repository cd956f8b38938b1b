/* SPDX-License-Identifier: MIT */
/*
 * http_call.c - the request/response side of the libmicrohttpd carrier
 * (see http_call.h): replies, bounded bodies, the client's address. Moved
 * out of gateway/http.c, which owns the daemons and registers the two
 * things only it knows (http_call_init).
 *
 * Threading: every function here runs on the MHD thread of the request's
 * connection; `hooks` and `trust_proxy` are set once at start, before any
 * daemon runs, and only read after.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/http_call.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/client_addr.h"
#include "common/http_status.h"
#include "common/json_text.h"
#include "common/log.h"
#include "transports/carriers/http_cors.h"

#define TAG "http"

static http_call_hooks hooks; /* set once at start */
static bool trust_proxy;      /* set once at start: cfg trust_proxy */

void http_call_init(const http_call_hooks *h, bool trust)
{
    hooks = *h;
    trust_proxy = trust;
}

enum MHD_Result http_queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r)
{
    if (hooks.one_request && hooks.one_request(conn))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    http_cors_add(conn, r);
    http_count_status(status);
    return MHD_queue_response(conn, status, r);
}

/* MHD_get_response_headers' iterator: takes the first header, stops. */
static enum MHD_Result first_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    const char **kv = cls;
    kv[0] = key;
    kv[1] = value;
    return MHD_NO;
}

void http_forget_headers(struct MHD_Response *r)
{
    const char *kv[2] = {NULL, NULL};
    /* One at a time: a deletion frees the record the iterator walks. */
    while (MHD_get_response_headers(r, first_header, (void *)kv) > 0 && kv[0] &&
           MHD_del_response_header(r, kv[0], kv[1]) == MHD_YES)
        kv[0] = NULL;
}

enum MHD_Result http_queue_uncached(struct MHD_Connection *conn, unsigned status,
                                    struct MHD_Response *r, const char *content_type)
{
    if (!r)
        return MHD_NO;
    if (content_type)
        MHD_add_response_header(r, "Content-Type", content_type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = http_queue(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

bool http_wants_event_stream(struct MHD_Connection *conn)
{
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
    return accept && strstr(accept, "text/event-stream");
}

enum MHD_Result http_reply_json(struct MHD_Connection *conn, unsigned status, const char *body,
                                size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    return http_queue_uncached(conn, status, r, "application/json");
}

void http_client_addr(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const char *real = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Real-IP");
    const char *xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
    client_addr_format(ci ? ci->client_addr : NULL, real, xff, trust_proxy, out, cap);
}

static enum MHD_Result reply_error_v(struct MHD_Connection *conn, unsigned status,
                                     const char *extra_header, const char *extra_value,
                                     const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static enum MHD_Result reply_error_v(struct MHD_Connection *conn, unsigned status,
                                     const char *extra_header, const char *extra_value,
                                     const char *fmt, va_list ap)
{
    char addr[CLIENT_ADDR_MAX];
    buf tb = {0};
    if (!buf_vprintf(&tb, fmt, ap) || !buf_append(&tb, "", 1)) {
        buf_free(&tb);
        return MHD_NO;
    }
    /* Logged once, here: a refused request and who sent it. */
    http_client_addr(conn, addr, sizeof(addr));
    const char *user = hooks.user_label ? hooks.user_label(conn) : NULL;
    const char *line = hooks.request_line ? hooks.request_line(conn) : NULL;
    if (!line)
        line = "no request line";
    if (status == MHD_HTTP_NOT_FOUND)
        LOG_DBG(TAG, "%u to %s%s%s: %s [%s]", status, addr, user ? " user " : "", user ? user : "",
                tb.data, line);
    else
        LOG_INFO(TAG, "%u to %s%s%s: %s [%s]", status, addr, user ? " user " : "", user ? user : "",
                 tb.data, line);
    size_t n = 0;
    char *body = json_error_body(tb.data, &n);
    buf_free(&tb);
    if (!body)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (extra_header)
        MHD_add_response_header(r, extra_header, extra_value);
    enum MHD_Result ret = http_queue(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result http_reply_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result ret = reply_error_v(conn, status, NULL, NULL, fmt, ap);
    va_end(ap);
    return ret;
}

enum MHD_Result http_reply_not_found(struct MHD_Connection *conn, const char *url)
{
    char *quoted = json_text_clip(url, JSON_ECHO_MAX);
    enum MHD_Result ret =
        http_reply_error(conn, MHD_HTTP_NOT_FOUND, "no such endpoint: %s", quoted ? quoted : "");
    free(quoted);
    return ret;
}

enum MHD_Result http_reply_error_with(struct MHD_Connection *conn, unsigned status,
                                      const char *header, const char *value, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result ret = reply_error_v(conn, status, header, value, fmt, ap);
    va_end(ap);
    return ret;
}

bool http_body_take(http_body *body, http_call *call, size_t limit)
{
    size_t len = *call->upload_size;
    *call->upload_size = 0;
    if (body->too_big || body->b.len + len > limit) {
        if (!body->too_big)
            http_abort(call->conn, MHD_HTTP_CONTENT_TOO_LARGE,
                       "message is larger than limits.max_message_bytes");
        body->too_big = true;
        return false;
    }
    return buf_append(&body->b, call->upload, len);
}

enum MHD_Result http_reply_take(struct MHD_Connection *conn, unsigned status,
                                const char *content_type, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body ? body : "", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r)
        free(body);
    return http_queue_uncached(conn, status, r, content_type);
}

enum MHD_Result http_reply_empty(struct MHD_Connection *conn, unsigned status)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    return http_queue_uncached(conn, status, r, NULL);
}

enum MHD_Result http_abort(struct MHD_Connection *conn, unsigned status, const char *error)
{
    return hooks.abort ? hooks.abort(conn, status, error) : MHD_NO;
}

enum MHD_Result http_reply_refused(struct MHD_Connection *conn, unsigned status,
                                   unsigned retry_after_s, const char *error)
{
    json_t *o = json_pack("{s:s}", "error", error);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (retry_after_s) {
        char v[16];
        snprintf(v, sizeof(v), "%u", retry_after_s);
        MHD_add_response_header(r, "Retry-After", v);
    }
    enum MHD_Result ret = http_queue(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}
