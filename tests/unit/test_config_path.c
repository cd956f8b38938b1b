/* SPDX-License-Identifier: MIT */
/*
 * test_config_path.c - unit tests for gateway/config_path.c and the file
 * paths of a config file: auth.api_keys_file and auth.jwt.public_key_file,
 * when relative, are taken from the config file's directory like web.root
 * (issue #17: crier started from another directory could not read its key
 * files); absolute ones are kept; JSON text from no file keeps them as they
 * are.
 */
#include "gateway/config.h"
#include "gateway/config_path.h"
#include "tests/unit/test.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp[PATH_MAX]; /* a scratch directory, made by each test */

static void make_tmp(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/crier-config-path-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void rm_tmp(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
}

/* Writes text to tmp/name; its path in out. */
static void write_config(const char *name, const char *text, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", tmp, name);
    FILE *f = fopen(out, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_from_file(void)
{
    char out[64];
    CHECK(config_path_from_file("/etc/crier/crier.json", "keys.txt", out, sizeof(out)));
    CHECK_STR(out, "/etc/crier/keys.txt");
    CHECK(config_path_from_file("/etc/crier/crier.json", "../jwt/pub.pem", out, sizeof(out)));
    CHECK_STR(out, "/etc/crier/../jwt/pub.pem");
    CHECK(config_path_from_file("/etc/crier/crier.json", "/srv/keys", out, sizeof(out)));
    CHECK_STR(out, "/srv/keys");
    CHECK(config_path_from_file("conf/crier.json", "keys", out, sizeof(out)));
    CHECK_STR(out, "conf/keys");
    CHECK(config_path_from_file("crier.json", "keys", out, sizeof(out)));
    CHECK_STR(out, "keys");
    CHECK(config_path_from_file("/crier.json", "keys", out, sizeof(out)));
    CHECK_STR(out, "/keys");
    CHECK(config_path_from_file(NULL, "keys", out, sizeof(out)));
    CHECK_STR(out, "keys");
    CHECK(!config_path_from_file("/etc/crier/crier.json",
                                 "a-file-name-that-is-long-enough-not-to-fit-in-64-bytes", out,
                                 sizeof(out)));
}

#define AUTH_CONFIG(keys, pem)                                                                     \
    "{\"auth\": {\"api_keys_file\": \"" keys "\", \"jwt\": {\"public_key_file\": \"" pem "\"}}}"

/* Relative key files of a config file name files next to it, whatever the
 * current directory; absolute ones stay. */
static void test_auth_key_files(void)
{
    cfg c;
    char err[CFG_ERR_MAX] = "", path[PATH_MAX + 32], want[PATH_MAX + 64];
    make_tmp();
    CHECK(chdir("/") == 0);
    write_config("rel.json", AUTH_CONFIG("api-keys.txt", "keys/jwt.pem"), path, sizeof(path));
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, path, err) == 0);
    snprintf(want, sizeof(want), "%s/api-keys.txt", tmp);
    CHECK_STR(c.auth.api_keys_file, want);
    snprintf(want, sizeof(want), "%s/keys/jwt.pem", tmp);
    CHECK_STR(c.auth.jwt.public_key_file, want);

    write_config("abs.json", AUTH_CONFIG("/srv/api-keys.txt", "/srv/jwt.pem"), path, sizeof(path));
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, path, err) == 0);
    CHECK_STR(c.auth.api_keys_file, "/srv/api-keys.txt");
    CHECK_STR(c.auth.jwt.public_key_file, "/srv/jwt.pem");

    /* a config file named relative to the current directory: so are its files */
    CHECK(chdir(tmp) == 0);
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, "./rel.json", err) == 0);
    CHECK_STR(c.auth.api_keys_file, "./api-keys.txt");
    CHECK_STR(c.auth.jwt.public_key_file, "./keys/jwt.pem");
    CHECK(chdir("/") == 0);

    /* JSON text from no file (tests): as written */
    cfg_defaults(&c);
    CHECK(cfg_load_string(&c, AUTH_CONFIG("api-keys.txt", "jwt.pem"), "t.json", err) == 0);
    CHECK_STR(c.auth.api_keys_file, "api-keys.txt");
    CHECK_STR(c.auth.jwt.public_key_file, "jwt.pem");
    rm_tmp();
}

/* A relative path that fits as written but not with the directory put in
 * front is refused, naming the key and the rule. */
static void test_too_long_with_directory(void)
{
    cfg c;
    char err[CFG_ERR_MAX] = "", path[PATH_MAX + 32], name[520], text[1200];
    make_tmp();
    memset(name, 'k', 500);
    name[500] = '\0';
    snprintf(text, sizeof(text), "{\"auth\": {\"api_keys_file\": \"%s\"}}", name);
    write_config("long1.json", text, path, sizeof(path));
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, path, err) == -1);
    CHECK(strstr(err, "'auth.api_keys_file': expected a path of at most 511 bytes with the "
                      "config file's directory") != NULL);
    snprintf(text, sizeof(text), "{\"auth\": {\"jwt\": {\"public_key_file\": \"%s\"}}}", name);
    write_config("long2.json", text, path, sizeof(path));
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, path, err) == -1);
    CHECK(strstr(err, "'auth.jwt.public_key_file' must be a path of at most 511 bytes with the "
                      "config file's directory") != NULL);
    rm_tmp();
}

TEST_MAIN("config_path", TEST(test_from_file), TEST(test_auth_key_files),
          TEST(test_too_long_with_directory))
