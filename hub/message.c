/* SPDX-License-Identifier: MIT */
/*
 * message.c - refcounted messages, the hub's own encodings (JSON envelope,
 * plain SSE event) and the encode-once cache of registered formats.
 * Pure data: no sockets, no threads of its own. See message.h for the
 * threading contract; threads and locks: docs/concurrency.md.
 */
#include "hub/message.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include "common/json_text.h"

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
                   : snprintf(prefix, sizeof(prefix),
                              "{\"id\":%" PRIu64 ",\"room\":\"%s\",\"data\":", id, room);
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

msg *msg_create_to(const char *to, const char *name, const char *data, size_t data_len,
                   const char *target)
{
    buf prefix = {0};
    bool ok = buf_append_str(&prefix, "{\"") && buf_append_str(&prefix, to) &&
              buf_append_str(&prefix, "\":") && buf_json_string(&prefix, name, strlen(name), 0) &&
              buf_append_str(&prefix, ",\"data\":");
    msg *m = ok ? msg_alloc(prefix.data, prefix.len, data, data_len) : NULL;
    buf_free(&prefix);
    if (!m)
        return NULL;
    m->to = to;
    if (target && !(m->target = strdup(target))) {
        msg_unref(m);
        return NULL;
    }
    return m;
}

msg *msg_create_gap(const char *info, size_t len)
{
    msg *m = msg_alloc("{\"gap\":", 7, info, len);
    if (m)
        m->gap = true;
    return m;
}

msg *msg_create_presence(const char *data, size_t len)
{
    msg *m = msg_alloc("{\"presence\":", 12, data, len);
    if (m)
        m->presence = true;
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
 * epoch), or the event name of a gap signal or presence events. */
static size_t sse_head(const msg *m, char *head, size_t cap)
{
    if (m->gap)
        return (size_t)snprintf(head, cap, "event: gap\n");
    if (m->presence)
        return (size_t)snprintf(head, cap, "event: presence\n");
    if (m->to) /* no id: the stream's resume cursor stays its room's */
        return (size_t)snprintf(head, cap, "event: %s\n", m->to);
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

/* ------------------------------------------------- registered formats */

/* The registered formats by id; slots below MSG_FMT_BUILTIN_COUNT stay
 * NULL. Written under fmt_lock; read without it (see message.h). */
static const msg_format *formats[MSG_FMT_MAX];
static int nformats = MSG_FMT_BUILTIN_COUNT;
static pthread_mutex_t fmt_lock = PTHREAD_MUTEX_INITIALIZER;

msg_fmt msg_format_register(const msg_format *f)
{
    pthread_mutex_lock(&fmt_lock);
    int id = nformats < MSG_FMT_MAX ? nformats++ : -1;
    if (id >= 0)
        formats[id] = f;
    pthread_mutex_unlock(&fmt_lock);
    return id;
}

/* The registered format id, or NULL for a built-in or unknown id. */
static const msg_format *format_of(msg_fmt fmt)
{
    return fmt >= MSG_FMT_BUILTIN_COUNT && fmt < MSG_FMT_MAX ? formats[fmt] : NULL;
}

bool msg_format_is_binary(msg_fmt fmt)
{
    const msg_format *f = format_of(fmt);
    return f && f->binary;
}

struct msg_sink {
    msg_variant *v; /* made by msg_sink_alloc */
};

char *msg_sink_alloc(msg_sink *sink, size_t len)
{
    if (sink->v)
        return NULL; /* once only */
    msg_variant *v = malloc(sizeof(*v) + MSG_HEADROOM + len);
    if (!v)
        return NULL;
    memset(v->bytes, 0, MSG_HEADROOM);
    v->len = len;
    sink->v = v;
    return v->bytes + MSG_HEADROOM;
}

/* The cached encoding fmt for key. An entry without a target (a format that
 * does not depend on one, or a direct message's) serves every key; one with
 * a target serves an equal key, compared by address first (members of one
 * hub share their default target's string, which is also the key the entry
 * was made under). msg_get runs it once per delivery. */
static msg_variant *find_variant(const msg *m, msg_fmt fmt, const char *key)
{
    msg_variant *v = atomic_load_explicit(&((msg *)m)->variants, memory_order_acquire);
    for (; v; v = v->next)
        if (v->fmt == fmt && (!v->target || v->target == key || (key && !strcmp(v->target, key))))
            return v;
    return NULL;
}

/* Runs f's encoder for m and target and publishes the result under key:
 * the bytes are complete before the release store makes them reachable. */
static int add_variant(msg *m, msg_fmt fmt, const msg_format *f, const char *target,
                       const char *key)
{
    msg_sink sink = {NULL};
    int rc = f->encode(m, target, &sink);
    if (rc || !sink.v) {
        free(sink.v);
        return rc ? rc : -ENOMEM;
    }
    msg_variant *v = sink.v;
    v->fmt = fmt;
    v->target = key;
    v->next = atomic_load_explicit(&m->variants, memory_order_relaxed);
    atomic_store_explicit(&m->variants, v, memory_order_release);
    return 0;
}

/* The key a per-target format caches m under: the message's own target,
 * else the member's default. */
static const char *key_of(const msg *m, const char *target)
{
    return m->target ? m->target : target;
}

static int encode_registered(msg *m, msg_fmt fmt, const msg_format *f, const char *target)
{
    const char *key = f->per_target ? key_of(m, target) : NULL;
    if (f->per_target && !key)
        return -EINVAL;
    return find_variant(m, fmt, key) ? 0 : add_variant(m, fmt, f, key, key);
}

/* The plain SSE event, made on first need. */
static int encode_sse(msg *m)
{
    if (m->sse)
        return 0;
    msg_bytes d = msg_data(m);
    char head[MSG_EPOCH_MAX + 40];
    size_t hlen = sse_head(m, head, sizeof(head));
    size_t need = sse_emit(NULL, head, hlen, d.base, d.len);
    char *event = malloc(need);
    if (!event)
        return -ENOMEM;
    sse_emit(event, head, hlen, d.base, d.len);
    m->sse = event;
    m->sse_len = need;
    return 0;
}

int msg_encode(msg *m, msg_fmt fmt, const char *target)
{
    if (m->direct)
        return 0; /* made at creation */
    const msg_format *f = format_of(fmt);
    if (f)
        return encode_registered(m, fmt, f, target);
    if (fmt == MSG_FMT_SSE)
        return encode_sse(m);
    return 0; /* the JSON envelope is made at creation */
}

int msg_encode_direct(msg *m, msg_fmt fmt)
{
    const msg_format *f = format_of(fmt);
    if (!f || !m->direct)
        return -EINVAL;
    return find_variant(m, fmt, NULL) ? 0 : add_variant(m, fmt, f, NULL, NULL);
}

/* msg_get for a registered format: no need for its table entry here.
 * Entries of a format that ignores targets have none and match any key;
 * with a per-target format and no key anywhere, nothing matches. */
static msg_bytes get_registered(const msg *m, msg_fmt fmt, const char *target)
{
    const msg_variant *v = find_variant(m, fmt, m->target ? m->target : target);
    if (v)
        return (msg_bytes){v->bytes + MSG_HEADROOM, v->len};
    return m->direct ? (msg_bytes){m->json + MSG_HEADROOM, m->json_len} : (msg_bytes){NULL, 0};
}

msg_bytes msg_get(const msg *m, msg_fmt fmt, const char *target)
{
    if (fmt >= MSG_FMT_BUILTIN_COUNT)
        return get_registered(m, fmt, target);
    if (fmt == MSG_FMT_SSE && !m->direct)
        return (msg_bytes){m->sse, m->sse_len};
    return (msg_bytes){m->json + MSG_HEADROOM, m->json_len};
}

msg *msg_create_direct(size_t len, char **out)
{
    msg *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->direct = true;
    atomic_init(&m->refs, 1);
    atomic_init(&m->variants, NULL);
    m->json_len = len;
    m->json = malloc(MSG_HEADROOM + len);
    if (!m->json) {
        free(m);
        return NULL;
    }
    memset(m->json, 0, MSG_HEADROOM);
    *out = m->json + MSG_HEADROOM;
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
