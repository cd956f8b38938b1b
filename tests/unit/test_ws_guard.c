/* SPDX-License-Identifier: MIT */
/*
 * test_ws_guard.c - the frame scanner that finds unmasked client frames
 * (transports/carriers/ws_guard.c): it passes the HTTP head and masked frames of
 * every length form, split anywhere, and stops at the first unmasked one.
 */
#include "transports/carriers/ws_guard.h"

#include "tests/unit/test.h"

/* A client frame: opcode, payload of n bytes, masked or not. Returns its size. */
static size_t make_frame(unsigned char *out, unsigned opcode, size_t n, int masked)
{
    size_t i = 0;
    out[i++] = (unsigned char)(0x80 | opcode);
    unsigned char m = masked ? 0x80 : 0;
    if (n < 126) {
        out[i++] = (unsigned char)(m | n);
    } else if (n < 65536) {
        out[i++] = m | 126;
        out[i++] = (unsigned char)(n >> 8);
        out[i++] = (unsigned char)n;
    } else {
        out[i++] = m | 127;
        for (int k = 7; k >= 0; k--)
            out[i++] = (unsigned char)((unsigned long long)n >> (8 * k));
    }
    if (masked)
        for (int k = 0; k < 4; k++)
            out[i++] = (unsigned char)(k + 1);
    memset(out + i, 'x', n);
    return i + n;
}

static unsigned char stream[200000];

/* Feeds stream[0..len) in pieces of step bytes; returns the bytes passed. */
static size_t feed_in_steps(size_t head, size_t len, size_t step, int *unmasked)
{
    ws_frame_scan s = {.head_left = head};
    size_t passed = 0;
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        size_t ok = ws_frame_scan_feed(&s, stream + i, n);
        passed += ok;
        if (ok < n)
            break;
    }
    *unmasked = s.unmasked;
    return passed;
}

static void test_masked_frames_pass(void)
{
    size_t len = 0;
    memcpy(stream, "GET / HTTP/1.1\r\n\r\n", 18);
    len = 18;
    len += make_frame(stream + len, 1, 5, 1);
    len += make_frame(stream + len, 2, 300, 1);
    len += make_frame(stream + len, 1, 70000, 1);
    len += make_frame(stream + len, 9, 0, 1);
    size_t steps[] = {1, 2, 3, 7, 100, 4096, sizeof(stream)};
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        int unmasked = -1;
        CHECK(feed_in_steps(18, len, steps[k], &unmasked) == len);
        CHECK(!unmasked);
    }
}

static void test_unmasked_frame_stops(void)
{
    size_t len = 18, bad;
    memcpy(stream, "GET / HTTP/1.1\r\n\r\n", 18);
    len += make_frame(stream + len, 1, 200, 1);
    bad = len;
    len += make_frame(stream + len, 1, 5, 0);
    size_t steps[] = {1, 3, 64, sizeof(stream)};
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        int unmasked = 0;
        CHECK(feed_in_steps(18, len, steps[k], &unmasked) == bad + 1); /* up to its first byte */
        CHECK(unmasked);
    }
    /* a head with frame-like bytes in it is not scanned as frames */
    ws_frame_scan s = {.head_left = 4};
    CHECK(ws_frame_scan_feed(&s, (const unsigned char *)"\x81\x05zz\x81\x85", 6) == 6);
    CHECK(!s.unmasked);
    /* once unmasked, nothing more passes */
    s.unmasked = true;
    CHECK(ws_frame_scan_feed(&s, (const unsigned char *)"\x81\x85", 2) == 0);
}

TEST_MAIN("ws_guard", TEST(test_masked_frames_pass), TEST(test_unmasked_frame_stops))
