/* SPDX-License-Identifier: MIT */
/*
 * test_signalr_mp.c - unit tests for SignalR's MessagePack hub protocol:
 * VarInt framing (transports/signalr/mp.c), the structure check that runs
 * before msgpack-c reads a client's bytes, received records as JSON
 * protocol records, direct records (completion, ping, close, ack) in
 * MessagePack, and the encode-once MessagePack format of a room message
 * (transports/signalr/encode.c).
 */
#include "hub/message.h"
#include "tests/unit/test.h"
#include "transports/signalr/encode.h"
#include "transports/signalr/mp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* The JSON form of one MessagePack value of p (len bytes), or NULL. */
static json_t *value_of(const unsigned char *p, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    json_t *j = NULL;
    const char *why = NULL;
    if (msgpack_unpack_next(&u, (const char *)p, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
        j = sr_mp_to_json(&u.data, &why);
    msgpack_unpacked_destroy(&u);
    return j;
}

/* A framed record (VarInt, then one value) equals the JSON text expected. */
static bool frame_is(const unsigned char *p, size_t len, const char *expected)
{
    size_t n = 0, used = 0;
    if (sr_mp_varint_get(p, len, &n, &used) != 1 || used + n != len)
        return false;
    json_t *got = value_of(p + used, n);
    json_error_t je;
    json_t *want = json_loads(expected, 0, &je);
    bool eq = got && want && json_equal(got, want);
    if (!eq) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        fprintf(stderr, "  got %s, expected %s\n", g ? g : "(nothing)", expected);
        free(g);
    }
    json_decref(got);
    json_decref(want);
    return eq;
}

static void test_varint(void)
{
    static const size_t values[] = {0,     1,     127,     128,     300,
                                    16383, 16384, 2097151, 2097152, (1u << 31) - 1};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        unsigned char b[SR_MP_VARINT_MAX];
        size_t len = sr_mp_varint_put(b, values[i]), v = 0, used = 0;
        CHECK(sr_mp_varint_get(b, len, &v, &used) == 1);
        CHECK(v == values[i] && used == len);
        CHECK(sr_mp_varint_get(b, len - 1, &v, &used) == 0); /* cut short */
    }
    unsigned char b[SR_MP_VARINT_MAX];
    CHECK(sr_mp_varint_put(b, 127) == 1 && b[0] == 0x7f);
    CHECK(sr_mp_varint_put(b, 128) == 2 && b[0] == 0x80 && b[1] == 0x01);
    size_t v, used;
    /* six bytes' worth of continuation, and 2 GB: both refused */
    static const unsigned char endless[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    CHECK(sr_mp_varint_get(endless, sizeof(endless), &v, &used) == -1);
    static const unsigned char two_gb[] = {0x80, 0x80, 0x80, 0x80, 0x08};
    CHECK(sr_mp_varint_get(two_gb, sizeof(two_gb), &v, &used) == -1);
    static const unsigned char cut[] = {0x80, 0x80};
    CHECK(sr_mp_varint_get(cut, sizeof(cut), &v, &used) == 0);
    CHECK(sr_mp_varint_get(cut, 0, &v, &used) == 0);
}

static void test_next_record(void)
{
    /* two records: [6] and [7, nil, false] */
    static const unsigned char unit[] = {0x02, 0x91, 0x06, 0x04, 0x93, 0x07, 0xc0, 0xc2};
    size_t off = 0, rl = 0;
    const unsigned char *r = NULL;
    const char *why = NULL;
    CHECK(sr_mp_next_record(unit, sizeof(unit), &off, 100, &r, &rl, &why) == 1);
    CHECK(r == unit + 1 && rl == 2);
    CHECK(sr_mp_next_record(unit, sizeof(unit), &off, 100, &r, &rl, &why) == 1);
    CHECK(r == unit + 4 && rl == 4 && off == sizeof(unit));
    CHECK(sr_mp_next_record(unit, sizeof(unit), &off, 100, &r, &rl, &why) == 0);
    CHECK(!why);
    /* a prefix that says more than the unit holds */
    static const unsigned char lying[] = {0x10, 0x91, 0x06};
    off = 0;
    CHECK(sr_mp_next_record(lying, sizeof(lying), &off, 100, &r, &rl, &why) == -1);
    CHECK(why && strstr(why, "shorter than its length prefix"));
    /* a prefix past the limit, even when the bytes are there */
    why = NULL;
    off = 0;
    CHECK(sr_mp_next_record(unit, sizeof(unit), &off, 1, &r, &rl, &why) == -1);
    CHECK(why && strstr(why, "limits.max_message_bytes"));
    /* a malformed prefix */
    static const unsigned char bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    why = NULL;
    off = 0;
    CHECK(sr_mp_next_record(bad, sizeof(bad), &off, 100, &r, &rl, &why) == -1);
    CHECK(why && strstr(why, "length prefix"));
}

static void test_well_formed(void)
{
    static const unsigned char ok[] = {0x95, 0x01, 0x80, 0xc0, 0xa1, 't', 0x91, 0x01};
    CHECK(sr_mp_well_formed(ok, sizeof(ok)));
    CHECK(!sr_mp_well_formed(ok, sizeof(ok) - 1)); /* cut short */
    static const unsigned char trailing[] = {0x91, 0x06, 0x06};
    CHECK(!sr_mp_well_formed(trailing, sizeof(trailing)));
    /* array32 / map32 of 4 billion elements in 5 bytes: refused before
     * msgpack-c would allocate for them */
    static const unsigned char huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    CHECK(!sr_mp_well_formed(huge_array, sizeof(huge_array)));
    static const unsigned char huge_map[] = {0xdf, 0x0f, 0xff, 0xff, 0xff, 0x01};
    CHECK(!sr_mp_well_formed(huge_map, sizeof(huge_map)));
    static const unsigned char huge_str[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    CHECK(!sr_mp_well_formed(huge_str, sizeof(huge_str)));
    static const unsigned char never_used[] = {0xc1};
    CHECK(!sr_mp_well_formed(never_used, 1));
    static const unsigned char empty[] = {0};
    CHECK(!sr_mp_well_formed(empty, 0));
    /* every other type (as msgpack-c reads them: 21 values, 100 bytes): bin8,
     * ext8, float32/64, uint8..64, int8..64,
     * fixext1..16, str8/16, array16, map16, negative fixint */
    static const unsigned char all[] = {
        0xdc, 0x00, 0x15, 0xc4, 0x01, 0xaa, 0xc7, 0x01, 0x05, 0xaa, 0xca, 0,    0,   0,    0,
        0xcb, 0,    0,    0,    0,    0,    0,    0,    0,    0xcc, 1,    0xcd, 0,   1,    0,
        0xce, 0,    0,    0,    1,    0xcf, 0,    0,    0,    0,    0,    0,    0,   1,    0,
        0xd0, 0xff, 0xd1, 0xff, 0xff, 0xd2, 0,    0,    0,    1,    0xd3, 0,    0,   0,    0,
        0,    0,    0,    1,    0xd4, 1,    2,    0xd8, 1,    0,    0,    0,    0,   0,    0,
        0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0xd9, 1,    'x', 0xda, 0,
        1,    'y',  0xde, 0,    1,    0xa1, 'k',  0xe0, 0xff, 0xc3};
    CHECK(sr_mp_well_formed(all, sizeof(all)));
    /* nesting: 32 arrays deep pass, 33 do not */
    unsigned char deep[40];
    for (int d = 32; d <= 33; d++) {
        memset(deep, 0x91, (size_t)d);
        deep[d] = 0x01;
        CHECK(sr_mp_well_formed(deep, (size_t)d + 1) == (d == 32));
    }
}

/* Packs, frames nothing: the bytes of one value built by fn. */
static json_t *parse_packed(void (*fn)(msgpack_packer *), const char **why)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fn(&pk);
    *why = NULL;
    json_t *rec = sr_mp_record_parse((const unsigned char *)sb.data, sb.size, why);
    msgpack_sbuffer_destroy(&sb);
    return rec;
}

static void pack_invocation(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 6);
    msgpack_pack_int(pk, 1);
    msgpack_pack_map(pk, 0);
    msgpack_pack_str_with_body(pk, "7", 1);
    msgpack_pack_str_with_body(pk, "SendToRoom", 10);
    msgpack_pack_array(pk, 3);
    msgpack_pack_str_with_body(pk, "lobby", 5);
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "k", 1);
    msgpack_pack_array(pk, 6);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, -2);
    msgpack_pack_double(pk, 1.5);
    msgpack_pack_true(pk);
    msgpack_pack_nil(pk);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_int(pk, 5); /* an integer key */
    msgpack_pack_float(pk, 0.25f);
    msgpack_pack_bin_with_body(pk, "hi!", 3);
    msgpack_pack_array(pk, 0); /* streamIds */
}

static void pack_map_key_array(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 5);
    msgpack_pack_int(pk, 1);
    msgpack_pack_map(pk, 0);
    msgpack_pack_nil(pk);
    msgpack_pack_str_with_body(pk, "T", 1);
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 1);
    msgpack_pack_array(pk, 0); /* a key that is an array */
    msgpack_pack_nil(pk);
}

static void pack_short_invocation(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, 1);
    msgpack_pack_map(pk, 0);
    msgpack_pack_nil(pk);
}

static void pack_bad_utf8(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 5);
    msgpack_pack_int(pk, 1);
    msgpack_pack_map(pk, 0);
    msgpack_pack_nil(pk);
    msgpack_pack_str_with_body(pk, "\xff\xfe", 2);
    msgpack_pack_array(pk, 0);
}

static void pack_not_array(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "x", 1);
}

static void pack_ack(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, 8);
    msgpack_pack_int(pk, 42);
}

static void test_record_parse(void)
{
    const char *why;
    json_t *rec = parse_packed(pack_invocation, &why);
    json_error_t je;
    json_t *want = json_loads(
        "{\"type\":1,\"invocationId\":\"7\",\"target\":\"SendToRoom\",\"arguments\":[\"lobby\","
        "{\"k\":[1,-2,1.5,true,null,18446744073709551615.0],\"5\":0.25},\"aGkh\"]}",
        0, &je);
    CHECK(rec && want && json_equal(rec, want));
    json_decref(rec);
    json_decref(want);

    rec = parse_packed(pack_ack, &why);
    CHECK(rec && json_integer_value(json_object_get(rec, "type")) == 8 &&
          json_integer_value(json_object_get(rec, "sequenceId")) == 42);
    json_decref(rec);

    CHECK(!parse_packed(pack_map_key_array, &why) && why && strstr(why, "map key"));
    CHECK(!parse_packed(pack_short_invocation, &why) && why && strstr(why, "too few elements"));
    CHECK(!parse_packed(pack_bad_utf8, &why) && why && strstr(why, "UTF-8"));
    CHECK(!parse_packed(pack_not_array, &why) && why && strstr(why, "not an array"));
    static const unsigned char huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    why = NULL;
    CHECK(!sr_mp_record_parse(huge, sizeof(huge), &why) && why && strstr(why, "malformed"));
}

/* A JSON protocol record converts to the MessagePack record expected. */
static bool converts(const char *json, const char *expected)
{
    size_t n = 0;
    unsigned char *b = sr_mp_record_from_json(json, strlen(json), &n);
    bool ok = b && frame_is(b, n, expected);
    free(b);
    return ok;
}

static void test_direct_records(void)
{
    CHECK(converts("{\"type\":3,\"invocationId\":\"1\",\"result\":{\"room\":\"r\",\"last_id\":0}}",
                   "[3,{},\"1\",3,{\"room\":\"r\",\"last_id\":0}]"));
    CHECK(converts("{\"type\":3,\"invocationId\":\"2\",\"result\":null}", "[3,{},\"2\",3,null]"));
    CHECK(
        converts("{\"type\":3,\"invocationId\":\"3\",\"error\":\"no\"}", "[3,{},\"3\",1,\"no\"]"));
    CHECK(converts("{\"type\":3,\"invocationId\":\"4\"}", "[3,{},\"4\",2]"));
    CHECK(converts("{\"type\":6}", "[6]"));
    CHECK(converts("{\"type\":7,\"error\":\"bad\",\"allowReconnect\":true}", "[7,\"bad\",true]"));
    CHECK(converts("{\"type\":7}", "[7,null,false]"));
    CHECK(converts("{\"type\":8,\"sequenceId\":12}", "[8,12]"));
    CHECK(converts("{\"type\":9,\"sequenceId\":3}", "[9,3]"));
    size_t n;
    CHECK(!sr_mp_record_from_json("{\"type\":42}", 11, &n));
    CHECK(!sr_mp_record_from_json("not json", 8, &n));

    msg *m = sr_mp_record_create("{\"type\":6}", 10);
    CHECK(m && m->direct);
    msg_bytes b = msg_get(m, SR_FMT_MP, NULL);
    CHECK(b.len == 3 && !memcmp(b.base, "\x02\x91\x06", 3));
    msg_unref(m);
}

static void test_room_message_format(void)
{
    CHECK(msg_format_is_binary(SR_FMT_MP));
    CHECK(!msg_format_is_binary(SR_FMT_RECORD) && !msg_format_is_binary(SR_FMT_SSE));
    CHECK(!msg_format_is_binary(MSG_FMT_JSON));

    const char *data = "[\"ann\",{\"n\":1,\"x\":[2.5,null,\"\\u20ac\"]}]";
    msg *m = msg_create(3, "r", data, strlen(data), NULL, 0);
    CHECK(msg_encode(m, SR_FMT_MP, "ReceiveMessage") == 0);
    msg_bytes b = msg_get(m, SR_FMT_MP, "ReceiveMessage");
    CHECK(frame_is((const unsigned char *)b.base, b.len,
                   "[1,{\"crier-id\":\"3\",\"crier-room\":\"r\"},null,\"ReceiveMessage\","
                   "[\"ann\",{\"n\":1,\"x\":[2.5,null,\"\\u20ac\"]}]]"));
    /* encoded once: a second member gets the same bytes */
    CHECK(msg_encode(m, SR_FMT_MP, "ReceiveMessage") == 0);
    CHECK(msg_get(m, SR_FMT_MP, "ReceiveMessage").base == b.base);
    /* another target: its own encoding */
    CHECK(msg_encode(m, SR_FMT_MP, "Other") == 0);
    CHECK(msg_get(m, SR_FMT_MP, "Other").base != b.base);
    msg_unref(m);

    /* a payload that is not an array is the one argument; an epoch shows */
    const char *obj = "{\"user\":\"bob\"}";
    m = msg_create_in(9, "lobby", "EPOCH123", obj, strlen(obj), "Tgt", 0);
    CHECK(msg_encode(m, SR_FMT_MP, NULL) == 0);
    b = msg_get(m, SR_FMT_MP, NULL);
    CHECK(frame_is((const unsigned char *)b.base, b.len,
                   "[1,{\"crier-id\":\"9\",\"crier-epoch\":\"EPOCH123\",\"crier-room\":\"lobby\"},"
                   "null,\"Tgt\",[{\"user\":\"bob\"}]]"));
    msg_unref(m);

    /* a number jansson cannot hold still arrives, as its text */
    const char *big = "1e999";
    m = msg_create(1, "r", big, strlen(big), NULL, 0);
    CHECK(msg_encode(m, SR_FMT_MP, "T") == 0);
    b = msg_get(m, SR_FMT_MP, "T");
    CHECK(frame_is((const unsigned char *)b.base, b.len,
                   "[1,{\"crier-id\":\"1\",\"crier-room\":\"r\"},null,\"T\",[\"1e999\"]]"));
    msg_unref(m);

    /* a gap signal invokes CrierGap */
    const char *info = "{\"room\":\"r\",\"from\":1}";
    m = msg_create_gap(info, strlen(info));
    CHECK(msg_encode(m, SR_FMT_MP, "ReceiveMessage") == 0);
    b = msg_get(m, SR_FMT_MP, "ReceiveMessage");
    size_t n = 0, used = 0;
    CHECK(sr_mp_varint_get((const unsigned char *)b.base, b.len, &n, &used) == 1);
    json_t *v = value_of((const unsigned char *)b.base + used, n);
    CHECK_STR(json_string_value(json_array_get(v, 3)), SR_GAP_TARGET);
    json_decref(v);
    msg_unref(m);
}

TEST_MAIN("signalr_mp", TEST(test_varint), TEST(test_next_record), TEST(test_well_formed),
          TEST(test_record_parse), TEST(test_direct_records), TEST(test_room_message_format))
