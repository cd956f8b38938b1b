/* SPDX-License-Identifier: MIT */
/*
 * signalr/encode.c - SignalR's wire encoding (encode.h): the Invocation
 * record of a room message or gap signal, the SSE event form of a record,
 * and direct records. Pure functions over a message's bytes plus two
 * registrations with the hub's format table; no state of its own beyond the
 * format ids.
 *
 * Threads and locks: docs/concurrency.md (encoders: hub lock held).
 */
#include "transports/signalr/encode.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transports/signalr/mp.h"

/* Writes (when out is not NULL) or counts the SSE event SignalR expects:
 * the payload split into lines (at CR LF, LF or a lone CR, as EventSource
 * splits them), every line as "data: <line>\r\n", then an empty line. The
 * receiver joins the lines with LF; in a JSON record line breaks can only be
 * white space, so nothing changes meaning. */
static size_t sse_emit(char *out, const char *p, size_t len)
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
    msg_bytes env = msg_get(m, MSG_FMT_JSON, NULL);
    const char *p = memmem(env.base, env.len, key, sizeof(key) - 1);
    if (!p)
        return (msg_bytes){"", 0};
    p += sizeof(key) - 1;
    const char *q = memchr(p, '"', env.len - (size_t)(p - env.base));
    return (msg_bytes){p, q ? (size_t)(q - p) : 0};
}

/* The headers of a room message's record: where it stands, for clients that
 * resume (web/crier.js). */
static void headers_emit(char *out, size_t *n, const msg *m)
{
    char h[MSG_EPOCH_MAX + 64];
    int hl = snprintf(h, sizeof(h), ",\"headers\":{\"crier-id\":\"%" PRIu64 "\"", m->id);
    emit(out, n, h, (size_t)hl);
    if (m->epoch[0]) {
        EMIT_LIT(out, n, ",\"crier-epoch\":\"");
        emit(out, n, m->epoch, strlen(m->epoch));
        EMIT_LIT(out, n, "\"");
    }
    EMIT_LIT(out, n, ",\"crier-room\":\"");
    msg_bytes room = room_of(m);
    emit(out, n, room.base, room.len);
    EMIT_LIT(out, n, "\"}");
}

/* Writes (when out is not NULL) or counts the invocation record of m for
 * target (a gap signal invokes SR_GAP_TARGET): a JSON array payload is the
 * argument list, anything else the one argument. */
static size_t record_emit(char *out, const msg *m, const char *target)
{
    if (m->gap)
        target = SR_GAP_TARGET;
    if (m->presence) /* one argument: the event, or the list of them */
        target = SR_PRESENCE_TARGET;
    msg_bytes d = msg_data(m);
    bool is_array = !m->presence && d.len && d.base[0] == '[';
    size_t n = 0;
    EMIT_LIT(out, &n, "{\"type\":1,\"target\":\"");
    emit(out, &n, target, strlen(target));
    EMIT_LIT(out, &n, "\",\"arguments\":");
    if (!is_array)
        EMIT_LIT(out, &n, "[");
    emit(out, &n, d.base, d.len);
    if (!is_array)
        EMIT_LIT(out, &n, "]");
    if (m->id)
        headers_emit(out, &n, m);
    EMIT_LIT(out, &n, "}\x1e");
    return n;
}

/* The record format: a room message's invocation record for target. */
static int encode_record(const msg *m, const char *target, msg_sink *sink)
{
    size_t len = record_emit(NULL, m, target);
    char *out = msg_sink_alloc(sink, len);
    if (!out)
        return -ENOMEM;
    record_emit(out, m, target);
    return 0;
}

/* The SSE format: the record (a direct message's bytes, or a room message's
 * invocation record for target) as one SSE event. */
static int encode_sse(const msg *m, const char *target, msg_sink *sink)
{
    char *rec = NULL;
    msg_bytes r;
    if (m->direct) {
        r = msg_get(m, MSG_FMT_JSON, NULL);
    } else {
        size_t rec_len = record_emit(NULL, m, target);
        if (!(rec = malloc(rec_len)))
            return -ENOMEM;
        record_emit(rec, m, target);
        r = (msg_bytes){rec, rec_len};
    }
    char *out = msg_sink_alloc(sink, sse_emit(NULL, r.base, r.len));
    if (out)
        sse_emit(out, r.base, r.len);
    free(rec);
    return out ? 0 : -ENOMEM;
}

/* The arguments of m's invocation record as JSON: a JSON array payload is
 * the argument list, anything else the one argument (as record_emit). A
 * payload jansson cannot hold (a number out of its range) goes as its text,
 * one string argument, rather than not at all. */
static json_t *mp_args_of(const msg *m)
{
    msg_bytes d = msg_data(m);
    json_error_t je;
    json_t *data = json_loadb(d.base, d.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!data)
        data = json_stringn(d.base, d.len);
    if (!data || (json_is_array(data) && !m->presence))
        return data;
    json_t *args = json_array();
    if (args && json_array_append(args, data)) {
        json_decref(args);
        args = NULL;
    }
    json_decref(data);
    return args;
}

/* The crier-* headers of a room message (none for one without an id). */
static int mp_pack_headers(msgpack_packer *pk, const msg *m)
{
    if (!m->id)
        return msgpack_pack_map(pk, 0);
    char id[24];
    int idl = snprintf(id, sizeof(id), "%" PRIu64, m->id);
    msg_bytes room = room_of(m);
    size_t el = strlen(m->epoch);
    return msgpack_pack_map(pk, el ? 3 : 2) || msgpack_pack_str(pk, 8) ||
           msgpack_pack_str_body(pk, "crier-id", 8) || msgpack_pack_str(pk, (size_t)idl) ||
           msgpack_pack_str_body(pk, id, (size_t)idl) ||
           (el && (msgpack_pack_str(pk, 11) || msgpack_pack_str_body(pk, "crier-epoch", 11) ||
                   msgpack_pack_str(pk, el) || msgpack_pack_str_body(pk, m->epoch, el))) ||
           msgpack_pack_str(pk, 10) || msgpack_pack_str_body(pk, "crier-room", 10) ||
           msgpack_pack_str(pk, room.len) || msgpack_pack_str_body(pk, room.base, room.len);
}

/* The MessagePack format: a room message's invocation record for target,
 * [1, headers, nil, target, arguments] after its VarInt length. */
static int encode_mp(const msg *m, const char *target, msg_sink *sink)
{
    if (m->gap)
        target = SR_GAP_TARGET;
    if (m->presence)
        target = SR_PRESENCE_TARGET;
    json_t *args = mp_args_of(m);
    if (!args)
        return -ENOMEM;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    size_t tl = strlen(target);
    int rc = msgpack_pack_array(&pk, 5) || msgpack_pack_int(&pk, 1) || mp_pack_headers(&pk, m) ||
                     msgpack_pack_nil(&pk) || msgpack_pack_str(&pk, tl) ||
                     msgpack_pack_str_body(&pk, target, tl) || sr_mp_pack_json(&pk, args)
                 ? -ENOMEM
                 : 0;
    json_decref(args);
    if (!rc) {
        unsigned char pre[SR_MP_VARINT_MAX];
        size_t pl = sr_mp_varint_put(pre, sb.size);
        char *out = msg_sink_alloc(sink, pl + sb.size);
        if (out) {
            memcpy(out, pre, pl);
            memcpy(out + pl, sb.data, sb.size);
        } else {
            rc = -ENOMEM;
        }
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static const msg_format fmt_record = {"signalr", true, encode_record, false};
static const msg_format fmt_sse = {"signalr-sse", true, encode_sse, false};
static const msg_format fmt_mp = {"signalr-messagepack", true, encode_mp, true};

static msg_fmt id_record, id_sse, id_mp;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The hub's table has room for far more formats than exist: running out is
 * a build error, not a runtime condition. */
static void register_formats(void)
{
    id_record = msg_format_register(&fmt_record);
    id_sse = msg_format_register(&fmt_sse);
    id_mp = msg_format_register(&fmt_mp);
    if (id_record < 0 || id_sse < 0 || id_mp < 0) {
        fprintf(stderr, "signalr: the hub's format table is full (MSG_FMT_MAX)\n");
        abort();
    }
}

msg_fmt sr_fmt_record(void)
{
    pthread_once(&once, register_formats);
    return id_record;
}

msg_fmt sr_fmt_sse(void)
{
    pthread_once(&once, register_formats);
    return id_sse;
}

msg_fmt sr_fmt_mp(void)
{
    pthread_once(&once, register_formats);
    return id_mp;
}

msg *sr_mp_record_create(const char *json, size_t len)
{
    size_t n = 0;
    unsigned char *bytes = sr_mp_record_from_json(json, len, &n);
    char *out;
    msg *m = bytes ? msg_create_direct(n, &out) : NULL;
    if (m)
        memcpy(out, bytes, n);
    free(bytes);
    return m;
}

msg *sr_record_create(const char *json, size_t len)
{
    char *rec;
    msg *m = msg_create_direct(len + 1, &rec);
    if (!m)
        return NULL;
    memcpy(rec, json, len);
    rec[len] = SR_RS;
    if (msg_encode_direct(m, sr_fmt_sse())) {
        msg_unref(m);
        return NULL;
    }
    return m;
}
