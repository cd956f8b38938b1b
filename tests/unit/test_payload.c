/* SPDX-License-Identifier: MIT */
/*
 * test_payload.c - unit tests for hub/payload.c: JSON bodies kept as sent
 * (trimmed), malformed JSON errors, text bodies as JSON strings, invalid
 * UTF-8, and payload_is_json_type.
 */
#include "hub/payload.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <strings.h>

/* p holds exactly want (len bytes). */
static bool data_is(const payload *p, const char *want, size_t len)
{
    bool ok = p->data && p->len == len && memcmp(p->data, want, len) == 0;
    if (!ok)
        fprintf(stderr, "  got  \"%.*s\" (%zu)\n  want \"%.*s\" (%zu)\n", p->data ? (int)p->len : 0,
                p->data ? p->data : "", p->len, (int)len, want, len);
    return ok;
}

/* A JSON body body is accepted and kept as want, pointing into body. */
static void check_json(const char *body, const char *want)
{
    payload p;
    char err[256] = "";
    size_t len = strlen(body);
    int rc = payload_from_body(&p, body, len, true, err, sizeof(err));
    if (rc)
        fprintf(stderr, "  for '%s': rc %d, %s\n", body, rc, err);
    CHECK(rc == 0);
    if (rc)
        return;
    CHECK(data_is(&p, want, strlen(want)));
    CHECK(p.owned == NULL);
    CHECK(p.data >= body && p.data + p.len <= body + len); /* not copied */
    payload_free(&p);
    CHECK(p.data == NULL && p.len == 0 && p.owned == NULL);
}

/* A JSON body is refused with -EINVAL and an error mentioning want. */
static void check_bad_json(const char *body, size_t len, const char *want)
{
    payload p;
    char err[256] = "";
    int rc = payload_from_body(&p, body, len, true, err, sizeof(err));
    CHECK(rc == -EINVAL);
    if (rc == 0)
        payload_free(&p);
    if (!strstr(err, want))
        fprintf(stderr, "  for '%.*s'\n  got  \"%s\"\n  want \"%s\"\n", (int)len, body, err, want);
    CHECK(strstr(err, want) != NULL);
}

/* A text body of len bytes becomes the JSON string want. */
static void check_text(const char *body, size_t len, const char *want)
{
    payload p;
    char err[256] = "";
    int rc = payload_from_body(&p, body, len, false, err, sizeof(err));
    if (rc)
        fprintf(stderr, "  for '%.*s': rc %d, %s\n", (int)len, body, rc, err);
    CHECK(rc == 0);
    if (rc)
        return;
    CHECK(data_is(&p, want, strlen(want)));
    CHECK(p.owned != NULL && p.data == p.owned);
    payload_free(&p);
    CHECK(p.data == NULL && p.owned == NULL);
}

static void check_bad_text(const char *body, size_t len)
{
    payload p;
    char err[256] = "";
    int rc = payload_from_body(&p, body, len, false, err, sizeof(err));
    CHECK(rc == -EILSEQ);
    CHECK(err[0] != '\0');
    if (rc == 0)
        payload_free(&p);
}

static void test_json_kept(void)
{
    check_json("{\"a\":1}", "{\"a\":1}");
    check_json("  {\"a\": [1, 2],\n \"b\" : \"x y\"}\r\n\t ", "{\"a\": [1, 2],\n \"b\" : \"x y\"}");
    check_json("\n\n[ 1 ,2 ]\n", "[ 1 ,2 ]");
    check_json("42", "42");
    check_json(" -1.5e3 ", "-1.5e3");
    check_json("\"str\\n\\u00e9\"", "\"str\\n\\u00e9\""); /* escapes kept as sent */
    check_json("\"caf\xc3\xa9\"", "\"caf\xc3\xa9\"");
    check_json("null", "null");
    check_json("\ttrue\t", "true");
    check_json("false", "false");
    check_json("{}", "{}");
    check_json("[]", "[]");
    check_json("\"a\\u0000b\"", "\"a\\u0000b\"");
}

static void test_json_len_not_nul(void)
{
    /* Only len bytes are the body. */
    const char *body = " [1] trailing";
    payload p;
    char err[256] = "";
    CHECK(payload_from_body(&p, body, 4, true, err, sizeof(err)) == 0);
    CHECK(data_is(&p, "[1]", 3));
    CHECK(p.data == body + 1);
    payload_free(&p);
}

static void test_json_malformed(void)
{
    check_bad_json("{\"a\":", 5, "line 1");
    check_bad_json("{\"a\":", 5, "column");
    check_bad_json("{\n  \"a\": ,\n}", 12, "line 2");
    check_bad_json("{\n  \"a\": ,\n}", 12, "column 8");
    check_bad_json("{} x", 4, "line 1, column 4");
    check_bad_json("[1,2", 4, "malformed JSON");
    check_bad_json("", 0, "line");
    check_bad_json("   ", 3, "line");
    check_bad_json("hello", 5, "line");
    check_bad_json("{'a':1}", 7, "line");
    check_bad_json("[1,]", 4, "line");
    check_bad_json("{\"a\":1}{}", 9, "line");
    check_bad_json("\"caf\xc3\"", 6, "line"); /* invalid UTF-8 inside JSON */
}

static void test_json_big_numbers(void)
{
    /* Valid JSON (RFC 8259 puts no bound on numbers) that a pass-through
     * gateway must keep as sent. */
    check_json("9223372036854775807", "9223372036854775807");
    check_json("9223372036854775808", "9223372036854775808");
    check_json("{\"id\": 18446744073709551615}", "{\"id\": 18446744073709551615}");
    check_json("[123456789012345678901234567890]", "[123456789012345678901234567890]");
    check_json("1e400", "1e400");
}

static void test_text(void)
{
    check_text("hello", 5, "\"hello\"");
    check_text("", 0, "\"\"");
    check_text("say \"hi\"", 8, "\"say \\\"hi\\\"\"");
    check_text("a\nb\r\nc", 6, "\"a\\nb\\r\\nc\"");
    check_text("back\\slash", 10, "\"back\\\\slash\"");
    check_text("tab\there", 8, "\"tab\\there\"");
    check_text("\x01", 1, "\"\\u0001\"");
    /* Hex digits may come in either case. */
    payload p;
    char err[64];
    CHECK(payload_from_body(&p, "\x1f", 1, false, err, sizeof(err)) == 0);
    CHECK(p.len == 8 && strncasecmp(p.data, "\"\\u001f\"", 8) == 0);
    payload_free(&p);
    check_text("a\0b", 3, "\"a\\u0000b\"");
    check_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
               "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    check_text("  spaced  ", 10, "\"  spaced  \""); /* text is not trimmed */
    check_text("{\"looks\":\"json\"}", 16, "\"{\\\"looks\\\":\\\"json\\\"}\"");
    check_text("12 trailing", 2, "\"12\"");
}

static void test_text_invalid_utf8(void)
{
    check_bad_text("\xff", 1);
    check_bad_text("abc\x80", 4);          /* lone continuation byte */
    check_bad_text("caf\xc3", 4);          /* truncated sequence */
    check_bad_text("\xc0\xaf", 2);         /* overlong "/" */
    check_bad_text("\xed\xa0\x80", 3);     /* UTF-16 surrogate */
    check_bad_text("\xf4\x90\x80\x80", 4); /* past U+10FFFF */
    check_bad_text("ok\xe2\x82", 4);
}

static void test_is_json_type(void)
{
    CHECK(payload_is_json_type("application/json"));
    CHECK(payload_is_json_type("application/json; charset=utf-8"));
    CHECK(payload_is_json_type("application/json;charset=UTF-8"));
    CHECK(payload_is_json_type("Application/JSON"));
    CHECK(payload_is_json_type("APPLICATION/JSON; Charset=utf-8"));
    CHECK(payload_is_json_type(" application/json"));
    CHECK(!payload_is_json_type("text/plain"));
    CHECK(!payload_is_json_type("text/plain; charset=utf-8"));
    CHECK(!payload_is_json_type("application/jsonx"));
    CHECK(!payload_is_json_type("application/json-patch+json"));
    CHECK(!payload_is_json_type("application/jso"));
    CHECK(!payload_is_json_type("application/"));
    CHECK(!payload_is_json_type("text/json"));
    CHECK(!payload_is_json_type("application/x-www-form-urlencoded"));
    CHECK(!payload_is_json_type(""));
    CHECK(!payload_is_json_type(NULL));
}

TEST_MAIN("payload", TEST(test_json_kept), TEST(test_json_len_not_nul), TEST(test_json_malformed),
          TEST(test_json_big_numbers), TEST(test_text), TEST(test_text_invalid_utf8),
          TEST(test_is_json_type))
