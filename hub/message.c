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

msg *msg_create(uint64_t id, const char *room, const char *data, size_t data_len,
                int64_t created_ms)
{
    char prefix[64 + 160];
    int plen = snprintf(prefix, sizeof(prefix), "{\"id\":%" PRIu64 ",\"room\":\"%s\",\"data\":",
                        id, room);
    if (plen < 0 || (size_t)plen >= sizeof(prefix))
        return NULL;
    msg *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->json_len = (size_t)plen + data_len + 1;
    m->json = malloc(MSG_HEADROOM + m->json_len);
    if (!m->json) {
        free(m);
        return NULL;
    }
    char *p = m->json + MSG_HEADROOM;
    memcpy(p, prefix, (size_t)plen);
    memcpy(p + plen, data, data_len);
    p[plen + data_len] = '}';
    memset(m->json, 0, MSG_HEADROOM);
    m->data_off = (size_t)plen;
    m->data_len = data_len;
    m->id = id;
    m->created_ms = created_ms;
    atomic_init(&m->refs, 1);
    return m;
}

/* Writes (when out is not NULL) or only counts the SSE event. Each line of
 * the payload, split at \r\n, \r or \n, becomes one "data:" line, so a
 * payload with newlines can never end the event early. */
static size_t sse_emit(char *out, uint64_t id, const char *data, size_t len)
{
    char head[40];
    size_t n = (size_t)snprintf(head, sizeof(head), "id: %" PRIu64 "\n", id);
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

size_t msg_format_sse(char *out, size_t out_cap, uint64_t id, const char *data, size_t len)
{
    size_t need = sse_emit(NULL, id, data, len);
    if (out && out_cap >= need)
        sse_emit(out, id, data, len);
    return need;
}

int msg_encode(msg *m, msg_fmt fmt)
{
    if (fmt != MSG_FMT_SSE || m->sse)
        return 0; /* the JSON envelope is made at creation */
    msg_bytes d = msg_data(m);
    size_t need = msg_format_sse(NULL, 0, m->id, d.base, d.len);
    char *buf = malloc(need);
    if (!buf)
        return -ENOMEM;
    msg_format_sse(buf, need, m->id, d.base, d.len);
    m->sse = buf;
    m->sse_len = need;
    return 0;
}

msg_bytes msg_get(const msg *m, msg_fmt fmt)
{
    if (fmt == MSG_FMT_SSE)
        return (msg_bytes){m->sse, m->sse_len};
    return (msg_bytes){m->json + MSG_HEADROOM, m->json_len};
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
    free(m->json);
    free(m->sse);
    free(m);
}
