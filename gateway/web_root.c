/* SPDX-License-Identifier: MIT */
/*
 * web_root.c - web.root's default (see web_root.h). It is worked out once
 * per process (pthread_once) and read-only after; the other functions touch
 * only their arguments.
 */
#include "gateway/web_root.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CRIER_WEB_DIR
#define CRIER_WEB_DIR "/usr/local/share/crier/web"
#endif

const char *web_root_builtin(void)
{
    return CRIER_WEB_DIR;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Writes "dir/rel" to out; false when it does not fit. */
static bool join(char *out, size_t n, const char *dir, const char *rel)
{
    int len = snprintf(out, n, "%s/%s", dir, rel);
    return len >= 0 && (size_t)len < n;
}

/* Candidates 1 and 2 of web_root_pick, relative to the binary's directory. */
static bool pick_near_exe(const char *exe, char *out, size_t n)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    const char *slash = strrchr(exe, '/');
    if (!slash || (size_t)(slash - exe) >= sizeof(dir))
        return false;
    memcpy(dir, exe, (size_t)(slash - exe));
    dir[slash - exe] = '\0';
    static const char *const installed = "../share/crier/web";
    static const char *const source[] = {"../web", "../../web"};
    if (join(path, sizeof(path), dir, installed) && is_dir(path))
        return realpath(path, out) && strlen(out) < n;
    for (size_t i = 0; i < sizeof(source) / sizeof(source[0]); i++) {
        char marker[PATH_MAX + 48];
        if (join(path, sizeof(path), dir, source[i]) &&
            join(marker, sizeof(marker), path, "crier.js") && is_file(marker))
            return realpath(path, out) && strlen(out) < n;
    }
    return false;
}

bool web_root_pick(const char *exe, const char *builtin, char *out, size_t n)
{
    char found[PATH_MAX];
    if (exe && pick_near_exe(exe, found, sizeof(found))) {
        if (strlen(found) >= n)
            return false;
        strcpy(out, found);
        return true;
    }
    if (strlen(builtin) >= n)
        return false;
    strcpy(out, builtin);
    return true;
}

static char default_root[PATH_MAX];
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void find_default(void)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0)
        exe[len] = '\0';
    if (!web_root_pick(len > 0 ? exe : NULL, CRIER_WEB_DIR, default_root, sizeof(default_root)))
        snprintf(default_root, sizeof(default_root), "%s", CRIER_WEB_DIR);
}

const char *web_root_default(void)
{
    pthread_once(&default_once, find_default);
    return default_root;
}
