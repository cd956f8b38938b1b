/* SPDX-License-Identifier: MIT */
/*
 * about.c - `crier --version` (see about.h). A library's version comes from
 * the library at run time where it reports one (libwebsockets,
 * libmicrohttpd, jansson, libcurl, OpenSSL); hiredis and libjwt report none,
 * so theirs is the version crier was built against, marked "(build)".
 */
#include "gateway/about.h"

#include <string.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "common/version.h"

/* The Makefile passes libjwt's version from pkg-config. */
#ifndef CRIER_LIBJWT_VERSION
#define CRIER_LIBJWT_VERSION "unknown"
#endif

#define STR2(x) #x
#define STR(x) STR2(x)

/* lws says "4.1.6-" when built without a git hash: drop the dangling '-'. */
static void print_lws(FILE *out)
{
    const char *v = lws_get_library_version();
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '-')
        n--;
    fprintf(out, "libwebsockets %.*s\n", (int)n, v);
}

void about_print_versions(FILE *out)
{
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
    fprintf(out, "crier %s\n", crier_version());
    print_lws(out);
    fprintf(out, "libmicrohttpd %s\n", MHD_get_version());
    fprintf(out, "jansson %s\n", jansson_version_str());
    fprintf(out, "hiredis %s (build)\n",
            STR(HIREDIS_MAJOR) "." STR(HIREDIS_MINOR) "." STR(HIREDIS_PATCH));
    fprintf(out, "libjwt %s (build)\n", CRIER_LIBJWT_VERSION);
    fprintf(out, "libcurl %s\n", curl ? curl->version : "unknown");
#ifdef OPENSSL_VERSION_STRING
    fprintf(out, "openssl %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
#else
    fprintf(out, "openssl %s\n", OpenSSL_version(OPENSSL_VERSION));
#endif
}
