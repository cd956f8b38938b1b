/* SPDX-License-Identifier: MIT */
/*
 * signalr/mp.c - SignalR's MessagePack hub protocol, the pure part (mp.h):
 * VarInt framing, MessagePack <-> JSON values (through msgpack-c and
 * jansson), received records as JSON protocol record objects, and JSON
 * protocol records written as MessagePack. No state; any thread.
 */
#include "transports/signalr/mp.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- framing */

size_t sr_mp_varint_put(unsigned char out[SR_MP_VARINT_MAX], size_t n)
{
    size_t i = 0;
    do {
        unsigned char b = (unsigned char)(n & 0x7f);
        n >>= 7;
        out[i++] = n ? (unsigned char)(b | 0x80) : b;
    } while (n && i < SR_MP_VARINT_MAX);
    return i;
}

int sr_mp_varint_get(const unsigned char *p, size_t len, size_t *value, size_t *used)
{
    size_t v = 0;
    for (size_t i = 0; i < SR_MP_VARINT_MAX; i++) {
        if (i == len)
            return 0;
        if (i == SR_MP_VARINT_MAX - 1 && p[i] > 7)
            return -1; /* 2 GB or more, as the official clients refuse */
        v |= (size_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *value = v;
            *used = i + 1;
            return 1;
        }
    }
    return -1;
}

int sr_mp_next_record(const unsigned char *data, size_t len, size_t *off, size_t max,
                      const unsigned char **rec, size_t *rec_len, const char **why)
{
    if (*off >= len)
        return 0;
    size_t n = 0, used = 0;
    int rc = sr_mp_varint_get(data + *off, len - *off, &n, &used);
    if (rc <= 0) {
        *why = rc ? "Invalid message: malformed MessagePack length prefix."
                  : "Invalid message: a MessagePack length prefix is cut short.";
        return -1;
    }
    if (n > max) {
        *why = "The message is larger than limits.max_message_bytes.";
        return -1;
    }
    if (n > len - *off - used) {
        *why = "Invalid message: a MessagePack record is shorter than its length prefix says.";
        return -1;
    }
    *rec = data + *off + used;
    *rec_len = n;
    *off += used + n;
    return 1;
}

/* ----------------------------------------------------- structure check */

/* Reads a big-endian unsigned of w bytes at p. */
static uint64_t be(const unsigned char *p, int w)
{
    uint64_t v = 0;
    for (int i = 0; i < w; i++)
        v = v << 8 | p[i];
    return v;
}

/* The sizes of one MessagePack head: how many bytes the head takes
 * (*head), how many payload bytes follow it (*body), and how many values
 * it contains (*items: 2 per map entry). False when p is cut short or the
 * type byte is the unused 0xc1. Only what msgpack-c needs checked first. */
static bool head_of(const unsigned char *p, size_t len, size_t *head, uint64_t *body,
                    uint64_t *items)
{
    /* width of the length field, payload bytes, extra (ext type) byte */
    static const struct {
        unsigned char lo, hi;
        signed char lenw; /* length field width; -1: fixed body size */
        unsigned char fixed;
        unsigned char extra;
        unsigned char kind; /* 0 scalar/bytes, 1 array, 2 map */
    } t[] = {
        {0xc0, 0xc0, -1, 0, 0, 0}, {0xc2, 0xc3, -1, 0, 0, 0},  {0xc4, 0xc4, 1, 0, 0, 0},
        {0xc5, 0xc5, 2, 0, 0, 0},  {0xc6, 0xc6, 4, 0, 0, 0},   {0xc7, 0xc7, 1, 0, 1, 0},
        {0xc8, 0xc8, 2, 0, 1, 0},  {0xc9, 0xc9, 4, 0, 1, 0},   {0xca, 0xca, -1, 4, 0, 0},
        {0xcb, 0xcb, -1, 8, 0, 0}, {0xcc, 0xcc, -1, 1, 0, 0},  {0xcd, 0xcd, -1, 2, 0, 0},
        {0xce, 0xce, -1, 4, 0, 0}, {0xcf, 0xcf, -1, 8, 0, 0},  {0xd0, 0xd0, -1, 1, 0, 0},
        {0xd1, 0xd1, -1, 2, 0, 0}, {0xd2, 0xd2, -1, 4, 0, 0},  {0xd3, 0xd3, -1, 8, 0, 0},
        {0xd4, 0xd4, -1, 2, 0, 0}, {0xd5, 0xd5, -1, 3, 0, 0},  {0xd6, 0xd6, -1, 5, 0, 0},
        {0xd7, 0xd7, -1, 9, 0, 0}, {0xd8, 0xd8, -1, 17, 0, 0}, {0xd9, 0xd9, 1, 0, 0, 0},
        {0xda, 0xda, 2, 0, 0, 0},  {0xdb, 0xdb, 4, 0, 0, 0},   {0xdc, 0xdc, 2, 0, 0, 1},
        {0xdd, 0xdd, 4, 0, 0, 1},  {0xde, 0xde, 2, 0, 0, 2},   {0xdf, 0xdf, 4, 0, 0, 2},
    };
    unsigned char b = p[0];
    *head = 1;
    *body = 0;
    *items = 0;
    if (b <= 0x7f || b >= 0xe0)
        return true;
    if (b <= 0x8f) {
        *items = 2u * (b & 0x0f);
        return true;
    }
    if (b <= 0x9f) {
        *items = b & 0x0f;
        return true;
    }
    if (b <= 0xbf) {
        *body = b & 0x1f;
        return true;
    }
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (b < t[i].lo || b > t[i].hi)
            continue;
        if (t[i].lenw < 0) {
            *body = t[i].fixed;
            return true;
        }
        if (len < 1 + (size_t)t[i].lenw)
            return false;
        uint64_t n = be(p + 1, t[i].lenw);
        *head = 1 + (size_t)t[i].lenw;
        if (t[i].kind == 1)
            *items = n;
        else if (t[i].kind == 2)
            *items = 2 * n;
        else
            *body = n + t[i].extra;
        return true;
    }
    return false; /* 0xc1: never used */
}

bool sr_mp_well_formed(const unsigned char *p, size_t len)
{
    /* Values still to read at each open level. */
    uint64_t left[SR_MP_DEPTH_MAX + 1];
    int depth = 0;
    left[0] = 1;
    size_t off = 0;
    while (depth >= 0) {
        if (!left[depth]) {
            depth--;
            continue;
        }
        left[depth]--;
        size_t head;
        uint64_t body, items;
        if (off >= len || !head_of(p + off, len - off, &head, &body, &items))
            return false;
        if (head > len - off || body > len - off - head)
            return false;
        off += head + (size_t)body;
        if (items) {
            if (items > len - off || depth == SR_MP_DEPTH_MAX)
                return false; /* more values than bytes left, or too deep */
            left[++depth] = items;
        }
    }
    return off == len;
}

/* ----------------------------------------------------- MessagePack -> JSON */

/* Standard base64 of n bytes, as a JSON string. */
static json_t *base64_string(const char *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)p, (int)n);
    json_t *s = len >= 0 ? json_stringn(out, (size_t)len) : NULL;
    free(out);
    return s;
}

/* An object key: a string, or an integer's decimal text. */
static bool key_text(const msgpack_object *k, char *num, size_t cap, const char **p, size_t *n)
{
    if (k->type == MSGPACK_OBJECT_STR) {
        *p = k->via.str.ptr;
        *n = k->via.str.size;
        return true;
    }
    int len;
    if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        len = snprintf(num, cap, "%llu", (unsigned long long)k->via.u64);
    else if (k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        len = snprintf(num, cap, "%lld", (long long)k->via.i64);
    else
        return false;
    *p = num;
    *n = (size_t)len;
    return true;
}

static json_t *map_to_json(const msgpack_object *o, const char **why)
{
    json_t *obj = json_object();
    for (uint32_t i = 0; obj && i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        char num[32];
        const char *k;
        size_t kn;
        if (!key_text(&kv->key, num, sizeof(num), &k, &kn)) {
            *why = "Invalid message: a MessagePack map key is not a string or an integer.";
            json_decref(obj);
            return NULL;
        }
        json_t *v = sr_mp_to_json(&kv->val, why);
        if (!v || json_object_setn_new_nocheck(obj, k, kn, v)) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *sr_mp_to_json(const msgpack_object *o, const char **why)
{
    json_t *j = NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        j = o->via.u64 > INT64_MAX ? json_real((double)o->via.u64)
                                   : json_integer((json_int_t)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        j = json_integer((json_int_t)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR:
        j = json_stringn(o->via.str.ptr, o->via.str.size);
        if (!j) {
            *why = "Invalid message: a MessagePack string is not valid UTF-8.";
            return NULL;
        }
        return j;
    case MSGPACK_OBJECT_BIN:
        j = base64_string(o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        j = base64_string(o->via.ext.ptr, o->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        j = json_array();
        for (uint32_t i = 0; j && i < o->via.array.size; i++) {
            json_t *v = sr_mp_to_json(&o->via.array.ptr[i], why);
            if (!v || json_array_append_new(j, v)) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    case MSGPACK_OBJECT_MAP:
        return map_to_json(o, why);
    }
    if (!j && !*why)
        *why = "Out of memory.";
    return j;
}

/* ----------------------------------------------------- JSON -> MessagePack */

int sr_mp_pack_json(msgpack_packer *pk, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return msgpack_pack_nil(pk) ? -1 : 0;
    case JSON_TRUE:
        return msgpack_pack_true(pk) ? -1 : 0;
    case JSON_FALSE:
        return msgpack_pack_false(pk) ? -1 : 0;
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(v)) ? -1 : 0;
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v)) ? -1 : 0;
    case JSON_STRING: {
        size_t n = json_string_length(v);
        return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, json_string_value(v), n) ? -1
                                                                                             : 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (msgpack_pack_array(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (sr_mp_pack_json(pk, json_array_get(v, i)))
                return -1;
        return 0;
    }
    case JSON_OBJECT: {
        if (msgpack_pack_map(pk, json_object_size(v)))
            return -1;
        const char *k;
        size_t kn;
        json_t *val;
        json_object_keylen_foreach((json_t *)v, k, kn, val)
        {
            if (msgpack_pack_str(pk, kn) || msgpack_pack_str_body(pk, k, kn) ||
                sr_mp_pack_json(pk, val))
                return -1;
        }
        return 0;
    }
    }
    return -1;
}

unsigned char *sr_mp_frame(const msgpack_sbuffer *sb, size_t *out_len)
{
    unsigned char pre[SR_MP_VARINT_MAX];
    size_t pl = sr_mp_varint_put(pre, sb->size);
    unsigned char *out = malloc(pl + sb->size);
    if (!out)
        return NULL;
    memcpy(out, pre, pl);
    if (sb->size)
        memcpy(out + pl, sb->data, sb->size);
    *out_len = pl + sb->size;
    return out;
}

/* A string member of rec, or nil. */
static int pack_str_or_nil(msgpack_packer *pk, json_t *rec, const char *key)
{
    json_t *v = json_object_get(rec, key);
    return json_is_string(v) ? sr_mp_pack_json(pk, v) : (msgpack_pack_nil(pk) ? -1 : 0);
}

static int pack_record(msgpack_packer *pk, json_t *rec, json_int_t type)
{
    json_t *headers = json_object_get(rec, "headers");
    json_t *empty = json_object();
    int rc = -1;
    if (!empty)
        return -1;
    if (!json_is_object(headers))
        headers = empty;
    switch (type) {
    case 1: {
        json_t *args = json_object_get(rec, "arguments");
        rc = msgpack_pack_array(pk, 5) || msgpack_pack_int(pk, 1) || sr_mp_pack_json(pk, headers) ||
                     pack_str_or_nil(pk, rec, "invocationId") ||
                     pack_str_or_nil(pk, rec, "target") ||
                     (json_is_array(args) ? sr_mp_pack_json(pk, args) : msgpack_pack_array(pk, 0))
                 ? -1
                 : 0;
        break;
    }
    case 3: {
        json_t *err = json_object_get(rec, "error");
        json_t *res = json_object_get(rec, "result");
        int kind = err ? 1 : res ? 3 : 2;
        rc = msgpack_pack_array(pk, kind == 2 ? 4 : 5) || msgpack_pack_int(pk, 3) ||
                     sr_mp_pack_json(pk, headers) || pack_str_or_nil(pk, rec, "invocationId") ||
                     msgpack_pack_int(pk, kind) ||
                     (kind != 2 && sr_mp_pack_json(pk, err ? err : res))
                 ? -1
                 : 0;
        break;
    }
    case 6:
        rc = msgpack_pack_array(pk, 1) || msgpack_pack_int(pk, 6) ? -1 : 0;
        break;
    case 7:
        rc = msgpack_pack_array(pk, 3) || msgpack_pack_int(pk, 7) ||
                     pack_str_or_nil(pk, rec, "error") ||
                     (json_is_true(json_object_get(rec, "allowReconnect")) ? msgpack_pack_true(pk)
                                                                           : msgpack_pack_false(pk))
                 ? -1
                 : 0;
        break;
    case 8:
    case 9:
        rc = msgpack_pack_array(pk, 2) || msgpack_pack_int(pk, (int)type) ||
                     msgpack_pack_int64(pk, json_integer_value(json_object_get(rec, "sequenceId")))
                 ? -1
                 : 0;
        break;
    default:
        break;
    }
    json_decref(empty);
    return rc;
}

unsigned char *sr_mp_record_from_json(const char *json, size_t len, size_t *out_len)
{
    json_error_t je;
    json_t *rec = json_loadb(json, len, JSON_ALLOW_NUL, &je);
    json_t *type = json_object_get(rec, "type");
    unsigned char *out = NULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (json_is_integer(type) && !pack_record(&pk, rec, json_integer_value(type)))
        out = sr_mp_frame(&sb, out_len);
    msgpack_sbuffer_destroy(&sb);
    json_decref(rec);
    return out;
}

/* ------------------------------------------------ received records */

/* Sets key of rec to the JSON form of o (nil: left out). */
static bool set_from(json_t *rec, const char *key, const msgpack_object *o, const char **why)
{
    if (o->type == MSGPACK_OBJECT_NIL)
        return true;
    json_t *v = sr_mp_to_json(o, why);
    return v && !json_object_set_new(rec, key, v);
}

/* The fewest elements each record type has (index: type). */
static const uint32_t min_elements[] = {1, 5, 4, 4, 5, 3, 1, 2, 2, 2};

static json_t *record_of(const msgpack_object *o, const char **why)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || !o->via.array.size ||
        o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *why = "Invalid message: a MessagePack record is not an array starting with its type.";
        return NULL;
    }
    const msgpack_object *e = o->via.array.ptr;
    uint32_t n = o->via.array.size;
    uint64_t type = e[0].via.u64;
    if (type < sizeof(min_elements) / sizeof(min_elements[0]) && n < min_elements[type]) {
        *why = "Invalid message: a MessagePack record has too few elements for its type.";
        return NULL;
    }
    json_t *rec = json_object();
    if (!rec || json_object_set_new(rec, "type", json_integer(type > 1000 ? 1000 : (int)type))) {
        json_decref(rec);
        *why = "Out of memory.";
        return NULL;
    }
    bool ok = true;
    switch (type) {
    case 1: /* [1, headers, invocationId, target, arguments, streamIds?] */
        if (e[1].type != MSGPACK_OBJECT_MAP && e[1].type != MSGPACK_OBJECT_NIL) {
            *why = "Invalid message: MessagePack record headers must be a map.";
            ok = false;
            break;
        }
        ok = set_from(rec, "invocationId", &e[2], why) && set_from(rec, "target", &e[3], why) &&
             set_from(rec, "arguments", &e[4], why);
        break;
    case 2: /* [2, headers, invocationId, item] */
    case 3: /* [3, headers, invocationId, kind, result?] */
    case 4: /* [4, headers, invocationId, target, arguments, streamIds?] */
    case 5: /* [5, headers, invocationId] */
        ok = set_from(rec, "invocationId", &e[2], why);
        break;
    case 8: /* [8, sequenceId] */
    case 9: /* [9, sequenceId] */
        ok = set_from(rec, "sequenceId", &e[1], why);
        break;
    default: /* 6 ping, 7 close, unknown: nothing more is read */
        break;
    }
    if (!ok) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

json_t *sr_mp_record_parse(const unsigned char *p, size_t len, const char **why)
{
    if (!sr_mp_well_formed(p, len)) {
        *why = "Invalid message: malformed MessagePack.";
        return NULL;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    json_t *rec = NULL;
    msgpack_unpack_return rc = msgpack_unpack_next(&u, (const char *)p, len, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len)
        *why = rc == MSGPACK_UNPACK_NOMEM_ERROR ? "Out of memory."
                                                : "Invalid message: malformed MessagePack.";
    else
        rec = record_of(&u.data, why);
    msgpack_unpacked_destroy(&u);
    return rec;
}
