/* SPDX-License-Identifier: MIT */
/*
 * test_signalr_encode.c - unit tests for transports/signalr/encode.c over
 * the hub's encode-once cache (hub/message.c): invocation records per
 * target, the message's own target, their SSE form (line splitting, lone
 * CRs), direct records (sr_record_create), the crier-* headers with an
 * epoch, and a gap signal's record. Moved from test_message.c with their
 * assertions when the SignalR encoding left the hub (issue #12).
 */
#include "hub/message.h"
#include "tests/unit/test.h"
#include "transports/signalr/encode.h"
#include "tests/unit/msg_check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

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

/* The record for data and target, encoded as SR_FMT_RECORD and as
 * SR_FMT_SSE, is exactly want and want_sse. */
static void check_record(const char *data, const char *target, const char *want,
                         const char *want_sse)
{
    msg *m = msg_create(3, "r", data, strlen(data), NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(msg_encode(m, SR_FMT_RECORD, target) == 0);
    CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, target), want));
    CHECK(msg_encode(m, SR_FMT_SSE, target) == 0);
    CHECK(bytes_eq(msg_get(m, SR_FMT_SSE, target), want_sse));
    CHECK(sse_event_ok(msg_get(m, SR_FMT_SSE, target)));
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
    CHECK(msg_get(m, SR_FMT_RECORD, "ReceiveMessage").base == NULL);
    CHECK(msg_get(m, SR_FMT_SSE, "ReceiveMessage").base == NULL);
    /* No target anywhere: refused, nothing made. */
    CHECK(msg_encode(m, SR_FMT_RECORD, NULL) == -EINVAL);
    CHECK(msg_get(m, SR_FMT_RECORD, NULL).base == NULL);
    CHECK(atomic_load(&m->variants) == NULL);

    CHECK(msg_encode(m, SR_FMT_RECORD, "ReceiveMessage") == 0);
    msg_bytes b = msg_get(m, SR_FMT_RECORD, "ReceiveMessage");
    CHECK(bytes_eq(
        b, "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[{\"n\":1}]" HDR(4) "}\x1e"));
    /* The SSE form is a separate encoding. */
    CHECK(msg_get(m, SR_FMT_SSE, "ReceiveMessage").base == NULL);
    /* Encoding again keeps the bytes already made; an equal target string
     * at another address finds them too. */
    char same[] = "ReceiveMessage";
    CHECK(msg_encode(m, SR_FMT_RECORD, same) == 0);
    CHECK(msg_get(m, SR_FMT_RECORD, same).base == b.base);
    CHECK(msg_get(m, SR_FMT_RECORD, "ReceiveMessage").base == b.base);
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
        msg_get(m, SR_FMT_RECORD, "ReceiveMessage"),
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
    CHECK(msg_encode(m, SR_FMT_RECORD, "ReceiveMessage") == 0);
    CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, "ReceiveMessage"), want));
    CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, "Other"), want));
    CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, NULL), want));
    /* Another default, or none, adds no second encoding. */
    msg_bytes b = msg_get(m, SR_FMT_RECORD, NULL);
    CHECK(msg_encode(m, SR_FMT_RECORD, "Other") == 0);
    CHECK(msg_encode(m, SR_FMT_RECORD, NULL) == 0);
    CHECK(msg_get(m, SR_FMT_RECORD, "Other").base == b.base);
    size_t nvariants = 0;
    for (msg_variant *v = atomic_load(&m->variants); v; v = v->next)
        nvariants++;
    CHECK(nvariants == 1);
    CHECK(msg_encode(m, SR_FMT_SSE, NULL) == 0);
    CHECK(bytes_eq(
        msg_get(m, SR_FMT_SSE, "ReceiveMessage"),
        "data: {\"type\":1,\"target\":\"Notify\",\"arguments\":[1,2]" HDR(5) "}\x1e\r\n\r\n"));
    /* The target was copied. */
    char own[] = "Mine";
    msg *m2 = msg_create(6, "r", "1", 1, own, 0);
    CHECK(m2 != NULL);
    if (m2) {
        own[0] = 'X';
        CHECK_STR(m2->target, "Mine");
        CHECK(msg_encode(m2, SR_FMT_RECORD, "D") == 0);
        CHECK(bytes_eq(msg_get(m2, SR_FMT_RECORD, "D"),
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
    CHECK(msg_encode(m, SR_FMT_RECORD, "A") == 0);
    msg_bytes a = msg_get(m, SR_FMT_RECORD, "A");
    CHECK(msg_encode(m, SR_FMT_RECORD, "Bee") == 0);
    msg_bytes b = msg_get(m, SR_FMT_RECORD, "Bee");
    CHECK(a.base && b.base && a.base != b.base);
    /* Both stay valid: adding one leaves the other's bytes in place. */
    CHECK(msg_get(m, SR_FMT_RECORD, "A").base == a.base);
    CHECK(bytes_eq(a, "{\"type\":1,\"target\":\"A\",\"arguments\":[{\"v\":true}]" HDR(7) "}\x1e"));
    CHECK(
        bytes_eq(b, "{\"type\":1,\"target\":\"Bee\",\"arguments\":[{\"v\":true}]" HDR(7) "}\x1e"));
    CHECK(msg_get(m, SR_FMT_RECORD, "C").base == NULL);
    CHECK(msg_get(m, SR_FMT_SSE, "A").base == NULL);

    /* Many targets, both formats: each its own bytes, all still right. */
    static const char *const targets[] = {"t0",  "t1",  "t2",  "t3",  "t4",  "t5",  "t6",
                                          "t7",  "t8",  "t9",  "t10", "t11", "t12", "t13",
                                          "t14", "t15", "t16", "t17", "t18", "t19"};
    enum { NT = sizeof(targets) / sizeof(targets[0]) };
    for (size_t i = 0; i < NT; i++) {
        CHECK(msg_encode(m, SR_FMT_SSE, targets[i]) == 0);
        CHECK(msg_encode(m, SR_FMT_RECORD, targets[i]) == 0);
    }
    for (size_t i = 0; i < NT; i++) {
        char rec[192], sse[224];
        record_of(rec, sizeof(rec), targets[i], data, HDR(7));
        snprintf(sse, sizeof(sse), "data: %s\r\n\r\n", rec);
        CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, targets[i]), rec));
        CHECK(bytes_eq(msg_get(m, SR_FMT_SSE, targets[i]), sse));
    }
    CHECK(msg_get(m, SR_FMT_RECORD, "A").base == a.base);
    CHECK(msg_get(m, SR_FMT_RECORD, "Bee").base == b.base);
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
        CHECK(msg_encode(m, SR_FMT_SSE, "T") == 0);
        msg_bytes b = msg_get(m, SR_FMT_SSE, "T");
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
    msg *m = sr_record_create("{\"type\":6}", 10);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(m->direct);
    CHECK(m->id == 0);
    CHECK(atomic_load(&m->refs) == 1);
    CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, NULL), "{\"type\":6}\x1e"));
    CHECK(bytes_eq(msg_get(m, SR_FMT_SSE, NULL), "data: {\"type\":6}\x1e\r\n\r\n"));
    CHECK(sse_event_ok(msg_get(m, SR_FMT_SSE, NULL)));
    /* Made at creation: encoding is a no-op, any target gives the same. The
     * record is the message's own bytes; the SSE form is the one cached
     * encoding, made at creation. */
    msg_variant *made = atomic_load(&m->variants);
    CHECK(made && !made->next && made->target == NULL);
    msg_bytes b = msg_get(m, SR_FMT_RECORD, NULL);
    CHECK(msg_encode(m, SR_FMT_RECORD, "ReceiveMessage") == 0);
    CHECK(msg_encode(m, SR_FMT_RECORD, NULL) == 0);
    CHECK(msg_encode(m, SR_FMT_SSE, NULL) == 0);
    CHECK(msg_get(m, SR_FMT_RECORD, "ReceiveMessage").base == b.base);
    CHECK(bytes_eq(msg_get(m, SR_FMT_SSE, "X"), "data: {\"type\":6}\x1e\r\n\r\n"));
    CHECK(atomic_load(&m->variants) == made); /* nothing added */
    /* Headroom in front of the record. */
    char *head = (char *)b.base - MSG_HEADROOM;
    CHECK(head == m->json);
    memset(head, 0xA5, MSG_HEADROOM);
    CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, NULL), "{\"type\":6}\x1e"));
    /* Only len bytes are the record. */
    msg *m2 = sr_record_create("{\"type\":6}garbage", 10);
    CHECK(m2 && bytes_eq(msg_get(m2, SR_FMT_RECORD, NULL), "{\"type\":6}\x1e"));
    msg_unref(m2);
    /* A completion, refcounted like any message (ASan checks the frees). */
    const char *c = "{\"type\":3,\"invocationId\":\"1\",\"result\":null}";
    msg *m3 = sr_record_create(c, strlen(c));
    CHECK(m3 && bytes_eq(msg_get(m3, SR_FMT_RECORD, NULL),
                         "{\"type\":3,\"invocationId\":\"1\",\"result\":null}\x1e"));
    CHECK(m3 && bytes_eq(msg_get(m3, SR_FMT_SSE, NULL),
                         "data: {\"type\":3,\"invocationId\":\"1\",\"result\":null}\x1e\r\n\r\n"));
    CHECK(m3 && msg_ref(m3) == m3);
    msg_unref(m3);
    msg_unref(m3);
    msg_unref(m);
}

static void test_signalr_epoch_headers(void)
{
    msg *m = msg_create_in(12, "lobby", "Ep0ch123", "[\"x\",1]", 7, NULL, 0);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(msg_encode(m, SR_FMT_RECORD, "ReceiveMessage") == 0);
    CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, "ReceiveMessage"),
                   "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[\"x\",1],"
                   "\"headers\":{\"crier-id\":\"12\",\"crier-epoch\":\"Ep0ch123\","
                   "\"crier-room\":\"lobby\"}}\x1e"));
    msg_unref(m);
}

static void test_gap_record(void)
{
    const char *info = "{\"room\":\"r\",\"epoch\":\"Ep0ch123\",\"reason\":\"expired\",\"since\":1,"
                       "\"resumed_from\":4}";
    msg *m = msg_create_gap(info, strlen(info));
    CHECK(m != NULL);
    if (!m)
        return;
    char want[256];
    /* SignalR: an invocation of CrierGap with the object, without headers. */
    CHECK(msg_encode(m, SR_FMT_RECORD, "ReceiveMessage") == 0);
    snprintf(want, sizeof(want), "{\"type\":1,\"target\":\"%s\",\"arguments\":[%s]}\x1e",
             SR_GAP_TARGET, info);
    CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, "ReceiveMessage"), want));
    msg_unref(m);
}

TEST_MAIN("signalr_encode", TEST(test_signalr_record), TEST(test_signalr_encode_once),
          TEST(test_signalr_own_target), TEST(test_signalr_variants), TEST(test_signalr_sse_lines),
          TEST(test_signalr_sse_lone_cr), TEST(test_create_record),
          TEST(test_signalr_epoch_headers), TEST(test_gap_record))
