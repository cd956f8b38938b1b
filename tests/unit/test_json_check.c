/* SPDX-License-Identifier: MIT */
/*
 * test_json_check.c - the JSON syntax checker: what it accepts, what it
 * refuses, and where it says the error is.
 */
#include "hub/json_check.h"
#include "tests/unit/test.h"

static int check(const char *s)
{
    json_check_error e;
    return json_check(s, strlen(s), &e);
}

static void test_accepts_valid_json(void)
{
    static const char *const ok[] = {
        "0",
        "-0",
        "1.5e10",
        "-12.25E-3",
        "123456789012345678901234567890",
        "1e400",
        "true",
        "false",
        "null",
        "\"\"",
        "\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\"",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "[]",
        "{}",
        " [1, [2, {\"a\": [null]}]] ",
        "{\"a\":1,\"b\":{\"c\":[true,false]}}",
        "\n\t{\r\n\"x\" : 1 }\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (check(ok[i]) != 0)
            fprintf(stderr, "  refused valid: %s\n", ok[i]);
        CHECK(check(ok[i]) == 0);
    }
}

static void test_refuses_invalid_json(void)
{
    static const char *const bad[] = {
        "",
        " ",
        "01",
        "1.",
        ".5",
        "1e",
        "-",
        "+1",
        "tru",
        "nul",
        "True",
        "[1,]",
        "[1 2]",
        "{\"a\"}",
        "{\"a\":}",
        "{a:1}",
        "{\"a\":1,}",
        "[",
        "]",
        "{\"a\":1",
        "\"abc",
        "\"a\\x\"",
        "\"\\u12G4\"",
        "\"tab\there\"",
        "1 2",
        "[] []",
        "\"\xc3\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf5\x80\x80\x80\"",
        "NaN",
        "'a'",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check(bad[i]) == 0)
            fprintf(stderr, "  accepted invalid: %s\n", bad[i]);
        CHECK(check(bad[i]) == -1);
    }
}

static void test_nul_byte_is_refused(void)
{
    json_check_error e;
    CHECK(json_check("\"a\0b\"", 5, &e) == -1);
    CHECK(json_check("1\0", 2, &e) == -1);
}

static void test_error_position(void)
{
    json_check_error e = {0};
    const char *s = "{\n  \"a\": 1,\n  \"b\" 2\n}";
    CHECK(json_check(s, strlen(s), &e) == -1);
    CHECK(e.line == 3);
    CHECK(e.column == 7);
    CHECK(e.what && strstr(e.what, "':'"));
}

static void test_depth_limit(void)
{
    char deep[2 * JSON_CHECK_MAX_DEPTH + 4];
    size_t n = 0;
    for (int i = 0; i < JSON_CHECK_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < JSON_CHECK_MAX_DEPTH; i++)
        deep[n++] = ']';
    json_check_error e;
    CHECK(json_check(deep, n, &e) == 0);
    char deeper[2 * JSON_CHECK_MAX_DEPTH + 4];
    n = 0;
    for (int i = 0; i <= JSON_CHECK_MAX_DEPTH; i++)
        deeper[n++] = '[';
    for (int i = 0; i <= JSON_CHECK_MAX_DEPTH; i++)
        deeper[n++] = ']';
    CHECK(json_check(deeper, n, &e) == -1);
    CHECK(e.what && strstr(e.what, "deep"));
}

TEST_MAIN("json_check", TEST(test_accepts_valid_json), TEST(test_refuses_invalid_json),
          TEST(test_nul_byte_is_refused), TEST(test_error_position), TEST(test_depth_limit))
