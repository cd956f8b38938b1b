/* SPDX-License-Identifier: MIT */
/*
 * test_json_text.c - unit tests for common/json_text.c: string literals
 * from any bytes are valid JSON (escapes, invalid UTF-8 replaced), clipping
 * stops at a character boundary, error bodies parse back to their text.
 */
#include "common/json_text.h"
#include "tests/unit/test.h"

#include <jansson.h>
#include <stdlib.h>

/* The JSON literal of s (len bytes, clipped at max) is want. */
static void check_literal(const char *s, size_t len, size_t max, const char *want)
{
    buf b = {0};
    CHECK(buf_json_string(&b, s, len, max) && buf_append(&b, "", 1));
    if (b.data && strcmp(b.data, want))
        fprintf(stderr, "  got  %s\n  want %s\n", b.data, want);
    CHECK(b.data && !strcmp(b.data, want));
    /* And jansson reads it back. */
    json_error_t je;
    json_t *j = b.data ? json_loads(b.data, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je) : NULL;
    CHECK(json_is_string(j));
    json_decref(j);
    buf_free(&b);
}

static void test_escapes(void)
{
    check_literal("plain", 5, 0, "\"plain\"");
    check_literal("", 0, 0, "\"\"");
    check_literal("q\"b\\n\nr\rt\t", 10, 0, "\"q\\\"b\\\\n\\nr\\rt\\t\"");
    check_literal("\x01\x1f\x7f", 3, 0, "\"\\u0001\\u001f\\u007f\"");
    check_literal("a\0b", 3, 0, "\"a\\u0000b\"");
}

static void test_utf8(void)
{
    check_literal("\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80", 9, 0,
                  "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"");
    /* Not UTF-8: a stray continuation, a lone lead, an overlong, a surrogate, past U+10FFFF. */
    check_literal("\x80", 1, 0, "\"\\ufffd\"");
    check_literal("\xc3(", 2, 0, "\"\\ufffd(\"");
    check_literal("\xc0\xaf", 2, 0, "\"\\ufffd\\ufffd\"");
    check_literal("\xed\xa0\x80", 3, 0, "\"\\ufffd\\ufffd\\ufffd\"");
    check_literal("\xf4\x90\x80\x80", 4, 0, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    check_literal("\xff", 1, 0, "\"\\ufffd\"");
    check_literal("\xe4\xb8", 2, 0, "\"\\ufffd\\ufffd\""); /* cut short */
}

static void test_clip(void)
{
    check_literal("abcdef", 6, 3, "\"abc...\"");
    check_literal("abc", 3, 3, "\"abc\"");
    /* Never half a character: "é" is 2 bytes, cut before it. */
    check_literal("ab\xc3\xa9z", 5, 3, "\"ab...\"");
    check_literal("\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 8, 6, "\"\xf0\x9f\x98\x80...\"");
    char *c = json_text_clip("ab\xc3\xa9z", 3);
    CHECK(c && !strcmp(c, "ab..."));
    free(c);
    c = json_text_clip("short", 128);
    CHECK(c && !strcmp(c, "short"));
    free(c);
}

static void test_error_body(void)
{
    size_t len = 0;
    char *body = json_error_body("bad \"x\"\x01\xff", &len);
    CHECK(body && len == strlen(body));
    json_error_t je;
    json_t *j = body ? json_loads(body, 0, &je) : NULL;
    CHECK(j &&
          !strcmp(json_string_value(json_object_get(j, "error")), "bad \"x\"\x01\xef\xbf\xbd"));
    json_decref(j);
    free(body);

    buf b = {0};
    CHECK(buf_printf(&b, "%s-%d", "n", 42) && buf_printf(&b, "%0300d", 7) && b.len == 304);
    CHECK(b.data && !memcmp(b.data, "n-42000", 7) && b.data[303] == '7');
    buf_free(&b);
}

TEST_MAIN("json_text", TEST(test_escapes), TEST(test_utf8), TEST(test_clip), TEST(test_error_body))
