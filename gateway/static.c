/* SPDX-License-Identifier: MIT */
/*
 * static.c - serves files under the web root (web.root, default "web"):
 * the browser client and the demo pages. A path is resolved with realpath()
 * and must stay inside the root, so "..", encoded dots and symbolic links
 * that lead out all end in 404. Files are read whole, up to a bound.
 */
#include "gateway/static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#define TAG "static"
#define MAX_FILE_BYTES (4u << 20)

static char root[PATH_MAX];
static size_t root_len;

int static_init(const cfg *c)
{
    root_len = 0;
    if (!c->web.root[0])
        return 0; /* pages switched off */
    if (!realpath(c->web.root, root)) {
        /* Only the built-in default gets here: a configured web.root that is
         * not a directory fails the config (exit 2, config.c). */
        LOG_WARN(TAG, "web.root \"%s\": %s; pages are not served (set web.root, or \"\" for none)",
                 c->web.root, strerror(errno));
        return -1;
    }
    root_len = strlen(root);
    return 0;
}

bool static_enabled(void)
{
    return root_len > 0;
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/* Resolves url under the root into out. False when it does not exist, is
 * not a regular file, or leads outside the root. */
static bool resolve(const char *url, char out[PATH_MAX])
{
    char joined[PATH_MAX];
    size_t len = strlen(url);
    if (strstr(url, "/../") || (len >= 3 && !strcmp(url + len - 3, "/..")))
        return false;
    int n = snprintf(joined, sizeof(joined), "%s%s", root, strcmp(url, "/") ? url : "/index.html");
    if (n < 0 || (size_t)n >= sizeof(joined) || !realpath(joined, out))
        return false;
    if (strncmp(out, root, root_len) || out[root_len] != '/')
        return false;
    struct stat st;
    return !stat(out, &st) && S_ISREG(st.st_mode) && st.st_size <= MAX_FILE_BYTES;
}

bool static_exists(const char *url)
{
    char path[PATH_MAX];
    return root_len && resolve(url, path);
}

bool static_is_page(const char *url, const char *page)
{
    char a[PATH_MAX], b[PATH_MAX];
    return root_len && resolve(url, a) && resolve(page, b) && !strcmp(a, b);
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *data = NULL;
    if (!fstat(fd, &st) && st.st_size <= MAX_FILE_BYTES &&
        (data = malloc((size_t)st.st_size + 1)) != NULL) {
        ssize_t got = read(fd, data, (size_t)st.st_size);
        if (got != st.st_size) {
            free(data);
            data = NULL;
        } else {
            *len = (size_t)got;
        }
    }
    close(fd);
    return data;
}

enum MHD_Result static_handle(http_call *call, const char *url)
{
    char path[PATH_MAX];
    size_t len = 0;
    char *data = resolve(url, path) ? read_file(path, &len) : NULL;
    if (!data)
        return http_reply_not_found(call->conn, url);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", content_type(path));
    /* Pages change with deployments: revalidate, never serve stale. */
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = http_queue(call->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}
