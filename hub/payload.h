/* SPDX-License-Identifier: MIT */
/*
 * payload.h - turns what a client sent into the JSON value a message carries:
 * a JSON body is kept as it was sent (only surrounding white space trimmed),
 * any other body becomes a JSON string. Pure; any thread.
 */
#ifndef CRIER_PAYLOAD_H
#define CRIER_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

typedef struct payload {
    const char *data; /* the JSON text: points into the body, or into owned */
    size_t len;
    char *owned; /* set when the text was made here; free with payload_free */
} payload;

/* Returns 0, -EINVAL (is_json and the body is not valid JSON; err says why)
 * or -EILSEQ (a text body that is not valid UTF-8). */
int payload_from_body(payload *p, const char *body, size_t len, bool is_json, char *err,
                      size_t err_cap);

void payload_free(payload *p);

/* True for "application/json", with any parameters, case-insensitive. */
bool payload_is_json_type(const char *content_type);

#endif
