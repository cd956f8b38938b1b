/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - unit tests for gateway/config.c: the defaults, overlaying
 * JSON onto them, every error message (key names, ranges, line:col), listen
 * and log_level parsing, the signalr section and the hubs block (defaults,
 * replacement, every validation), and that config.example.json is exactly the
 * defaults.
 */
#include "common/access.h"
#include "gateway/config.h"
#include "gateway/web_root.h"
#include "tests/unit/test.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* Loads json onto the defaults as "test.json"; returns the result code. */
static int load(cfg *c, const char *json, char err[CFG_ERR_MAX])
{
    cfg_defaults(c);
    err[0] = '\0';
    return cfg_load_string(c, json, "test.json", err);
}

static bool method_equal(const cfg_method *a, const cfg_method *b)
{
    return strcmp(a->name, b->name) == 0 && a->action == b->action &&
           strcmp(a->target, b->target) == 0 && a->args == b->args &&
           strcmp(a->upstream, b->upstream) == 0;
}

static bool hub_equal(const cfg_hub *a, const cfg_hub *b)
{
    if (strcmp(a->name, b->name) != 0 || strcmp(a->path, b->path) != 0 ||
        strcmp(a->default_target, b->default_target) != 0 || a->nmethods != b->nmethods ||
        a->rejoin_query != b->rejoin_query)
        return false;
    for (unsigned i = 0; i < a->nmethods; i++) {
        if (!method_equal(&a->methods[i], &b->methods[i]))
            return false;
    }
    if (a->npublish_targets != b->npublish_targets)
        return false;
    for (unsigned i = 0; i < a->npublish_targets; i++) {
        if (strcmp(a->publish_targets[i], b->publish_targets[i]) != 0)
            return false;
    }
    return true;
}

static bool hubs_equal(const cfg *a, const cfg *b)
{
    if (a->nhubs != b->nhubs)
        return false;
    for (unsigned i = 0; i < a->nhubs; i++) {
        if (!hub_equal(&a->hubs[i], &b->hubs[i]))
            return false;
    }
    return true;
}

static bool rate_equal(const cfg_rate *a, const cfg_rate *b)
{
    return a->per_s == b->per_s && a->burst == b->burst;
}

/* The auth, cors and limits.rate fields of a and b are equal. */
static bool access_equal(const cfg *a, const cfg *b)
{
    if (a->auth.enabled != b->auth.enabled || a->auth.jwt_enabled != b->auth.jwt_enabled ||
        memcmp(&a->auth.jwt, &b->auth.jwt, sizeof(a->auth.jwt)) != 0 ||
        a->auth.nrooms != b->auth.nrooms || a->auth.napi_keys != b->auth.napi_keys ||
        strcmp(a->auth.api_keys_file, b->auth.api_keys_file) != 0 ||
        a->auth.protect_admin != b->auth.protect_admin ||
        a->cors.nallowed_origins != b->cors.nallowed_origins ||
        a->cors.allow_credentials != b->cors.allow_credentials ||
        a->cors.max_age_s != b->cors.max_age_s ||
        !rate_equal(&a->limits.rate.publish, &b->limits.rate.publish) ||
        !rate_equal(&a->limits.rate.connect, &b->limits.rate.connect) ||
        !rate_equal(&a->limits.rate.request, &b->limits.rate.request))
        return false;
    for (unsigned i = 0; i < a->auth.nrooms; i++) {
        if (strcmp(a->auth.rooms[i].match, b->auth.rooms[i].match) != 0 ||
            a->auth.rooms[i].subscribe != b->auth.rooms[i].subscribe ||
            a->auth.rooms[i].publish != b->auth.rooms[i].publish ||
            a->auth.rooms[i].presence_events != b->auth.rooms[i].presence_events)
            return false;
    }
    for (unsigned i = 0; i < a->auth.napi_keys; i++) {
        if (strcmp(a->auth.api_keys[i], b->auth.api_keys[i]) != 0)
            return false;
    }
    for (unsigned i = 0; i < a->cors.nallowed_origins; i++) {
        if (strcmp(a->cors.allowed_origins[i], b->cors.allowed_origins[i]) != 0)
            return false;
    }
    return true;
}

/* Every field of a and b is equal. */
static bool cfg_equal(const cfg *a, const cfg *b)
{
    return strcmp(a->listen_host, b->listen_host) == 0 && a->listen_port == b->listen_port &&
           strcmp(a->log_level, b->log_level) == 0 && a->log.json == b->log.json &&
           a->log.access == b->log.access && a->log.max_lines_per_s == b->log.max_lines_per_s &&
           a->transports.websocket == b->transports.websocket &&
           a->transports.sse == b->transports.sse &&
           a->transports.long_polling == b->transports.long_polling &&
           a->limits.max_message_bytes == b->limits.max_message_bytes &&
           a->limits.send_queue == b->limits.send_queue &&
           a->limits.poll_timeout_s == b->limits.poll_timeout_s &&
           a->limits.keepalive_s == b->limits.keepalive_s &&
           a->limits.header_timeout_s == b->limits.header_timeout_s &&
           a->limits.body_timeout_s == b->limits.body_timeout_s &&
           a->limits.max_header_bytes == b->limits.max_header_bytes &&
           a->limits.max_connections == b->limits.max_connections &&
           a->rooms.client_publish == b->rooms.client_publish &&
           a->history.size == b->history.size && a->history.ttl_s == b->history.ttl_s &&
           a->signalr.client_timeout_s == b->signalr.client_timeout_s &&
           a->signalr.handshake_timeout_s == b->signalr.handshake_timeout_s &&
           a->signalr.disconnect_timeout_s == b->signalr.disconnect_timeout_s &&
           a->limits.max_rooms == b->limits.max_rooms &&
           a->limits.max_rooms_per_connection == b->limits.max_rooms_per_connection &&
           a->limits.max_fragment_bytes_total == b->limits.max_fragment_bytes_total &&
           a->limits.publish_wait_ms == b->limits.publish_wait_ms &&
           a->limits.subscriber_stall_ms == b->limits.subscriber_stall_ms &&
           a->history.max_bytes == b->history.max_bytes &&
           a->signalr.max_pending_connections == b->signalr.max_pending_connections &&
           a->signalr.negotiate_rate_per_s == b->signalr.negotiate_rate_per_s &&
           a->signalr.negotiate_burst == b->signalr.negotiate_burst && hubs_equal(a, b) &&
           a->presence.max_listed == b->presence.max_listed &&

           access_equal(a, b) &&
           a->rooms.client_publish_upstream == b->rooms.client_publish_upstream &&
           !strcmp(a->upstream.url, b->upstream.url) &&
           !strcmp(a->upstream.events, b->upstream.events) &&
           !strcmp(a->upstream.connect, b->upstream.connect) &&
           !strcmp(a->upstream.connect_secret, b->upstream.connect_secret) &&
           a->upstream.timeout_ms == b->upstream.timeout_ms &&
           a->upstream.max_in_flight == b->upstream.max_in_flight &&
           a->upstream.max_answer_bytes == b->upstream.max_answer_bytes &&
           a->upstream.events_queue == b->upstream.events_queue && a->workers == b->workers &&
           a->latency == b->latency && a->coalesce_ms == b->coalesce_ms;
}

/* Loading json must fail with a message containing want, leaving the
 * config it was loaded onto (the defaults) exactly as it was. */
static void check_fails(const char *json, const char *want)
{
    cfg c, d;
    char err[CFG_ERR_MAX];
    int rc = load(&c, json, err);
    CHECK(rc == -1);
    if (!strstr(err, want))
        fprintf(stderr, "  for %s\n  got  \"%s\"\n  want \"%s\"\n", json, err, want);
    CHECK(strstr(err, want) != NULL);
    cfg_defaults(&d);
    CHECK(cfg_equal(&c, &d));
}

/* Sets every key to a value other than its default. */
static const char *const all_keys_json =
    "{\"listen\": \"0.0.0.0:9090\", \"log_level\": \"debug\","
    " \"workers\": 3, \"latency\": \"low\", \"coalesce_ms\": 25,"
    " \"transports\": {\"websocket\": false, \"sse\": false, \"long_polling\": false},"
    " \"limits\": {\"max_message_bytes\": 1000, \"send_queue\": 7, \"poll_timeout_s\": 60,"
    "   \"keepalive_s\": 30, \"header_timeout_s\": 10, \"body_timeout_s\": 30,"
    "   \"max_header_bytes\": 4096,"
    "   \"max_connections\": 500, \"rate\": {\"publish\": {\"per_s\": 9},"
    "   \"connect\": {\"per_s\": 8, \"burst\": 1}, \"request\": {\"per_s\": 7}}},"
    " \"rooms\": {\"client_publish\": false},"
    " \"history\": {\"size\": 0, \"ttl_s\": 0},"
    " \"cors\": {\"allowed_origins\": [\"*\"], \"allow_credentials\": true,"
    "   \"max_age_s\": 1},"
    " \"signalr\": {\"client_timeout_s\": 60, \"handshake_timeout_s\": 5,"
    "   \"disconnect_timeout_s\": 120},"
    " \"upstream\": {\"url\": \"http://u/\", \"events\": \"http://e/\", \"connect\": \"http://c/\","
    "   \"timeout_ms\": 200, \"max_in_flight\": 2, \"max_answer_bytes\": 2048,"
    "   \"events_queue\": 3},"
    " \"hubs\": {\"news\": {\"path\": \"/news\", \"default_target\": \"Headline\","
    "   \"methods\": {\"Post\": {\"action\": \"others\", \"args\": 1}}}}}";

static void test_defaults(void)
{
    cfg c;
    memset(&c, 0xAB, sizeof(c));
    cfg_defaults(&c);
    CHECK_STR(c.listen_host, "127.0.0.1");
    CHECK(c.listen_port == 8080);
    CHECK_STR(c.log_level, "info");
    CHECK(c.transports.websocket && c.transports.sse && c.transports.long_polling);
    CHECK(c.limits.max_message_bytes == 65536);
    CHECK(c.limits.send_queue == 1024);
    CHECK(c.limits.poll_timeout_s == 25);
    CHECK(c.limits.keepalive_s == 15);
    CHECK(c.limits.header_timeout_s == 5);
    CHECK(c.limits.body_timeout_s == 10);
    CHECK(c.limits.max_header_bytes == 8192);
    CHECK(c.limits.max_connections == 0);
    CHECK(c.rooms.client_publish);
    CHECK(c.history.size == 1000);
    CHECK(c.history.ttl_s == 300);
    CHECK(c.signalr.client_timeout_s == 30);
    CHECK(c.signalr.handshake_timeout_s == 15);
    CHECK(c.signalr.disconnect_timeout_s == 15);

    /* Exactly one hub, "chat", with its four methods in this order. */
    CHECK(c.nhubs == 1);
    const cfg_hub *h = &c.hubs[0];
    CHECK_STR(h->name, "chat");
    CHECK_STR(h->path, "/hubs/chat");
    CHECK_STR(h->default_target, "ReceiveMessage");
    CHECK(h->nmethods == 4);
    static const cfg_method want[] = {
        {"SendMessage", CFG_ACTION_BROADCAST, "ReceiveMessage", 2, ""},
        {"SendToRoom", CFG_ACTION_ROOM, "ReceiveMessage", -1, ""},
        {"JoinRoom", CFG_ACTION_JOIN, "", 1, ""},
        {"LeaveRoom", CFG_ACTION_LEAVE, "", 1, ""},
    };
    for (unsigned i = 0; i < 4 && i < h->nmethods; i++) {
        CHECK_STR(h->methods[i].name, want[i].name);
        CHECK(h->methods[i].action == want[i].action);
        CHECK_STR(h->methods[i].target, want[i].target);
        CHECK(h->methods[i].args == want[i].args);
    }
}

static void test_empty_object_keeps_defaults(void)
{
    cfg c, d;
    char err[CFG_ERR_MAX];
    CHECK(load(&c, "{}", err) == 0);
    cfg_defaults(&d);
    CHECK(cfg_equal(&c, &d));
}

static void test_subset_keeps_other_defaults(void)
{
    cfg c, want;
    char err[CFG_ERR_MAX];
    CHECK(load(&c, "{\"limits\": {\"send_queue\": 16}, \"transports\": {\"sse\": false}}", err) ==
          0);
    cfg_defaults(&want);
    want.limits.send_queue = 16;
    want.transports.sse = false;
    CHECK(cfg_equal(&c, &want));
    /* An empty section is fine too. */
    CHECK(load(&c, "{\"history\": {}}", err) == 0);
    cfg_defaults(&want);
    CHECK(cfg_equal(&c, &want));
}

static void test_every_key(void)
{
    cfg c;
    char err[CFG_ERR_MAX];
    int rc = load(&c, all_keys_json, err);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "  %s\n", err);
    CHECK_STR(c.listen_host, "0.0.0.0");
    CHECK(c.listen_port == 9090);
    CHECK_STR(c.log_level, "debug");
    CHECK(!c.transports.websocket && !c.transports.sse && !c.transports.long_polling);
    CHECK(c.limits.max_message_bytes == 1000);
    CHECK(c.limits.send_queue == 7);
    CHECK(c.limits.poll_timeout_s == 60);
    CHECK(c.limits.keepalive_s == 30);
    CHECK(c.limits.header_timeout_s == 10);
    CHECK(c.limits.body_timeout_s == 30);
    CHECK(c.limits.max_header_bytes == 4096);
    CHECK(c.limits.max_connections == 500);
    CHECK(c.limits.rate.publish.per_s == 9 && c.limits.rate.publish.burst == 18);
    CHECK(c.limits.rate.connect.per_s == 8 && c.limits.rate.connect.burst == 1);
    CHECK(c.limits.rate.request.per_s == 7 && c.limits.rate.request.burst == 14);
    CHECK(c.cors.nallowed_origins == 1 && c.cors.allow_credentials && c.cors.max_age_s == 1);
    CHECK(!c.rooms.client_publish);
    CHECK(c.history.size == 0);
    CHECK(c.history.ttl_s == 0);
    CHECK(c.signalr.client_timeout_s == 60);
    CHECK(c.signalr.handshake_timeout_s == 5);
    CHECK(c.signalr.disconnect_timeout_s == 120);
    CHECK(c.nhubs == 1);
    CHECK_STR(c.hubs[0].name, "news");
    CHECK_STR(c.hubs[0].path, "/news");
    CHECK_STR(c.hubs[0].default_target, "Headline");
    CHECK(c.hubs[0].nmethods == 1);
    CHECK_STR(c.hubs[0].methods[0].name, "Post");
    CHECK(c.hubs[0].methods[0].action == CFG_ACTION_OTHERS);
    CHECK_STR(c.hubs[0].methods[0].target, "Headline");
    CHECK(c.hubs[0].methods[0].args == 1);
}

static void test_unknown_keys(void)
{
    check_fails("{\"foo\": 1}", "test.json: unknown key 'foo'");
    check_fails("{\"foo\": {\"bar\": 1}}", "test.json: unknown key 'foo'");
    check_fails("{\"limits\": {\"foo\": 1}}", "test.json: unknown key 'limits.foo'");
    check_fails("{\"history\": {\"size\": 1, \"ttl\": 1}}", "test.json: unknown key 'history.ttl'");
    check_fails("{\"rooms\": {\"client_publish\": true, \"x\": {}}}",
                "test.json: unknown key 'rooms.x'");
    /* A dotted name is not a top-level key, and keys do not move sections. */
    check_fails("{\"limits.send_queue\": 1}", "test.json: unknown key 'limits.send_queue'");
    check_fails("{\"limits\": {\"sse\": true}}", "test.json: unknown key 'limits.sse'");
    check_fails("{\"transports\": {\"listen\": \"a:1\"}}",
                "test.json: unknown key 'transports.listen'");
    check_fails("{\"Listen\": \"a:1\"}", "test.json: unknown key 'Listen'");
}

static void test_wrong_types(void)
{
    /* bool */
    check_fails("{\"transports\": {\"sse\": 1}}",
                "test.json: 'transports.sse' must be true or false");
    check_fails("{\"rooms\": {\"client_publish\": \"yes\"}}",
                "test.json: 'rooms.client_publish' must be true, false or \"upstream\"");
    check_fails("{\"transports\": {\"websocket\": null}}",
                "test.json: 'transports.websocket' must be true or false");
    /* integer: reals, booleans and strings are not integers */
    check_fails("{\"limits\": {\"send_queue\": \"10\"}}",
                "test.json: 'limits.send_queue' must be an integer from 1 to 1000000");
    check_fails("{\"limits\": {\"send_queue\": 1.0}}",
                "test.json: 'limits.send_queue' must be an integer from 1 to 1000000");
    check_fails("{\"limits\": {\"max_message_bytes\": 1e3}}",
                "test.json: 'limits.max_message_bytes' must be an integer from 1 to 16777216");
    check_fails("{\"history\": {\"size\": true}}",
                "test.json: 'history.size' must be an integer from 0 to 1000000");
    /* string */
    check_fails("{\"listen\": 8080}", "test.json: 'listen' must be a string");
    check_fails("{\"log_level\": null}", "test.json: 'log_level' must be a string");
    check_fails("{\"log_level\": [\"info\"]}", "test.json: 'log_level' must be a string");
    /* object */
    check_fails("{\"limits\": 5}", "test.json: 'limits' must be an object");
    check_fails("{\"transports\": true}", "test.json: 'transports' must be an object");
    check_fails("{\"rooms\": []}", "test.json: 'rooms' must be an object");
    check_fails("{\"history\": null}", "test.json: 'history' must be an object");
}

static void test_out_of_range(void)
{
    /* too low, too high, negative */
    check_fails("{\"limits\": {\"send_queue\": 0}}",
                "test.json: 'limits.send_queue' must be an integer from 1 to 1000000");
    check_fails("{\"limits\": {\"send_queue\": 1000001}}",
                "test.json: 'limits.send_queue' must be an integer from 1 to 1000000");
    check_fails("{\"history\": {\"size\": -1}}",
                "test.json: 'history.size' must be an integer from 0 to 1000000");
    check_fails("{\"history\": {\"ttl_s\": 604801}}",
                "test.json: 'history.ttl_s' must be an integer from 0 to 604800");
    check_fails("{\"limits\": {\"max_header_bytes\": 1023}}",
                "test.json: 'limits.max_header_bytes' must be an integer from 1024 to 65536");
    check_fails("{\"limits\": {\"max_header_bytes\": 65537}}",
                "test.json: 'limits.max_header_bytes' must be an integer from 1024 to 65536");
    check_fails("{\"limits\": {\"max_message_bytes\": 16777217}}",
                "test.json: 'limits.max_message_bytes' must be an integer from 1 to 16777216");
    check_fails("{\"limits\": {\"header_timeout_s\": 301}}",
                "test.json: 'limits.header_timeout_s' must be an integer from 1 to 300");
    check_fails("{\"limits\": {\"body_timeout_s\": 0}}",
                "test.json: 'limits.body_timeout_s' must be an integer from 1 to 300");
    check_fails("{\"limits\": {\"body_timeout_s\": 301}}",
                "test.json: 'limits.body_timeout_s' must be an integer from 1 to 300");
    check_fails("{\"limits\": {\"max_connections\": -5}}",
                "test.json: 'limits.max_connections' must be an integer from 0 to 1000000");
    /* Values that would wrap if narrowed before the range check. */
    check_fails("{\"limits\": {\"keepalive_s\": 4294967297}}",
                "test.json: 'limits.keepalive_s' must be an integer from 1 to 3600");
    check_fails("{\"limits\": {\"poll_timeout_s\": 9223372036854775807}}",
                "test.json: 'limits.poll_timeout_s' must be an integer from 1 to 3600");
    check_fails("{\"limits\": {\"max_message_bytes\": -9223372036854775807}}",
                "test.json: 'limits.max_message_bytes' must be an integer from 1 to 16777216");
}

static void test_range_edges_accepted(void)
{
    cfg c;
    char err[CFG_ERR_MAX];
    CHECK(load(&c,
               "{\"limits\": {\"max_header_bytes\": 1024, \"max_message_bytes\": 16777216,"
               " \"send_queue\": 1000000, \"max_connections\": 0}}",
               err) == 0);
    CHECK(c.limits.max_header_bytes == 1024);
    CHECK(c.limits.max_message_bytes == 16777216);
    CHECK(c.limits.send_queue == 1000000);
    CHECK(c.limits.max_connections == 0);
    CHECK(load(&c, "{\"limits\": {\"max_header_bytes\": 65536}, \"history\": {\"ttl_s\": 604800}}",
               err) == 0);
    CHECK(c.limits.max_header_bytes == 65536);
    CHECK(c.history.ttl_s == 604800);
}

static void test_error_leaves_config_unchanged(void)
{
    cfg c, d;
    char err[CFG_ERR_MAX];
    /* send_queue is valid and comes first; keepalive_s then fails. */
    CHECK(load(&c, "{\"limits\": {\"send_queue\": 5, \"keepalive_s\": 0}}", err) == -1);
    CHECK(strstr(err, "'limits.keepalive_s'") != NULL);
    cfg_defaults(&d);
    CHECK(cfg_equal(&c, &d));
    CHECK(c.limits.send_queue == 1024);
}

static void test_malformed_json(void)
{
    cfg c;
    char err[CFG_ERR_MAX];
    CHECK(load(&c, "{\n  \"limits\": {\n    \"send_queue\": ,\n  }\n}", err) == -1);
    CHECK(strncmp(err, "test.json:3:", strlen("test.json:3:")) == 0);
    CHECK(strstr(err, "test.json:3:19: ") != NULL);
    CHECK(strstr(err, "unexpected token") != NULL);
    /* Trailing garbage and an unterminated object. */
    CHECK(load(&c, "{} x", err) == -1);
    CHECK(strstr(err, "test.json:1:4: ") != NULL);
    CHECK(load(&c, "{\"listen\": \"a:1\"", err) == -1);
    CHECK(strstr(err, "test.json:1:") != NULL);
    CHECK(load(&c, "", err) == -1);
    CHECK(strstr(err, "test.json:") != NULL);
    /* No origin given. */
    cfg_defaults(&c);
    CHECK(cfg_load_string(&c, "{", NULL, err) == -1);
    CHECK(strncmp(err, "<string>:1:", strlen("<string>:1:")) == 0);
}

static void test_top_level_not_object(void)
{
    check_fails("[]", "test.json: the top level must be an object");
    check_fails("[{\"listen\": \"a:1\"}]", "test.json: the top level must be an object");
    /* Scalars are not even accepted by the parser (flags 0). */
    check_fails("42", "test.json:1:");
    check_fails("\"x\"", "test.json:1:");
}

/* cfg_set_listen(value) must succeed with host and port. */
static void check_listen_ok(const char *value, const char *host, int port)
{
    cfg c;
    char err[CFG_ERR_MAX] = "";
    cfg_defaults(&c);
    int rc = cfg_set_listen(&c, value, err);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "  for '%s': %s\n", value, err);
    CHECK_STR(c.listen_host, host);
    CHECK(c.listen_port == port);
}

/* cfg_set_listen(value) must fail with want in the message, c untouched. */
static void check_listen_bad(const char *value, const char *want)
{
    cfg c;
    char err[CFG_ERR_MAX] = "";
    cfg_defaults(&c);
    CHECK(cfg_set_listen(&c, value, err) == -1);
    if (!strstr(err, want))
        fprintf(stderr, "  for '%s'\n  got  \"%s\"\n  want \"%s\"\n", value, err, want);
    CHECK(strstr(err, want) != NULL);
    CHECK_STR(c.listen_host, "127.0.0.1");
    CHECK(c.listen_port == 8080);
}

static void test_listen(void)
{
    check_listen_ok("127.0.0.1:9000", "127.0.0.1", 9000);
    check_listen_ok("localhost:1", "localhost", 1);
    check_listen_ok("gw-1.example.com:65535", "gw-1.example.com", 65535);
    check_listen_ok(":8080", "0.0.0.0", 8080);
    check_listen_ok("[::1]:9000", "::1", 9000);
    check_listen_ok("[::]:80", "::", 80);
    check_listen_ok("[fe80::1%eth0]:80", "fe80::1%eth0", 80);

    check_listen_bad("abc", "listen: expected HOST:PORT, got 'abc'");
    check_listen_bad("127.0.0.1", "listen: expected HOST:PORT, got '127.0.0.1'");
    check_listen_bad("", "listen: expected HOST:PORT, got ''");
    check_listen_bad("127.0.0.1:", "listen: expected a port from 1 to 65535, got '127.0.0.1:'");
    check_listen_bad("127.0.0.1:0", "expected a port from 1 to 65535, got '127.0.0.1:0'");
    check_listen_bad("127.0.0.1:70000", "expected a port from 1 to 65535, got '127.0.0.1:70000'");
    check_listen_bad("127.0.0.1:65536", "expected a port from 1 to 65535");
    check_listen_bad("127.0.0.1:-1", "expected a port from 1 to 65535");
    check_listen_bad("127.0.0.1:+80", "expected a port from 1 to 65535");
    check_listen_bad("127.0.0.1:80a", "expected a port from 1 to 65535");
    check_listen_bad("127.0.0.1:0000080", "expected a port from 1 to 65535");
    check_listen_bad("::1:9000", "expected an IPv6 host in brackets, e.g. [::1]:8080");
    check_listen_bad("[::1]", "listen: expected [IPV6]:PORT, got '[::1]'");
    check_listen_bad("[::1:9000", "expected [IPV6]:PORT");
    check_listen_bad("[::1]9000", "expected [IPV6]:PORT");
    check_listen_bad("[]:9000", "expected an IPv6 address between the brackets");
    check_listen_bad("[localhost]:9000", "expected an IPv6 address between the brackets");
    check_listen_bad("[::1]:0", "expected a port from 1 to 65535");
    check_listen_bad("my host:80", "expected HOST to be a hostname or an IPv4 address");
    check_listen_bad("a/b:80", "expected HOST to be a hostname or an IPv4 address");
}

static void test_listen_host_length(void)
{
    char value[300];
    memset(value, 'a', 255);
    strcpy(value + 255, ":80");
    char host[256];
    memset(host, 'a', 255);
    host[255] = '\0';
    check_listen_ok(value, host, 80);

    memset(value, 'a', 256);
    strcpy(value + 256, ":80");
    check_listen_bad(value, "listen: expected a host of at most 255 bytes, got 'aaaa");
    /* The quoted value is cut, and the cut is marked. */
    check_listen_bad(value, "aaaa...'");
}

static void test_listen_in_json(void)
{
    cfg c;
    char err[CFG_ERR_MAX];
    CHECK(load(&c, "{\"listen\": \"[::1]:9000\"}", err) == 0);
    CHECK_STR(c.listen_host, "::1");
    CHECK(c.listen_port == 9000);
    check_fails("{\"listen\": \"abc\"}", "test.json: 'listen': expected HOST:PORT, got 'abc'");
    check_fails("{\"listen\": \"h:0\"}",
                "test.json: 'listen': expected a port from 1 to 65535, got 'h:0'");
}

static void test_log_level(void)
{
    static const char *const ok[] = {"error", "warn", "info", "debug"};
    cfg c;
    char err[CFG_ERR_MAX] = "";
    cfg_defaults(&c);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK(cfg_set_log_level(&c, ok[i], err) == 0);
        CHECK_STR(c.log_level, ok[i]);
    }
    cfg_defaults(&c);
    CHECK(cfg_set_log_level(&c, "verbose", err) == -1);
    CHECK(strstr(err, "log_level: expected error, warn, info or debug, got 'verbose'") != NULL);
    CHECK_STR(c.log_level, "info");
    CHECK(cfg_set_log_level(&c, "INFO", err) == -1);
    CHECK(strstr(err, "got 'INFO'") != NULL);
    CHECK(cfg_set_log_level(&c, "", err) == -1);
    CHECK(strstr(err, "got ''") != NULL);
    CHECK(cfg_set_log_level(&c, "warning", err) == -1);
    CHECK(strstr(err, "got 'warning'") != NULL);
    CHECK_STR(c.log_level, "info");

    CHECK(load(&c, "{\"log_level\": \"warn\"}", err) == 0);
    CHECK_STR(c.log_level, "warn");
    check_fails("{\"log_level\": \"trace\"}",
                "test.json: 'log_level': expected error, warn, info or debug, got 'trace'");
}

/* log.format, log.access, log.max_lines_per_s (README "Logs"). */
static void test_log_section(void)
{
    cfg c;
    char err[CFG_ERR_MAX];
    cfg_defaults(&c);
    CHECK(!c.log.json && !c.log.access && c.log.max_lines_per_s == 200);
    CHECK(load(&c, "{\"log\": {\"format\": \"json\", \"access\": true, \"max_lines_per_s\": 0}}",
               err) == 0);
    CHECK(c.log.json && c.log.access && c.log.max_lines_per_s == 0);
    CHECK(load(&c, "{\"log\": {\"format\": \"text\", \"max_lines_per_s\": 1000000}}", err) == 0);
    CHECK(!c.log.json && c.log.max_lines_per_s == 1000000);
    check_fails("{\"log\": {\"format\": \"xml\"}}",
                "test.json: 'log.format': expected text or json, got 'xml'");
    check_fails("{\"log\": {\"access\": 1}}", "test.json: 'log.access' must be true or false");
    check_fails("{\"log\": {\"max_lines_per_s\": 1000001}}",
                "test.json: 'log.max_lines_per_s' must be an integer from 0 to 1000000");
    check_fails("{\"log\": {\"level\": \"info\"}}", "log.level");
}

static void test_missing_file(void)
{
    cfg c, d;
    char err[CFG_ERR_MAX] = "";
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, "/nonexistent/crier.json", err) == -1);
    CHECK(strstr(err, "/nonexistent/crier.json") != NULL);
    CHECK(strstr(err, "No such file or directory") != NULL);
    cfg_defaults(&d);
    CHECK(cfg_equal(&c, &d));
}

static void test_directory_is_not_a_file(void)
{
    cfg c;
    char err[CFG_ERR_MAX] = "";
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, "/tmp", err) == -1);
    CHECK(strstr(err, "/tmp: ") != NULL);
    CHECK(strstr(err, "Is a directory") != NULL);
}

/* Writes text to a new temporary file; fills path. Returns 0 or -1. */
static int write_temp(char path[64], const char *text)
{
    strcpy(path, "/tmp/crier-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

static void test_load_file(void)
{
    char path[64];
    cfg c;
    char err[CFG_ERR_MAX] = "";
    CHECK(write_temp(path, "{\"limits\": {\"send_queue\": 3}}\n") == 0);
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, path, err) == 0);
    CHECK(c.limits.send_queue == 3);
    CHECK(c.limits.keepalive_s == 15);
    unlink(path);

    /* Errors name the path, and line:col for malformed JSON. */
    CHECK(write_temp(path, "{\n\"limits\": {\"send_queue\": 0}\n}\n") == 0);
    CHECK(cfg_load_file(&c, path, err) == -1);
    CHECK(strncmp(err, path, strlen(path)) == 0);
    CHECK(strstr(err, ": 'limits.send_queue' must be an integer from 1 to 1000000") != NULL);
    unlink(path);

    CHECK(write_temp(path, "{\n  \"log_level\": \"info\"\n  \"listen\": \":1\"\n}\n") == 0);
    CHECK(cfg_load_file(&c, path, err) == -1);
    CHECK(strncmp(err, path, strlen(path)) == 0);
    CHECK(strncmp(err + strlen(path), ":3:", 3) == 0);
    unlink(path);
}

/* ---- signalr and hubs -------------------------------------------------- */

/* json with every ' turned into ", so that tests can write JSON readably.
 * The result lives until the next call. */
static const char *dq(const char *json)
{
    static char buf[16384];
    size_t i = 0;
    for (; json[i] && i < sizeof(buf) - 1; i++)
        buf[i] = json[i] == '\'' ? '"' : json[i];
    buf[i] = '\0';
    return buf;
}

/* check_fails, with the JSON written in single quotes. */
static void fails(const char *json_sq, const char *want)
{
    check_fails(dq(json_sq), want);
}

/* Loads json (single quotes) onto the defaults; it must succeed. */
static int load_ok(cfg *c, const char *json_sq)
{
    char err[CFG_ERR_MAX];
    const char *json = dq(json_sq);
    int rc = load(c, json, err);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "  for %s\n  %s\n", json, err);
    return rc;
}

/* Loading one hub "h" at /h with the single method M = method_sq must fail
 * with want in the message. */
static void method_fails(const char *method_sq, const char *want)
{
    char json[1024];
    snprintf(json, sizeof(json), "{'hubs': {'h': {'path': '/h', 'methods': {'M': %s}}}}",
             method_sq);
    fails(json, want);
}

/* Loads one hub "h" at /h with the single method M = method_sq; returns it. */
static cfg_method method_ok(const char *method_sq)
{
    static cfg c; /* large; one at a time */
    char json[1024];
    cfg_method m;
    memset(&m, 0, sizeof(m));
    snprintf(json, sizeof(json),
             "{'hubs': {'h': {'path': '/h', 'default_target': 'Dflt', 'methods': {'M': %s}}}}",
             method_sq);
    if (load_ok(&c, json) == 0 && c.nhubs == 1 && c.hubs[0].nmethods == 1)
        m = c.hubs[0].methods[0];
    else
        CHECK(!"method_ok: the hub did not load as one method");
    return m;
}

/* Loading one hub "h" with path path (no quotes inside) must fail with
 * want; 'hubs.h.path' and the quoted path are checked too. */
static void path_fails(const char *path, const char *want)
{
    char json[1024], msg[1024];
    snprintf(json, sizeof(json), "{'hubs': {'h': {'path': '%s', 'methods': {}}}}", path);
    snprintf(msg, sizeof(msg), "test.json: 'hubs.h.path': %s, got '%s'", want, path);
    fails(json, msg);
}

static void path_ok(const char *path)
{
    cfg c;
    char json[1024];
    snprintf(json, sizeof(json), "{'hubs': {'h': {'path': '%s', 'methods': {}}}}", path);
    if (load_ok(&c, json) == 0)
        CHECK_STR(c.hubs[0].path, path);
}

static void test_signalr(void)
{
    cfg c, d;
    load_ok(&c, "{'signalr': {'client_timeout_s': 1, 'handshake_timeout_s': 300,"
                " 'disconnect_timeout_s': 3600}}");
    CHECK(c.signalr.client_timeout_s == 1);
    CHECK(c.signalr.handshake_timeout_s == 300);
    CHECK(c.signalr.disconnect_timeout_s == 3600);
    load_ok(&c, "{'signalr': {'client_timeout_s': 3600, 'handshake_timeout_s': 1,"
                " 'disconnect_timeout_s': 1}}");
    CHECK(c.signalr.client_timeout_s == 3600);
    CHECK(c.signalr.handshake_timeout_s == 1);
    CHECK(c.signalr.disconnect_timeout_s == 1);
    /* A subset leaves the others (and the hubs) at their defaults. */
    load_ok(&c, "{'signalr': {'handshake_timeout_s': 7}}");
    cfg_defaults(&d);
    d.signalr.handshake_timeout_s = 7;
    CHECK(cfg_equal(&c, &d));

    fails("{'signalr': {'client_timeout_s': 0}}",
          "test.json: 'signalr.client_timeout_s' must be an integer from 1 to 3600");
    fails("{'signalr': {'client_timeout_s': 3601}}",
          "test.json: 'signalr.client_timeout_s' must be an integer from 1 to 3600");
    fails("{'signalr': {'handshake_timeout_s': 0}}",
          "test.json: 'signalr.handshake_timeout_s' must be an integer from 1 to 300");
    fails("{'signalr': {'handshake_timeout_s': 301}}",
          "test.json: 'signalr.handshake_timeout_s' must be an integer from 1 to 300");
    fails("{'signalr': {'disconnect_timeout_s': 0}}",
          "test.json: 'signalr.disconnect_timeout_s' must be an integer from 1 to 3600");
    fails("{'signalr': {'disconnect_timeout_s': 3601}}",
          "test.json: 'signalr.disconnect_timeout_s' must be an integer from 1 to 3600");
    fails("{'signalr': {'client_timeout_s': '30'}}",
          "test.json: 'signalr.client_timeout_s' must be an integer from 1 to 3600");
    fails("{'signalr': {'timeout_s': 30}}", "test.json: unknown key 'signalr.timeout_s'");
    fails("{'signalr': 30}", "test.json: 'signalr' must be an object");
}

static void test_backplane(void)
{
    cfg c;
    cfg_defaults(&c);
    CHECK(c.backplane.type == CFG_BACKPLANE_MEMORY);
    CHECK_STR(c.backplane.host, "127.0.0.1");
    CHECK(c.backplane.port == 6379 && c.backplane.db == 0);
    CHECK_STR(c.backplane.key_prefix, "crier:");
    CHECK(c.backplane.connect_timeout_ms == 2000 && c.backplane.queue_limit == 10000);
    CHECK(c.backplane.max_pending_bytes == (size_t)64 << 20);
    CHECK(!c.trust_proxy);
    load_ok(&c, "{'backplane': {'type': 'redis', 'url': 'redis://:s3cret@redis.local:6380/2',"
                " 'key_prefix': 'app-1:', 'connect_timeout_ms': 100, 'queue_limit': 0},"
                " 'trust_proxy': true}");
    CHECK(c.backplane.type == CFG_BACKPLANE_REDIS);
    CHECK_STR(c.backplane.host, "redis.local");
    CHECK(c.backplane.port == 6380 && c.backplane.db == 2);
    CHECK_STR(c.backplane.password, "s3cret");
    CHECK_STR(c.backplane.key_prefix, "app-1:");
    CHECK(c.backplane.connect_timeout_ms == 100 && c.backplane.queue_limit == 0);
    CHECK(c.trust_proxy);
    /* The password key wins over the url's, whatever the order. */
    load_ok(&c, "{'backplane': {'password': 'key', 'url': 'redis://user:url@[::1]'}}");
    CHECK_STR(c.backplane.password, "key");
    CHECK_STR(c.backplane.host, "::1");
    CHECK(c.backplane.port == 6379 && c.backplane.db == 0);
    load_ok(&c, "{'backplane': {'url': 'redis://10.0.0.5/'}}");
    CHECK_STR(c.backplane.host, "10.0.0.5");
    CHECK_STR(c.backplane.password, "");

    fails("{'backplane': {'type': 'kafka'}}",
          "test.json: 'backplane.type': expected memory or redis, got 'kafka'");
    fails("{'backplane': {'url': 'http://x'}}",
          "test.json: 'backplane.url': expected redis://[[user]:password@]host[:port][/db], got "
          "'http://x'");
    fails("{'backplane': {'url': 'redis://h:99999'}}",
          "test.json: 'backplane.url': expected a port from 1 to 65535, got 'redis://h:99999'");
    fails("{'backplane': {'url': 'redis://h/x'}}",
          "test.json: 'backplane.url': expected a database number from 0 to 1000 after the '/', "
          "got 'redis://h/x'");
    fails("{'backplane': {'key_prefix': ''}}",
          "test.json: 'backplane.key_prefix': expected 1 to 63 of A-Z a-z 0-9 : _ . -, got ''");
    fails("{'backplane': {'key_prefix': 'a b'}}",
          "test.json: 'backplane.key_prefix': expected 1 to 63 of A-Z a-z 0-9 : _ . -, got 'a b'");
    fails("{'backplane': {'connect_timeout_ms': 99}}",
          "test.json: 'backplane.connect_timeout_ms' must be an integer from 100 to 60000");
    fails("{'backplane': {'queue_limit': 1000001}}",
          "test.json: 'backplane.queue_limit' must be an integer from 0 to 1000000");
    fails(
        "{'backplane': {'max_pending_bytes': 65535}}",
        "test.json: 'backplane.max_pending_bytes' must be an integer from 65536 to 1099511627776");
    fails("{'backplane': {'host': 'x'}}", "test.json: unknown key 'backplane.host'");
    fails("{'trust_proxy': 'yes'}", "test.json: 'trust_proxy' must be true or false");
}

static void test_hubs_replace_defaults(void)
{
    cfg c;
    if (load_ok(&c,
                "{'hubs': {"
                " 'alpha': {'path': '/a', 'methods': {"
                "   'Say': {'action': 'broadcast'},"
                "   'Tell': {'action': 'others', 'target': 'Told', 'args': 0},"
                "   'ToRoom': {'action': 'room', 'args': 3},"
                "   'In': {'action': 'join'},"
                "   'Out': {'action': 'leave', 'args': 2}}},"
                " 'beta': {'methods': {'Ping': {'args': 32, 'action': 'broadcast'},"
                "                      'R': {'action': 'room'}},"
                "   'default_target': 'OnBeta', 'path': '/x/beta.v2-1_0', 'rejoin_query': true},"
                " 'chat': {'path': '/hubs/chat2', 'methods': {}, 'rejoin_query': false}}}") != 0)
        return;
    CHECK(c.nhubs == 3);
    if (c.nhubs != 3)
        return;
    /* The file's order. */
    const cfg_hub *a = &c.hubs[0], *b = &c.hubs[1], *ch = &c.hubs[2];
    CHECK_STR(a->name, "alpha");
    CHECK_STR(a->path, "/a");
    CHECK_STR(a->default_target, "ReceiveMessage");
    CHECK(a->nmethods == 5);
    CHECK(!a->rejoin_query && c.hubs[1].rejoin_query && !c.hubs[2].rejoin_query);
    const cfg_method want_a[] = {
        {"Say", CFG_ACTION_BROADCAST, "ReceiveMessage", -1, ""},
        {"Tell", CFG_ACTION_OTHERS, "Told", 0, ""},
        {"ToRoom", CFG_ACTION_ROOM, "ReceiveMessage", 3, ""},
        {"In", CFG_ACTION_JOIN, "", 1, ""},
        {"Out", CFG_ACTION_LEAVE, "", 2, ""},
    };
    for (unsigned i = 0; i < 5 && i < a->nmethods; i++)
        CHECK(method_equal(&a->methods[i], &want_a[i]));

    CHECK_STR(b->name, "beta");
    CHECK_STR(b->path, "/x/beta.v2-1_0");
    CHECK_STR(b->default_target, "OnBeta");
    CHECK(b->nmethods == 2);
    const cfg_method want_b[] = {
        {"Ping", CFG_ACTION_BROADCAST, "OnBeta", 32, ""},
        {"R", CFG_ACTION_ROOM, "OnBeta", -1, ""},
    };
    for (unsigned i = 0; i < 2 && i < b->nmethods; i++)
        CHECK(method_equal(&b->methods[i], &want_b[i]));

    /* A hub named like a default one is a new hub, not a patch of it. */
    CHECK_STR(ch->name, "chat");
    CHECK_STR(ch->path, "/hubs/chat2");
    CHECK(ch->nmethods == 0);

    /* Everything else stays at its default. */
    cfg d;
    cfg_defaults(&d);
    d.nhubs = c.nhubs;
    memcpy(d.hubs, c.hubs, sizeof(d.hubs));
    CHECK(cfg_equal(&c, &d));
}

static void test_hubs_replace_earlier_load(void)
{
    cfg c;
    char err[CFG_ERR_MAX];
    CHECK(load(&c, all_keys_json, err) == 0);
    CHECK(c.nhubs == 1);
    /* A later load without "hubs" keeps the hubs it finds... */
    CHECK(cfg_load_string(&c, dq("{'log_level': 'warn'}"), "x.json", err) == 0);
    CHECK(c.nhubs == 1);
    CHECK_STR(c.hubs[0].name, "news");
    /* ... and one with "hubs" replaces them, not adds to them. */
    CHECK(cfg_load_string(&c, dq("{'hubs': {'x': {'path': '/x', 'methods': {}}}}"), "x.json",
                          err) == 0);
    CHECK(c.nhubs == 1);
    CHECK_STR(c.hubs[0].name, "x");
    CHECK(c.hubs[0].nmethods == 0);
}

static void test_hubs_empty(void)
{
    cfg c, d;
    load_ok(&c, "{'hubs': {}}");
    CHECK(c.nhubs == 0);
    cfg_defaults(&d);
    d.nhubs = 0;
    memset(d.hubs, 0, sizeof(d.hubs));
    CHECK(cfg_equal(&c, &d));
}

static void test_method_defaults(void)
{
    cfg_method m;
    /* Sending actions take the hub's default_target, and any argument count. */
    m = method_ok("{'action': 'broadcast'}");
    CHECK(m.action == CFG_ACTION_BROADCAST && m.args == -1);
    CHECK_STR(m.target, "Dflt");
    m = method_ok("{'action': 'others'}");
    CHECK(m.action == CFG_ACTION_OTHERS && m.args == -1);
    CHECK_STR(m.target, "Dflt");
    m = method_ok("{'action': 'room'}");
    CHECK(m.action == CFG_ACTION_ROOM && m.args == -1);
    CHECK_STR(m.target, "Dflt");
    m = method_ok("{'action': 'room', 'target': 'Own', 'args': 1}");
    CHECK_STR(m.target, "Own");
    CHECK(m.args == 1);
    /* join and leave take exactly the room unless told otherwise. */
    m = method_ok("{'action': 'join'}");
    CHECK(m.action == CFG_ACTION_JOIN && m.args == 1);
    CHECK_STR(m.target, "");
    m = method_ok("{'action': 'leave'}");
    CHECK(m.action == CFG_ACTION_LEAVE && m.args == 1);
    CHECK_STR(m.target, "");
    m = method_ok("{'action': 'join', 'args': 32}");
    CHECK(m.args == 32);
    /* The edges of args. */
    m = method_ok("{'action': 'broadcast', 'args': 0}");
    CHECK(m.args == 0);
    m = method_ok("{'action': 'others', 'args': 32}");
    CHECK(m.args == 32);
    m = method_ok("{'action': 'room', 'args': 1}");
    CHECK(m.args == 1);
    m = method_ok("{'action': 'leave', 'args': 1}");
    CHECK(m.args == 1);
    CHECK_STR(m.name, "M");
}

static void test_hub_structure_errors(void)
{
    fails("{'hubs': []}", "test.json: 'hubs' must be an object");
    fails("{'hubs': null}", "test.json: 'hubs' must be an object");
    fails("{'hubs': {'chat': 1}}", "test.json: 'hubs.chat' must be an object");
    fails("{'hubs': {'chat': {'path': '/c', 'methods': {}, 'rejoin_query': 1}}}",
          "test.json: 'hubs.chat.rejoin_query' must be true or false");
    fails("{'hubs': {'chat': {'path': '/c', 'methods': {}, 'foo': 1}}}",
          "test.json: unknown key 'hubs.chat.foo'");
    fails("{'hubs': {'chat': {'path': '/c', 'methods': {}, 'target': 'X'}}}",
          "test.json: unknown key 'hubs.chat.target'");
    fails("{'hubs': {'chat': {'methods': {}}}}", "test.json: 'hubs.chat.path' is required");
    fails("{'hubs': {'chat': {'path': 5, 'methods': {}}}}",
          "test.json: 'hubs.chat.path' must be a string");
    fails("{'hubs': {'chat': {'path': null, 'methods': {}}}}",
          "test.json: 'hubs.chat.path' must be a string");
    fails("{'hubs': {'chat': {'path': '/c'}}}", "test.json: 'hubs.chat.methods' is required");
    fails("{'hubs': {'chat': {'path': '/c', 'methods': []}}}",
          "test.json: 'hubs.chat.methods' must be an object");
    fails("{'hubs': {'chat': {'path': '/c', 'default_target': 1, 'methods': {}}}}",
          "test.json: 'hubs.chat.default_target' must be a string");
    fails("{'hubs': {'chat': {'path': '/c', 'methods': {'Send': 'broadcast'}}}}",
          "test.json: 'hubs.chat.methods.Send' must be an object");
    fails("{'hubs': {'chat': {'path': '/c', 'methods': {'Send': {'action': 'broadcast',"
          " 'foo': 1}}}}}",
          "test.json: unknown key 'hubs.chat.methods.Send.foo'");
    fails("{'hubs': {'chat': {'path': '/c', 'methods': {'Send': {}}}}}",
          "test.json: 'hubs.chat.methods.Send.action' is required");
    fails("{'hubs': {'chat': {'path': '/c', 'methods': {'Send': {'action': 'shout'}}}}}",
          "test.json: 'hubs.chat.methods.Send.action' must be one of broadcast, others, room,"
          " join, leave");
    /* An error in a later hub or method still names it exactly. */
    fails("{'hubs': {'a': {'path': '/a', 'methods': {}},"
          " 'b': {'path': '/b', 'methods': {'Ok': {'action': 'join'},"
          "                                  'Bad': {'action': 'join', 'args': 0}}}}}",
          "test.json: 'hubs.b.methods.Bad.args' must be an integer from 1 to 32");
}

/* publish_targets: the hub's default_target and its methods' targets
 * unless set; an explicit list replaces that; [] allows none. */
static void test_publish_targets(void)
{
    cfg c;
    cfg_defaults(&c);
    CHECK(c.hubs[0].npublish_targets == 1);
    CHECK_STR(c.hubs[0].publish_targets[0], "ReceiveMessage");
    CHECK(cfg_publish_target_allowed(&c, "ReceiveMessage"));
    CHECK(cfg_publish_target_allowed(&c, "receivemessage"));
    CHECK(!cfg_publish_target_allowed(&c, "Other"));
    CHECK(!cfg_publish_target_allowed(&c, "JoinRoom"));

    if (load_ok(&c, "{'hubs': {'a': {'path': '/a', 'default_target': 'Got', 'methods': {"
                    "  'Tell': {'action': 'others', 'target': 'Told'},"
                    "  'Say': {'action': 'broadcast'}, 'In': {'action': 'join'},"
                    "  'Shout': {'action': 'room', 'target': 'told'}}},"
                    " 'b': {'path': '/b', 'publish_targets': ['X', 'Y_2', 'X'],"
                    "  'methods': {'Z': {'action': 'broadcast', 'target': 'Zed'}}},"
                    " 'c': {'path': '/c', 'publish_targets': [], 'methods': {}}}}") != 0)
        return;
    CHECK(c.hubs[0].npublish_targets == 2);
    CHECK_STR(c.hubs[0].publish_targets[0], "Got");
    CHECK_STR(c.hubs[0].publish_targets[1], "Told");
    CHECK(c.hubs[1].npublish_targets == 2);
    CHECK_STR(c.hubs[1].publish_targets[0], "X");
    CHECK_STR(c.hubs[1].publish_targets[1], "Y_2");
    CHECK(c.hubs[2].npublish_targets == 0);
    CHECK(cfg_publish_target_allowed(&c, "Got") && cfg_publish_target_allowed(&c, "TOLD"));
    CHECK(cfg_publish_target_allowed(&c, "Y_2"));
    CHECK(!cfg_publish_target_allowed(&c, "Zed")); /* b's list replaces its default */
    CHECK(!cfg_publish_target_allowed(&c, "ReceiveMessage"));

    load_ok(&c, "{'hubs': {}}");
    CHECK(!cfg_publish_target_allowed(&c, "ReceiveMessage"));

    fails("{'hubs': {'h': {'path': '/h', 'methods': {}, 'publish_targets': 'X'}}}",
          "test.json: 'hubs.h.publish_targets' must be an array of at most 33 target names");
    fails("{'hubs': {'h': {'path': '/h', 'methods': {}, 'publish_targets': [1]}}}",
          "test.json: 'hubs.h.publish_targets' must be a string");
    fails("{'hubs': {'h': {'path': '/h', 'methods': {}, 'publish_targets': ['a b']}}}",
          "test.json: 'hubs.h.publish_targets': expected a target name of 1 to 63 letters, "
          "digits or '_', not starting with a digit, got 'a b'");
    char many[1024] = "{'hubs': {'h': {'path': '/h', 'methods': {}, 'publish_targets': [";
    for (int i = 0; i < 34; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s'T%d'", i ? "," : "", i);
    strcat(many, "]}}}");
    fails(many, "test.json: 'hubs.h.publish_targets' must be an array of at most 33 target names");
}

static void test_method_errors(void)
{
    static const char *const bad_actions[] = {"'Broadcast'", "''",       "1",     "null",
                                              "true",        "['room']", "'send'"};
    for (size_t i = 0; i < sizeof(bad_actions) / sizeof(bad_actions[0]); i++) {
        char m[128];
        snprintf(m, sizeof(m), "{'action': %s}", bad_actions[i]);
        method_fails(m, "test.json: 'hubs.h.methods.M.action' must be one of broadcast, "
                        "others, room, join, leave");
    }
    /* target: a name, and none for join and leave. */
    method_fails("{'action': 'join', 'target': 'X'}",
                 "test.json: 'hubs.h.methods.M.target' must not be given for action 'join'");
    method_fails("{'action': 'leave', 'target': 'ReceiveMessage'}",
                 "test.json: 'hubs.h.methods.M.target' must not be given for action 'leave'");
    method_fails("{'action': 'broadcast', 'target': 1}",
                 "test.json: 'hubs.h.methods.M.target' must be a string");
    method_fails("{'action': 'room', 'target': null}",
                 "test.json: 'hubs.h.methods.M.target' must be a string");
    /* args */
    method_fails("{'action': 'broadcast', 'args': -1}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 0 to 32");
    method_fails("{'action': 'others', 'args': 33}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 0 to 32");
    method_fails("{'action': 'broadcast', 'args': '2'}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 0 to 32");
    method_fails("{'action': 'broadcast', 'args': 2.0}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 0 to 32");
    method_fails("{'action': 'broadcast', 'args': null}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 0 to 32");
    method_fails("{'action': 'broadcast', 'args': 4294967298}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 0 to 32");
    method_fails("{'action': 'room', 'args': 0}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 1 to 32");
    method_fails("{'action': 'join', 'args': 0}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 1 to 32");
    method_fails("{'action': 'leave', 'args': 0}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 1 to 32");
    method_fails("{'action': 'join', 'args': 33}",
                 "test.json: 'hubs.h.methods.M.args' must be an integer from 1 to 32");
}

/* A name of len copies of ch, then a NUL. */
static const char *repeat(char *buf, char ch, size_t len)
{
    memset(buf, ch, len);
    buf[len] = '\0';
    return buf;
}

static void test_names(void)
{
    static const char *const bad[] = {"1chat", "9",          "chat-room", "chat room",
                                      "a.b",   "ch\\u00e4t", "a$",        ""};
    char json[512], want[512], name[80];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* The JSON escape \u00e4 is quoted back as the UTF-8 it decodes to. */
        const char *shown = strcmp(bad[i], "ch\\u00e4t") == 0 ? "ch\xc3\xa4t" : bad[i];
        snprintf(json, sizeof(json), "{'hubs': {'%s': {'path': '/a', 'methods': {}}}}", bad[i]);
        snprintf(want, sizeof(want),
                 "test.json: 'hubs.%s': expected a hub name of 1 to 63 letters, digits or '_',"
                 " not starting with a digit",
                 shown);
        fails(json, want);
        snprintf(json, sizeof(json),
                 "{'hubs': {'h': {'path': '/a', 'methods': {'%s': {'action': 'join'}}}}}", bad[i]);
        snprintf(want, sizeof(want),
                 "test.json: 'hubs.h.methods.%s': expected a method name of 1 to 63 letters,"
                 " digits or '_', not starting with a digit",
                 shown);
        fails(json, want);
        snprintf(json, sizeof(json),
                 "{'hubs': {'h': {'path': '/a', 'default_target': '%s', 'methods': {}}}}", bad[i]);
        snprintf(want, sizeof(want),
                 "test.json: 'hubs.h.default_target': expected a target name of 1 to 63"
                 " letters, digits or '_', not starting with a digit, got '%s'",
                 shown);
        fails(json, want);
        snprintf(json, sizeof(json),
                 "{'hubs': {'h': {'path': '/a', 'methods': {'M': {'action': 'room',"
                 " 'target': '%s'}}}}}",
                 bad[i]);
        snprintf(want, sizeof(want),
                 "test.json: 'hubs.h.methods.M.target': expected a target name of 1 to 63"
                 " letters, digits or '_', not starting with a digit, got '%s'",
                 shown);
        fails(json, want);
    }

    /* 64 characters is one too many, everywhere. */
    repeat(name, 'n', 64);
    snprintf(json, sizeof(json), "{'hubs': {'%s': {'path': '/a', 'methods': {}}}}", name);
    snprintf(want, sizeof(want), "test.json: 'hubs.%s': expected a hub name", name);
    fails(json, want);
    snprintf(json, sizeof(json),
             "{'hubs': {'h': {'path': '/a', 'methods': {'%s': {'action': 'join'}}}}}", name);
    snprintf(want, sizeof(want), "test.json: 'hubs.h.methods.%s': expected a method name", name);
    fails(json, want);
    snprintf(json, sizeof(json),
             "{'hubs': {'h': {'path': '/a', 'default_target': '%s', 'methods': {}}}}", name);
    fails(json, "test.json: 'hubs.h.default_target': expected a target name");
    snprintf(json, sizeof(json),
             "{'hubs': {'h': {'path': '/a', 'methods': {'M': {'action': 'others',"
             " 'target': '%s'}}}}}",
             name);
    fails(json, "test.json: 'hubs.h.methods.M.target': expected a target name");

    /* A very long name is cut in the message. */
    char longname[300];
    repeat(longname, 'x', 200);
    longname[0] = '-';
    snprintf(json, sizeof(json), "{'hubs': {'%s': {'path': '/a', 'methods': {}}}}", longname);
    fails(json, "xxx...': expected a hub name");

    /* 63 characters, '_' anywhere and digits after the first are fine. */
    repeat(name, 'N', 63);
    cfg c;
    snprintf(
        json, sizeof(json),
        "{'hubs': {'%s': {'path': '/a', 'default_target': '%s', 'methods': {"
        " '%s': {'action': 'broadcast'}, '_': {'action': 'room', 'target': '_9'},"
        " 'a_1_B': {'action': 'others', 'target': 'Z'}}}, '_x9': {'path': '/b', 'methods': {}}}}",
        name, name, name);
    if (load_ok(&c, json) == 0 && c.nhubs == 2 && c.hubs[0].nmethods == 3) {
        CHECK_STR(c.hubs[0].name, name);
        CHECK_STR(c.hubs[0].default_target, name);
        CHECK_STR(c.hubs[0].methods[0].name, name);
        CHECK_STR(c.hubs[0].methods[0].target, name);
        CHECK_STR(c.hubs[0].methods[1].name, "_");
        CHECK_STR(c.hubs[0].methods[1].target, "_9");
        CHECK_STR(c.hubs[0].methods[2].name, "a_1_B");
        CHECK_STR(c.hubs[0].methods[2].target, "Z");
        CHECK_STR(c.hubs[1].name, "_x9");
    }
}

static void test_paths(void)
{
    char path[200];
    path_ok("/a");
    path_ok("/hubs/chat");
    path_ok("/x/beta.v2-1_0");
    path_ok("/A/b.c/D-e_F/9");
    path_ok("/roomsx");
    path_ok("/rooms2/a");
    path_ok("/x/rooms");
    path_ok("/x/rooms/y");
    path_ok("/healthz/x");
    path_ok("/x/healthz");
    path_ok("/metrics2");
    path_ok("/stats.json");
    path_ok("/negotiatex");
    path_ok("/x/negotiate2");
    path_ok("/x/negotiate.y");
    path_ok("/xnegotiate");
    path[0] = '/';
    repeat(path + 1, 'p', 126);
    path_ok(path); /* 127 characters */

    path_fails("", "expected a path starting with '/'");
    path_fails("hubs/chat", "expected a path starting with '/'");
    path_fails(" /a", "expected a path starting with '/'");
    path_fails("/", "expected a path of 2 to 127 characters");
    repeat(path + 1, 'p', 127);
    path_fails(path, "expected a path of 2 to 127 characters"); /* 128 */
    path_fails("/a b", "expected only letters, digits, '.', '_', '-' and '/' in a path");
    path_fails("/a?b=1", "expected only letters, digits, '.', '_', '-' and '/' in a path");
    path_fails("/a%20b", "expected only letters, digits, '.', '_', '-' and '/' in a path");
    fails("{'hubs': {'h': {'path': '/a\\\\b', 'methods': {}}}}",
          "test.json: 'hubs.h.path': expected only letters, digits"); /* a backslash */
    fails("{'hubs': {'h': {'path': '/\\u00e9', 'methods': {}}}}",
          "test.json: 'hubs.h.path': expected only letters, digits");
    path_fails("/a//b", "expected no empty segment ('//') in a path");
    path_fails("//a", "expected no empty segment ('//') in a path");
    path_fails("/a/", "expected a path not ending in '/'");
    path_fails("/hubs/chat/", "expected a path not ending in '/'");
    path_fails("/rooms", "expected a path outside /rooms, which the gateway serves");
    path_fails("/rooms/x", "expected a path outside /rooms, which the gateway serves");
    path_fails("/rooms/x/y", "expected a path outside /rooms, which the gateway serves");
    path_fails("/healthz", "expected a path other than /healthz, /metrics and /stats");
    path_fails("/metrics", "expected a path other than /healthz, /metrics and /stats");
    path_fails("/stats", "expected a path other than /healthz, /metrics and /stats");
    path_fails("/negotiate", "expected a path not ending in /negotiate, which the gateway adds");
    path_fails("/hubs/chat/negotiate",
               "expected a path not ending in /negotiate, which the gateway adds");
}

static void test_uniqueness(void)
{
    fails("{'hubs': {'a': {'path': '/x', 'methods': {}}, 'b': {'path': '/y', 'methods': {}},"
          " 'c': {'path': '/x', 'methods': {}}}}",
          "test.json: 'hubs.c.path': '/x' is already the path of hub 'a'");
    /* Paths are case-sensitive, as URL paths are. */
    cfg c;
    load_ok(&c,
            "{'hubs': {'a': {'path': '/x', 'methods': {}}, 'b': {'path': '/X', 'methods': {}}}}");
    CHECK(c.nhubs == 2);

    /* Method names are unique ignoring case, as SignalR matches them. */
    fails("{'hubs': {'h': {'path': '/h', 'methods': {'Send': {'action': 'broadcast'},"
          " 'Join': {'action': 'join'}, 'send': {'action': 'others'}}}}}",
          "test.json: 'hubs.h.methods.send' repeats method 'Send'");
    fails("{'hubs': {'h': {'path': '/h', 'methods': {'send_2': {'action': 'broadcast'},"
          " 'SEND_2': {'action': 'broadcast'}}}}}",
          "test.json: 'hubs.h.methods.SEND_2' repeats method 'send_2'");
    /* ... within a hub: two hubs may share a method name, and a method may be
     * named like a hub or a target. */
    load_ok(&c, "{'hubs': {'a': {'path': '/a', 'methods': {'Send': {'action': 'broadcast'}}},"
                " 'b': {'path': '/b', 'methods': {'send': {'action': 'broadcast',"
                " 'target': 'send'}, 'a': {'action': 'join'}}}}}");
    CHECK(c.nhubs == 2);
}

/* Appends to buf (of size n) as snprintf would at its end. */
__attribute__((format(printf, 3, 4))) static void append(char *buf, size_t n, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, n - len, fmt, ap);
    va_end(ap);
}

/* {"hubs": {...}} with nhubs hubs h0.. at /h0.., each with nmethods methods. */
static void many_hubs_json(char *buf, size_t n, unsigned nhubs, unsigned nmethods)
{
    buf[0] = '\0';
    append(buf, n, "{'hubs': {");
    for (unsigned i = 0; i < nhubs; i++) {
        append(buf, n, "%s'h%u': {'path': '/h%u', 'methods': {", i ? ", " : "", i, i);
        for (unsigned j = 0; j < nmethods; j++)
            append(buf, n, "%s'M%u': {'action': 'broadcast'}", j ? ", " : "", j);
        append(buf, n, "}}");
    }
    append(buf, n, "}}");
}

static void test_limits(void)
{
    static char json[16384];
    cfg c;
    many_hubs_json(json, sizeof(json), CFG_MAX_HUBS, 1);
    if (load_ok(&c, json) == 0) {
        CHECK(c.nhubs == CFG_MAX_HUBS);
        CHECK_STR(c.hubs[CFG_MAX_HUBS - 1].name, "h15");
        CHECK_STR(c.hubs[CFG_MAX_HUBS - 1].path, "/h15");
    }
    many_hubs_json(json, sizeof(json), CFG_MAX_HUBS + 1, 1);
    fails(json, "test.json: 'hubs' must have at most 16 hubs");

    many_hubs_json(json, sizeof(json), 1, CFG_MAX_METHODS);
    if (load_ok(&c, json) == 0) {
        CHECK(c.hubs[0].nmethods == CFG_MAX_METHODS);
        CHECK_STR(c.hubs[0].methods[CFG_MAX_METHODS - 1].name, "M31");
    }
    many_hubs_json(json, sizeof(json), 2, CFG_MAX_METHODS + 1);
    fails(json, "test.json: 'hubs.h0.methods' must have at most 32 methods");
}

static void test_hub_error_leaves_config_unchanged(void)
{
    cfg c, before;
    char err[CFG_ERR_MAX];
    CHECK(load(&c, all_keys_json, err) == 0);
    before = c;
    /* The first hub and the signalr key are fine; the second hub is not. */
    CHECK(cfg_load_string(&c,
                          dq("{'signalr': {'client_timeout_s': 9}, 'hubs': {"
                             " 'a': {'path': '/a', 'methods': {'X': {'action': 'join'}}},"
                             " 'b': {'path': '/rooms', 'methods': {}}}}"),
                          "t.json", err) == -1);
    CHECK(strstr(err, "t.json: 'hubs.b.path'") != NULL);
    CHECK(cfg_equal(&c, &before));
    CHECK(memcmp(&c, &before, sizeof(c)) == 0);
}

/* web.root, when set, must be a directory that exists; "" serves none. */
static void test_web_root(void)
{
    cfg c;
    char err[CFG_ERR_MAX] = "";
    check_fails("{\"web\": {\"root\": \"/no/such/crier/dir\"}}",
                "test.json: 'web.root': expected an existing directory (\"\" serves no pages), "
                "got '/no/such/crier/dir'");
    check_fails("{\"web\": {\"root\": \"config.example.json\"}}",
                "test.json: 'web.root': expected an existing directory");
    check_fails("{\"web\": {\"root\": 5}}", "test.json: 'web.root' must be a string");
    CHECK(load(&c, "{\"web\": {\"root\": \"\"}}", err) == 0);
    CHECK_STR(c.web.root, "");
    CHECK(load(&c, "{\"web\": {\"root\": \"/tmp\"}}", err) == 0);
    CHECK_STR(c.web.root, "/tmp");
    /* The built-in default is not checked here (static.c warns at start);
     * it is where the binary is installed, or the source tree's web/
     * (web_root.c, tests/unit/test_web_root.c), never relative to the
     * current directory. */
    cfg_defaults(&c);
    CHECK_STR(c.web.root, web_root_default());
    CHECK(c.web.root[0] == '/');
}

/* The memory limits (issue #11 item 4): defaults, values, ranges. */
static void test_memory_limits(void)
{
    cfg c;
    char err[CFG_ERR_MAX] = "";
    cfg_defaults(&c);
    CHECK(c.limits.max_rooms == 100000);
    CHECK(c.limits.max_rooms_per_connection == 100);
    CHECK(c.limits.max_fragment_bytes_total == 64u * 1024 * 1024);
    CHECK(c.history.max_bytes == 256u * 1024 * 1024);
    CHECK(c.signalr.max_pending_connections == 10000);
    CHECK(c.signalr.negotiate_rate_per_s == 20);
    CHECK(c.signalr.negotiate_burst == 100);
    CHECK(load(&c,
               "{\"limits\": {\"max_rooms\": 3, \"max_rooms_per_connection\": 2,"
               " \"max_fragment_bytes_total\": 65536},"
               " \"history\": {\"max_bytes\": 1099511627776},"
               " \"signalr\": {\"max_pending_connections\": 1, \"negotiate_rate_per_s\": 1,"
               " \"negotiate_burst\": 1000000}}",
               err) == 0);
    CHECK(c.limits.max_rooms == 3);
    CHECK(c.limits.max_rooms_per_connection == 2);
    CHECK(c.limits.max_fragment_bytes_total == 65536);
    CHECK(c.history.max_bytes == 1099511627776ull);
    CHECK(c.signalr.max_pending_connections == 1);
    CHECK(c.signalr.negotiate_rate_per_s == 1);
    CHECK(c.signalr.negotiate_burst == 1000000);
    check_fails("{\"limits\": {\"max_rooms\": 0}}",
                "test.json: 'limits.max_rooms' must be an integer from 1 to 100000000");
    check_fails("{\"limits\": {\"max_rooms_per_connection\": 0}}",
                "'limits.max_rooms_per_connection' must be an integer from 1 to 1000000");
    check_fails("{\"limits\": {\"max_fragment_bytes_total\": 65535}}",
                "'limits.max_fragment_bytes_total' must be an integer from 65536 to 1099511627776");
    check_fails("{\"history\": {\"max_bytes\": 1099511627777}}",
                "'history.max_bytes' must be an integer from 65536 to 1099511627776");
    check_fails("{\"signalr\": {\"max_pending_connections\": 0}}",
                "'signalr.max_pending_connections' must be an integer from 1 to 1000000");
    check_fails("{\"signalr\": {\"negotiate_rate_per_s\": 0}}",
                "'signalr.negotiate_rate_per_s' must be an integer from 1 to 1000000");
    check_fails("{\"signalr\": {\"negotiate_burst\": 1000001}}",
                "'signalr.negotiate_burst' must be an integer from 1 to 1000000");
    check_fails("{\"history\": {\"max_bytes\": \"1G\"}}",
                "'history.max_bytes' must be an integer from 65536 to 1099511627776");
}

/* Backpressure (issue #16 target 4): defaults, values, ranges. */
static void test_backpressure_keys(void)
{
    cfg c;
    char err[CFG_ERR_MAX] = "";
    cfg_defaults(&c);
    CHECK(c.limits.publish_wait_ms == 10000);
    CHECK(c.limits.subscriber_stall_ms == 2000);
    CHECK(load(&c, "{\"limits\": {\"publish_wait_ms\": 0, \"subscriber_stall_ms\": 100}}", err) ==
          0);
    CHECK(c.limits.publish_wait_ms == 0);
    CHECK(c.limits.subscriber_stall_ms == 100);
    CHECK(load(&c, "{\"limits\": {\"publish_wait_ms\": 600000, \"subscriber_stall_ms\": 600000}}",
               err) == 0);
    CHECK(c.limits.publish_wait_ms == 600000);
    CHECK(c.limits.subscriber_stall_ms == 600000);
    check_fails("{\"limits\": {\"publish_wait_ms\": 600001}}",
                "test.json: 'limits.publish_wait_ms' must be an integer from 0 to 600000");
    check_fails("{\"limits\": {\"subscriber_stall_ms\": 99}}",
                "test.json: 'limits.subscriber_stall_ms' must be an integer from 100 to 600000");
    check_fails("{\"limits\": {\"publish_wait_ms\": -1}}",
                "'limits.publish_wait_ms' must be an integer from 0 to 600000");
}

/* ---- auth, cors, limits.rate (issue #13) -------------------------------- */

static void test_auth_defaults(void)
{
    cfg c;
    cfg_defaults(&c);
    CHECK(!c.auth.enabled);
    CHECK(!c.auth.jwt_enabled);
    CHECK(c.auth.jwt.leeway_s == 5);
    CHECK(c.auth.jwt.algorithms == 0);
    CHECK(c.auth.nrooms == 0 && c.auth.napi_keys == 0);
    CHECK_STR(c.auth.api_keys_file, "");
    CHECK(c.auth.protect_admin);
    CHECK(c.cors.nallowed_origins == 0);
    CHECK(!c.cors.allow_credentials);
    CHECK(c.cors.max_age_s == 600);
    CHECK(c.limits.rate.publish.per_s == 0 && c.limits.rate.publish.burst == 0);
    CHECK(c.limits.rate.connect.per_s == 0 && c.limits.rate.connect.burst == 0);
    CHECK(c.limits.rate.request.per_s == 0 && c.limits.rate.request.burst == 0);
    /* Any "auth" section, even an empty one, turns access control on. */
    if (load_ok(&c, "{'auth': {}}") == 0) {
        CHECK(c.auth.enabled);
        CHECK(!c.auth.jwt_enabled);
        CHECK(c.auth.protect_admin);
    }
    if (load_ok(&c, "{'auth': {'protect_admin': false}}") == 0) {
        CHECK(c.auth.enabled);
        CHECK(!c.auth.protect_admin);
    }
    /* Other sections leave it off. */
    if (load_ok(&c, "{'cors': {'allow_credentials': true}}") == 0)
        CHECK(!c.auth.enabled);
}

static void test_auth_jwt(void)
{
    cfg c;
    if (load_ok(&c, "{'auth': {'jwt': {'hmac_secret': 'abc'}}}") == 0) {
        CHECK(c.auth.enabled && c.auth.jwt_enabled);
        CHECK_STR(c.auth.jwt.hmac_secret, "abc");
        CHECK(c.auth.jwt.algorithms == CFG_JWT_HS256);
        CHECK(c.auth.jwt.leeway_s == 5);
        CHECK_STR(c.auth.jwt.issuer, "");
        CHECK_STR(c.auth.jwt.audience, "");
    }
    if (load_ok(&c, "{'auth': {'jwt': {'public_key_file': 'k.pem'}}}") == 0) {
        CHECK_STR(c.auth.jwt.public_key_file, "k.pem");
        CHECK(c.auth.jwt.algorithms == (CFG_JWT_RS256 | CFG_JWT_ES256));
    }
    if (load_ok(&c, "{'auth': {'jwt': {'hmac_secret': 's', 'public_key_file': 'k.pem'}}}") == 0)
        CHECK(c.auth.jwt.algorithms == (CFG_JWT_HS256 | CFG_JWT_RS256 | CFG_JWT_ES256));
    if (load_ok(&c, "{'auth': {'jwt': {'hmac_secret': 's', 'public_key_file': 'k.pem',"
                    " 'algorithms': ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512',"
                    " 'ES256', 'ES384', 'ES512'], 'issuer': 'https://id.example',"
                    " 'audience': 'crier', 'leeway_s': 0}}}") == 0) {
        CHECK(c.auth.jwt.algorithms == 0x1ff);
        CHECK_STR(c.auth.jwt.issuer, "https://id.example");
        CHECK_STR(c.auth.jwt.audience, "crier");
        CHECK(c.auth.jwt.leeway_s == 0);
    }
    if (load_ok(&c, "{'auth': {'jwt': {'public_key_file': 'k.pem', 'algorithms': ['ES384'],"
                    " 'leeway_s': 3600}}}") == 0) {
        CHECK(c.auth.jwt.algorithms == CFG_JWT_ES384);
        CHECK(c.auth.jwt.leeway_s == 3600);
    }
    /* A later auth.jwt replaces the whole section. */
    if (load_ok(&c, "{'auth': {'jwt': {'hmac_secret': 's', 'issuer': 'i', 'leeway_s': 9}}}") == 0) {
        char err[CFG_ERR_MAX];
        CHECK(cfg_load_string(&c, dq("{'auth': {'jwt': {'public_key_file': 'k.pem'}}}"), "t",
                              err) == 0);
        CHECK_STR(c.auth.jwt.hmac_secret, "");
        CHECK_STR(c.auth.jwt.issuer, "");
        CHECK(c.auth.jwt.leeway_s == 5);
        CHECK(c.auth.jwt.algorithms == (CFG_JWT_RS256 | CFG_JWT_ES256));
    }

    fails("{'auth': {'jwt': 'secret'}}", "test.json: 'auth.jwt' must be an object");
    fails("{'auth': {'jwt': {}}}",
          "test.json: 'auth.jwt' needs 'hmac_secret' or 'public_key_file' (or both)");
    fails("{'auth': {'jwt': {'issuer': 'x'}}}", "'auth.jwt' needs 'hmac_secret' or");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'secret': 's'}}}",
          "test.json: unknown key 'auth.jwt.secret'");
    fails("{'auth': {'jwt': {'hmac_secret': 5}}}",
          "test.json: 'auth.jwt.hmac_secret' must be a string");
    fails("{'auth': {'jwt': {'hmac_secret': ''}}}",
          "test.json: 'auth.jwt.hmac_secret' must be 1 to 511 bytes (no NUL)");
    fails("{'auth': {'jwt': {'public_key_file': ''}}}",
          "test.json: 'auth.jwt.public_key_file' must be 1 to 511 bytes");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'issuer': ''}}}",
          "test.json: 'auth.jwt.issuer' must be 1 to 511 bytes");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'audience': ['a']}}}",
          "test.json: 'auth.jwt.audience' must be a string");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'leeway_s': 3601}}}",
          "test.json: 'auth.jwt.leeway_s' must be an integer from 0 to 3600");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'leeway_s': -1}}}",
          "test.json: 'auth.jwt.leeway_s' must be an integer from 0 to 3600");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'algorithms': ['none']}}}",
          "test.json: 'auth.jwt.algorithms': 'none' is never accepted");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'algorithms': ['HS256', 'NONE']}}}",
          "'auth.jwt.algorithms': 'none' is never accepted");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'algorithms': ['HS256', 'PS256']}}}",
          "test.json: 'auth.jwt.algorithms': unknown algorithm 'PS256', expected HS256, HS384, "
          "HS512, RS256, RS384, RS512, ES256, ES384 or ES512");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'algorithms': ['hs256']}}}",
          "unknown algorithm 'hs256'");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'algorithms': []}}}",
          "test.json: 'auth.jwt.algorithms' must be a non-empty array of algorithm names");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'algorithms': 'HS256'}}}",
          "test.json: 'auth.jwt.algorithms' must be a non-empty array of algorithm names");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'algorithms': [256]}}}",
          "test.json: 'auth.jwt.algorithms' must be a non-empty array of algorithm names");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'algorithms': ['RS256']}}}",
          "test.json: 'auth.jwt.algorithms' lists RS256, which needs 'auth.jwt.public_key_file'");
    fails("{'auth': {'jwt': {'hmac_secret': 's', 'algorithms': ['HS256', 'ES512']}}}",
          "'auth.jwt.algorithms' lists ES512, which needs 'auth.jwt.public_key_file'");
    fails("{'auth': {'jwt': {'public_key_file': 'k.pem', 'algorithms': ['RS256', 'HS384']}}}",
          "test.json: 'auth.jwt.algorithms' lists HS384, which needs 'auth.jwt.hmac_secret'");
    /* A secret is never quoted back in a message. */
    char err[CFG_ERR_MAX];
    cfg_defaults(&c);
    CHECK(cfg_load_string(&c,
                          "{\"auth\": {\"jwt\": {\"hmac_secret\": \"topsecret\","
                          " \"algorithms\": [\"RS256\"]}}}",
                          "t", err) == -1);
    CHECK(strstr(err, "topsecret") == NULL);
}

static void test_auth_rooms(void)
{
    cfg c;
    if (load_ok(&c, "{'auth': {'rooms': ["
                    " {'match': 'public.*', 'subscribe': 'public', 'publish': 'token'},"
                    " {'match': 'secret.*', 'subscribe': 'claim', 'publish': 'api_key'},"
                    " {'match': 'lobby'},"
                    " {'match': '*', 'subscribe': 'token'}]}}") == 0) {
        CHECK(c.auth.enabled);
        CHECK(c.auth.nrooms == 4);
        CHECK_STR(c.auth.rooms[0].match, "public.*");
        CHECK(c.auth.rooms[0].subscribe == CFG_ACCESS_PUBLIC);
        CHECK(c.auth.rooms[0].publish == CFG_ACCESS_TOKEN);
        CHECK_STR(c.auth.rooms[1].match, "secret.*");
        CHECK(c.auth.rooms[1].subscribe == CFG_ACCESS_CLAIM);
        CHECK(c.auth.rooms[1].publish == CFG_ACCESS_API_KEY);
        /* A level not given is "claim". */
        CHECK_STR(c.auth.rooms[2].match, "lobby");
        CHECK(c.auth.rooms[2].subscribe == CFG_ACCESS_CLAIM);
        CHECK(c.auth.rooms[2].publish == CFG_ACCESS_CLAIM);
        CHECK_STR(c.auth.rooms[3].match, "*");
        CHECK(c.auth.rooms[3].subscribe == CFG_ACCESS_TOKEN);
        CHECK(c.auth.rooms[3].publish == CFG_ACCESS_CLAIM);
    }
    if (load_ok(&c, "{'auth': {'rooms': [{'match': 'a:b_c-d.e*'}, {'match': 'x'}]}}") == 0)
        CHECK(c.auth.nrooms == 2);
    if (load_ok(&c, "{'auth': {'rooms': []}}") == 0)
        CHECK(c.auth.enabled && c.auth.nrooms == 0);

    /* At most CFG_MAX_ROOM_RULES rules. */
    static char json[16384];
    size_t n = 0;
    n += (size_t)snprintf(json + n, sizeof(json) - n, "{'auth': {'rooms': [");
    for (int i = 0; i < CFG_MAX_ROOM_RULES; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s{'match': 'r%d'}", i ? ", " : "", i);
    snprintf(json + n, sizeof(json) - n, "]}}");
    if (load_ok(&c, json) == 0) {
        CHECK(c.auth.nrooms == CFG_MAX_ROOM_RULES);
        CHECK_STR(c.auth.rooms[CFG_MAX_ROOM_RULES - 1].match, "r63");
    }
    snprintf(json + n, sizeof(json) - n, ", {'match': 'one-more'}]}}");
    fails(json, "test.json: 'auth.rooms' must be an array of at most 64 rules");

    fails("{'auth': {'rooms': {}}}",
          "test.json: 'auth.rooms' must be an array of at most 64 rules");
    fails("{'auth': {'rooms': ['chat.*']}}", "test.json: 'auth.rooms[0]' must be an object");
    fails("{'auth': {'rooms': [{'match': 'a'}, {'subscribe': 'public'}]}}",
          "test.json: 'auth.rooms[1].match' is required");
    fails("{'auth': {'rooms': [{'match': 5}]}}",
          "test.json: 'auth.rooms[0].match' must be a string");
    fails("{'auth': {'rooms': [{'match': 'a', 'who': 'me'}]}}",
          "test.json: unknown key 'auth.rooms[0].who'");
    fails("{'auth': {'rooms': [{'match': 'a', 'subscribe': 'everyone'}]}}",
          "test.json: 'auth.rooms[0].subscribe' must be one of public, token, claim, api_key");
    fails("{'auth': {'rooms': [{'match': 'a', 'publish': true}]}}",
          "test.json: 'auth.rooms[0].publish' must be one of public, token, claim, api_key");
    static const char *const bad_matches[] = {"", "a b", "*a", "a*b", "a**", "**", "chat/x", "é"};
    for (size_t i = 0; i < sizeof(bad_matches) / sizeof(bad_matches[0]); i++) {
        char j[256], want[512];
        snprintf(j, sizeof(j), "{'auth': {'rooms': [{'match': '%s'}]}}", bad_matches[i]);
        snprintf(want, sizeof(want),
                 "test.json: 'auth.rooms[0].match': expected a room name (1 to 128 of A-Z a-z "
                 "0-9 . _ - :), optionally ending in '*', or '*', got '%s'",
                 bad_matches[i]);
        fails(j, want);
    }
    /* 128 characters and a '*' is the longest match. */
    char name[200], j[400];
    memset(name, 'a', 128);
    strcpy(name + 128, "*");
    snprintf(j, sizeof(j), "{'auth': {'rooms': [{'match': '%s'}]}}", name);
    if (load_ok(&c, j) == 0)
        CHECK_STR(c.auth.rooms[0].match, name);
    name[128] = 'a';
    name[129] = '\0';
    snprintf(j, sizeof(j), "{'auth': {'rooms': [{'match': '%s'}]}}", name);
    fails(j, "'auth.rooms[0].match': expected a room name");
}

static void test_auth_api_keys(void)
{
    cfg c;
    if (load_ok(&c, "{'auth': {'api_keys': ['0123456789abcdef', 'k!#$%&()*+,-./:;<=>?@[]^_`{|}~'],"
                    " 'api_keys_file': '/etc/crier/keys', 'protect_admin': true}}") == 0) {
        CHECK(c.auth.enabled);
        CHECK(c.auth.napi_keys == 2);
        CHECK_STR(c.auth.api_keys[0], "0123456789abcdef");
        CHECK_STR(c.auth.api_keys[1], "k!#$%&()*+,-./:;<=>?@[]^_`{|}~");
        CHECK_STR(c.auth.api_keys_file, "/etc/crier/keys");
        CHECK(c.auth.protect_admin);
    }
    fails("{'auth': {'api_keys': 'k'}}",
          "test.json: 'auth.api_keys' must be an array of at most 64 keys");
    fails("{'auth': {'api_keys': ['0123456789abcdef', '0123456789abcde']}}",
          "test.json: 'auth.api_keys[1]' must be a string of 16 to 511 visible ASCII characters "
          "(no spaces)");
    fails("{'auth': {'api_keys': ['0123456789 abcdef']}}",
          "test.json: 'auth.api_keys[0]' must be a string of 16 to 511 visible ASCII");
    fails("{'auth': {'api_keys': [1234567890123456789]}}",
          "test.json: 'auth.api_keys[0]' must be a string of 16");
    fails("{'auth': {'api_keys': ['0123456789abcdé']}}", "'auth.api_keys[0]' must be a string");
    /* A key is never quoted back. */
    char err[CFG_ERR_MAX];
    cfg_defaults(&c);
    CHECK(cfg_load_string(&c, "{\"auth\": {\"api_keys\": [\"short-key\"]}}", "t", err) == -1);
    CHECK(strstr(err, "short-key") == NULL);

    static char json[16384];
    size_t n = (size_t)snprintf(json, sizeof(json), "{'auth': {'api_keys': [");
    for (int i = 0; i < CFG_MAX_API_KEYS; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s'key-0123456789-%02d'", i ? "," : "",
                              i);
    snprintf(json + n, sizeof(json) - n, "]}}");
    if (load_ok(&c, json) == 0)
        CHECK(c.auth.napi_keys == CFG_MAX_API_KEYS);
    snprintf(json + n, sizeof(json) - n, ", 'key-0123456789-xx']}}");
    fails(json, "test.json: 'auth.api_keys' must be an array of at most 64 keys");

    fails("{'auth': {'api_keys_file': ''}}",
          "test.json: 'auth.api_keys_file': expected a file path of 1 to 511 bytes, got ''");
    fails("{'auth': {'api_keys_file': ['f']}}", "test.json: 'auth.api_keys_file' must be a string");
    fails("{'auth': {'protect_admin': 'yes'}}",
          "test.json: 'auth.protect_admin' must be true or false");
    fails("{'auth': {'keys': []}}", "test.json: unknown key 'auth.keys'");
    fails("{'auth': []}", "test.json: 'auth' must be an object");
}

static void test_cors(void)
{
    cfg c;
    if (load_ok(&c, "{'cors': {'allowed_origins': ['https://app.example.com',"
                    " 'http://localhost:3000', 'http://[::1]:8080', 'https://x.example:8443', '*'],"
                    " 'allow_credentials': true, 'max_age_s': 0}}") == 0) {
        CHECK(!c.auth.enabled);
        CHECK(c.cors.nallowed_origins == 5);
        CHECK_STR(c.cors.allowed_origins[0], "https://app.example.com");
        CHECK_STR(c.cors.allowed_origins[1], "http://localhost:3000");
        CHECK_STR(c.cors.allowed_origins[2], "http://[::1]:8080");
        CHECK_STR(c.cors.allowed_origins[3], "https://x.example:8443");
        CHECK_STR(c.cors.allowed_origins[4], "*");
        CHECK(c.cors.allow_credentials);
        CHECK(c.cors.max_age_s == 0);
    }
    if (load_ok(&c, "{'cors': {'allowed_origins': [], 'max_age_s': 86400}}") == 0) {
        CHECK(c.cors.nallowed_origins == 0);
        CHECK(c.cors.max_age_s == 86400);
    }
    static const struct {
        const char *origin, *why;
    } bad[] = {
        {"app.example.com", "expected \"*\" or an origin scheme://host[:port] (no path)"},
        {"https://app.example.com/", "expected no path, query or uppercase letters"},
        {"https://app.example.com/x", "expected no path, query or uppercase letters"},
        {"https://app.Example.com", "expected no path, query or uppercase letters"},
        {"https://App.example.com", "expected a host after scheme:// (lowercase"},
        {"HTTPS://app.example.com", "expected a lowercase scheme such as https"},
        {"https://", "expected a host after scheme://"},
        {"https://a:0", "expected a port from 1 to 65535 after the host, and nothing after it"},
        {"https://a:8080/", "expected a port from 1 to 65535 after the host, and nothing after"},
        {"https://a:443", "expected no default port (browsers leave :443 and :80 out of Origin)"},
        {"http://a:80", "expected no default port"},
        {"http://[::1", "expected an IPv6 host in brackets, e.g. http://[::1]:8080"},
        {"null", "expected \"*\" or an origin scheme://host[:port] (no path)"},
        {"", "expected \"*\" or an origin"},
        {"**", "expected \"*\" or an origin"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char j[512], want[512];
        snprintf(j, sizeof(j), "{'cors': {'allowed_origins': ['*', '%s']}}", bad[i].origin);
        snprintf(want, sizeof(want), "test.json: 'cors.allowed_origins[1]': %s", bad[i].why);
        fails(j, want);
    }
    fails("{'cors': {'allowed_origins': 'https://a.example'}}",
          "test.json: 'cors.allowed_origins' must be an array of at most 32 origins");
    fails("{'cors': {'allowed_origins': [5]}}",
          "test.json: 'cors.allowed_origins[0]' must be a string");
    static char json[4096];
    size_t n = (size_t)snprintf(json, sizeof(json), "{'cors': {'allowed_origins': [");
    for (int i = 0; i <= CFG_MAX_ORIGINS; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s'https://h%d.example'", i ? "," : "",
                              i);
    snprintf(json + n, sizeof(json) - n, "]}}");
    fails(json, "test.json: 'cors.allowed_origins' must be an array of at most 32 origins");
    fails("{'cors': {'allow_credentials': 1}}",
          "test.json: 'cors.allow_credentials' must be true or false");
    fails("{'cors': {'max_age_s': 86401}}",
          "test.json: 'cors.max_age_s' must be an integer from 0 to 86400");
    fails("{'cors': {'origins': []}}", "test.json: unknown key 'cors.origins'");
}

static void test_rate_limits(void)
{
    cfg c;
    if (load_ok(&c, "{'limits': {'rate': {'publish': {'per_s': 50, 'burst': 100},"
                    " 'connect': {'per_s': 5}, 'request': {'per_s': 0}}}}") == 0) {
        CHECK(c.limits.rate.publish.per_s == 50 && c.limits.rate.publish.burst == 100);
        /* burst defaults to twice per_s */
        CHECK(c.limits.rate.connect.per_s == 5 && c.limits.rate.connect.burst == 10);
        CHECK(c.limits.rate.request.per_s == 0 && c.limits.rate.request.burst == 0);
    }
    if (load_ok(&c, "{'limits': {'rate': {'request': {'per_s': 1000000, 'burst': 1}},"
                    " 'send_queue': 9}}") == 0) {
        CHECK(c.limits.rate.request.per_s == 1000000 && c.limits.rate.request.burst == 1);
        CHECK(c.limits.rate.publish.per_s == 0 && c.limits.rate.connect.per_s == 0);
        CHECK(c.limits.send_queue == 9);
    }
    if (load_ok(&c, "{'limits': {'rate': {}}}") == 0)
        CHECK(c.limits.rate.publish.per_s == 0);
    fails("{'limits': {'rate': 50}}", "test.json: 'limits.rate' must be an object");
    fails("{'limits': {'rate': {'subscribe': {'per_s': 1}}}}",
          "test.json: unknown key 'limits.rate.subscribe'");
    fails("{'limits': {'rate': {'publish': 5}}}",
          "test.json: 'limits.rate.publish' must be an object {\"per_s\": N, \"burst\": M}");
    fails("{'limits': {'rate': {'publish': {'burst': 5}}}}",
          "test.json: 'limits.rate.publish.per_s' is required");
    fails("{'limits': {'rate': {'connect': {'per_s': -1}}}}",
          "test.json: 'limits.rate.connect.per_s' must be an integer from 0 to 1000000 "
          "(0: no limit)");
    fails("{'limits': {'rate': {'connect': {'per_s': 1000001}}}}",
          "test.json: 'limits.rate.connect.per_s' must be an integer from 0 to 1000000");
    fails("{'limits': {'rate': {'request': {'per_s': 1.5}}}}",
          "test.json: 'limits.rate.request.per_s' must be an integer from 0 to 1000000");
    fails("{'limits': {'rate': {'request': {'per_s': 1, 'burst': 0}}}}",
          "test.json: 'limits.rate.request.burst' must be an integer from 1 to 1000000");
    fails("{'limits': {'rate': {'request': {'per_s': 1, 'burst': 1000001}}}}",
          "test.json: 'limits.rate.request.burst' must be an integer from 1 to 1000000");
    fails("{'limits': {'rate': {'request': {'per_s': 1, 'window': 1}}}}",
          "test.json: unknown key 'limits.rate.request.window'");
}

/* upstream.* and upstream hub methods (README "Upstream hub methods"). */
static void test_upstream(void)
{
    cfg c;
    cfg_defaults(&c);
    CHECK(c.upstream.timeout_ms == 5000 && c.upstream.max_in_flight == 1000);
    CHECK(c.upstream.max_answer_bytes == 1024 * 1024 && c.upstream.events_queue == 10000);
    CHECK(!c.upstream.url[0] && !c.upstream.events[0] && !c.upstream.connect[0]);
    CHECK(!c.rooms.client_publish_upstream);
    if (load_ok(&c, "{'upstream': {'url': 'http://127.0.0.1:9000/frames',"
                    " 'events': 'https://b.example/ev', 'connect': 'http://[::1]:9/c',"
                    " 'timeout_ms': 100, 'max_in_flight': 1, 'max_answer_bytes': 1024,"
                    " 'events_queue': 1},"
                    " 'rooms': {'client_publish': 'upstream'},"
                    " 'hubs': {'chat': {'path': '/hubs/chat', 'methods': {"
                    "   'SendMessage': {'upstream': 'http://127.0.0.1:9000/chat', 'args': 2},"
                    "   'Any': {'upstream': 'http://127.0.0.1:9000/any'},"
                    "   'JoinRoom': {'action': 'join'}}}}}") == 0) {
        CHECK_STR(c.upstream.url, "http://127.0.0.1:9000/frames");
        CHECK_STR(c.upstream.events, "https://b.example/ev");
        CHECK_STR(c.upstream.connect, "http://[::1]:9/c");
        CHECK(c.upstream.timeout_ms == 100 && c.upstream.max_in_flight == 1);
        CHECK(c.upstream.max_answer_bytes == 1024 && c.upstream.events_queue == 1);
        CHECK(c.rooms.client_publish && c.rooms.client_publish_upstream);
        CHECK(c.hubs[0].methods[0].action == CFG_ACTION_UPSTREAM);
        CHECK_STR(c.hubs[0].methods[0].upstream, "http://127.0.0.1:9000/chat");
        CHECK(c.hubs[0].methods[0].args == 2 && c.hubs[0].methods[1].args == -1);
        CHECK(c.hubs[0].methods[2].action == CFG_ACTION_JOIN);
    }
    if (load_ok(&c, "{'rooms': {'client_publish': false}}") == 0)
        CHECK(!c.rooms.client_publish && !c.rooms.client_publish_upstream);
    fails("{'upstream': {'url': 'ftp://x/y'}}",
          "test.json: 'upstream.url': expected an http:// or https:// URL of at most 255 bytes, "
          "no spaces, got 'ftp://x/y'");
    fails("{'upstream': {'events': 'http://a b/'}}", "test.json: 'upstream.events': expected an");
    fails("{'upstream': {'connect': 'http:///x'}}", "test.json: 'upstream.connect': expected an");
    fails("{'upstream': {'timeout_ms': 99}}",
          "test.json: 'upstream.timeout_ms' must be an integer from 100 to 600000");
    fails("{'upstream': {'max_in_flight': 0}}",
          "test.json: 'upstream.max_in_flight' must be an integer from 1 to 100000");
    fails("{'upstream': {'max_answer_bytes': 1023}}",
          "test.json: 'upstream.max_answer_bytes' must be an integer from 1024 to 67108864");
    fails("{'upstream': {'events_queue': 0}}",
          "test.json: 'upstream.events_queue' must be an integer from 1 to 1000000");
    fails("{'upstream': {'retries': 1}}", "test.json: unknown key 'upstream.retries'");
    fails("{'upstream': {'connect': 'http://c/'}, 'backplane': {'type': 'redis'}}",
          "test.json: 'upstream.connect' with 'backplane.type' \"redis\" needs "
          "'upstream.connect_secret'");
    fails("{'upstream': {'connect_secret': 'short-secret'}}",
          "test.json: 'upstream.connect_secret' must be 32 to 511 bytes (no NUL)");
    fails("{'upstream': {'connect_secret': 5}}",
          "test.json: 'upstream.connect_secret' must be a string");
    if (load_ok(&c, "{'upstream': {'connect': 'http://c/',"
                    " 'connect_secret': '0123456789abcdef0123456789abcdef'},"
                    " 'backplane': {'type': 'redis'}}") == 0)
        CHECK_STR(c.upstream.connect_secret, "0123456789abcdef0123456789abcdef");
    fails("{'rooms': {'client_publish': 'upstream'}}",
          "test.json: 'rooms.client_publish' is \"upstream\", which needs 'upstream.url'");
    fails("{'hubs': {'h': {'path': '/h', 'methods': {'M': {'upstream': 'http://x/',"
          " 'action': 'join'}}}}}",
          "test.json: 'hubs.h.methods.M' has 'upstream': it takes no 'action' or 'target'");
    fails("{'hubs': {'h': {'path': '/h', 'methods': {'M': {'upstream': 5}}}}}",
          "test.json: 'hubs.h.methods.M.upstream': expected an http:// or https:// URL");
    fails(
        "{'hubs': {'h': {'path': '/h', 'methods': {'M': {'upstream': 'http://x/', 'args': 33}}}}}",
        "test.json: 'hubs.h.methods.M.args' must be an integer from 0 to 32");
    fails("{'hubs': {'h': {'path': '/h', 'methods': {'M': {}}}}}",
          "test.json: 'hubs.h.methods.M.action' is required");
}

/* workers (default 0: one per core, 0 .. 64), latency (default "efficient")
 * and coalesce_ms (default 40, 1 .. 1000). */
static void test_performance(void)
{
    cfg c;
    cfg_defaults(&c);
    CHECK(c.workers == 0 && c.latency == CFG_LATENCY_EFFICIENT && c.coalesce_ms == 40);
    if (load_ok(&c, "{'workers': 64, 'latency': 'low', 'coalesce_ms': 1000}") == 0)
        CHECK(c.workers == 64 && c.latency == CFG_LATENCY_LOW && c.coalesce_ms == 1000);
    if (load_ok(&c, "{'workers': 1, 'latency': 'efficient', 'coalesce_ms': 1}") == 0)
        CHECK(c.workers == 1 && c.latency == CFG_LATENCY_EFFICIENT && c.coalesce_ms == 1);
    fails("{'workers': 65}", "test.json: 'workers' must be an integer from 0 to 64");
    fails("{'workers': -1}", "test.json: 'workers' must be an integer from 0 to 64");
    fails("{'latency': 'fast'}", "test.json: 'latency': expected low or efficient, got 'fast'");
    fails("{'latency': 1}", "test.json: 'latency' must be a string");
    fails("{'coalesce_ms': 0}", "test.json: 'coalesce_ms' must be an integer from 1 to 1000");
    fails("{'coalesce_ms': 1001}", "test.json: 'coalesce_ms' must be an integer from 1 to 1000");
}

/* A failing auth, cors or rate key leaves every field as it was. */
static void test_access_error_leaves_config_unchanged(void)
{
    cfg c, before;
    char err[CFG_ERR_MAX];
    CHECK(load(&c,
               dq("{'auth': {'jwt': {'hmac_secret': 'one'}, 'api_keys': ['0123456789abcdef']},"
                  " 'cors': {'allowed_origins': ['https://a.example']},"
                  " 'limits': {'rate': {'publish': {'per_s': 3}}}}"),
               err) == 0);
    before = c;
    CHECK(cfg_load_string(&c,
                          dq("{'auth': {'jwt': {'hmac_secret': 'two'}, 'rooms': [{'match': 'a'}],"
                             " 'api_keys': []}, 'cors': {'allowed_origins': ['*']},"
                             " 'limits': {'rate': {'publish': {'per_s': 4}}},"
                             " 'history': {'size': -1}}"),
                          "t.json", err) == -1);
    CHECK(memcmp(&c, &before, sizeof(c)) == 0);
    CHECK_STR(c.auth.jwt.hmac_secret, "one");
}

static void test_example_file_is_the_defaults(void)
{
    cfg c, d;
    char err[CFG_ERR_MAX] = "";
    /* Start from a config differing in every key: loading the example must
     * set every one of them back to its default. */
    CHECK(load(&c, all_keys_json, err) == 0);
    cfg_defaults(&d);
    CHECK(!cfg_equal(&c, &d));
    int rc = cfg_load_file(&c, "config.example.json", err);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "  %s (run from the repo root)\n", err);
    CHECK(cfg_equal(&c, &d));
}

/* presence.max_listed (default 1000, 0 .. 1000000) and the rule field
 * presence_events (default false). */
static void test_presence(void)
{
    cfg c;
    cfg_defaults(&c);
    CHECK(c.presence.max_listed == 1000);
    if (load_ok(&c, "{'presence': {'max_listed': 0}}") == 0)
        CHECK(c.presence.max_listed == 0);
    if (load_ok(&c, "{'presence': {'max_listed': 1000000}}") == 0)
        CHECK(c.presence.max_listed == 1000000);
    fails("{'presence': {'max_listed': 1000001}}",
          "test.json: 'presence.max_listed' must be an integer from 0 to 1000000");
    fails("{'presence': {'max_listed': -1}}",
          "test.json: 'presence.max_listed' must be an integer from 0 to 1000000");
    if (load_ok(&c, "{'auth': {'rooms': [{'match': 'chat.*', 'subscribe': 'token',"
                    " 'presence_events': true}, {'match': '*'}]}}") == 0) {
        CHECK(c.auth.rooms[0].presence_events && !c.auth.rooms[1].presence_events);
        CHECK(access_room_presence_events(&c, "chat.lobby"));
        CHECK(!access_room_presence_events(&c, "other"));
    }
    fails("{'auth': {'rooms': [{'match': '*', 'presence_events': 1}]}}",
          "test.json: 'auth.rooms[0].presence_events' must be true or false");
    cfg_defaults(&c);
    CHECK(!access_room_presence_events(&c, "chat.lobby")); /* auth off: no rules */
}

TEST_MAIN("config", TEST(test_presence), TEST(test_defaults),
          TEST(test_empty_object_keeps_defaults), TEST(test_subset_keeps_other_defaults),
          TEST(test_every_key), TEST(test_unknown_keys), TEST(test_wrong_types),
          TEST(test_out_of_range), TEST(test_range_edges_accepted),
          TEST(test_error_leaves_config_unchanged), TEST(test_malformed_json),
          TEST(test_top_level_not_object), TEST(test_listen), TEST(test_listen_host_length),
          TEST(test_listen_in_json), TEST(test_log_level), TEST(test_log_section),
          TEST(test_missing_file), TEST(test_directory_is_not_a_file), TEST(test_load_file),
          TEST(test_signalr), TEST(test_backplane), TEST(test_hubs_replace_defaults),
          TEST(test_hubs_replace_earlier_load), TEST(test_hubs_empty), TEST(test_method_defaults),
          TEST(test_hub_structure_errors), TEST(test_method_errors), TEST(test_publish_targets),
          TEST(test_names), TEST(test_paths), TEST(test_uniqueness), TEST(test_limits),
          TEST(test_hub_error_leaves_config_unchanged), TEST(test_web_root),
          TEST(test_memory_limits), TEST(test_backpressure_keys), TEST(test_auth_defaults),
          TEST(test_auth_jwt), TEST(test_auth_rooms), TEST(test_auth_api_keys), TEST(test_cors),
          TEST(test_rate_limits), TEST(test_access_error_leaves_config_unchanged),
          TEST(test_example_file_is_the_defaults), TEST(test_upstream), TEST(test_performance))
