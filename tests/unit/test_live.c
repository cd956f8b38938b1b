/* SPDX-License-Identifier: MIT */
/*
 * test_live.c - unit tests for common/live.c and the reloadable readers
 * over it (README "Reload"): before live_set the caller's config is used;
 * after it, access_room and the cors checks follow each swap; readers on
 * other threads keep a consistent copy while the main thread swaps (run
 * under ThreadSanitizer by `make tsan`); limits.rate changes by
 * rate_limits_reload, a kind turned on and off again.
 */
#include "common/access.h"
#include "common/cors.h"
#include "common/live.h"
#include "common/rate_limits.h"
#include "tests/unit/test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* Auth on, one rule for "*" at level, one origin. */
static void conf_of(cfg *c, cfg_access level, const char *origin)
{
    memset(c, 0, sizeof(*c));
    c->auth.enabled = true;
    c->auth.nrooms = 1;
    strcpy(c->auth.rooms[0].match, "*");
    c->auth.rooms[0].subscribe = c->auth.rooms[0].publish = level;
    c->cors.nallowed_origins = 1;
    strcpy(c->cors.allowed_origins[0], origin);
}

static bool origin_ok(const char *o)
{
    return cors_origin_allowed(o, strlen(o));
}

static void test_swap_is_seen(void)
{
    static cfg start, next;
    conf_of(&start, CFG_ACCESS_PUBLIC, "http://a.test");
    conf_of(&next, CFG_ACCESS_API_KEY, "http://b.test");
    live_fini();
    CHECK(live_acquire() == NULL);
    cors_init(&start);
    CHECK(access_room(&start, NULL, "r", ACCESS_SUBSCRIBE) == ACCESS_ALLOWED);
    CHECK(origin_ok("http://a.test") && !origin_ok("http://b.test"));

    CHECK(live_set(&next) == 0);
    /* the caller's config is no longer what decides: the live copy does */
    CHECK(access_room(&start, NULL, "r", ACCESS_SUBSCRIBE) == ACCESS_NEEDS_API_KEY);
    CHECK(!origin_ok("http://a.test") && origin_ok("http://b.test"));

    /* a reference outlives the swap and still reads the old copy */
    const cfg *held = live_acquire();
    CHECK(live_set(&start) == 0);
    CHECK(held && held->auth.rooms[0].subscribe == CFG_ACCESS_API_KEY);
    live_release(held);
    CHECK(access_room(&start, NULL, "r", ACCESS_SUBSCRIBE) == ACCESS_ALLOWED);
    live_fini();
    cors_init(NULL);
}

static atomic_bool readers_stop;
static atomic_uint reader_odd;

/* Each copy set below has its rule and origin changed together: a reader
 * must never see one without the other. */
static void *reader(void *arg)
{
    (void)arg;
    while (!atomic_load(&readers_stop)) {
        const cfg *c = live_acquire();
        if (!c)
            continue;
        bool api = c->auth.rooms[0].subscribe == CFG_ACCESS_API_KEY;
        bool b = !strcmp(c->cors.allowed_origins[0], "http://b.test");
        if (api != b)
            atomic_fetch_add(&reader_odd, 1);
        (void)access_room(c, NULL, "room", ACCESS_PUBLISH); /* c only as the fallback */
        (void)origin_ok("http://b.test");
        live_release(c);
    }
    return NULL;
}

static void test_threads_swap(void)
{
    static cfg a, b;
    conf_of(&a, CFG_ACCESS_PUBLIC, "http://a.test");
    conf_of(&b, CFG_ACCESS_API_KEY, "http://b.test");
    CHECK(live_set(&a) == 0);
    atomic_store(&readers_stop, false);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, reader, NULL);
    unsigned before = live_generation();
    for (int i = 0; i < 2000; i++)
        CHECK(live_set(i % 2 ? &a : &b) == 0);
    atomic_store(&readers_stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&reader_odd) == 0);
    CHECK(live_generation() - before == 2000);
    live_fini();
}

static void test_rate_reload(void)
{
    cfg c;
    memset(&c, 0, sizeof(c));
    CHECK(rate_limits_init(&c) == 0);
    CHECK(!rate_limit_on(RATE_CONNECT));
    CHECK(rate_limit_addr(RATE_CONNECT, "10.1.1.1", 1000, "x") == 0);

    c.limits.rate.connect = (cfg_rate){1, 1};
    CHECK(rate_limits_reload(&c) == 0);
    CHECK(rate_limit_on(RATE_CONNECT));
    CHECK(rate_limit_addr(RATE_CONNECT, "10.1.1.1", 1000, "x") == 0);
    CHECK(rate_limit_addr(RATE_CONNECT, "10.1.1.1", 1000, "x") > 0);

    c.limits.rate.connect = (cfg_rate){1, 5}; /* a larger burst, same table */
    CHECK(rate_limits_reload(&c) == 0);
    CHECK(rate_limit_addr(RATE_CONNECT, "10.1.1.1", 6000, "x") == 0);
    CHECK(rate_limit_addr(RATE_CONNECT, "10.1.1.1", 6000, "x") == 0);

    c.limits.rate.connect = (cfg_rate){0, 0}; /* off again */
    CHECK(rate_limits_reload(&c) == 0);
    CHECK(!rate_limit_on(RATE_CONNECT));
    for (int i = 0; i < 100; i++)
        CHECK(rate_limit_addr(RATE_CONNECT, "10.1.1.1", 6000, "x") == 0);

    token_bucket tb = {0};
    c.limits.rate.publish = (cfg_rate){1, 1};
    CHECK(rate_limits_reload(&c) == 0);
    CHECK(rate_limit_publish(&tb, 1000, "t", "c", "x") == 0);
    CHECK(rate_limit_publish(&tb, 1000, "t", "c", "x") > 0);
    rate_limits_fini();
}

TEST_MAIN("live", TEST(test_swap_is_seen), TEST(test_threads_swap), TEST(test_rate_reload))
