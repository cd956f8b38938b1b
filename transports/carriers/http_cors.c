/* SPDX-License-Identifier: MIT */
/*
 * http_cors.c - CORS headers and preflight answers on libmicrohttpd
 * (http_cors.h) for the policy of common/cors.h. No state of its own.
 *
 * Threading: the MHD thread of the request's connection.
 */
#include "transports/carriers/http_cors.h"

#include <stdio.h>
#include <string.h>

#include "common/cors.h"
#include "transports/carriers/http_call.h"

/* The request's Origin when cors.allowed_origins allows it, else NULL. */
static const char *allowed_origin(struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    return origin && cors_origin_allowed(origin, strlen(origin)) ? origin : NULL;
}

void http_cors_add(struct MHD_Connection *conn, struct MHD_Response *r)
{
    if (!cors_enabled())
        return;
    bool wildcard = cors_answer_wildcard();
    if (!wildcard)
        MHD_add_response_header(r, "Vary", "Origin");
    const char *origin = allowed_origin(conn);
    if (!origin)
        return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", wildcard ? "*" : origin);
    if (cors_allow_credentials())
        MHD_add_response_header(r, "Access-Control-Allow-Credentials", "true");
    MHD_add_response_header(r, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
}

/* Room for "GET, HEAD, POST, DELETE, OPTIONS" (the router's method names). */
#define ALLOW_TEXT_MAX 64

enum MHD_Result http_cors_preflight(struct MHD_Connection *conn, const char *methods)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    bool checked = cors_enabled() && origin;
    if (checked && !allowed_origin(conn))
        return http_reply_error(conn, MHD_HTTP_FORBIDDEN, "origin not allowed");
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    char allow[ALLOW_TEXT_MAX];
    snprintf(allow, sizeof(allow), "%s, OPTIONS", methods);
    MHD_add_response_header(r, "Allow", allow);
    if (checked) {
        char age[16];
        snprintf(age, sizeof(age), "%u", cors_max_age_s());
        MHD_add_response_header(r, "Access-Control-Allow-Methods", methods);
        MHD_add_response_header(r, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
        MHD_add_response_header(r, "Access-Control-Max-Age", age);
        /* Chromium's Private Network Access: a public site's page asks
         * before it may reach an address on a private network. */
        const char *pna = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                      "Access-Control-Request-Private-Network");
        if (pna && !strcmp(pna, "true"))
            MHD_add_response_header(r, "Access-Control-Allow-Private-Network", "true");
    }
    return http_queue_uncached(conn, MHD_HTTP_NO_CONTENT, r, NULL);
}
