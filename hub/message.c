/* SPDX-License-Identifier: MIT */
/*
 * message.c - refcounted messages and their per-format encodings.
 * Pure data: no sockets, no threads of its own. See message.h for the
 * threading contract.
 */
#include "hub/message.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdbool.h>

/* Makes a message whose JSON form is prefix, data, then "}". */
static msg *msg_alloc(const char *prefix, size_t plen, const char *data, size_t data_len)
{
    msg *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->json_len = plen + data_len + 1;
    m->json = malloc(MSG_HEADROOM + m->json_len);
    if (!m->json) {
        free(m);
        return NULL;
    }
    char *p = m->json + MSG_HEADROOM;
    memcpy(p, prefix, plen);
    memcpy(p + plen, data, data_len);
    p[plen + data_len] = '}';
    memset(m->json, 0, MSG_HEADROOM);
    m->data_off = plen;
    m->data_len = data_len;
    atomic_init(&m->refs, 1);
    atomic_init(&m->variants, NULL);
    return m;
}

msg *msg_create_in(uint64_t id, const char *room, const char *epoch, const char *data,
                   size_t data_len, const char *target, int64_t created_ms)
{
    char prefix[64 + 160];
    int plen = epoch && *epoch
                   ? snprintf(prefix, sizeof(prefix),
                              "{\"id\":%" PRIu64 ",\"epoch\":\"%s\",\"room\":\"%s\",\"data\":", id,
                              epoch, room)
                   : snprintf(prefix, sizeof(prefix), "{\"id\":%" PRIu64 ",\"room\":\"%s\",\"data\":",
                              id, room);
    if (plen < 0 || (size_t)plen >= sizeof(prefix) || (epoch && strlen(epoch) >= MSG_EPOCH_MAX))
        return NULL;
    msg *m = msg_alloc(prefix, (size_t)plen, data, data_len);
    if (!m)
        return NULL;
    m->id = id;
    m->created_ms = created_ms;
    if (epoch)
        strcpy(m->epoch, epoch);
    if (target && !(m->target = strdup(target))) {
        msg_unref(m);
        return NULL;
    }
    return m;
}

msg *msg_create(uint64_t id, const char *room, const char *data, size_t data_len,
                const char *target, int64_t created_ms)
{
    return msg_create_in(id, room, NULL, data, data_len, target, created_ms);
}

msg *msg_create_gap(const char *info, size_t len)
{
    msg *m = msg_alloc("{\"gap\":", 7, info, len);
    if (m) {
        m->gap = true;
        m->target = strdup(MSG_GAP_TARGET);
        if (!m->target) {
            msg_unref(m);
            return NULL;
        }
    }
    return m;
}

/* Writes (when out is not NULL) or only counts the SSE event. Each line of
 * the payload, split at \r\n, \r or \n, becomes one "data:" line, so a
 * payload with newlines can never end the event early. */
static size_t sse_emit(char *out, const char *head, size_t n, const char *data, size_t len)
{
    if (out)
        memcpy(out, head, n);
    size_t line_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n' && data[i] != '\r')
            continue;
        size_t llen = i - line_start;
        if (out) {
            memcpy(out + n, "data: ", 6);
            memcpy(out + n + 6, data + line_start, llen);
            out[n + 6 + llen] = '\n';
        }
        n += 6 + llen + 1;
        if (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n')
            i++;
        line_start = i + 1;
    }
    if (out)
        out[n] = '\n';
    return n + 1;
}

/* The first line of m's SSE event: its id ("EPOCH:N", or N without an
 * epoch), or the event name of a gap signal. */
static size_t sse_head(const msg *m, char *head, size_t cap)
{
    if (m->gap)
        return (size_t)snprintf(head, cap, "event: gap\n");
    if (m->epoch[0])
        return (size_t)snprintf(head, cap, "id: %s:%" PRIu64 "\n", m->epoch, m->id);
    return (size_t)snprintf(head, cap, "id: %" PRIu64 "\n", m->id);
}

size_t msg_format_sse(char *out, size_t out_cap, uint64_t id, const char *data, size_t len)
{
    char head[40];
    size_t hlen = (size_t)snprintf(head, sizeof(head), "id: %" PRIu64 "\n", id);
    size_t need = sse_emit(NULL, head, hlen, data, len);
    if (out && out_cap >= need)
        sse_emit(out, head, hlen, data, len);
    return need;
}

/* Writes (when out is not NULL) or counts the SSE event SignalR expects:
 * the payload split into lines (at CR LF, LF or a lone CR, as EventSource
 * splits them), every line as "data: <line>\r\n", then an empty line. The
 * receiver joins the lines with LF; in a JSON record line breaks can only be
 * white space, so nothing changes meaning. */
static size_t signalr_sse_emit(char *out, const char *p, size_t len)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '\n' && p[i] != '\r')
            continue;
        size_t piece = i - start;
        if (out) {
            memcpy(out + n, "data: ", 6);
            memcpy(out + n + 6, p + start, piece);
            memcpy(out + n + 6 + piece, "\r\n", 2);
        }
        n += 6 + piece + 2;
        if (i + 1 < len && p[i] == '\r' && p[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    if (out)
        memcpy(out + n, "\r\n", 2);
    return n + 2;
}

/* Appends l bytes at p to out (when not NULL) at *n, and counts them. */
#define EMIT_LIT(out, n, lit) emit(out, n, lit, sizeof(lit) - 1)
static void emit(char *out, size_t *n, const char *p, size_t l)
{
    if (out)
        memcpy(out + *n, p, l);
    *n += l;
}

/* The room name inside the envelope {"id":N[,"epoch":"E"],"room":"R",...
 * (or a gap signal's {"gap":{"room":"R",...). The envelope is not
 * NUL-terminated: it is searched within its length. */
static msg_bytes room_of(const msg *m)
{
    static const char key[] = "\"room\":\"";
    const char *json = m->json + MSG_HEADROOM;
    const char *p = memmem(json, m->json_len, key, sizeof(key) - 1);
    if (!p)
        return (msg_bytes){"", 0};
    p += sizeof(key) - 1;
    const char *q = memchr(p, '"', m->json_len - (size_t)(p - json));
    return (msg_bytes){p, q ? (size_t)(q - p) : 0};
}

/* Writes (when out is not NULL) or counts the invocation record of m for
 * target: a JSON array payload is the argument list, anything else the one
 * argument. */
static size_t record_emit(char *out, const msg *m, const char *target)
{
    msg_bytes d = msg_data(m);
    bool is_array = d.len && d.base[0] == '[';
    size_t n = 0;
    EMIT_LIT(out, &n, "{\"type\":1,\"target\":\"");
    emit(out, &n, target, strlen(target));
    EMIT_LIT(out, &n, "\",\"arguments\":");
    if (!is_array)
        EMIT_LIT(out, &n, "[");
    emit(out, &n, d.base, d.len);
    if (!is_array)
        EMIT_LIT(out, &n, "]");
    if (m->id) { /* where it stands, for clients that resume (web/crier.js) */
        char h[MSG_EPOCH_MAX + 64];
        int hl = snprintf(h, sizeof(h), ",\"headers\":{\"crier-id\":\"%" PRIu64 "\"", m->id);
        emit(out, &n, h, (size_t)hl);
        if (m->epoch[0]) {
            EMIT_LIT(out, &n, ",\"crier-epoch\":\"");
            emit(out, &n, m->epoch, strlen(m->epoch));
            EMIT_LIT(out, &n, "\"");
        }
        EMIT_LIT(out, &n, ",\"crier-room\":\"");
        msg_bytes room = room_of(m);
        emit(out, &n, room.base, room.len);
        EMIT_LIT(out, &n, "\"}");
    }
    EMIT_LIT(out, &n, "}\x1e");
    return n;
}

static msg_variant *find_variant(const msg *m, msg_fmt fmt, const char *target)
{
    msg_variant *v = atomic_load_explicit(&((msg *)m)->variants, memory_order_acquire);
    for (; v; v = v->next)
        if (v->fmt == fmt && !strcmp(v->target, target))
            return v;
    return NULL;
}

static int add_variant(msg *m, msg_fmt fmt, const char *target)
{
    size_t rec_len = record_emit(NULL, m, target);
    char *rec = malloc(rec_len);
    if (!rec)
        return -ENOMEM;
    record_emit(rec, m, target);
    size_t len = fmt == MSG_FMT_SIGNALR ? rec_len : signalr_sse_emit(NULL, rec, rec_len);
    msg_variant *v = malloc(sizeof(*v) + MSG_HEADROOM + len);
    if (!v) {
        free(rec);
        return -ENOMEM;
    }
    v->fmt = fmt;
    v->target = target;
    v->len = len;
    memset(v->bytes, 0, MSG_HEADROOM);
    if (fmt == MSG_FMT_SIGNALR)
        memcpy(v->bytes + MSG_HEADROOM, rec, len);
    else
        signalr_sse_emit(v->bytes + MSG_HEADROOM, rec, rec_len);
    free(rec);
    v->next = atomic_load_explicit(&m->variants, memory_order_relaxed);
    atomic_store_explicit(&m->variants, v, memory_order_release);
    return 0;
}

static bool is_signalr(msg_fmt fmt)
{
    return fmt == MSG_FMT_SIGNALR || fmt == MSG_FMT_SIGNALR_SSE;
}

int msg_encode(msg *m, msg_fmt fmt, const char *target)
{
    if (m->direct)
        return 0; /* made at creation */
    if (is_signalr(fmt)) {
        const char *t = m->target ? m->target : target;
        if (!t)
            return -EINVAL;
        return find_variant(m, fmt, t) ? 0 : add_variant(m, fmt, t);
    }
    if (fmt != MSG_FMT_SSE || m->sse)
        return 0; /* the JSON envelope is made at creation */
    msg_bytes d = msg_data(m);
    char head[MSG_EPOCH_MAX + 40];
    size_t hlen = sse_head(m, head, sizeof(head));
    size_t need = sse_emit(NULL, head, hlen, d.base, d.len);
    char *buf = malloc(need);
    if (!buf)
        return -ENOMEM;
    sse_emit(buf, head, hlen, d.base, d.len);
    m->sse = buf;
    m->sse_len = need;
    return 0;
}

msg_bytes msg_get(const msg *m, msg_fmt fmt, const char *target)
{
    if (m->direct)
        return fmt == MSG_FMT_SIGNALR_SSE ? (msg_bytes){m->sse, m->sse_len}
                                          : (msg_bytes){m->json + MSG_HEADROOM, m->json_len};
    if (is_signalr(fmt)) {
        const char *t = m->target ? m->target : target;
        const msg_variant *v = t ? find_variant(m, fmt, t) : NULL;
        return v ? (msg_bytes){v->bytes + MSG_HEADROOM, v->len} : (msg_bytes){NULL, 0};
    }
    if (fmt == MSG_FMT_SSE)
        return (msg_bytes){m->sse, m->sse_len};
    return (msg_bytes){m->json + MSG_HEADROOM, m->json_len};
}

msg *msg_create_record(const char *json, size_t len)
{
    msg *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->direct = true;
    atomic_init(&m->refs, 1);
    atomic_init(&m->variants, NULL);
    m->json_len = len + 1;
    m->json = malloc(MSG_HEADROOM + len + 1);
    if (!m->json) {
        msg_unref(m);
        return NULL;
    }
    char *rec = m->json + MSG_HEADROOM;
    memset(m->json, 0, MSG_HEADROOM);
    memcpy(rec, json, len);
    rec[len] = MSG_RS;
    m->sse_len = signalr_sse_emit(NULL, rec, len + 1);
    m->sse = malloc(m->sse_len);
    if (!m->sse) {
        msg_unref(m);
        return NULL;
    }
    signalr_sse_emit(m->sse, rec, len + 1);
    return m;
}

msg_bytes msg_data(const msg *m)
{
    return (msg_bytes){m->json + MSG_HEADROOM + m->data_off, m->data_len};
}

msg *msg_ref(msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void msg_unref(msg *m)
{
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    msg_variant *v = atomic_load_explicit(&m->variants, memory_order_acquire);
    while (v) {
        msg_variant *next = v->next;
        free(v);
        v = next;
    }
    free(m->json);
    free(m->sse);
    free(m->target);
    free(m);
}

/* What malloc spends on one allocation beyond what was asked (glibc: a
 * 16-byte chunk header and rounding, on 64-bit). */
#define ALLOC_OVERHEAD 16

size_t msg_footprint(const msg *m)
{
    size_t n = sizeof(*m) + ALLOC_OVERHEAD;
    n += MSG_HEADROOM + m->json_len + ALLOC_OVERHEAD;
    if (m->sse)
        n += m->sse_len + ALLOC_OVERHEAD;
    if (m->target)
        n += strlen(m->target) + 1 + ALLOC_OVERHEAD;
    for (const msg_variant *v = atomic_load_explicit(&((msg *)m)->variants, memory_order_acquire);
         v; v = v->next)
        n += sizeof(*v) + MSG_HEADROOM + v->len + ALLOC_OVERHEAD;
    return n;
}
