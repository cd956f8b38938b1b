/* SPDX-License-Identifier: MIT */
/*
 * memtrim.h - gives heap memory back to the OS after a burst is freed, so
 * that RSS falls once rooms and history expire. Timer thread only.
 */
#ifndef CRIER_MEMTRIM_H
#define CRIER_MEMTRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMTRIM_MIN_BYTES (8u * 1024 * 1024) /* freed since the last trim, at least */
#define MEMTRIM_EVERY_MS 5000                /* between two trims, at least */

/* Timer thread: freed bytes were just given back to the allocator. Once
 * MEMTRIM_MIN_BYTES have been, and no trim ran in the last
 * MEMTRIM_EVERY_MS, returns the allocator's free pages to the OS (glibc
 * malloc_trim; nothing elsewhere). Returns true when it trimmed. */
bool memtrim_freed(size_t freed, int64_t now_ms);

#endif
