/* SPDX-License-Identifier: MIT */
/*
 * web_root.h - where the web pages are when the config does not say
 * (web.root's default; a relative web.root of a config file is taken from
 * that file's directory by config_path.h). Pure path work; any thread (the
 * default is worked out once, under pthread_once).
 */
#ifndef CRIER_WEB_ROOT_H
#define CRIER_WEB_ROOT_H

#include <stdbool.h>
#include <stddef.h>

/* The directory the Makefile bakes in: $(PREFIX)/share/crier/web. */
const char *web_root_builtin(void);

/* web.root's default for this process: web_root_pick() for the running
 * binary (/proc/self/exe) and web_root_builtin(). Never NULL. */
const char *web_root_default(void);

/* The first of these that is a directory, written to out (size n):
 *   1. EXE_DIR/../share/crier/web   an installed binary, wherever the prefix
 *                                   went (DESTDIR, a moved tree)
 *   2. EXE_DIR/../web, EXE_DIR/../../web, holding crier.js
 *                                   a binary in the source tree (build/crier,
 *                                   build/test/crier)
 *   3. builtin                      the install prefix baked in
 * where EXE_DIR is the directory of exe (an absolute path; NULL skips 1
 * and 2). When none is, builtin, so that the start-up warning names where
 * the pages were expected. False when the result does not fit in n. */
bool web_root_pick(const char *exe, const char *builtin, char *out, size_t n);

#endif
