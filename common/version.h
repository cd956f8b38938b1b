/* SPDX-License-Identifier: MIT */
/*
 * version.h - crier's version string, one place for every caller (--version,
 * the start log line, crier_build_info, the dashboard's node list). The
 * Makefile passes CRIER_VERSION from `git describe` when the tree is a git
 * checkout, else from the VERSION file; a build without either says so.
 */
#ifndef CRIER_VERSION_H
#define CRIER_VERSION_H

/* The version this binary was built from, e.g. "0.6.0" or
 * "0.6.0-12-gabc1234". Never NULL. */
const char *crier_version(void);

#endif
