/* SPDX-License-Identifier: MIT */
/*
 * test_cors.c - the origin policy (common/cors.c): nothing is checked
 * without a list; exact origins (ASCII case ignored) and "*"; when the
 * answer may be "*"; same-origin pages.
 */
#include "common/cors.h"
#include "tests/unit/test.h"

#include <string.h>

static cfg conf;

static void setup(const char *const *origins, bool credentials)
{
    memset(&conf, 0, sizeof(conf));
    for (unsigned i = 0; origins && origins[i]; i++)
        strcpy(conf.cors.allowed_origins[conf.cors.nallowed_origins++], origins[i]);
    conf.cors.allow_credentials = credentials;
    conf.cors.max_age_s = 600;
    cors_init(&conf);
}

static bool allowed(const char *origin)
{
    return cors_origin_allowed(origin, strlen(origin));
}

static void test_no_list(void)
{
    setup(NULL, false);
    CHECK(!cors_enabled());
    CHECK(!allowed("https://a.example"));
    CHECK(!cors_answer_wildcard());
}

static void test_exact_origins(void)
{
    static const char *const list[] = {"https://a.example", "http://127.0.0.1:8080", NULL};
    setup(list, true);
    CHECK(cors_enabled());
    CHECK(allowed("https://a.example"));
    CHECK(allowed("HTTPS://A.Example")); /* scheme and host have no case */
    CHECK(allowed("http://127.0.0.1:8080"));
    CHECK(!allowed("http://a.example"));       /* another scheme */
    CHECK(!allowed("https://a.example:443"));  /* not the same text */
    CHECK(!allowed("https://a.example.evil")); /* no prefix match */
    CHECK(!allowed("https://a.exampl"));       /* nor a shorter one */
    CHECK(!allowed("http://127.0.0.1:80800"));
    CHECK(!allowed("null"));
    CHECK(!allowed(""));
    CHECK(!cors_origin_allowed(NULL, 0));
    CHECK(cors_origin_allowed("https://a.example/x", strlen("https://a.example"))); /* len bytes */
    CHECK(!cors_answer_wildcard());
    CHECK(cors_allow_credentials() && cors_max_age_s() == 600);
}

static void test_wildcard(void)
{
    static const char *const star[] = {"*", NULL};
    setup(star, false);
    CHECK(allowed("https://anything.example") && allowed("null"));
    CHECK(cors_answer_wildcard());
    setup(star, true); /* with credentials the origin itself is answered */
    CHECK(allowed("https://anything.example"));
    CHECK(!cors_answer_wildcard());
}

static bool same(const char *origin, const char *host)
{
    return cors_same_origin(origin, strlen(origin), host, host ? strlen(host) : 0);
}

static void test_same_origin(void)
{
    CHECK(same("http://127.0.0.1:8080", "127.0.0.1:8080"));
    CHECK(same("https://Chat.Example", "chat.example"));
    CHECK(!same("http://127.0.0.1:8080", "127.0.0.1:8081"));
    CHECK(!same("http://evil.example", "chat.example"));
    CHECK(!same("ftp://chat.example", "chat.example"));
    CHECK(!same("http://chat.example", ""));
    CHECK(!same("http://chat.example", NULL));
    CHECK(!same("http://", "x"));
    CHECK(!same("null", "null"));
}

TEST_MAIN("cors", TEST(test_no_list), TEST(test_exact_origins), TEST(test_wildcard),
          TEST(test_same_origin))
