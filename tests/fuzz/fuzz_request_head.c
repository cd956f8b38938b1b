/* SPDX-License-Identifier: MIT */
/*
 * fuzz_request_head.c - libFuzzer harness for the acceptor's request head
 * reader (gateway/request_head.c): any bytes, whole or cut anywhere, must
 * give a result without a crash, a leak or an out-of-bounds read; a
 * complete head's spans lie inside the input, and its WebSocket check
 * and origin check (common/cors.c, on its Origin and Host) answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cors.h"
#include "gateway/request_head.h"

static void check_span(rh_span s, const char *base, size_t size)
{
    if (s.p && (s.p < base || s.p + s.len > base + size))
        abort();
}

/* The origin policy the checks below run against. */
static void cors_setup(void)
{
    static cfg conf;
    static int done;
    if (done++)
        return;
    strcpy(conf.cors.allowed_origins[0], "https://app.example");
    strcpy(conf.cors.allowed_origins[1], "http://127.0.0.1:3000");
    conf.cors.nallowed_origins = 2;
    cors_init(&conf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cors_setup();
    /* A copy of exactly size bytes, so ASan sees any read past the end. */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    /* the whole input, and a cut through it as a half-arrived head */
    size_t cuts[2] = {size, size / 2};
    for (int i = 0; i < 2; i++) {
        size_t cut = cuts[i];
        request_head h;
        rh_result r = request_head_parse(copy, cut, &h);
        if (r == RH_ERROR && (!h.status || !h.error))
            abort();
        if (r == RH_COMPLETE) {
            if (!h.path || !h.query || h.head_len > cut)
                abort();
            check_span(h.method, copy, cut);
            check_span(h.target, copy, cut);
            check_span(h.ws_key, copy, cut);
            check_span(h.ws_version, copy, cut);
            check_span(h.x_real_ip, copy, cut);
            check_span(h.x_forwarded_for, copy, cut);
            check_span(h.origin, copy, cut);
            check_span(h.host, copy, cut);
            if (!h.origin_count != !h.origin.p)
                abort();
            (void)cors_origin_allowed(h.origin.p, h.origin.len);
            (void)cors_same_origin(h.origin.p, h.origin.len, h.host.p, h.host.len);
            const char *err = NULL;
            if (h.upgrade_websocket && request_head_ws_error(&h, &err) && !err)
                abort();
        }
        request_head_free(&h);
    }
    free(copy);
    return 0;
}
