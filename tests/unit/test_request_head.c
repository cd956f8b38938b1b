/* SPDX-License-Identifier: MIT */
/*
 * test_request_head.c - the acceptor's request head reader: well-formed heads
 * are read whole (method, target, path, query, the fields routing uses), and
 * every malformation that could make two parsers disagree is refused.
 */
#include "gateway/request_head.h"

#include <stdlib.h>

#include "tests/unit/test.h"

/* Parses text; returns the result, *h kept for the caller to free. */
static rh_result parse(const char *text, request_head *h)
{
    return request_head_parse(text, strlen(text), h);
}

/* text must be refused with status, with an error naming why. */
static void check_refused(const char *text, unsigned status, const char *error_part)
{
    request_head h;
    rh_result r = parse(text, &h);
    if (r != RH_ERROR || h.status != status || !h.error || !strstr(h.error, error_part)) {
        fprintf(stderr, "  for %s: result %d status %u error %s\n", text, r, h.status,
                h.error ? h.error : "(none)");
        test_failed_checks++;
    }
    request_head_free(&h);
}

static void test_valid_get(void)
{
    request_head h;
    const char *t = "GET /rooms/a%20b/ws?since=3&epoch=x HTTP/1.1\r\nHost: x\r\n"
                    "Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
                    "Accept:  text/event-stream \r\n\r\nbody";
    CHECK(parse(t, &h) == RH_COMPLETE);
    CHECK(h.head_len == strlen(t) - 4);
    CHECK(rh_span_is(h.method, "GET"));
    CHECK(h.target.len == strlen("/rooms/a%20b/ws?since=3&epoch=x"));
    CHECK_STR(h.path, "/rooms/a b/ws");
    CHECK_STR(h.query, "since=3&epoch=x");
    CHECK(h.http_minor == 1);
    CHECK(h.fields == 4);
    CHECK(h.upgrade_websocket && h.connection_upgrade && h.accept_event_stream);
    CHECK(!h.has_content_length && !h.chunked);
    CHECK(!h.authorization.p && !h.authorization.len);
    request_head_free(&h);
    /* the credential, for the acceptor to check an upgrade: the value, trimmed */
    CHECK(parse("GET /rooms/a/ws HTTP/1.1\r\nAUTHORIZATION:  Bearer abc.def \r\n\r\n", &h) ==
          RH_COMPLETE);
    CHECK(rh_span_is(h.authorization, "Bearer abc.def"));
    CHECK(!h.cookie.p);
    request_head_free(&h);
    /* the first Cookie, for the connect proxy */
    CHECK(parse("GET /rooms/a/ws HTTP/1.1\r\ncookie: session=1\r\nCookie: b=2\r\n\r\n", &h) ==
          RH_COMPLETE);
    CHECK(rh_span_is(h.cookie, "session=1"));
    request_head_free(&h);
}

static void test_valid_post(void)
{
    request_head h;
    CHECK(parse("POST /rooms/a/messages HTTP/1.0\r\nContent-Length: 12\r\n\r\n", &h) ==
          RH_COMPLETE);
    CHECK(h.has_content_length && h.content_length == 12 && h.http_minor == 0);
    CHECK_STR(h.query, "");
    request_head_free(&h);
    CHECK(parse("POST /x HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n", &h) == RH_COMPLETE);
    CHECK(h.chunked);
    request_head_free(&h);
}

static void test_incomplete(void)
{
    request_head h;
    CHECK(parse("", &h) == RH_INCOMPLETE);
    CHECK(parse("GE", &h) == RH_INCOMPLETE);
    CHECK(parse("GET / HTTP/1.1\r", &h) == RH_INCOMPLETE);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n", &h) == RH_INCOMPLETE);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n\r", &h) == RH_INCOMPLETE);
    CHECK(h.path == NULL && h.query == NULL);
}

static void test_early_refusal(void)
{
    /* refused before the head is complete */
    check_refused("\x16\x03\x01\x02", 400, "malformed HTTP request");
    check_refused("FOO / HTTP/1.1\r\n", 400, "malformed HTTP request");
    check_refused("GETX", 400, "malformed HTTP request");
    check_refused("GET / HTTP/1.1\nHost", 400, "bare LF");
    check_refused("GET / HTTP/1.1\r\nHost: a\rb\r\n", 400, "bare CR");
    check_refused("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\nHo", 400,
                  "more than one Content-Length");
}

static void test_request_line(void)
{
    check_refused("GET  / HTTP/1.1\r\n\r\n", 400, "malformed request line");
    check_refused("GET /\r\n\r\n", 400, "malformed request line");
    check_refused("GET / HTTP/1.1 \r\n\r\n", 400, "malformed request line");
    check_refused("GET /a\x01 HTTP/1.1\r\n\r\n", 400, "control character");
    check_refused("GET / HTTP/2.0\r\n\r\n", 505, "version");
    check_refused("GET / HTTP/1.10\r\n\r\n", 400, "malformed request line");
    check_refused("GET / http/1.1\r\n\r\n", 400, "malformed request line");
}

static void test_smuggling(void)
{
    check_refused("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
                  "more than one Content-Length");
    check_refused("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", 400,
                  "more than one Content-Length");
    check_refused("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
                  "Content-Length and Transfer-Encoding");
    check_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
                  "Content-Length and Transfer-Encoding");
    check_refused("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", 400, "whitespace");
    check_refused("POST / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n", 400, "whitespace");
    check_refused("POST / HTTP/1.1\r\nTransfer Encoding: chunked\r\n\r\n", 400, "whitespace");
    check_refused("POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n\r\n", 400, "obs-fold");
    check_refused("POST / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400, "obs-fold");
    check_refused("POST / HTTP/1.1\r\nX: a\r\n\tfolded\r\n\r\n", 400, "obs-fold");
    check_refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400,
                  "exactly \"chunked\"");
    check_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
                  "exactly \"chunked\"");
    check_refused("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 400,
                  "exactly \"chunked\"");
    check_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
                  "chunked\r\n\r\n",
                  400, "more than one Transfer-Encoding");
    check_refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
    /* two credentials: which one would each reader take? */
    check_refused("GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n\r\n",
                  400, "more than one Authorization");
    const char *bad_lengths[] = {"-1", "+5",  "5 5", "0x10",
                                 "",   "1e3", "5,5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_lengths) / sizeof(bad_lengths[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "POST / HTTP/1.1\r\nContent-Length: %s\r\n\r\n",
                 bad_lengths[i]);
        check_refused(text, 400, "Content-Length must be a decimal number");
    }
}

static void test_field_syntax(void)
{
    check_refused("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "without a colon");
    check_refused("GET / HTTP/1.1\r\n: v\r\n\r\n", 400, "empty header field name");
    check_refused("GET / HTTP/1.1\r\nX(y): v\r\n\r\n", 400, "invalid character");
    check_refused("GET / HTTP/1.1\r\nX: a\x01 b\r\n\r\n", 400, "control character");
    static const char nul_in_value[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    request_head h;
    CHECK(request_head_parse(nul_in_value, sizeof(nul_in_value) - 1, &h) == RH_ERROR);
    CHECK(h.status == 400);
    /* tabs, spaces and non-ASCII bytes are allowed in values */
    CHECK(parse("GET / HTTP/1.1\r\nX: a\tb \xc3\xa9\r\n\r\n", &h) == RH_COMPLETE);
    request_head_free(&h);
}

static const char *const key_ok = "dGhlIHNhbXBsZSBub25jZQ==";

static unsigned ws_status(const char *version, const char *key, const char **error)
{
    char text[512];
    snprintf(text, sizeof(text),
             "GET /rooms/a/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n%s%s%s%s"
             "\r\n",
             version ? "Sec-WebSocket-Version: " : "", version ? version : "",
             version ? "\r\n" : "", key ? key : "");
    request_head h;
    if (parse(text, &h) != RH_COMPLETE)
        return 1;
    unsigned st = request_head_ws_error(&h, error);
    request_head_free(&h);
    return st;
}

static void test_websocket_handshake(void)
{
    const char *err = NULL;
    char key[128];
    snprintf(key, sizeof(key), "Sec-WebSocket-Key: %s\r\n", key_ok);
    CHECK(ws_status("13", key, &err) == 0);
    CHECK(ws_status("8", key, &err) == 426);
    CHECK(ws_status("14", key, &err) == 426);
    CHECK(ws_status(NULL, key, &err) == 426);
    CHECK(ws_status("13", NULL, &err) == 400);
    CHECK(strstr(err, "Sec-WebSocket-Key") != NULL);
    const char *bad_keys[] = {"Sec-WebSocket-Key: abc\r\n",
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n",
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===\r\n",
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==\r\n",
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n",
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++)
        CHECK(ws_status("13", bad_keys[i], &err) == 400);
    request_head h;
    CHECK(parse("GET /a HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                &h) == RH_COMPLETE);
    CHECK(request_head_ws_error(&h, &err) == 400); /* no Connection: Upgrade */
    request_head_free(&h);
}

static void test_long_target(void)
{
    size_t n = 20000;
    char *text = malloc(n + 64);
    CHECK(text != NULL);
    if (!text)
        return;
    int k = snprintf(text, n + 64, "GET /rooms/a/ws?");
    memset(text + k, 'q', n);
    strcpy(text + k + n, " HTTP/1.1\r\n\r\n");
    request_head h;
    CHECK(parse(text, &h) == RH_COMPLETE);
    CHECK(h.query && strlen(h.query) == n);
    request_head_free(&h);
    free(text);
}

/* Upgrade and Connection are token lists: whole items, case and the
 * whitespace around items ignored (the dispatcher reads Upgrade with it too). */
static void test_token_list(void)
{
#define HAS(text, tok) rh_list_has((rh_span){text, strlen(text)}, tok)
    CHECK(HAS("websocket", "websocket"));
    CHECK(HAS("WebSocket", "websocket"));
    CHECK(HAS("h2c, websocket", "websocket"));
    CHECK(HAS(" ,websocket\t, x", "websocket"));
    CHECK(HAS("keep-alive, Upgrade", "upgrade"));
    CHECK(!HAS("xwebsocket", "websocket"));
    CHECK(!HAS("websocket2", "websocket"));
    CHECK(!HAS("web socket", "websocket"));
    CHECK(!HAS("websocket/13x", "websocket"));
    CHECK(!HAS("", "websocket"));
    CHECK(!HAS(",,", "websocket"));
#undef HAS
}

/* The client address a proxy reports, for limits.rate.connect behind one:
 * the first X-Real-IP and X-Forwarded-For (as libmicrohttpd reads them). */
static void test_proxy_fields(void)
{
    request_head h;
    CHECK(parse("GET / HTTP/1.1\r\nx-real-ip: 203.0.113.9\r\n"
                "X-Forwarded-For: 10.0.0.1, 198.51.100.7\r\nX-Real-IP: 192.0.2.1\r\n\r\n",
                &h) == RH_COMPLETE);
    CHECK(rh_span_is(h.x_real_ip, "203.0.113.9"));
    CHECK(rh_span_is(h.x_forwarded_for, "10.0.0.1, 198.51.100.7"));
    request_head_free(&h);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &h) == RH_COMPLETE);
    CHECK(!h.x_real_ip.p && !h.x_forwarded_for.p);
    request_head_free(&h);
}

/* Origin and Host, for the WebSocket origin check: the first of each, and
 * how many Origin headers came. */
static void test_origin_and_host(void)
{
    request_head h;
    CHECK(parse("GET /rooms/a/ws HTTP/1.1\r\nhost:  h.example:81 \r\n"
                "ORIGIN: https://app.example\r\n\r\n",
                &h) == RH_COMPLETE);
    CHECK(h.origin_count == 1 && rh_span_is(h.origin, "https://app.example"));
    CHECK(rh_span_is(h.host, "h.example:81"));
    request_head_free(&h);
    CHECK(parse("GET / HTTP/1.1\r\nOrigin: https://a\r\nOrigin: https://b\r\n\r\n", &h) ==
          RH_COMPLETE);
    CHECK(h.origin_count == 2 && rh_span_is(h.origin, "https://a") && !h.host.p);
    request_head_free(&h);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &h) == RH_COMPLETE);
    CHECK(h.origin_count == 0 && !h.origin.p);
    request_head_free(&h);
}

TEST_MAIN("request_head", TEST(test_valid_get), TEST(test_valid_post), TEST(test_incomplete),
          TEST(test_early_refusal), TEST(test_request_line), TEST(test_smuggling),
          TEST(test_field_syntax), TEST(test_websocket_handshake), TEST(test_long_target),
          TEST(test_token_list), TEST(test_proxy_fields), TEST(test_origin_and_host))
