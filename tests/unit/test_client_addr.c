/* SPDX-License-Identifier: MIT */
/*
 * test_client_addr.c - unit tests for common/client_addr.c: the peer's
 * address, a trusted proxy's X-Real-IP and X-Forwarded-For, and headers that
 * are not addresses.
 */
#include "common/client_addr.h"
#include "tests/unit/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static const char *fmt(const struct sockaddr *peer, const char *real, const char *xff, bool trust)
{
    static char out[CLIENT_ADDR_MAX];
    client_addr_format(peer, real, xff, trust, out, sizeof(out));
    return out;
}

static void test_peer(void)
{
    struct sockaddr_in a = v4("127.0.0.1");
    CHECK_STR(fmt((struct sockaddr *)&a, NULL, NULL, false), "127.0.0.1");
    struct sockaddr_in6 b = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &b.sin6_addr);
    CHECK_STR(fmt((struct sockaddr *)&b, NULL, NULL, true), "::1");
    CHECK_STR(fmt(NULL, NULL, NULL, false), "unknown");
}

static void test_untrusted_headers_ignored(void)
{
    struct sockaddr_in a = v4("10.0.0.2");
    CHECK_STR(fmt((struct sockaddr *)&a, "198.51.100.7", "203.0.113.9", false), "10.0.0.2");
}

static void test_trusted(void)
{
    struct sockaddr_in a = v4("10.0.0.2");
    const struct sockaddr *p = (struct sockaddr *)&a;
    CHECK_STR(fmt(p, "198.51.100.7", "203.0.113.9", true), "198.51.100.7");
    CHECK_STR(fmt(p, NULL, "203.0.113.9", true), "203.0.113.9");
    CHECK_STR(fmt(p, NULL, "192.0.2.1, 203.0.113.9", true),
              "203.0.113.9"); /* the proxy's own entry */
    CHECK_STR(fmt(p, " 2001:db8::1 ", NULL, true), "2001:db8::1");
}

static void test_not_addresses(void)
{
    struct sockaddr_in a = v4("10.0.0.2");
    const struct sockaddr *p = (struct sockaddr *)&a;
    CHECK_STR(fmt(p, "evil\n2026 fake log line", NULL, true), "10.0.0.2");
    CHECK_STR(fmt(p, "", "1.2.3.4, not-an-ip", true), "10.0.0.2");
    CHECK_STR(fmt(p, "999.1.1.1", NULL, true), "10.0.0.2");
    CHECK_STR(fmt(p, "bad", "198.51.100.7", true), "198.51.100.7");
}

TEST_MAIN("client_addr", TEST(test_peer), TEST(test_untrusted_headers_ignored), TEST(test_trusted),
          TEST(test_not_addresses))
