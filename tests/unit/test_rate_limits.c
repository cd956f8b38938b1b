/* SPDX-License-Identifier: MIT */
/*
 * test_rate_limits.c - unit tests for common/rate_limits.c: off by default
 * (per_s 0: every check passes, nothing counted), each kind on its own
 * with a bucket per client address, a connection's publish bucket, the
 * refusals counted per kind (what /metrics shows), and fini turning every
 * check off again.
 */
#include "common/rate_limits.h"
#include "tests/unit/test.h"

#include <string.h>

static cfg conf_with(cfg_rate publish, cfg_rate connect, cfg_rate request)
{
    cfg c;
    memset(&c, 0, sizeof(c));
    c.limits.rate.publish = publish;
    c.limits.rate.connect = connect;
    c.limits.rate.request = request;
    return c;
}

static void test_off_by_default(void)
{
    cfg c = conf_with((cfg_rate){0, 0}, (cfg_rate){0, 0}, (cfg_rate){0, 0});
    CHECK(rate_limits_init(&c) == 0);
    uint64_t before[RATE_KINDS];
    for (int k = 0; k < RATE_KINDS; k++) {
        before[k] = rate_limited_total((rate_kind)k);
        CHECK(!rate_limit_on((rate_kind)k));
    }
    token_bucket b = {0};
    for (int i = 0; i < 10000; i++) {
        CHECK(rate_limit_addr(RATE_CONNECT, "10.0.0.1", 1000, "x") == 0);
        CHECK(rate_limit_addr(RATE_REQUEST, "10.0.0.1", 1000, "x") == 0);
        CHECK(rate_limit_addr(RATE_PUBLISH, "10.0.0.1", 1000, "x") == 0);
        CHECK(rate_limit_publish(&b, 1000, "test", "conn", "x") == 0);
    }
    CHECK(!b.started); /* off: the bucket is never touched */
    for (int k = 0; k < RATE_KINDS; k++)
        CHECK(rate_limited_total((rate_kind)k) == before[k]);
    rate_limits_fini();
}

static void test_per_address(void)
{
    cfg c = conf_with((cfg_rate){0, 0}, (cfg_rate){2, 3}, (cfg_rate){0, 0});
    CHECK(rate_limits_init(&c) == 0);
    CHECK(rate_limit_on(RATE_CONNECT) && !rate_limit_on(RATE_REQUEST));
    uint64_t refused = rate_limited_total(RATE_CONNECT);
    for (int i = 0; i < 3; i++)
        CHECK(rate_limit_addr(RATE_CONNECT, "10.0.0.1", 1000, "429") == 0);
    CHECK(rate_limit_addr(RATE_CONNECT, "10.0.0.1", 1000, "429") == 500);
    CHECK(rate_limited_total(RATE_CONNECT) == refused + 1);
    CHECK(rate_limit_addr(RATE_CONNECT, "10.0.0.2", 1000, "429") == 0); /* its own bucket */
    CHECK(rate_limit_addr(RATE_CONNECT, "10.0.0.1", 1500, "429") == 0); /* refilled */
    CHECK(rate_limit_addr(RATE_REQUEST, "10.0.0.1", 1500, "429") == 0); /* request is off */
    CHECK(rate_limited_total(RATE_CONNECT) == refused + 1);
    rate_limits_fini();
    CHECK(!rate_limit_on(RATE_CONNECT));
    CHECK(rate_limit_addr(RATE_CONNECT, "10.0.0.1", 1500, "429") == 0);
}

static void test_burst_defaults_to_rate(void)
{
    cfg c = conf_with((cfg_rate){0, 0}, (cfg_rate){0, 0}, (cfg_rate){4, 0});
    CHECK(rate_limits_init(&c) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(rate_limit_addr(RATE_REQUEST, "::1", 0, "429") == 0);
    CHECK(rate_limit_addr(RATE_REQUEST, "::1", 0, "429") == 250);
    rate_limits_fini();
}

static void test_publish_per_connection(void)
{
    cfg c = conf_with((cfg_rate){1, 2}, (cfg_rate){0, 0}, (cfg_rate){0, 0});
    CHECK(rate_limits_init(&c) == 0);
    uint64_t refused = rate_limited_total(RATE_PUBLISH);
    token_bucket a = {0}, b = {0};
    CHECK(rate_limit_publish(&a, 0, "a WebSocket in room", "r", "closed 1008") == 0);
    CHECK(rate_limit_publish(&a, 0, "a WebSocket in room", "r", "closed 1008") == 0);
    CHECK(rate_limit_publish(&a, 0, "a WebSocket in room", "r", "closed 1008") == 1000);
    CHECK(rate_limit_publish(&b, 0, "a WebSocket in room", "r", "closed 1008") == 0);
    CHECK(rate_limited_total(RATE_PUBLISH) == refused + 1);
    /* HTTP publishes: per address, a table of their own. */
    CHECK(rate_limit_addr(RATE_PUBLISH, "10.0.0.1", 0, "429") == 0);
    CHECK(rate_limit_addr(RATE_PUBLISH, "10.0.0.1", 0, "429") == 0);
    CHECK(rate_limit_addr(RATE_PUBLISH, "10.0.0.1", 0, "429") == 1000);
    CHECK(rate_limited_total(RATE_PUBLISH) == refused + 2);
    rate_limits_fini();
}

static void test_names(void)
{
    CHECK_STR(rate_kind_name(RATE_PUBLISH), "publish");
    CHECK_STR(rate_kind_name(RATE_CONNECT), "connect");
    CHECK_STR(rate_kind_name(RATE_REQUEST), "request");
}

TEST_MAIN("rate_limits", TEST(test_off_by_default), TEST(test_per_address),
          TEST(test_burst_defaults_to_rate), TEST(test_publish_per_connection), TEST(test_names))
