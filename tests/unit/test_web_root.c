/* SPDX-License-Identifier: MIT */
/*
 * test_web_root.c - unit tests for gateway/web_root.c and web.root in a
 * config file: the default found next to an installed binary, in a source
 * tree, else the prefix baked in; a relative web.root in a config file taken
 * from the file's directory (issue #17: crier started from another
 * directory served no pages).
 */
#include "gateway/config.h"
#include "gateway/config_path.h"
#include "gateway/web_root.h"
#include "tests/unit/test.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[PATH_MAX]; /* a scratch tree, made by each test */

static void make_tmp(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/crier-web-root-XXXXXX");
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

/* tmp + "/" + the formatted rest, in a static buffer of its own per slot. */
static const char *at(int slot, const char *fmt, ...)
{
    static char bufs[4][PATH_MAX * 2];
    char rest[PATH_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof(rest), fmt, ap);
    va_end(ap);
    snprintf(bufs[slot], sizeof(bufs[slot]), "%s/%s", tmp, rest);
    return bufs[slot];
}

static void mkdirs(const char *rel)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", tmp, rel);
    CHECK(system(cmd) == 0);
}

static void touch(const char *rel, const char *text)
{
    FILE *f = fopen(at(3, "%s", rel), "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A binary under PREFIX/bin finds PREFIX/share/crier/web, wherever PREFIX
 * is (a DESTDIR, a moved tree), before the prefix baked in. */
static void test_installed_layout(void)
{
    char out[PATH_MAX];
    make_tmp();
    mkdirs("usr/bin");
    mkdirs("usr/share/crier/web");
    CHECK(web_root_pick(at(0, "usr/bin/crier"), "/nonexistent/builtin", out, sizeof(out)));
    CHECK_STR(out, at(1, "usr/share/crier/web"));
    rm_tmp();
}

/* build/crier and build/test/crier find the source tree's web/ (it holds
 * crier.js); a web/ without it is not taken for the source tree. */
static void test_source_tree(void)
{
    char out[PATH_MAX];
    make_tmp();
    mkdirs("build/test");
    mkdirs("web");
    CHECK(web_root_pick(at(0, "build/crier"), "/nonexistent/builtin", out, sizeof(out)));
    CHECK_STR(out, "/nonexistent/builtin");
    touch("web/crier.js", "//");
    CHECK(web_root_pick(at(0, "build/crier"), "/nonexistent/builtin", out, sizeof(out)));
    CHECK_STR(out, at(1, "web"));
    CHECK(web_root_pick(at(0, "build/test/crier"), "/nonexistent/builtin", out, sizeof(out)));
    CHECK_STR(out, at(1, "web"));
    rm_tmp();
}

/* Nothing near the binary (or no binary path): the prefix baked in, also
 * when it does not exist, so that the start-up warning names it. */
static void test_builtin_fallback(void)
{
    char out[PATH_MAX];
    make_tmp();
    mkdirs("opt");
    CHECK(web_root_pick(at(0, "opt/crier"), "/nonexistent/builtin", out, sizeof(out)));
    CHECK_STR(out, "/nonexistent/builtin");
    CHECK(web_root_pick(NULL, "/usr/share/crier/web", out, sizeof(out)));
    CHECK_STR(out, "/usr/share/crier/web");
    CHECK(!web_root_pick(NULL, "/usr/share/crier/web", out, 8)); /* does not fit */
    const char *builtin = web_root_builtin();
    CHECK(builtin[0] == '/' && strlen(builtin) > 16 &&
          !strcmp(builtin + strlen(builtin) - 16, "/share/crier/web"));
    rm_tmp();
}

static void test_from_config(void)
{
    char out[64];
    CHECK(config_path_from_file("/etc/crier/config.json", "web", out, sizeof(out)));
    CHECK_STR(out, "/etc/crier/web");
    CHECK(config_path_from_file("/etc/crier/config.json", "../www/", out, sizeof(out)));
    CHECK_STR(out, "/etc/crier/../www/");
    CHECK(config_path_from_file("/etc/crier/config.json", "/srv/web", out, sizeof(out)));
    CHECK_STR(out, "/srv/web");
    CHECK(config_path_from_file("/etc/crier/config.json", "", out, sizeof(out)));
    CHECK_STR(out, "");
    CHECK(config_path_from_file("conf/c.json", "web", out, sizeof(out)));
    CHECK_STR(out, "conf/web");
    CHECK(config_path_from_file("c.json", "web", out, sizeof(out)));
    CHECK_STR(out, "web");
    CHECK(config_path_from_file("/c.json", "web", out, sizeof(out)));
    CHECK_STR(out, "/web");
    CHECK(config_path_from_file(NULL, "web", out, sizeof(out)));
    CHECK_STR(out, "web");
    CHECK(!config_path_from_file(
        "/etc/crier/config.json",
        "a-rather-long-directory-name-that-will-not-fit-in-sixty-four-bytes", out, sizeof(out)));
}

/* A config file's relative web.root is taken from its directory, whatever
 * the current directory; an absolute one as it is; a relative one that is
 * not there fails, naming the rule. */
static void test_config_file_relative(void)
{
    cfg c;
    char err[CFG_ERR_MAX] = "";
    make_tmp();
    mkdirs("etc/crier/pages");
    touch("etc/crier/rel.json", "{\"web\": {\"root\": \"pages\"}}");
    touch("etc/crier/abs.json", "{\"web\": {\"root\": \"/tmp\"}}");
    touch("etc/crier/bad.json", "{\"web\": {\"root\": \"missing\"}}");
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, at(0, "etc/crier/rel.json"), err) == 0);
    CHECK_STR(c.web.root, at(1, "etc/crier/pages"));
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, at(0, "etc/crier/abs.json"), err) == 0);
    CHECK_STR(c.web.root, "/tmp");
    cfg_defaults(&c);
    CHECK(cfg_load_file(&c, at(0, "etc/crier/bad.json"), err) == -1);
    CHECK(strstr(err, "'web.root': expected an existing directory (a relative path is taken from "
                      "the config file's directory), got 'missing'") != NULL);
    CHECK_STR(c.web.root, web_root_default());
    /* JSON text not from a file (tests): relative to the current directory. */
    CHECK(chdir(at(0, "etc/crier")) == 0);
    CHECK(cfg_load_string(&c, "{\"web\": {\"root\": \"pages\"}}", "t.json", err) == 0);
    CHECK_STR(c.web.root, "pages");
    CHECK(chdir("/") == 0);
    rm_tmp();
}

TEST_MAIN("web_root", TEST(test_installed_layout), TEST(test_source_tree),
          TEST(test_builtin_fallback), TEST(test_from_config), TEST(test_config_file_relative))
