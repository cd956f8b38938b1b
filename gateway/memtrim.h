/* SPDX-License-Identifier: MIT */
/*
 * memtrim.h - gives heap memory back to the OS after a burst is freed, so
 * that RSS falls once rooms and history expire, or a burst of connections
 * (long polls answered) closes. Timer thread only.
 */
#ifndef CRIER_MEMTRIM_H
#define CRIER_MEMTRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMTRIM_MIN_BYTES (8u * 1024 * 1024) /* freed since the last trim, at least */
#define MEMTRIM_EVERY_MS 5000                /* between two trims, at least */
#define MEMTRIM_QUIET_MS 500                 /* a burst is over after this long without frees */

/* Timer thread, every tick: freed bytes were given back to the allocator
 * since the last call (0: none). Once MEMTRIM_MIN_BYTES have been, no trim
 * ran in the last MEMTRIM_EVERY_MS, and the burst has settled (nothing new
 * for MEMTRIM_QUIET_MS, or the first untrimmed free is MEMTRIM_EVERY_MS
 * old: a steady stream of frees is trimmed that often), returns the
 * allocator's free pages to the OS (glibc malloc_trim; nothing elsewhere).
 * Free memory amid the heap (connections closed while others stay) goes
 * back only so. Returns true when it trimmed. */
bool memtrim_freed(size_t freed, int64_t now_ms);

#endif
