/* SPDX-License-Identifier: MIT */
/*
 * test_guard.c - what each endpoint needs (the "access" column of
 * gateway/routes.h, as the router reports it) and the gateway's checks of
 * it (gateway/guard.c): with auth off nothing is checked; with auth on the
 * room rules give 401 or 403, the operator endpoints want an API key when
 * auth.protect_admin, and only the dashboard among the pages is one.
 */
#include "gateway/guard.h"

#include <stdlib.h>

#include "gateway/auth.h"
#include "gateway/config.h"
#include "gateway/router.h"
#include "gateway/static.h"
#include "tests/unit/test.h"

static cfg conf;

static route_access access_of(unsigned method, const char *path)
{
    route_result r;
    router_route(&(route_request){.method = method, .path = path}, &r);
    return r.access;
}

/* Every endpoint names what it needs. */
static void test_route_column(void)
{
    cfg_defaults(&conf);
    router_init(&conf);
    CHECK(access_of(M_GET, "/rooms/a/events") == RIGHT_SUBSCRIBE);
    CHECK(access_of(M_GET, "/rooms/a/poll") == RIGHT_SUBSCRIBE);
    CHECK(access_of(M_GET, "/rooms/a/ws") == RIGHT_SUBSCRIBE);
    CHECK(access_of(M_POST, "/rooms/a/messages") == RIGHT_PUBLISH);
    CHECK(access_of(M_GET, "/rooms/a") == RIGHT_ADMIN);
    CHECK(access_of(M_GET, "/rooms") == RIGHT_ADMIN);
    CHECK(access_of(M_GET, "/rooms/a/history") == RIGHT_SUBSCRIBE); /* what it could replay */
    CHECK(access_of(M_GET, "/metrics") == RIGHT_ADMIN);
    CHECK(access_of(M_GET, "/stats/events") == RIGHT_ADMIN);
    CHECK(access_of(M_GET, "/healthz") == RIGHT_NONE);
    CHECK(access_of(M_GET, "/hubs/chat") == RIGHT_HUB);
    CHECK(access_of(M_POST, "/hubs/chat/negotiate") == RIGHT_HUB);
    CHECK(access_of(M_GET, "/index.html") == RIGHT_PAGES);
    CHECK(access_of(M_GET, "/dashboard.html") == RIGHT_PAGES);
    CHECK(access_of(M_POST, "/users/alice/messages") == RIGHT_API);
    CHECK(access_of(M_POST, "/connections/c1/messages") == RIGHT_API);
    CHECK(access_of(M_PUT, "/rooms/a/members/alice") == RIGHT_API);
    CHECK(access_of(M_DELETE, "/users/alice/connections") == RIGHT_API);
    CHECK(access_of(M_DELETE, "/connections/c1") == RIGHT_API);
}

/* A principal with a token (user "u") whose rooms claim lists sub and pub. */
static access_principal *token(const char *sub, const char *pub)
{
    access_principal *p = access_principal_new("u", 0, true, false);
    if (p && sub)
        access_patterns_add(&p->subscribe, sub);
    if (p && pub)
        access_patterns_add(&p->publish, pub);
    return p;
}

static void rule(unsigned i, const char *match, cfg_access sub, cfg_access pub)
{
    snprintf(conf.auth.rooms[i].match, sizeof(conf.auth.rooms[i].match), "%s", match);
    conf.auth.rooms[i].subscribe = sub;
    conf.auth.rooms[i].publish = pub;
    if (conf.auth.nrooms <= i)
        conf.auth.nrooms = i + 1;
}

/* With auth off (no "auth" section) everything is let in, and no
 * credential is looked at (so none is refused). */
static void test_auth_off(void)
{
    cfg_defaults(&conf);
    conf.auth.enabled = false;
    guard_init(&conf);
    CHECK(!guard_enabled());
    guard_refusal no = {1, "x"};
    CHECK(guard_authenticate(RIGHT_SUBSCRIBE, "Bearer not-a-token", NULL, 0, &no) == NULL);
    CHECK(no.status == 0);
    CHECK(guard_check(RIGHT_SUBSCRIBE, NULL, "a").status == 0);
    CHECK(guard_check(RIGHT_PUBLISH, NULL, "a").status == 0);
    CHECK(guard_check(RIGHT_ADMIN, NULL, NULL).status == 0);
    CHECK(guard_need(RIGHT_PAGES, "/dashboard.html") == RIGHT_PAGES); /* nothing resolved */
}

static void test_rooms(void)
{
    cfg_defaults(&conf);
    conf.auth.enabled = true;
    rule(0, "public.*", CFG_ACCESS_PUBLIC, CFG_ACCESS_PUBLIC);
    rule(1, "members.*", CFG_ACCESS_TOKEN, CFG_ACCESS_TOKEN);
    rule(2, "news.*", CFG_ACCESS_PUBLIC, CFG_ACCESS_API_KEY);
    guard_init(&conf);
    access_principal *t = token("chat.*", NULL);
    access_principal *key = access_principal_new(NULL, 0, false, true);
    CHECK(guard_check(RIGHT_SUBSCRIBE, NULL, "public.a").status == 0);
    CHECK(guard_check(RIGHT_PUBLISH, NULL, "public.a").status == 0);
    guard_refusal no = guard_check(RIGHT_SUBSCRIBE, NULL, "members.a");
    CHECK(no.status == 401 && no.error && *no.error);
    CHECK(guard_check(RIGHT_SUBSCRIBE, t, "members.a").status == 0);
    /* no rule: "claim" */
    CHECK(guard_check(RIGHT_SUBSCRIBE, NULL, "chat.a").status == 401);
    CHECK(guard_check(RIGHT_SUBSCRIBE, t, "chat.a").status == 0);
    no = guard_check(RIGHT_PUBLISH, t, "chat.a");
    CHECK(no.status == 403 && no.error && *no.error);
    CHECK(guard_check(RIGHT_SUBSCRIBE, t, "other").status == 403);
    /* "api_key": a token is not enough, a key is */
    CHECK(guard_check(RIGHT_PUBLISH, t, "news.a").status == 403);
    CHECK(guard_check(RIGHT_PUBLISH, key, "news.a").status == 0);
    CHECK(guard_check(RIGHT_SUBSCRIBE, NULL, "news.a").status == 0);
    /* SignalR decides itself */
    CHECK(guard_check(RIGHT_HUB, NULL, NULL).status == 0);
    access_unref(t);
    access_unref(key);
}

static void test_admin(void)
{
    cfg_defaults(&conf);
    conf.auth.enabled = true;
    conf.auth.protect_admin = true;
    guard_init(&conf);
    access_principal *t = token("*", "*");
    access_principal *key = access_principal_new(NULL, 0, false, true);
    guard_refusal no = guard_check(RIGHT_ADMIN, NULL, NULL);
    CHECK(no.status == 401 && strstr(no.error, "API key"));
    no = guard_check(RIGHT_ADMIN, t, NULL);
    CHECK(no.status == 403 && strstr(no.error, "API key"));
    CHECK(guard_check(RIGHT_ADMIN, key, NULL).status == 0);
    conf.auth.protect_admin = false;
    CHECK(guard_check(RIGHT_ADMIN, NULL, NULL).status == 0);
    access_unref(t);
    access_unref(key);
}

/* The server API needs an API key whatever auth.protect_admin says; with
 * auth off nothing is checked. */
static void test_api(void)
{
    cfg_defaults(&conf);
    conf.auth.enabled = true;
    conf.auth.protect_admin = false;
    guard_init(&conf);
    access_principal *t = token("*", "*");
    access_principal *key = access_principal_new(NULL, 0, false, true);
    guard_refusal no = guard_check(RIGHT_API, NULL, NULL);
    CHECK(no.status == 401 && strstr(no.error, "API key"));
    no = guard_check(RIGHT_API, t, NULL);
    CHECK(no.status == 403 && strstr(no.error, "API key"));
    CHECK(guard_check(RIGHT_API, key, NULL).status == 0);
    conf.auth.enabled = false;
    CHECK(guard_check(RIGHT_API, NULL, NULL).status == 0);
    access_unref(t);
    access_unref(key);
}

/* Of the pages, the dashboard is an operator endpoint, by whatever path
 * names its file; the other pages need nothing. */
static void test_pages(void)
{
    cfg_defaults(&conf);
    snprintf(conf.web.root, sizeof(conf.web.root), "web");
    conf.auth.enabled = true;
    guard_init(&conf);
    CHECK(static_init(&conf) == 0);
    CHECK(guard_need(RIGHT_PAGES, "/dashboard.html") == RIGHT_ADMIN);
    CHECK(guard_need(RIGHT_PAGES, "//dashboard.html") == RIGHT_ADMIN);
    CHECK(guard_need(RIGHT_PAGES, "/./dashboard.html") == RIGHT_ADMIN);
    CHECK(guard_need(RIGHT_PAGES, "/index.html") == RIGHT_NONE);
    CHECK(guard_need(RIGHT_PAGES, "/") == RIGHT_NONE);
    CHECK(guard_need(RIGHT_PAGES, "/no-such-page.html") == RIGHT_NONE);
    CHECK(guard_need(RIGHT_SUBSCRIBE, "/dashboard.html") == RIGHT_SUBSCRIBE);
    /* RIGHT_NONE looks at no credential */
    guard_refusal no = {1, "x"};
    CHECK(guard_authenticate(RIGHT_NONE, "Bearer not-a-token", NULL, 0, &no) == NULL);
    CHECK(no.status == 0);
}

/* An API key is taken in the header and in the query (the dashboard,
 * EventSource, a load generator that sends no header) alike; an unknown
 * one is 401. */
static void test_api_keys(void)
{
    static const char key[] = "unit-test-api-key-0123";
    char err[CFG_ERR_MAX];
    cfg_defaults(&conf);
    conf.auth.enabled = true;
    snprintf(conf.auth.api_keys[0], sizeof(conf.auth.api_keys[0]), "%s", key);
    conf.auth.napi_keys = 1;
    rule(0, "news.*", CFG_ACCESS_PUBLIC, CFG_ACCESS_API_KEY);
    CHECK(auth_init(&conf, err) == 0);
    guard_init(&conf);
    guard_refusal no;
    access_principal *p =
        guard_authenticate(RIGHT_PUBLISH, "Bearer unit-test-api-key-0123", NULL, 0, &no);
    CHECK(p && p->api_key && no.status == 0);
    CHECK(guard_check(RIGHT_PUBLISH, p, "news.a").status == 0);
    access_unref(p);
    p = guard_authenticate(RIGHT_PUBLISH, NULL, "access_token=unit-test-api-key-0123", 0, &no);
    CHECK(p && p->api_key && no.status == 0);
    CHECK(guard_check(RIGHT_PUBLISH, p, "news.a").status == 0);
    access_unref(p);
    p = guard_authenticate(RIGHT_ADMIN, NULL, "access_token=unit-test-api-key-0123", 0, &no);
    CHECK(p && p->api_key && no.status == 0);
    CHECK(guard_check(RIGHT_ADMIN, p, NULL).status == 0);
    access_unref(p);
    p = guard_authenticate(RIGHT_PUBLISH, "Bearer not-the-key-0000000", NULL, 0, &no);
    CHECK(!p && no.status == 401 && no.error && *no.error);
    auth_fini();
}

TEST_MAIN("guard", TEST(test_route_column), TEST(test_auth_off), TEST(test_rooms), TEST(test_admin),
          TEST(test_api), TEST(test_pages), TEST(test_api_keys))
