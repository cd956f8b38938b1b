/* SPDX-License-Identifier: MIT */
/*
 * token_bucket.c - one token bucket's arithmetic (token_bucket.h).
 */
#include "common/token_bucket.h"

#define MILLI 1000

void token_bucket_fill(token_bucket *b, unsigned burst, int64_t now_ms)
{
    b->tokens_milli = (int64_t)(burst ? burst : 1) * MILLI;
    b->at_ms = now_ms;
    b->started = true;
}

int64_t token_bucket_take(token_bucket *b, unsigned per_s, unsigned burst, int64_t now_ms)
{
    int64_t rate = per_s ? per_s : 1; /* thousandths of a token a millisecond */
    int64_t full = (int64_t)(burst ? burst : 1) * MILLI;
    if (!b->started)
        token_bucket_fill(b, burst, now_ms);
    if (now_ms > b->at_ms) {
        int64_t add = (now_ms - b->at_ms) * rate;
        b->tokens_milli = add >= full - b->tokens_milli ? full : b->tokens_milli + add;
        b->at_ms = now_ms;
    }
    if (b->tokens_milli >= MILLI) {
        b->tokens_milli -= MILLI;
        return 0;
    }
    return (MILLI - b->tokens_milli + rate - 1) / rate; /* ms to the next token */
}

unsigned token_bucket_wait_s(int64_t wait_ms)
{
    if (wait_ms <= 0)
        return 0;
    int64_t s = wait_ms / MILLI + (wait_ms % MILLI != 0);
    return s > UINT32_MAX ? UINT32_MAX : (unsigned)s;
}
