/* SPDX-License-Identifier: MIT */
/*
 * test_parse.c - unit tests for common/parse.c: the decimal u64 parser (its
 * bounds, signs, spaces, overflow) and the raw query-string reader.
 */
#include "common/parse.h"
#include "tests/unit/test.h"

static void test_u64_accepts(void)
{
    uint64_t v = 1;
    CHECK(parse_u64("0", &v) && v == 0);
    CHECK(parse_u64("42", &v) && v == 42);
    CHECK(parse_u64("007", &v) && v == 7);
    CHECK(parse_u64("18446744073709551615", &v) && v == UINT64_MAX);
    CHECK(parse_u64("00000000000000000001", &v) && v == 1); /* 20 digits */
}

static void test_u64_refuses(void)
{
    uint64_t v = 5;
    CHECK(!parse_u64(NULL, &v));
    CHECK(!parse_u64("", &v));
    CHECK(!parse_u64("-1", &v));
    CHECK(!parse_u64("+1", &v));
    CHECK(!parse_u64(" 1", &v));
    CHECK(!parse_u64("1 ", &v));
    CHECK(!parse_u64("0x10", &v));
    CHECK(!parse_u64("18446744073709551616", &v));  /* UINT64_MAX + 1 */
    CHECK(!parse_u64("000000000000000000001", &v)); /* 21 digits */
    CHECK(!parse_u64("99999999999999999999", &v));
    CHECK(v == 5); /* untouched on failure */
}

static void test_u64_n(void)
{
    uint64_t v = 0;
    CHECK(parse_u64_n("123abc", 3, &v) && v == 123);
    CHECK(!parse_u64_n("123abc", 4, &v));
    CHECK(!parse_u64_n("1", 0, &v));
    CHECK(!parse_u64_n(NULL, 1, &v));
}

static void test_query_param(void)
{
    char out[8];
    CHECK(query_param("id=abc", "id", out, sizeof(out)) && !strcmp(out, "abc"));
    CHECK(query_param("a=1&id=xy&id=z", "id", out, sizeof(out)) && !strcmp(out, "xy"));
    CHECK(query_param("id=", "id", out, sizeof(out)) && !strcmp(out, ""));
    CHECK(query_param("x=1&since=5", "since", out, sizeof(out)) && !strcmp(out, "5"));
    CHECK(query_param("id=%41", "id", out, sizeof(out)) && !strcmp(out, "%41")); /* raw */
    CHECK(!query_param("xid=1", "id", out, sizeof(out)));
    CHECK(!query_param("idx=1", "id", out, sizeof(out)));
    CHECK(!query_param("id", "id", out, sizeof(out)));
    CHECK(!query_param("", "id", out, sizeof(out)));
    CHECK(!query_param(NULL, "id", out, sizeof(out)));
    CHECK(!query_param("id=1234567", "id", out, 7)); /* 7 bytes and the NUL */
    CHECK(query_param("id=123456", "id", out, 7) && !strcmp(out, "123456"));
}

static void test_query_has(void)
{
    CHECK(query_has("id=1", "id"));
    CHECK(query_has("a=1&id=", "id"));
    CHECK(!query_has("a=1&xid=2", "id"));
    CHECK(!query_has("id", "id"));
    CHECK(!query_has("", "id"));
    CHECK(!query_has(NULL, "id"));
}

/* The value as a span of the query itself. */
static void test_query_value(void)
{
    size_t n = 99;
    const char *q = "a=1&id=xy&id=z";
    CHECK(query_value(q, "id", &n) == q + 7 && n == 2);
    q = "id=";
    CHECK(query_value(q, "id", &n) == q + 3 && n == 0);
    q = "id=%41&b";
    CHECK(query_value(q, "id", &n) == q + 3 && n == 3);
    CHECK(!query_value("xid=1&idx=2&id", "id", &n));
    CHECK(!query_value(NULL, "id", &n));
}

/* Hexadecimal digits of either case; anything else -1. */
static void test_hex_digit(void)
{
    CHECK(parse_hex_digit('0') == 0 && parse_hex_digit('9') == 9);
    CHECK(parse_hex_digit('a') == 10 && parse_hex_digit('F') == 15);
    CHECK(parse_hex_digit('g') == -1 && parse_hex_digit('G') == -1);
    CHECK(parse_hex_digit('/') == -1 && parse_hex_digit(':') == -1);
    CHECK(parse_hex_digit('@') == -1 && parse_hex_digit('`') == -1 && parse_hex_digit('\0') == -1);
}

TEST_MAIN("parse", TEST(test_u64_accepts), TEST(test_u64_refuses), TEST(test_u64_n),
          TEST(test_query_param), TEST(test_query_has), TEST(test_query_value),
          TEST(test_hex_digit))
