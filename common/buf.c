/* SPDX-License-Identifier: MIT */
/*
 * buf.c - growable byte buffers and the string hash (buf.h).
 */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

bool buf_append(buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return false;
        b->data = d;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return true;
}

void buf_free(buf *b)
{
    free(b->data);
    *b = (buf){0};
}

char *buf_take(buf *b)
{
    char *d = b->data;
    *b = (buf){0};
    return d;
}

uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}
