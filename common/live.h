/* SPDX-License-Identifier: MIT */
/*
 * live.h - the configuration as it is now, for the parts a SIGHUP reload
 * may change (README "Reload"): an immutable copy of the whole cfg,
 * reference counted. The main thread swaps a new one in with live_set;
 * any thread reads it between live_acquire and live_release, and so never
 * sees a half-changed config. Before live_set (unit tests, start-up),
 * live_acquire returns NULL and callers use the config they were given.
 *
 * Threading: live_lock (docs/concurrency.md, level 6) guards only the
 * pointer to the current copy and its reference count's increment; nothing
 * is called under it. A copy is freed by whichever thread drops its last
 * reference.
 */
#ifndef CRIER_LIVE_H
#define CRIER_LIVE_H

#include "common/cfg.h"

/* Makes a copy of c the current config. Returns 0, or -1 (out of memory:
 * the current one stays). Main thread. */
int live_set(const cfg *c);

/* The current config with a reference taken, or NULL before live_set.
 * Any thread; pair with live_release. */
const cfg *live_acquire(void);

/* Drops a reference from live_acquire (NULL is ignored). */
void live_release(const cfg *c);

/* Drops the current copy (after the threads that read it have stopped). */
void live_fini(void);

/* Reloads so far (for the log and /metrics). */
unsigned live_generation(void);

#endif
