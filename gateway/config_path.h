/* SPDX-License-Identifier: MIT */
/*
 * config_path.h - a path written in a config file (web.root,
 * auth.api_keys_file, auth.jwt.public_key_file) taken from that file's
 * directory when it is relative, so that crier reads the same files
 * whatever directory it was started from. Pure string work; any thread.
 */
#ifndef CRIER_CONFIG_PATH_H
#define CRIER_CONFIG_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* value (a path as written in the config file config_path) made relative to
 * the directory of config_path when it is relative and not empty; else
 * value as it is (also when config_path is NULL: JSON text from no file).
 * Written to out (size n); false when the result does not fit. */
bool config_path_from_file(const char *config_path, const char *value, char *out, size_t n);

#endif
