/* SPDX-License-Identifier: MIT */
/*
 * test_access.c - unit tests for common/access.c: principals (copying,
 * reference counting, from several threads too), room patterns with the
 * '*' suffix wildcard, and access_room under auth.rooms rules (auth off,
 * first match wins, no match = "claim", each level for anonymous, token,
 * claim-listed and API-key principals), with the status and reason of
 * each verdict.
 */
#include "common/access.h"
#include "gateway/config.h"
#include "tests/unit/test.h"

#include <pthread.h>
#include <stdlib.h>

static void test_principal(void)
{
    char user[] = "alice";
    access_principal *p = access_principal_new(user, 1234, true, false);
    CHECK(p != NULL);
    if (!p)
        return;
    user[0] = 'X'; /* copied */
    CHECK_STR(p->user, "alice");
    CHECK(p->expires_ms == 1234 && p->token && !p->api_key);
    CHECK(atomic_load(&p->refs) == 1);
    CHECK(p->subscribe.n == 0 && p->publish.n == 0);
    CHECK(access_patterns_add(&p->subscribe, "chat.*") == 0);
    CHECK(access_patterns_add(&p->subscribe, "user.alice") == 0);
    CHECK(access_patterns_add(&p->publish, "chat.*") == 0);
    CHECK(p->subscribe.n == 2 && p->publish.n == 1);
    CHECK_STR(p->subscribe.items[1], "user.alice");
    CHECK(access_ref(p) == p);
    CHECK(atomic_load(&p->refs) == 2);
    access_unref(p);
    CHECK(atomic_load(&p->refs) == 1);
    CHECK_STR(access_user_label(p), "alice");
    access_unref(p); /* frees (ASan reports a leak otherwise) */

    access_principal *k = access_principal_new(NULL, 0, false, true);
    CHECK(k && k->user == NULL && k->api_key && !k->token);
    CHECK_STR(access_user_label(k), "api-key");
    access_unref(k);
    access_principal *t = access_principal_new(NULL, 0, true, false);
    CHECK_STR(access_user_label(t), "-");
    access_unref(t);
    CHECK_STR(access_user_label(NULL), "-");
    CHECK(access_ref(NULL) == NULL);
    access_unref(NULL);
}

static void *ref_unref_many(void *arg)
{
    access_principal *p = arg;
    for (int i = 0; i < 100000; i++)
        access_unref(access_ref(p));
    return NULL;
}

/* References taken and dropped from several threads at once balance. */
static void test_refs_threads(void)
{
    access_principal *p = access_principal_new("bob", 0, true, false);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, ref_unref_many, p);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK(atomic_load(&p->refs) == 1);
    access_unref(p);
}

static void test_patterns(void)
{
    CHECK(access_pattern_matches("chat", "chat"));
    CHECK(!access_pattern_matches("chat", "chat2"));
    CHECK(!access_pattern_matches("chat", "cha"));
    CHECK(!access_pattern_matches("chat", "Chat"));
    CHECK(access_pattern_matches("chat.*", "chat.a"));
    CHECK(access_pattern_matches("chat.*", "chat.a.b"));
    CHECK(access_pattern_matches("chat.*", "chat."));
    CHECK(!access_pattern_matches("chat.*", "chat"));
    CHECK(!access_pattern_matches("chat.*", "chatx"));
    CHECK(!access_pattern_matches("chat.*", "xchat.a"));
    CHECK(access_pattern_matches("chat*", "chat"));
    CHECK(access_pattern_matches("chat*", "chatroom"));
    CHECK(access_pattern_matches("*", "anything"));
    CHECK(access_pattern_matches("*", "a"));
    /* Only a trailing '*' is a wildcard. */
    CHECK(!access_pattern_matches("*.chat", "a.chat"));
    CHECK(access_pattern_matches("*.chat", "*.chat"));
    CHECK(!access_pattern_matches("a*b", "axb"));
}

static cfg conf;

/* conf = the defaults with json (single quotes for double) loaded. */
static void load(const char *json_sq)
{
    char json[4096], err[CFG_ERR_MAX];
    size_t i = 0;
    for (; json_sq[i] && i < sizeof(json) - 1; i++)
        json[i] = json_sq[i] == '\'' ? '"' : json_sq[i];
    json[i] = '\0';
    cfg_defaults(&conf);
    int rc = cfg_load_string(&conf, json, "test.json", err);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "  %s\n", err);
}

#define SUB ACCESS_SUBSCRIBE
#define PUB ACCESS_PUBLISH

static void test_auth_off(void)
{
    load("{}");
    access_principal *t = access_principal_new("alice", 0, true, false);
    CHECK(access_room(&conf, NULL, "any", SUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, NULL, "any", PUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, t, "any", PUB) == ACCESS_ALLOWED);
    access_unref(t);
}

static void test_rules(void)
{
    load("{'auth': {'rooms': ["
         " {'match': 'public.*', 'subscribe': 'public', 'publish': 'token'},"
         " {'match': 'public.locked', 'subscribe': 'api_key', 'publish': 'api_key'},"
         " {'match': 'news', 'subscribe': 'token', 'publish': 'api_key'},"
         " {'match': 'secret.*', 'subscribe': 'claim', 'publish': 'claim'}]}}");
    access_principal *anon = NULL;
    access_principal *tok = access_principal_new("alice", 0, true, false);
    access_principal *claimed = access_principal_new("bob", 0, true, false);
    access_patterns_add(&claimed->subscribe, "secret.*");
    access_patterns_add(&claimed->subscribe, "other");
    access_patterns_add(&claimed->publish, "secret.bob");
    access_principal *key = access_principal_new(NULL, 0, false, true);

    /* public.*: anyone subscribes; publishing needs a token. */
    CHECK(access_room(&conf, anon, "public.lobby", SUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, anon, "public.lobby", PUB) == ACCESS_NEEDS_TOKEN);
    CHECK(access_room(&conf, tok, "public.lobby", PUB) == ACCESS_ALLOWED);
    /* First match wins: public.locked is caught by public.* first. */
    CHECK(access_room(&conf, anon, "public.locked", SUB) == ACCESS_ALLOWED);
    /* news: token to subscribe, API key to publish. */
    CHECK(access_room(&conf, anon, "news", SUB) == ACCESS_NEEDS_TOKEN);
    CHECK(access_room(&conf, tok, "news", SUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, anon, "news", PUB) == ACCESS_NEEDS_API_KEY);
    CHECK(access_room(&conf, tok, "news", PUB) == ACCESS_NEEDS_API_KEY);
    CHECK(access_room(&conf, claimed, "news", PUB) == ACCESS_NEEDS_API_KEY);
    CHECK(access_room(&conf, key, "news", PUB) == ACCESS_ALLOWED);
    /* news is exact: news.x matches no rule, so it needs a claim. */
    CHECK(access_room(&conf, tok, "news.x", SUB) == ACCESS_NEEDS_CLAIM);
    /* secret.*: the claims decide, subscribe and publish separately. */
    CHECK(access_room(&conf, anon, "secret.bob", SUB) == ACCESS_NEEDS_TOKEN);
    CHECK(access_room(&conf, tok, "secret.bob", SUB) == ACCESS_NEEDS_CLAIM);
    CHECK(access_room(&conf, claimed, "secret.bob", SUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, claimed, "secret.alice", SUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, claimed, "secret.bob", PUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, claimed, "secret.alice", PUB) == ACCESS_NEEDS_CLAIM);
    /* No rule matches: "claim" for both rights. */
    CHECK(access_room(&conf, anon, "other", SUB) == ACCESS_NEEDS_TOKEN);
    CHECK(access_room(&conf, anon, "other", PUB) == ACCESS_NEEDS_TOKEN);
    CHECK(access_room(&conf, tok, "other", SUB) == ACCESS_NEEDS_CLAIM);
    CHECK(access_room(&conf, claimed, "other", SUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, claimed, "other", PUB) == ACCESS_NEEDS_CLAIM);
    /* An API key may do everything. */
    CHECK(access_room(&conf, key, "secret.x", SUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, key, "other", PUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, key, "public.locked", SUB) == ACCESS_ALLOWED);

    /* A principal neither token nor key counts as anonymous. */
    access_principal *neither = access_principal_new("x", 0, false, false);
    CHECK(access_room(&conf, neither, "public.a", PUB) == ACCESS_NEEDS_TOKEN);
    CHECK(access_room(&conf, neither, "other", SUB) == ACCESS_NEEDS_TOKEN);
    access_unref(neither);

    access_unref(tok);
    access_unref(claimed);
    access_unref(key);
}

static void test_catch_all(void)
{
    /* "*" as the last rule replaces the "claim" default. */
    load("{'auth': {'rooms': [{'match': 'admin.*', 'subscribe': 'api_key', 'publish': 'api_key'},"
         " {'match': '*', 'subscribe': 'public', 'publish': 'token'}]}}");
    access_principal *tok = access_principal_new("alice", 0, true, false);
    CHECK(access_room(&conf, NULL, "anything", SUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, NULL, "anything", PUB) == ACCESS_NEEDS_TOKEN);
    CHECK(access_room(&conf, tok, "anything", PUB) == ACCESS_ALLOWED);
    CHECK(access_room(&conf, tok, "admin.x", SUB) == ACCESS_NEEDS_API_KEY);
    access_unref(tok);
    /* Auth on with no rules: every room needs a claim. */
    load("{'auth': {}}");
    CHECK(access_room(&conf, NULL, "a", SUB) == ACCESS_NEEDS_TOKEN);
}

static void test_status_and_reason(void)
{
    CHECK(access_status(ACCESS_ALLOWED) == 200);
    CHECK(access_status(ACCESS_NEEDS_TOKEN) == 401);
    CHECK(access_status(ACCESS_NEEDS_CLAIM) == 403);
    CHECK(access_status(ACCESS_NEEDS_API_KEY) == 403);
    CHECK_STR(access_reason(ACCESS_NEEDS_TOKEN, SUB), "subscribing to this room needs a token");
    CHECK_STR(access_reason(ACCESS_NEEDS_TOKEN, PUB), "publishing to this room needs a token");
    CHECK_STR(access_reason(ACCESS_NEEDS_CLAIM, SUB),
              "the token's rooms.subscribe claim does not list this room");
    CHECK_STR(access_reason(ACCESS_NEEDS_CLAIM, PUB),
              "the token's rooms.publish claim does not list this room");
    CHECK_STR(access_reason(ACCESS_NEEDS_API_KEY, SUB),
              "subscribing to this room needs an API key");
    CHECK_STR(access_reason(ACCESS_NEEDS_API_KEY, PUB), "publishing to this room needs an API key");
    CHECK_STR(access_reason(ACCESS_ALLOWED, PUB), "allowed");
}

TEST_MAIN("access", TEST(test_principal), TEST(test_refs_threads), TEST(test_patterns),
          TEST(test_auth_off), TEST(test_rules), TEST(test_catch_all), TEST(test_status_and_reason))
