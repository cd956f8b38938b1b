/* SPDX-License-Identifier: MIT */
/*
 * msg_check.h - a check shared by the unit tests of message encodings:
 * whether an encoding holds exactly the expected bytes (and if not, what
 * it holds, on stderr).
 */
#ifndef CRIER_TEST_MSG_CHECK_H
#define CRIER_TEST_MSG_CHECK_H

#include <stdio.h>
#include <string.h>

#include "hub/message.h"

/* b holds exactly the bytes of want. */
static inline int bytes_eq(msg_bytes b, const char *want)
{
    size_t n = strlen(want);
    int ok = b.base && b.len == n && memcmp(b.base, want, n) == 0;
    if (!ok)
        fprintf(stderr, "  got  \"%.*s\" (%zu)\n  want \"%s\" (%zu)\n", b.base ? (int)b.len : 6,
                b.base ? b.base : "(null)", b.len, want, n);
    return ok;
}

#endif
