/* SPDX-License-Identifier: MIT */
/*
 * fuzz_request_head.c - libFuzzer harness for the acceptor's request head
 * reader (gateway/request_head.c): any bytes, whole or cut anywhere, must
 * give a result without a crash, a leak or an out-of-bounds read; a
 * complete head's spans lie inside the input, and its WebSocket check
 * answers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/request_head.h"

static void check_span(rh_span s, const char *base, size_t size)
{
    if (s.p && (s.p < base || s.p + s.len > base + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
            const char *err = NULL;
            if (h.upgrade_websocket && request_head_ws_error(&h, &err) && !err)
                abort();
        }
        request_head_free(&h);
    }
    free(copy);
    return 0;
}
