/* SPDX-License-Identifier: MIT */
/*
 * fuzz_presence.c - libFuzzer harness for the parser of the presence events
 * on a room's Redis channel (hub/bp_codec.c bp_parse_presence, what
 * redis_presence.c's rb_presence_message reads: "!p join USER",
 * "!p leave USER"; and bp_parse_presence_sync, "!p sync NODE\nUSERS",
 * who is present for one node). The input is one channel message, in a buffer of
 * exactly its size (ASan sees any read past it). Nothing may crash or read
 * past the message, and the verdict must match the format: an event only
 * for the prefix, "join " or "leave ", then a user of at least one byte
 * with no NUL, the user pointing at the rest of the message; "not
 * presence" exactly when the prefix is missing (then the message is read
 * as a room message, bp_parse_message, as redis_rooms.c does); malformed
 * for anything else.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/bp_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether p (len bytes) starts with the len(s) bytes of s. */
static bool starts(const char *p, size_t len, const char *s)
{
    size_t n = strlen(s);
    return len >= n && !memcmp(p, s, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    if (size)
        memcpy(p, data, size);
    bool join = false;
    const char *user = NULL;
    size_t user_len = 0;
    bp_presence_kind k = bp_parse_presence(p, size, &join, &user, &user_len);

    size_t pre = strlen(BP_PRESENCE_PREFIX);
    bool has_prefix = starts(p, size, BP_PRESENCE_PREFIX);
    const char *rest = p + (has_prefix ? pre : 0);
    size_t rest_len = has_prefix ? size - pre : 0;
    size_t verb = starts(rest, rest_len, "join ") ? 5 : starts(rest, rest_len, "leave ") ? 6 : 0;
    bool well_formed =
        has_prefix && verb && rest_len > verb && !memchr(rest + verb, '\0', rest_len - verb);

    switch (k) {
    case BP_PRESENCE_NONE:
        if (has_prefix)
            abort();
        {
            char epoch[MSG_EPOCH_MAX], origin[BP_NODE_ID_LEN + 1], target[BP_TARGET_MAX];
            bp_entry e;
            (void)bp_parse_message(p, size, epoch, &e, origin, target);
        }
        break;
    case BP_PRESENCE_EVENT:
        if (!well_formed || join != (verb == 5) || user != rest + verb ||
            user_len != rest_len - verb || user_len == 0 || user + user_len != p + size)
            abort();
        break;
    case BP_PRESENCE_MALFORMED:
        if (!has_prefix || well_formed || starts(rest, rest_len, "sync "))
            abort();
        break;
    case BP_PRESENCE_SYNC: {
        if (!has_prefix || !starts(rest, rest_len, "sync "))
            abort();
        const char *node = NULL, *users = NULL;
        size_t node_len = 0, users_len = 0;
        if (bp_parse_presence_sync(p, size, &node, &node_len, &users, &users_len) &&
            (node != rest + 5 || node_len == 0 || node[node_len] != '\n' ||
             users != node + node_len + 1 || users + users_len != p + size ||
             memchr(node, '\0', node_len)))
            abort();
        break;
    }
    default:
        abort();
    }
    free(p);
    return 0;
}
