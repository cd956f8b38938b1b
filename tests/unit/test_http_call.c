/* SPDX-License-Identifier: MIT */
/*
 * test_http_call.c - http_forget_headers (transports/carriers/http_call.c):
 * every header record of a response is freed (an idle event stream keeps
 * none once its header block is out), the response itself stays usable.
 */
#include "transports/carriers/http_call.h"
#include "tests/unit/test.h"

#include <microhttpd.h>

static enum MHD_Result count_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)key;
    (void)value;
    (*(unsigned *)cls)++;
    return MHD_YES;
}

static unsigned headers_of(struct MHD_Response *r)
{
    unsigned n = 0;
    MHD_get_response_headers(r, count_one, &n);
    return n;
}

static void test_forgets_every_header(void)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(2, "ok", MHD_RESPMEM_PERSISTENT);
    CHECK(r != NULL);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    MHD_add_response_header(r, "X-Crier-Connection-Id", "abcdefghijklmnopqrstuv");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    CHECK(headers_of(r) == 6);
    http_forget_headers(r);
    CHECK(headers_of(r) == 0);
    CHECK(MHD_get_response_header(r, "Content-Type") == NULL);
    http_forget_headers(r); /* none left: nothing to do */
    CHECK(headers_of(r) == 0);
    MHD_destroy_response(r);
}

static void test_same_name_twice(void)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    CHECK(r != NULL);
    MHD_add_response_header(r, "Vary", "Origin");
    MHD_add_response_header(r, "Vary", "Accept");
    http_forget_headers(r);
    CHECK(headers_of(r) == 0);
    MHD_destroy_response(r);
}

TEST_MAIN("http_call", TEST(test_forgets_every_header), TEST(test_same_name_twice))
