/* SPDX-License-Identifier: MIT */
/*
 * version.c - the version string baked in at build time (see version.h).
 * Read-only; any thread.
 */
#include "common/version.h"

#ifndef CRIER_VERSION
#define CRIER_VERSION "unknown"
#endif

const char *crier_version(void)
{
    return CRIER_VERSION;
}
