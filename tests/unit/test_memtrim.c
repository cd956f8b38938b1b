/* SPDX-License-Identifier: MIT */
/*
 * test_memtrim.c - when the timer gives freed heap back (gateway/memtrim.c):
 * only past MEMTRIM_MIN_BYTES, once a burst of frees has settled (quiet for
 * MEMTRIM_QUIET_MS), at most every MEMTRIM_EVERY_MS, and under a steady
 * stream of frees every MEMTRIM_EVERY_MS.
 */
#include "gateway/memtrim.h"
#include "tests/unit/test.h"

#define MIB (1024u * 1024)

/* One test: the module's state carries over from call to call. */
static void test_bursts_and_streams(void)
{
    int64_t t = 100000;
    /* A burst: nothing while it goes on, a trim once it has been quiet. */
    CHECK(!memtrim_freed(4 * MIB, t));
    CHECK(!memtrim_freed(6 * MIB, t + 100));
    CHECK(!memtrim_freed(0, t + 200));
    CHECK(!memtrim_freed(0, t + 100 + MEMTRIM_QUIET_MS - 1));
    CHECK(memtrim_freed(0, t + 100 + MEMTRIM_QUIET_MS));
    /* Too little since: no trim, however quiet. */
    t += 10000;
    CHECK(!memtrim_freed(MIB, t));
    CHECK(!memtrim_freed(0, t + 2 * MEMTRIM_QUIET_MS));
    /* A second burst soon after a trim waits for MEMTRIM_EVERY_MS. */
    int64_t last = t + 2 * MEMTRIM_QUIET_MS;
    CHECK(memtrim_freed(0, last) == false);
    t = 200000;
    CHECK(!memtrim_freed(9 * MIB, t));
    CHECK(memtrim_freed(0, t + MEMTRIM_QUIET_MS));
    CHECK(!memtrim_freed(9 * MIB, t + MEMTRIM_QUIET_MS + 100));
    CHECK(!memtrim_freed(0, t + MEMTRIM_QUIET_MS + 100 + MEMTRIM_QUIET_MS));
    CHECK(memtrim_freed(0, t + MEMTRIM_QUIET_MS + MEMTRIM_EVERY_MS));
    /* A steady stream never goes quiet: trimmed every MEMTRIM_EVERY_MS. */
    t = 300000;
    int trims = 0;
    for (int64_t now = t; now < t + 3 * MEMTRIM_EVERY_MS; now += 100)
        trims += memtrim_freed(MIB, now);
    CHECK(trims >= 2 && trims <= 3);
}

TEST_MAIN("memtrim", TEST(test_bursts_and_streams))
