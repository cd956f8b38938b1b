/* SPDX-License-Identifier: MIT */
/*
 * about.h - what `crier --version` prints: crier's version and the versions
 * of the libraries it runs on. Main thread, before anything starts.
 */
#ifndef CRIER_ABOUT_H
#define CRIER_ABOUT_H

#include <stdio.h>

/* Writes "crier VERSION" and one line per library to out. */
void about_print_versions(FILE *out);

#endif
