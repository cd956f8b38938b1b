/* SPDX-License-Identifier: MIT */
/*
 * config_path.c - relative paths of a config file taken from the file's
 * directory (config_path.h). Touches only its arguments; any thread.
 */
#include "gateway/config_path.h"

#include <stdio.h>
#include <string.h>

bool config_path_from_file(const char *config_path, const char *value, char *out, size_t n)
{
    const char *slash = config_path ? strrchr(config_path, '/') : NULL;
    int len;
    if (!*value || value[0] == '/' || !config_path)
        len = snprintf(out, n, "%s", value);
    else if (!slash)
        len = snprintf(out, n, "%s", value); /* the file is in the current directory */
    else if (slash == config_path)
        len = snprintf(out, n, "/%s", value); /* a file at the top: /crier.json */
    else
        len = snprintf(out, n, "%.*s/%s", (int)(slash - config_path), config_path, value);
    return len >= 0 && (size_t)len < n;
}
