/* SPDX-License-Identifier: MIT */
/*
 * test_plain_ws_query.c - which query strings a plain room WebSocket
 * (/rooms/{room}/ws?since=N[&epoch=E]) accepts: plain_ws_query_is_valid,
 * the check the acceptor makes before the upgrade.
 */
#include <string.h>

#include "test.h"
#include "transports/plain/ws.h"

static void test_absent_cursor(void)
{
    CHECK(plain_ws_query_is_valid(""));
    CHECK(plain_ws_query_is_valid("pad=1"));
    /* Parameters that only end in since/epoch are other parameters. */
    CHECK(plain_ws_query_is_valid("xsince=1"));
    CHECK(plain_ws_query_is_valid("xepoch=abc&pad=2"));
}

static void test_valid_cursor(void)
{
    CHECK(plain_ws_query_is_valid("since=0"));
    CHECK(plain_ws_query_is_valid("since=42&epoch=abc123"));
    CHECK(plain_ws_query_is_valid("epoch=abc&since=7"));
    CHECK(plain_ws_query_is_valid("pad=x&since=18446744073709551615"));
}

static void test_malformed_cursor(void)
{
    CHECK(!plain_ws_query_is_valid("since="));
    CHECK(!plain_ws_query_is_valid("since=x"));
    CHECK(!plain_ws_query_is_valid("since=-1"));
    CHECK(!plain_ws_query_is_valid("since=18446744073709551616"));
    CHECK(!plain_ws_query_is_valid("since=abc:3")); /* the epoch goes in epoch= */
    CHECK(!plain_ws_query_is_valid("epoch=abc"));   /* an epoch without since */
    CHECK(!plain_ws_query_is_valid("since=1&epoch="));
    CHECK(!plain_ws_query_is_valid("since=1&epoch=a-b"));
    char longer[300] = "since=";
    memset(longer + 6, '1', 200);
    CHECK(!plain_ws_query_is_valid(longer)); /* does not fit: malformed, not absent */
    char epoch[300] = "since=1&epoch=";
    memset(epoch + 14, 'a', 200);
    CHECK(!plain_ws_query_is_valid(epoch));
}

TEST_MAIN("plain_ws_query", TEST(test_absent_cursor), TEST(test_valid_cursor),
          TEST(test_malformed_cursor))
