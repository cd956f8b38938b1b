/* SPDX-License-Identifier: MIT */
/*
 * fuzz_signalr_ticket.c - libFuzzer harness for the connect proxy's
 * verdict in a clustered connection token (transports/signalr/ticket.c):
 * any bytes as a token are refused or verified without a crash, and a
 * token made from a principal whose user is the input reads back as it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transports/signalr/ticket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret-0123456789abcdef0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *error = NULL;
    access_unref(sr_ticket_read(SECRET, "chat", (const char *)data, size, &error));
    /* the input up to its first NUL (at most 300 bytes) as a user id; not
     * strndup, which ASan's strict string checks read as a C string */
    size_t n = size > 300 ? 300 : size;
    const uint8_t *nul = memchr(data, 0, n);
    if (nul)
        n = (size_t)(nul - data);
    char *user = malloc(n + 1);
    if (user) {
        memcpy(user, data, n);
        user[n] = '\0';
    }
    access_principal *p = user && *user ? access_principal_new(user, 5, false, false) : NULL;
    char *t = p ? sr_ticket_make(SECRET, "chat", "AAAAAAAAAAAAAAAAAAAAAA", p, &error) : NULL;
    if (t) {
        access_principal *q = sr_ticket_read(SECRET, "chat", t, strlen(t), &error);
        if (!q || !q->user || strcmp(q->user, user) || q->expires_ms != 5)
            abort();
        access_unref(q);
    }
    free(t);
    access_unref(p);
    free(user);
    return 0;
}
