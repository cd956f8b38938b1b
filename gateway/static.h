/* SPDX-License-Identifier: MIT */
/*
 * static.h - the web pages: GET of files under the configured web root.
 * Handlers run on the MHD thread.
 */
#ifndef CRIER_STATIC_H
#define CRIER_STATIC_H

#include "common/cfg.h"
#include "transports/carriers/http_call.h"

/* Resolves the web root once. Returns 0, or -1 when it does not exist (the
 * pages are then not served, and a warning is logged). */
int static_init(const cfg *c);

/* True when the web root is served at all. */
bool static_enabled(void);

/* True when url names a file that static_handle would serve. */
bool static_exists(const char *url);

/* True when url names the same file under the web root as page does (e.g.
 * "/dashboard.html": "//dashboard.html" and a link to it name it too). */
bool static_is_page(const char *url, const char *page);

/* GET of any path no other route takes. */
enum MHD_Result static_handle(http_call *call, const char *url);

#endif
