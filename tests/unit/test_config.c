/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - unit tests for gateway/config.c: the defaults, overlaying
 * JSON onto them, every error message (key names, ranges, line:col), listen
 * and log_level parsing, and that config.example.json is exactly the defaults.
 */
#include "gateway/config.h"
#include "tests/unit/test.h"

#include <stdlib.h>
#include <unistd.h>

/* Loads json onto the defaults as "test.json"; returns the result code. */
static int load(cfg *c, const char *json, char err[CFG_ERR_MAX])
{
    cfg_defaults(c);
    err[0] = '\0';
    return cfg_load_string(c, json, "test.json", err);
}

/* Loading json must fail with a message containing want. */
static void check_fails(const char *json, const char *want)
{
    cfg c;
    char err[CFG_ERR_MAX];
    int rc = load(&c, json, err);
    CHECK(rc == -1);
    if (!strstr(err, want))
        fprintf(stderr, "  for %s\n  got  \"%s\"\n  want \"%s\"\n", json, err, want);
    CHECK(strstr(err, want) != NULL);
}

/* Every field of a and b is equal. */
static bool cfg_equal(const cfg *a, const cfg *b)
{
    return strcmp(a->listen_host, b->listen_host) == 0 && a->listen_port == b->listen_port &&
           strcmp(a->log_level, b->log_level) == 0 &&
           a->transports.websocket == b->transports.websocket &&
           a->transports.sse == b->transports.sse &&
           a->transports.long_polling == b->transports.long_polling &&
           a->limits.max_message_bytes == b->limits.max_message_bytes &&
           a->limits.send_queue == b->limits.send_queue &&
           a->limits.poll_timeout_s == b->limits.poll_timeout_s &&
           a->limits.keepalive_s == b->limits.keepalive_s &&
           a->limits.header_timeout_s == b->limits.header_timeout_s &&
           a->limits.max_header_bytes == b->limits.max_header_bytes &&
           a->limits.max_connections == b->limits.max_connections &&
           a->rooms.client_publish == b->rooms.client_publish &&
           a->history.size == b->history.size && a->history.ttl_s == b->history.ttl_s;
}

/* Sets every key to a value other than its default. */
static const char *const all_keys_json =
    "{\"listen\": \"0.0.0.0:9090\", \"log_level\": \"debug\","
    " \"transports\": {\"websocket\": false, \"sse\": false, \"long_polling\": false},"
    " \"limits\": {\"max_message_bytes\": 1000, \"send_queue\": 7, \"poll_timeout_s\": 60,"
    "   \"keepalive_s\": 30, \"header_timeout_s\": 10, \"max_header_bytes\": 4096,"
    "   \"max_connections\": 500},"
    " \"rooms\": {\"client_publish\": false},"
    " \"history\": {\"size\": 0, \"ttl_s\": 0}}";

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
    CHECK(c.limits.max_header_bytes == 8192);
    CHECK(c.limits.max_connections == 0);
    CHECK(c.rooms.client_publish);
    CHECK(c.history.size == 1000);
    CHECK(c.history.ttl_s == 300);
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
    CHECK(c.limits.max_header_bytes == 4096);
    CHECK(c.limits.max_connections == 500);
    CHECK(!c.rooms.client_publish);
    CHECK(c.history.size == 0);
    CHECK(c.history.ttl_s == 0);
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
                "test.json: 'rooms.client_publish' must be true or false");
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

TEST_MAIN("config", TEST(test_defaults), TEST(test_empty_object_keeps_defaults),
          TEST(test_subset_keeps_other_defaults), TEST(test_every_key), TEST(test_unknown_keys),
          TEST(test_wrong_types), TEST(test_out_of_range), TEST(test_range_edges_accepted),
          TEST(test_error_leaves_config_unchanged), TEST(test_malformed_json),
          TEST(test_top_level_not_object), TEST(test_listen), TEST(test_listen_host_length),
          TEST(test_listen_in_json), TEST(test_log_level), TEST(test_missing_file),
          TEST(test_directory_is_not_a_file), TEST(test_load_file),
          TEST(test_example_file_is_the_defaults))
