/* SPDX-License-Identifier: MIT */
/*
 * buf.h - a growable byte buffer, and the string hash the tables use.
 * No locking: a buffer belongs to whoever builds it.
 */
#ifndef CRIER_BUF_H
#define CRIER_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    char *data; /* owned; NULL while empty */
    size_t len, cap;
} buf;

/* Appends len bytes, doubling the capacity as needed. Returns false on
 * ENOMEM (the buffer is unchanged). */
bool buf_append(buf *b, const void *data, size_t len);

/* Frees the bytes; the buffer is empty again. */
void buf_free(buf *b);

/* Gives the bytes to the caller (who frees them); the buffer is empty. */
char *buf_take(buf *b);

/* FNV-1a of a NUL-terminated string. */
uint32_t str_hash(const char *s);

#endif
