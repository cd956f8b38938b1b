/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ws_frames.c - libFuzzer harness for the unmasked-frame scanner
 * (transports/carriers/ws_guard.c). The first byte sets the HTTP head length and the
 * second a read size; the rest is the byte stream. Whatever the bytes, the
 * scanner must read in bounds, and feeding the stream in pieces must give
 * the same answer as feeding it whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transports/carriers/ws_guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t head = data[0], step = (size_t)data[1] + 1;
    size_t len = size - 2;
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return 0;
    memcpy(copy, data + 2, len);
    ws_frame_scan whole = {.head_left = head}, parts = {.head_left = head};
    size_t ok_whole = ws_frame_scan_feed(&whole, copy, len);
    size_t ok_parts = 0;
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        size_t ok = ws_frame_scan_feed(&parts, copy + i, n);
        ok_parts += ok;
        if (ok < n)
            break;
    }
    if (ok_whole > len || ok_whole != ok_parts || whole.unmasked != parts.unmasked ||
        (whole.unmasked == (ok_whole == len) && len))
        abort();
    free(copy);
    return 0;
}
