/* SPDX-License-Identifier: MIT */
/*
 * test_message.c - unit tests for hub/message.c: the JSON envelope, msg_data,
 * the SSE encoding (line splitting, size query), refcounts, the headroom,
 * envelopes with a room epoch, and gap signals. The registered formats'
 * cache (per target, encode once) is tested through the SignalR formats in
 * test_signalr_encode.c.
 */
#include "hub/message.h"
#include "tests/unit/test.h"
#include "tests/unit/msg_check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* The SSE event for data, formatted into a fresh buffer; NUL-terminated
 * for CHECK_STR. Checks that the size query matches what is written. */
static char *sse_of(uint64_t id, const char *data, size_t len)
{
    size_t need = msg_format_sse(NULL, 0, id, data, len);
    char *buf = malloc(need + 1);
    if (!buf)
        return NULL;
    size_t wrote = msg_format_sse(buf, need, id, data, len);
    CHECK(wrote == need);
    buf[need] = '\0';
    CHECK(strlen(buf) == need);
    return buf;
}

/* One event: "id: N" first, no CR anywhere, the only blank line at the end. */
static void check_one_event(const char *ev)
{
    CHECK(strncmp(ev, "id: ", 4) == 0);
    CHECK(strchr(ev, '\r') == NULL);
    size_t n = strlen(ev);
    CHECK(n >= 2 && ev[n - 1] == '\n' && ev[n - 2] == '\n');
    const char *blank = strstr(ev, "\n\n");
    CHECK(blank && blank == ev + n - 2);
}

static void check_sse(uint64_t id, const char *data, const char *want)
{
    char *ev = sse_of(id, data, strlen(data));
    CHECK_STR(ev, want);
    if (ev)
        check_one_event(ev);
    free(ev);
}

static void test_envelope(void)
{
    const char *data = "{\"a\":[1,2],\"b\":\"x\"}";
    msg *m = msg_create(7, "room-1", data, strlen(data), NULL, 1234);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(m->id == 7);
    CHECK(m->created_ms == 1234);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_JSON, NULL),
                   "{\"id\":7,\"room\":\"room-1\",\"data\":{\"a\":[1,2],\"b\":\"x\"}}"));
    CHECK(bytes_eq(msg_data(m), data));
    /* msg_data points into the envelope: nothing is copied. */
    msg_bytes env = msg_get(m, MSG_FMT_JSON, NULL);
    msg_bytes d = msg_data(m);
    CHECK(d.base > env.base && d.base + d.len < env.base + env.len);
    /* The SSE form exists only once asked for. */
    CHECK(msg_get(m, MSG_FMT_SSE, NULL).base == NULL);
    msg_unref(m);
}

static void test_envelope_scalars_and_len(void)
{
    /* data_len counts, not the NUL: only the first 5 bytes are the value. */
    msg *m = msg_create(1, "r", "[1,2]trailing", 5, NULL, 0);
    CHECK(m &&
          bytes_eq(msg_get(m, MSG_FMT_JSON, NULL), "{\"id\":1,\"room\":\"r\",\"data\":[1,2]}"));
    CHECK(m && bytes_eq(msg_data(m), "[1,2]"));
    msg_unref(m);

    m = msg_create(2, "a.b_c-d:e", "\"hi\"", 4, NULL, 0);
    CHECK(m && bytes_eq(msg_get(m, MSG_FMT_JSON, NULL),
                        "{\"id\":2,\"room\":\"a.b_c-d:e\",\"data\":\"hi\"}"));
    msg_unref(m);

    m = msg_create(UINT64_MAX, "r", "null", 4, NULL, 0);
    CHECK(m && bytes_eq(msg_get(m, MSG_FMT_JSON, NULL),
                        "{\"id\":18446744073709551615,\"room\":\"r\",\"data\":null}"));
    msg_unref(m);
}

static void test_envelope_long_room(void)
{
    char room[129];
    memset(room, 'x', 128);
    room[128] = '\0';
    msg *m = msg_create(99, room, "1", 1, NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    char want[256];
    snprintf(want, sizeof(want), "{\"id\":99,\"room\":\"%s\",\"data\":1}", room);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_JSON, NULL), want));
    CHECK(bytes_eq(msg_data(m), "1"));
    msg_unref(m);
}

static void test_sse_single_line(void)
{
    check_sse(3, "{\"a\":1}", "id: 3\ndata: {\"a\":1}\n\n");
    check_sse(18446744073709551615u, "true", "id: 18446744073709551615\ndata: true\n\n");
}

static void test_sse_multi_line(void)
{
    check_sse(4, "[1,\n2]", "id: 4\ndata: [1,\ndata: 2]\n\n");
    check_sse(4, "[1,\r\n2]", "id: 4\ndata: [1,\ndata: 2]\n\n");
    check_sse(4, "[1,\r2]", "id: 4\ndata: [1,\ndata: 2]\n\n");
    check_sse(5, "[\n1,\r\n2,\r3\n]", "id: 5\ndata: [\ndata: 1,\ndata: 2,\ndata: 3\ndata: ]\n\n");
    /* Consecutive breaks give empty data lines, never a blank line. */
    check_sse(6, "[1,\n\n2]", "id: 6\ndata: [1,\ndata: \ndata: 2]\n\n");
    check_sse(6, "[1,\r\n\r\n2]", "id: 6\ndata: [1,\ndata: \ndata: 2]\n\n");
    check_sse(6, "[1,\n\r2]", "id: 6\ndata: [1,\ndata: \ndata: 2]\n\n");
    check_sse(6, "[1,\r\r2]", "id: 6\ndata: [1,\ndata: \ndata: 2]\n\n");
    /* A break at either end. */
    check_sse(7, "\n1", "id: 7\ndata: \ndata: 1\n\n");
    check_sse(7, "1\n", "id: 7\ndata: 1\ndata: \n\n");
    check_sse(7, "1\r\n", "id: 7\ndata: 1\ndata: \n\n");
    check_sse(7, "1\r", "id: 7\ndata: 1\ndata: \n\n");
}

static void test_sse_empty(void)
{
    char *ev = sse_of(1, "", 0);
    CHECK_STR(ev, "id: 1\ndata: \n\n");
    free(ev);
    /* data may be NULL when len is 0 */
    CHECK(msg_format_sse(NULL, 0, 1, NULL, 0) == strlen("id: 1\ndata: \n\n"));
}

static void test_sse_size_query(void)
{
    const char *data = "{\"k\":\r\n\"v\"}";
    size_t len = strlen(data);
    size_t need = msg_format_sse(NULL, 0, 42, data, len);
    CHECK(need == strlen("id: 42\ndata: {\"k\":\ndata: \"v\"}\n\n"));
    /* Too small: nothing written, the need is still returned. */
    char buf[64];
    memset(buf, 'X', sizeof(buf));
    CHECK(msg_format_sse(buf, need - 1, 42, data, len) == need);
    for (size_t i = 0; i < sizeof(buf); i++)
        CHECK(buf[i] == 'X');
    /* Exactly enough: written, and not one byte past. */
    CHECK(msg_format_sse(buf, need, 42, data, len) == need);
    CHECK(memcmp(buf, "id: 42\ndata: {\"k\":\ndata: \"v\"}\n\n", need) == 0);
    CHECK(buf[need] == 'X');
}

static void test_encode_sse(void)
{
    const char *data = "{\"a\":\n1}";
    msg *m = msg_create(9, "r", data, strlen(data), NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(msg_encode(m, MSG_FMT_SSE, NULL) == 0);
    msg_bytes b = msg_get(m, MSG_FMT_SSE, NULL);
    CHECK(bytes_eq(b, "id: 9\ndata: {\"a\":\ndata: 1}\n\n"));
    /* Encoding again keeps the bytes already made. */
    CHECK(msg_encode(m, MSG_FMT_SSE, NULL) == 0);
    CHECK(msg_get(m, MSG_FMT_SSE, NULL).base == b.base);
    /* The JSON envelope is there from the start; encoding it is a no-op. */
    msg_bytes j = msg_get(m, MSG_FMT_JSON, NULL);
    CHECK(msg_encode(m, MSG_FMT_JSON, NULL) == 0);
    CHECK(msg_get(m, MSG_FMT_JSON, NULL).base == j.base);
    CHECK(
        bytes_eq(msg_get(m, MSG_FMT_JSON, NULL), "{\"id\":9,\"room\":\"r\",\"data\":{\"a\":\n1}}"));
    msg_unref(m);
}

static void test_refcount(void)
{
    msg *m = msg_create(1, "r", "1", 1, NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(atomic_load(&m->refs) == 1);
    CHECK(msg_ref(m) == m);
    CHECK(msg_ref(m) == m);
    CHECK(atomic_load(&m->refs) == 3);
    msg_unref(m);
    CHECK(atomic_load(&m->refs) == 2);
    msg_unref(m);
    CHECK(atomic_load(&m->refs) == 1);
    CHECK(msg_encode(m, MSG_FMT_SSE, NULL) == 0);
    msg_unref(m); /* the last: frees the envelope, the SSE bytes and m (ASan) */
    msg_unref(NULL);
}

static void test_headroom(void)
{
    msg *m = msg_create(5, "room", "[true]", 6, NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    msg_bytes b = msg_get(m, MSG_FMT_JSON, NULL);
    char *head = (char *)b.base - MSG_HEADROOM;
    CHECK(head == m->json);
    /* A WebSocket library writes its frame header here; ASan checks bounds. */
    memset(head, 0xA5, MSG_HEADROOM);
    head[0] = 1;
    head[MSG_HEADROOM - 1] = 2;
    CHECK(bytes_eq(msg_get(m, MSG_FMT_JSON, NULL), "{\"id\":5,\"room\":\"room\",\"data\":[true]}"));
    CHECK(bytes_eq(msg_data(m), "[true]"));
    msg_unref(m);
}

/* ------------------------------------------------------ epochs and gaps */

static void test_envelope_epoch(void)
{
    const char *data = "{\"a\":[1,2]}";
    msg *m = msg_create_in(7, "room-1", "Ab3dE9xZ", data, strlen(data), NULL, 1234);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(m->id == 7 && m->created_ms == 1234 && !m->gap && !m->direct);
    CHECK_STR(m->epoch, "Ab3dE9xZ");
    CHECK(bytes_eq(msg_get(m, MSG_FMT_JSON, NULL),
                   "{\"id\":7,\"epoch\":\"Ab3dE9xZ\",\"room\":\"room-1\",\"data\":{\"a\":[1,2]}}"));
    CHECK(bytes_eq(msg_data(m), data));
    msg_bytes env = msg_get(m, MSG_FMT_JSON, NULL);
    msg_bytes d = msg_data(m);
    CHECK(d.base > env.base && d.base + d.len < env.base + env.len);
    /* Headroom in front of it, as without an epoch. */
    CHECK(env.base - MSG_HEADROOM == m->json);
    msg_unref(m);

    /* No epoch (NULL or ""): the envelope without one, as msg_create makes. */
    m = msg_create_in(2, "r", NULL, "1", 1, NULL, 0);
    CHECK(m && bytes_eq(msg_get(m, MSG_FMT_JSON, NULL), "{\"id\":2,\"room\":\"r\",\"data\":1}"));
    CHECK(m && m->epoch[0] == '\0');
    msg_unref(m);
    m = msg_create_in(2, "r", "", "1", 1, NULL, 0);
    CHECK(m && bytes_eq(msg_get(m, MSG_FMT_JSON, NULL), "{\"id\":2,\"room\":\"r\",\"data\":1}"));
    msg_unref(m);

    /* The longest epoch that fits (MSG_EPOCH_MAX - 1), and one too long. */
    char longest[MSG_EPOCH_MAX], too_long[MSG_EPOCH_MAX + 1];
    memset(longest, 'e', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    memset(too_long, 'e', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    m = msg_create_in(1, "r", longest, "1", 1, NULL, 0);
    CHECK(m && !strcmp(m->epoch, longest));
    msg_unref(m);
    m = msg_create_in(1, "r", too_long, "1", 1, NULL, 0);
    CHECK(m == NULL);
    msg_unref(m);

    /* A 128-character room name and the largest id still fit. */
    char room[129];
    memset(room, 'x', 128);
    room[128] = '\0';
    m = msg_create_in(UINT64_MAX, room, longest, "null", 4, NULL, 0);
    CHECK(m != NULL);
    if (m) {
        char want[256];
        snprintf(want, sizeof(want),
                 "{\"id\":18446744073709551615,\"epoch\":\"%s\",\"room\":\"%s\",\"data\":null}",
                 longest, room);
        CHECK(bytes_eq(msg_get(m, MSG_FMT_JSON, NULL), want));
    }
    msg_unref(m);
}

static void test_sse_epoch_id(void)
{
    const char *data = "{\"a\":\r\n1}";
    msg *m = msg_create_in(9, "r", "Ep0ch123", data, strlen(data), NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(msg_encode(m, MSG_FMT_SSE, NULL) == 0);
    /* id: EPOCH:N, then the data lines split as without an epoch. */
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SSE, NULL), "id: Ep0ch123:9\ndata: {\"a\":\ndata: 1}\n\n"));
    msg_unref(m);

    /* Without an epoch the id stays N. */
    m = msg_create_in(10, "r", NULL, "1", 1, NULL, 0);
    CHECK(m && msg_encode(m, MSG_FMT_SSE, NULL) == 0);
    CHECK(m && bytes_eq(msg_get(m, MSG_FMT_SSE, NULL), "id: 10\ndata: 1\n\n"));
    msg_unref(m);
}

static void test_gap(void)
{
    const char *info = "{\"room\":\"r\",\"epoch\":\"Ep0ch123\",\"reason\":\"expired\",\"since\":1,"
                       "\"resumed_from\":4}";
    msg *m = msg_create_gap(info, strlen(info));
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(m->gap);
    CHECK(!m->direct);
    CHECK(m->id == 0); /* moves no cursor */
    CHECK(atomic_load(&m->refs) == 1);
    CHECK(bytes_eq(msg_data(m), info));
    /* JSON: {"gap":info}. */
    char want[256];
    snprintf(want, sizeof(want), "{\"gap\":%s}", info);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_JSON, NULL), want));
    CHECK(msg_get(m, MSG_FMT_JSON, NULL).base - MSG_HEADROOM == m->json);
    /* SSE: an event named gap, the object as data, no id line. */
    CHECK(msg_get(m, MSG_FMT_SSE, NULL).base == NULL);
    CHECK(msg_encode(m, MSG_FMT_SSE, NULL) == 0);
    snprintf(want, sizeof(want), "event: gap\ndata: %s\n\n", info);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SSE, NULL), want));
    /* Its SignalR record: tests/unit/test_signalr_encode.c. */
    msg_unref(m);

    /* Only len bytes are the object; a multi-line object keeps one event. */
    m = msg_create_gap("{\"a\":1}junk", 7);
    CHECK(m && bytes_eq(msg_get(m, MSG_FMT_JSON, NULL), "{\"gap\":{\"a\":1}}"));
    msg_unref(m);
    m = msg_create_gap("{\"a\":\n1}", 8);
    CHECK(m && msg_encode(m, MSG_FMT_SSE, NULL) == 0);
    CHECK(m && bytes_eq(msg_get(m, MSG_FMT_SSE, NULL), "event: gap\ndata: {\"a\":\ndata: 1}\n\n"));
    msg_unref(m);
}

TEST_MAIN("message", TEST(test_envelope), TEST(test_envelope_scalars_and_len),
          TEST(test_envelope_long_room), TEST(test_sse_single_line), TEST(test_sse_multi_line),
          TEST(test_sse_empty), TEST(test_sse_size_query), TEST(test_encode_sse),
          TEST(test_refcount), TEST(test_headroom), TEST(test_envelope_epoch),
          TEST(test_sse_epoch_id), TEST(test_gap))
