/* SPDX-License-Identifier: MIT */
/*
 * test_upstream.c - unit tests for common/upstream.c: the request bodies
 * (hub call, frame, event, connect) are the JSON the README documents, with
 * the token's claims or null; answers are read whole (result, error,
 * actions) and anything malformed is one clear error that applies nothing;
 * failed transfers map to their messages; the connect proxy's answer makes
 * a principal or a refusal.
 */
#include "common/upstream.h"
#include "common/buf.h"
#include "tests/unit/test.h"

#include <jansson.h>
#include <stdlib.h>

/* text parsed, compared to want (JSON) as values. */
static void check_json(const char *text, const char *want)
{
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    json_t *b = json_loads(want, 0, NULL);
    CHECK(a && b && json_equal(a, b));
    if (!(a && b && json_equal(a, b)))
        fprintf(stderr, "  got  %s\n  want %s\n", text ? text : "(null)", want);
    json_decref(a);
    json_decref(b);
}

static void test_call_body(void)
{
    char *t = up_call_body("chat", "SendMessage", "[\"alice\",\"hi\"]", "CID", NULL);
    check_json(t, "{\"hub\":\"chat\",\"method\":\"SendMessage\",\"arguments\":[\"alice\",\"hi\"],"
                  "\"connection_id\":\"CID\",\"user\":null,\"claims\":null}");
    free(t);
    access_principal *p = access_principal_new("bob", 0, true, false);
    p->claims = strdup("{\"sub\":\"bob\",\"role\":\"admin\"}");
    t = up_call_body("chat", "M", "[]", "X", p);
    check_json(t, "{\"hub\":\"chat\",\"method\":\"M\",\"arguments\":[],\"connection_id\":\"X\","
                  "\"user\":\"bob\",\"claims\":{\"sub\":\"bob\",\"role\":\"admin\"}}");
    free(t);
    /* Not an array: sent as [] */
    t = up_call_body("chat", "M", "{}", "X", NULL);
    check_json(t, "{\"hub\":\"chat\",\"method\":\"M\",\"arguments\":[],\"connection_id\":\"X\","
                  "\"user\":null,\"claims\":null}");
    free(t);
    access_unref(p);
}

static void test_other_bodies(void)
{
    char *t = up_frame_body("lobby", "{\"text\":\"hi\"}", "C", NULL);
    check_json(t, "{\"room\":\"lobby\",\"data\":{\"text\":\"hi\"},\"connection_id\":\"C\","
                  "\"user\":null,\"claims\":null}");
    free(t);
    t = up_event_body("join", "chat", "side", NULL, "C", NULL);
    check_json(t, "{\"event\":\"join\",\"hub\":\"chat\",\"room\":\"side\",\"connection_id\":\"C\","
                  "\"user\":null,\"claims\":null}");
    free(t);
    t = up_event_body("disconnect", NULL, NULL, "gone", "C", NULL);
    check_json(t, "{\"event\":\"disconnect\",\"hub\":null,\"reason\":\"gone\","
                  "\"connection_id\":\"C\",\"user\":null,\"claims\":null}");
    free(t);
    t = up_connect_body("chat", "{\"Cookie\":\"a=b\"}", "{\"negotiateVersion\":\"1\"}");
    check_json(t, "{\"hub\":\"chat\",\"headers\":{\"Cookie\":\"a=b\"},"
                  "\"query\":{\"negotiateVersion\":\"1\"}}");
    free(t);
    t = up_connect_body("chat", NULL, "[1]");
    check_json(t, "{\"hub\":\"chat\",\"headers\":{},\"query\":{}}");
    free(t);
}

/* Reads body (2xx) into a; returns a.result. */
static up_result read_ok(up_answer *a, const char *body)
{
    up_answer_read(a, UP_SENT_OK, 200, body, strlen(body));
    return a->result;
}

static void test_answers(void)
{
    up_answer a;
    CHECK(read_ok(&a, "{\"result\": 42}") == UP_R_OK);
    CHECK_STR(a.value, "42");
    CHECK(!a.error && !a.nactions);
    up_answer_free(&a);
    CHECK(read_ok(&a, "{}") == UP_R_OK && !a.value);
    up_answer_free(&a);
    CHECK(read_ok(&a, "{\"result\": null}") == UP_R_OK && !a.value);
    up_answer_free(&a);
    CHECK(read_ok(&a, "{\"error\": \"nope\"}") == UP_R_ERROR);
    CHECK_STR(a.error, "nope");
    up_answer_free(&a);
    CHECK(read_ok(&a, "{\"result\": {\"a\": [1, \"x\"]},"
                      " \"actions\": [{\"publish\": {\"room\": \"r\", \"target\": \"T\","
                      " \"arguments\": [1, 2]}}, {\"publish\": {\"user\": \"u\"}},"
                      " {\"join\": \"j\"}, {\"leave\": \"l\"}, {\"disconnect\": \"bye\"},"
                      " {\"publish\": {\"all\": true, \"arguments\": [\"x\"]}}]}") == UP_R_OK);
    CHECK(a.nactions == 6);
    if (a.nactions == 6) {
        CHECK(a.actions[0].kind == UP_ACT_PUBLISH_ROOM);
        CHECK_STR(a.actions[0].name, "r");
        CHECK_STR(a.actions[0].target, "T");
        CHECK_STR(a.actions[0].data, "[1,2]");
        CHECK(a.actions[1].kind == UP_ACT_PUBLISH_USER && !a.actions[1].target);
        CHECK_STR(a.actions[1].data, "[]");
        CHECK(a.actions[2].kind == UP_ACT_JOIN);
        CHECK_STR(a.actions[2].name, "j");
        CHECK(a.actions[3].kind == UP_ACT_LEAVE);
        CHECK(a.actions[4].kind == UP_ACT_DISCONNECT);
        CHECK_STR(a.actions[4].reason, "bye");
        CHECK(a.actions[5].kind == UP_ACT_PUBLISH_ALL && !a.actions[5].name);
        CHECK_STR(a.actions[5].data, "[\"x\"]");
    }
    check_json(a.value, "{\"a\":[1,\"x\"]}");
    up_answer_free(&a);
}

/* body (2xx) is refused with an error starting with want; nothing kept. */
static void check_invalid(const char *body, const char *want)
{
    up_answer a;
    CHECK(read_ok(&a, body) == UP_R_INVALID);
    CHECK(a.error && !strncmp(a.error, want, strlen(want)));
    if (!a.error || strncmp(a.error, want, strlen(want)))
        fprintf(stderr, "  for %s\n  got  %s\n  want %s\n", body, a.error ? a.error : "(null)",
                want);
    CHECK(!a.nactions && !a.actions && !a.value);
    up_answer_free(&a);
}

static void test_bad_answers(void)
{
    check_invalid("not json", "upstream answer is not valid JSON");
    check_invalid("[1,2]", "upstream answer is not valid JSON");
    check_invalid("{\"a\":1,\"a\":2}", "upstream answer is not valid JSON");
    check_invalid("{\"error\": 5}", "upstream answer is not valid: 'error' must be a non-empty");
    check_invalid("{\"error\": \"\"}", "upstream answer is not valid: 'error' must be");
    check_invalid("{\"actions\": {}}", "upstream answer is not valid: 'actions' must be an array");
    check_invalid("{\"result\": 1, \"actions\": [{\"join\": \"a\"}, {\"fly\": 1}]}",
                  "upstream answer is not valid: unknown action");
    check_invalid("{\"actions\": [{\"join\": 1}]}", "upstream answer is not valid: 'join'");
    check_invalid("{\"actions\": [{\"join\": \"a\", \"leave\": \"b\"}]}",
                  "upstream answer is not valid: each action must be an object with one member");
    check_invalid("{\"actions\": [{\"publish\": {\"room\": \"a\", \"user\": \"b\"}}]}",
                  "upstream answer is not valid: 'publish' needs one of 'room', 'user' and 'all'");
    check_invalid("{\"actions\": [{\"publish\": {\"all\": false}}]}",
                  "upstream answer is not valid: 'publish.all' must be true");
    check_invalid("{\"actions\": [{\"publish\": {}}]}", "upstream answer is not valid: 'publish'");
    check_invalid("{\"actions\": [{\"publish\": {\"room\": \"a\", \"arguments\": 1}}]}",
                  "upstream answer is not valid: 'publish.arguments' must be an array");
    check_invalid("{\"actions\": [{\"publish\": {\"room\": \"a\", \"target\": 1}}]}",
                  "upstream answer is not valid: 'publish.target' must be a string");
    check_invalid("{\"actions\": [{\"disconnect\": true}]}",
                  "upstream answer is not valid: 'disconnect' takes a reason");
    buf b = {0};
    buf_append(&b, "{\"actions\": [", 13);
    for (int i = 0; i <= UP_MAX_ACTIONS; i++)
        buf_append(&b, i ? ",{\"join\":\"a\"}" : "{\"join\":\"a\"}", i ? 13 : 12);
    buf_append(&b, "]}", 3);
    check_invalid(b.data, "upstream answer is not valid: more than 100 actions");
    buf_free(&b);
}

static void test_transfers(void)
{
    static const struct {
        up_transfer t;
        long status;
        up_result r;
        const char *error;
    } cases[] = {
        {UP_SENT_UNAVAILABLE, 0, UP_R_UNAVAILABLE, "upstream unavailable"},
        {UP_SENT_TIMEOUT, 0, UP_R_TIMEOUT, "upstream timeout"},
        {UP_SENT_TOO_LARGE, 200, UP_R_TOO_LARGE, "upstream answer too large"},
        {UP_SENT_BUSY, 0, UP_R_BUSY, "busy"},
        {UP_SENT_OK, 500, UP_R_HTTP_STATUS, "upstream answered HTTP 500"},
        {UP_SENT_OK, 404, UP_R_HTTP_STATUS, "upstream answered HTTP 404"},
        {UP_SENT_OK, 301, UP_R_HTTP_STATUS, "upstream answered HTTP 301"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        up_answer a;
        up_answer_read(&a, cases[i].t, cases[i].status, "{\"result\":1}", 12);
        CHECK(a.result == cases[i].r);
        CHECK_STR(a.error, cases[i].error);
        CHECK(!a.value);
        up_answer_free(&a);
    }
    CHECK_STR(up_result_name(UP_R_HTTP_STATUS), "http_status");
    CHECK_STR(up_result_name(UP_R_COUNT), "?");
}

static void test_connect_answers(void)
{
    unsigned status = 0;
    char *error = NULL;
    const char *ok =
        "{\"user\": \"alice\", \"rooms\": {\"subscribe\": [\"a.*\"], \"publish\": [\"b\"]}}";
    access_principal *p =
        up_connect_read(UP_SENT_OK, 200, ok, strlen(ok), "http://b/", &status, &error);
    CHECK(p && p->proxied && !p->token && !p->api_key);
    if (p) {
        CHECK_STR(p->user, "alice");
        CHECK(p->subscribe.n == 1 && p->publish.n == 1);
        CHECK_STR(p->subscribe.items[0], "a.*");
    }
    access_unref(p);
    p = up_connect_read(UP_SENT_OK, 200, "{}", 2, "http://b/", &status, &error);
    CHECK(p && !p->user && p->proxied);
    access_unref(p);
    static const struct {
        up_transfer t;
        long http;
        const char *body;
        unsigned status;
        const char *error;
    } refusals[] = {
        {UP_SENT_OK, 200, "{\"error\": \"who?\", \"status\": 401}", 401, "who?"},
        {UP_SENT_OK, 200, "{\"error\": \"no\"}", 403, "no"},
        {UP_SENT_OK, 200, "{\"error\": \"no\", \"status\": 500}", 403, "no"},
        {UP_SENT_OK, 200, "{\"user\": 5}", 502, "upstream answer is not valid"},
        {UP_SENT_OK, 200, "{\"rooms\": {\"subscribe\": \"a\"}}", 502,
         "upstream answer is not valid"},
        {UP_SENT_OK, 200, "nope", 502, "upstream answer is not valid JSON"},
        {UP_SENT_OK, 500, "{}", 502, "upstream answered HTTP 500"},
        {UP_SENT_UNAVAILABLE, 0, "", 502, "upstream unavailable"},
        {UP_SENT_TIMEOUT, 0, "", 504, "upstream timeout"},
        {UP_SENT_BUSY, 0, "", 503, "busy"},
    };
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        error = NULL;
        p = up_connect_read(refusals[i].t, refusals[i].http, refusals[i].body,
                            strlen(refusals[i].body), "http://b/", &status, &error);
        CHECK(!p);
        CHECK(status == refusals[i].status);
        CHECK(error && !strncmp(error, refusals[i].error, strlen(refusals[i].error)));
        if (!error || status != refusals[i].status)
            fprintf(stderr, "  case %zu: %u %s\n", i, status, error ? error : "(null)");
        free(error);
        access_unref(p);
    }
}

static void test_targets(void)
{
    CHECK(up_target_is_valid("ReceiveMessage"));
    CHECK(up_target_is_valid("_x1"));
    CHECK(!up_target_is_valid(""));
    CHECK(!up_target_is_valid("1abc"));
    CHECK(!up_target_is_valid("a b"));
    CHECK(!up_target_is_valid("a\"b"));
    CHECK(up_user_is_valid("bob"));
    char long_user[UP_USER_MAX + 2];
    memset(long_user, 'u', sizeof(long_user) - 1);
    long_user[UP_USER_MAX] = '\0';
    CHECK(up_user_is_valid(long_user));
    long_user[UP_USER_MAX] = 'u';
    long_user[UP_USER_MAX + 1] = '\0';
    CHECK(!up_user_is_valid(long_user));
    CHECK(!up_user_is_valid(""));
}

TEST_MAIN("upstream", TEST(test_call_body), TEST(test_other_bodies), TEST(test_answers),
          TEST(test_bad_answers), TEST(test_transfers), TEST(test_connect_answers),
          TEST(test_targets))
