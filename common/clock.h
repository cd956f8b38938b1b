/* SPDX-License-Identifier: MIT */
/*
 * clock.h - the process's two clocks in milliseconds: monotonic (timers,
 * deadlines, ages) and wall (what nodes compare, e.g. a backplane message's
 * publish time). Any thread.
 */
#ifndef CRIER_CLOCK_H
#define CRIER_CLOCK_H

#include <stdint.h>

/* Milliseconds in a second: the limits configured in seconds become
 * deadlines in milliseconds. */
#define MS_PER_S 1000

/* Monotonic milliseconds (CLOCK_MONOTONIC): every timer and deadline. */
int64_t clock_now_ms(void);

/* Wall-clock milliseconds since the epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);

#endif
