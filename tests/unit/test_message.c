/* SPDX-License-Identifier: MIT */
/*
 * test_message.c - unit tests for hub/message.c: the JSON envelope, msg_data,
 * the SSE encoding (line splitting, size query), refcounts, the headroom, the
 * SignalR encodings (invocation records per target, their SSE form, and
 * per-connection records), envelopes with a room epoch, and gap signals.
 */
#include "hub/message.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* b holds exactly the bytes of want. */
static int bytes_eq(msg_bytes b, const char *want)
{
    size_t n = strlen(want);
    int ok = b.base && b.len == n && memcmp(b.base, want, n) == 0;
    if (!ok)
        fprintf(stderr, "  got  \"%.*s\" (%zu)\n  want \"%s\" (%zu)\n", b.base ? (int)b.len : 6,
                b.base ? b.base : "(null)", b.len, want, n);
    return ok;
}

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

/* ---------------------------------------------------------------- SignalR */

/* The crier-* headers that a room message's invocation record carries (so
 * that a client can resume): its id and room (and epoch, when it has one;
 * the messages here, made by msg_create in room "r", have none). */
#define HDR(id) ",\"headers\":{\"crier-id\":\"" #id "\",\"crier-room\":\"r\"}"

/* The invocation record of data for target: a JSON array is the argument
 * list, anything else the one argument. NUL-terminated, in buf. */
static const char *record_of(char *buf, size_t cap, const char *target, const char *data,
                             const char *headers)
{
    bool is_array = data[0] == '[';
    snprintf(buf, cap, "{\"type\":1,\"target\":\"%s\",\"arguments\":%s%s%s%s}\x1e", target,
             is_array ? "" : "[", data, is_array ? "" : "]", headers);
    return buf;
}

/* b is a well-formed SSE event as an EventSource parses it: split at CRLF,
 * a lone CR or a lone LF, every line but the closing blank one is a "data: "
 * field, and there is exactly one blank line, at the end. */
static bool sse_event_ok(msg_bytes b)
{
    if (!b.base || b.len < 2)
        return false;
    size_t start = 0;
    bool ended = false;
    for (size_t i = 0; i < b.len; i++) {
        if (b.base[i] != '\r' && b.base[i] != '\n')
            continue;
        if (ended)
            return false; /* something after the blank line */
        size_t llen = i - start;
        if (llen == 0)
            ended = true;
        else if (llen < 6 || memcmp(b.base + start, "data: ", 6) != 0)
            return false;
        if (b.base[i] == '\r' && i + 1 < b.len && b.base[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    return ended && start == b.len;
}

/* The record for data and target, encoded as MSG_FMT_SIGNALR and as
 * MSG_FMT_SIGNALR_SSE, is exactly want and want_sse. */
static void check_record(const char *data, const char *target, const char *want,
                         const char *want_sse)
{
    msg *m = msg_create(3, "r", data, strlen(data), NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, target) == 0);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR, target), want));
    CHECK(msg_encode(m, MSG_FMT_SIGNALR_SSE, target) == 0);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR_SSE, target), want_sse));
    CHECK(sse_event_ok(msg_get(m, MSG_FMT_SIGNALR_SSE, target)));
    /* The envelope is untouched. */
    msg_bytes d = msg_data(m);
    CHECK(d.len == strlen(data) && memcmp(d.base, data, d.len) == 0);
    msg_unref(m);
}

static void test_signalr_record(void)
{
    check_record(
        "{\"a\":1}", "ReceiveMessage",
        "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[{\"a\":1}]" HDR(3) "}\x1e",
        "data: {\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[{\"a\":1}]" HDR(
            3) "}\x1e"
               "\r\n\r\n");
    check_record(
        "\"hi\"", "ReceiveMessage",
        "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[\"hi\"]" HDR(3) "}\x1e",
        "data: {\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[\"hi\"]" HDR(3) "}\x1e"
                                                                                        "\r\n\r\n");
    check_record("null", "T", "{\"type\":1,\"target\":\"T\",\"arguments\":[null]" HDR(3) "}\x1e",
                 "data: {\"type\":1,\"target\":\"T\",\"arguments\":[null]" HDR(3) "}\x1e\r\n\r\n");
    check_record("42", "T", "{\"type\":1,\"target\":\"T\",\"arguments\":[42]" HDR(3) "}\x1e",
                 "data: {\"type\":1,\"target\":\"T\",\"arguments\":[42]" HDR(3) "}\x1e\r\n\r\n");
    /* A JSON array is the argument list itself. */
    check_record(
        "[1,\"x\",{\"b\":[2]}]", "T",
        "{\"type\":1,\"target\":\"T\",\"arguments\":[1,\"x\",{\"b\":[2]}]" HDR(3) "}\x1e",
        "data: {\"type\":1,\"target\":\"T\",\"arguments\":[1,\"x\",{\"b\":[2]}]" HDR(3) "}\x1e"
                                                                                        "\r\n\r\n");
    check_record("[]", "T", "{\"type\":1,\"target\":\"T\",\"arguments\":[]" HDR(3) "}\x1e",
                 "data: {\"type\":1,\"target\":\"T\",\"arguments\":[]" HDR(3) "}\x1e\r\n\r\n");
    /* An array inside an object is one argument. */
    check_record(
        "{\"a\":[1]}", "T",
        "{\"type\":1,\"target\":\"T\",\"arguments\":[{\"a\":[1]}]" HDR(3) "}\x1e",
        "data: {\"type\":1,\"target\":\"T\",\"arguments\":[{\"a\":[1]}]" HDR(3) "}\x1e\r\n\r\n");
}

static void test_signalr_encode_once(void)
{
    const char *data = "{\"n\":1}";
    msg *m = msg_create(4, "r", data, strlen(data), NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    /* Nothing until encoded. */
    CHECK(msg_get(m, MSG_FMT_SIGNALR, "ReceiveMessage").base == NULL);
    CHECK(msg_get(m, MSG_FMT_SIGNALR_SSE, "ReceiveMessage").base == NULL);
    /* No target anywhere: refused, nothing made. */
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, NULL) == -EINVAL);
    CHECK(msg_get(m, MSG_FMT_SIGNALR, NULL).base == NULL);
    CHECK(atomic_load(&m->variants) == NULL);

    CHECK(msg_encode(m, MSG_FMT_SIGNALR, "ReceiveMessage") == 0);
    msg_bytes b = msg_get(m, MSG_FMT_SIGNALR, "ReceiveMessage");
    CHECK(bytes_eq(
        b, "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[{\"n\":1}]" HDR(4) "}\x1e"));
    /* The SSE form is a separate encoding. */
    CHECK(msg_get(m, MSG_FMT_SIGNALR_SSE, "ReceiveMessage").base == NULL);
    /* Encoding again keeps the bytes already made; an equal target string
     * at another address finds them too. */
    char same[] = "ReceiveMessage";
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, same) == 0);
    CHECK(msg_get(m, MSG_FMT_SIGNALR, same).base == b.base);
    CHECK(msg_get(m, MSG_FMT_SIGNALR, "ReceiveMessage").base == b.base);
    size_t nvariants = 0;
    for (msg_variant *v = atomic_load(&m->variants); v; v = v->next)
        nvariants++;
    CHECK(nvariants == 1);
    /* Other formats are unaffected by a target. */
    CHECK(msg_encode(m, MSG_FMT_JSON, "ReceiveMessage") == 0);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_JSON, "ReceiveMessage"),
                   "{\"id\":4,\"room\":\"r\",\"data\":{\"n\":1}}"));
    CHECK(msg_encode(m, MSG_FMT_SSE, "ReceiveMessage") == 0);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SSE, "X"), "id: 4\ndata: {\"n\":1}\n\n"));
    /* Headroom in front of a record: a WebSocket library writes there. */
    char *head = (char *)b.base - MSG_HEADROOM;
    memset(head, 0xA5, MSG_HEADROOM);
    CHECK(bytes_eq(
        msg_get(m, MSG_FMT_SIGNALR, "ReceiveMessage"),
        "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[{\"n\":1}]" HDR(4) "}\x1e"));
    msg_unref(m); /* frees the variant too (ASan) */
}

static void test_signalr_own_target(void)
{
    const char *data = "[1,2]";
    msg *m = msg_create(5, "r", data, strlen(data), "Notify", 0);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK_STR(m->target, "Notify");
    const char *want = "{\"type\":1,\"target\":\"Notify\",\"arguments\":[1,2]" HDR(5) "}\x1e";
    /* Whatever default the member has, the message's own target wins. */
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, "ReceiveMessage") == 0);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR, "ReceiveMessage"), want));
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR, "Other"), want));
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR, NULL), want));
    /* Another default, or none, adds no second encoding. */
    msg_bytes b = msg_get(m, MSG_FMT_SIGNALR, NULL);
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, "Other") == 0);
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, NULL) == 0);
    CHECK(msg_get(m, MSG_FMT_SIGNALR, "Other").base == b.base);
    size_t nvariants = 0;
    for (msg_variant *v = atomic_load(&m->variants); v; v = v->next)
        nvariants++;
    CHECK(nvariants == 1);
    CHECK(msg_encode(m, MSG_FMT_SIGNALR_SSE, NULL) == 0);
    CHECK(bytes_eq(
        msg_get(m, MSG_FMT_SIGNALR_SSE, "ReceiveMessage"),
        "data: {\"type\":1,\"target\":\"Notify\",\"arguments\":[1,2]" HDR(5) "}\x1e\r\n\r\n"));
    /* The target was copied. */
    char own[] = "Mine";
    msg *m2 = msg_create(6, "r", "1", 1, own, 0);
    CHECK(m2 != NULL);
    if (m2) {
        own[0] = 'X';
        CHECK_STR(m2->target, "Mine");
        CHECK(msg_encode(m2, MSG_FMT_SIGNALR, "D") == 0);
        CHECK(bytes_eq(msg_get(m2, MSG_FMT_SIGNALR, "D"),
                       "{\"type\":1,\"target\":\"Mine\",\"arguments\":[1]" HDR(6) "}\x1e"));
    }
    msg_unref(m2);
    msg_unref(m); /* frees the copied target (ASan) */
}

static void test_signalr_variants(void)
{
    const char *data = "{\"v\":true}";
    msg *m = msg_create(7, "r", data, strlen(data), NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, "A") == 0);
    msg_bytes a = msg_get(m, MSG_FMT_SIGNALR, "A");
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, "Bee") == 0);
    msg_bytes b = msg_get(m, MSG_FMT_SIGNALR, "Bee");
    CHECK(a.base && b.base && a.base != b.base);
    /* Both stay valid: adding one leaves the other's bytes in place. */
    CHECK(msg_get(m, MSG_FMT_SIGNALR, "A").base == a.base);
    CHECK(bytes_eq(a, "{\"type\":1,\"target\":\"A\",\"arguments\":[{\"v\":true}]" HDR(7) "}\x1e"));
    CHECK(
        bytes_eq(b, "{\"type\":1,\"target\":\"Bee\",\"arguments\":[{\"v\":true}]" HDR(7) "}\x1e"));
    CHECK(msg_get(m, MSG_FMT_SIGNALR, "C").base == NULL);
    CHECK(msg_get(m, MSG_FMT_SIGNALR_SSE, "A").base == NULL);

    /* Many targets, both formats: each its own bytes, all still right. */
    static const char *const targets[] = {"t0",  "t1",  "t2",  "t3",  "t4",  "t5",  "t6",
                                          "t7",  "t8",  "t9",  "t10", "t11", "t12", "t13",
                                          "t14", "t15", "t16", "t17", "t18", "t19"};
    enum { NT = sizeof(targets) / sizeof(targets[0]) };
    for (size_t i = 0; i < NT; i++) {
        CHECK(msg_encode(m, MSG_FMT_SIGNALR_SSE, targets[i]) == 0);
        CHECK(msg_encode(m, MSG_FMT_SIGNALR, targets[i]) == 0);
    }
    for (size_t i = 0; i < NT; i++) {
        char rec[192], sse[224];
        record_of(rec, sizeof(rec), targets[i], data, HDR(7));
        snprintf(sse, sizeof(sse), "data: %s\r\n\r\n", rec);
        CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR, targets[i]), rec));
        CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR_SSE, targets[i]), sse));
    }
    CHECK(msg_get(m, MSG_FMT_SIGNALR, "A").base == a.base);
    CHECK(msg_get(m, MSG_FMT_SIGNALR, "Bee").base == b.base);
    CHECK(bytes_eq(a, "{\"type\":1,\"target\":\"A\",\"arguments\":[{\"v\":true}]" HDR(7) "}\x1e"));
    CHECK(
        bytes_eq(b, "{\"type\":1,\"target\":\"Bee\",\"arguments\":[{\"v\":true}]" HDR(7) "}\x1e"));
    size_t nvariants = 0;
    for (msg_variant *v = atomic_load(&m->variants); v; v = v->next)
        nvariants++;
    CHECK(nvariants == 2 + 2 * NT);
    msg_unref(m); /* frees every variant (ASan) */
}

static void test_signalr_sse_lines(void)
{
    /* Pretty JSON: one data line per LF, a CR before an LF dropped. */
    check_record(
        "{\n  \"a\": 1,\r\n  \"b\": [\n    2\n  ]\n}", "T",
        "{\"type\":1,\"target\":\"T\",\"arguments\":[{\n  \"a\": 1,\r\n  \"b\": [\n    2\n  "
        "]\n}]" HDR(3) "}\x1e",
        "data: {\"type\":1,\"target\":\"T\",\"arguments\":[{\r\n"
        "data:   \"a\": 1,\r\n"
        "data:   \"b\": [\r\n"
        "data:     2\r\n"
        "data:   ]\r\n"
        "data: }]" HDR(3) "}\x1e\r\n"
                          "\r\n");
    /* An array argument list over several lines. */
    check_record("[\r\n1,\r\n2\r\n]", "T",
                 "{\"type\":1,\"target\":\"T\",\"arguments\":[\r\n1,\r\n2\r\n]" HDR(3) "}\x1e",
                 "data: {\"type\":1,\"target\":\"T\",\"arguments\":[\r\n"
                 "data: 1,\r\n"
                 "data: 2\r\n"
                 "data: ]" HDR(3) "}\x1e\r\n"
                                  "\r\n");
    /* Consecutive breaks give empty data lines, never an early blank line. */
    check_record("[1,\n\n2]", "T",
                 "{\"type\":1,\"target\":\"T\",\"arguments\":[1,\n\n2]" HDR(3) "}\x1e",
                 "data: {\"type\":1,\"target\":\"T\",\"arguments\":[1,\r\n"
                 "data: \r\n"
                 "data: 2]" HDR(3) "}\x1e\r\n"
                                   "\r\n");
    check_record("[1,\r\n\r\n2]", "T",
                 "{\"type\":1,\"target\":\"T\",\"arguments\":[1,\r\n\r\n2]" HDR(3) "}\x1e",
                 "data: {\"type\":1,\"target\":\"T\",\"arguments\":[1,\r\n"
                 "data: \r\n"
                 "data: 2]" HDR(3) "}\x1e\r\n"
                                   "\r\n");
}

/* A CR alone is a line break to an EventSource (as in the plain SSE form,
 * test_sse_multi_line): it must not reach a data line as is, or the rest of
 * the line loses its "data: " field and the record arrives cut short. */
static void test_signalr_sse_lone_cr(void)
{
    static const char *const datas[] = {"[1,\r2]", "{\"a\":\r1}", "[1,\r\r2]", "[1,\n\r2]"};
    for (size_t i = 0; i < sizeof(datas) / sizeof(datas[0]); i++) {
        msg *m = msg_create(8, "r", datas[i], strlen(datas[i]), NULL, 0);
        CHECK(m != NULL);
        if (!m)
            continue;
        CHECK(msg_encode(m, MSG_FMT_SIGNALR_SSE, "T") == 0);
        msg_bytes b = msg_get(m, MSG_FMT_SIGNALR_SSE, "T");
        bool ok = sse_event_ok(b);
        if (!ok) {
            fprintf(stderr, "  data %zu: SSE event \"", i);
            for (size_t k = 0; b.base && k < b.len; k++)
                fprintf(stderr,
                        b.base[k] == '\r'   ? "\\r"
                        : b.base[k] == '\n' ? "\\n"
                        : b.base[k] == 0x1e ? "\\x1e"
                                            : "%c",
                        b.base[k]);
            fprintf(stderr, "\" has a line that is not a data field\n");
        }
        CHECK(ok);
        msg_unref(m);
    }
}

static void test_create_record(void)
{
    msg *m = msg_create_record("{\"type\":6}", 10);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(m->direct);
    CHECK(m->id == 0);
    CHECK(atomic_load(&m->refs) == 1);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR, NULL), "{\"type\":6}\x1e"));
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR_SSE, NULL), "data: {\"type\":6}\x1e\r\n\r\n"));
    CHECK(sse_event_ok(msg_get(m, MSG_FMT_SIGNALR_SSE, NULL)));
    /* Made at creation: encoding is a no-op, any target gives the same. */
    msg_bytes b = msg_get(m, MSG_FMT_SIGNALR, NULL);
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, "ReceiveMessage") == 0);
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, NULL) == 0);
    CHECK(msg_encode(m, MSG_FMT_SIGNALR_SSE, NULL) == 0);
    CHECK(msg_get(m, MSG_FMT_SIGNALR, "ReceiveMessage").base == b.base);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR_SSE, "X"), "data: {\"type\":6}\x1e\r\n\r\n"));
    CHECK(atomic_load(&m->variants) == NULL);
    /* Headroom in front of the record. */
    char *head = (char *)b.base - MSG_HEADROOM;
    CHECK(head == m->json);
    memset(head, 0xA5, MSG_HEADROOM);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR, NULL), "{\"type\":6}\x1e"));
    /* Only len bytes are the record. */
    msg *m2 = msg_create_record("{\"type\":6}garbage", 10);
    CHECK(m2 && bytes_eq(msg_get(m2, MSG_FMT_SIGNALR, NULL), "{\"type\":6}\x1e"));
    msg_unref(m2);
    /* A completion, refcounted like any message (ASan checks the frees). */
    const char *c = "{\"type\":3,\"invocationId\":\"1\",\"result\":null}";
    msg *m3 = msg_create_record(c, strlen(c));
    CHECK(m3 && bytes_eq(msg_get(m3, MSG_FMT_SIGNALR, NULL),
                         "{\"type\":3,\"invocationId\":\"1\",\"result\":null}\x1e"));
    CHECK(m3 && bytes_eq(msg_get(m3, MSG_FMT_SIGNALR_SSE, NULL),
                         "data: {\"type\":3,\"invocationId\":\"1\",\"result\":null}\x1e\r\n\r\n"));
    CHECK(m3 && msg_ref(m3) == m3);
    msg_unref(m3);
    msg_unref(m3);
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

static void test_signalr_epoch_headers(void)
{
    msg *m = msg_create_in(12, "lobby", "Ep0ch123", "[\"x\",1]", 7, NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, "ReceiveMessage") == 0);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR, "ReceiveMessage"),
                   "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[\"x\",1],"
                   "\"headers\":{\"crier-id\":\"12\",\"crier-epoch\":\"Ep0ch123\","
                   "\"crier-room\":\"lobby\"}}\x1e"));
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
    /* SignalR: an invocation of CrierGap with the object, without headers. */
    CHECK(msg_encode(m, MSG_FMT_SIGNALR, "ReceiveMessage") == 0);
    snprintf(want, sizeof(want), "{\"type\":1,\"target\":\"%s\",\"arguments\":[%s]}\x1e",
             MSG_GAP_TARGET, info);
    CHECK(bytes_eq(msg_get(m, MSG_FMT_SIGNALR, "ReceiveMessage"), want));
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
          TEST(test_refcount), TEST(test_headroom), TEST(test_signalr_record),
          TEST(test_signalr_encode_once), TEST(test_signalr_own_target),
          TEST(test_signalr_variants), TEST(test_signalr_sse_lines), TEST(test_signalr_sse_lone_cr),
          TEST(test_create_record), TEST(test_envelope_epoch), TEST(test_sse_epoch_id),
          TEST(test_signalr_epoch_headers), TEST(test_gap))
