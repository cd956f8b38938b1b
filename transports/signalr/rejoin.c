/* SPDX-License-Identifier: MIT */
/*
 * signalr/rejoin.c - parses the crier_rooms query parameter of a SignalR
 * connection (rejoin.h): percent-decoding, the entries ROOM:EPOCH:ID split
 * from the right (a room name may hold ':', an epoch and an id cannot), and
 * every limit. Pure; no state.
 */
#include "transports/signalr/rejoin.h"

#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

/* Percent-decodes (when decode) the len bytes at in into out (cap bytes,
 * NUL-terminated). Returns the length, or -1 (too long, a bad escape, or
 * a NUL). */
static long decode_into(const char *in, size_t len, bool decode, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (decode && c == '%') {
            int hi = i + 2 < len ? parse_hex_digit(in[i + 1]) : -1;
            int lo = i + 2 < len ? parse_hex_digit(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (decode && c == '+') {
            c = ' '; /* a form-encoded space: never valid below */
        }
        if (!c || n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return (long)n;
}

/* One entry ROOM:EPOCH:ID (NUL-terminated, changed in place) into r. */
static const char *parse_entry(char *e, sr_rejoin_room *r)
{
    static const char bad[] = "crier_rooms: each entry must be ROOM:EPOCH:ID (a room name, the "
                              "room's epoch and the last id seen; ROOM::0 for what history holds)";
    char *id = strrchr(e, ':');
    if (!id)
        return bad;
    *id++ = '\0';
    char *epoch = strrchr(e, ':');
    if (!epoch)
        return bad;
    *epoch++ = '\0';
    size_t room_len = strlen(e);
    if (!room_name_is_valid(e, room_len))
        return "crier_rooms: a room name must be 1 to 128 characters of A-Z a-z 0-9 . _ - :";
    if (*epoch && !hub_epoch_is_valid(epoch))
        return "crier_rooms: an epoch must be 1 to 15 letters or digits";
    if (!parse_u64(id, &r->since))
        return "crier_rooms: an id must be a non-negative integer";
    if (!*epoch && r->since)
        return "crier_rooms: an id other than 0 needs the room's epoch";
    memcpy(r->room, e, room_len + 1);
    memcpy(r->epoch, epoch, strlen(epoch) + 1);
    return NULL;
}

const char *sr_rejoin_parse(const char *text, size_t len, bool decode, sr_rejoin **out)
{
    *out = NULL;
    char buf[SR_REJOIN_MAX_BYTES + 1];
    long n = decode_into(text, len, decode, buf, sizeof(buf));
    if (n < 0)
        return "crier_rooms: too long (" SR_REJOIN_LIMITS_TEXT ") or badly percent-encoded";
    if (n == 0)
        return NULL;
    size_t count = 1;
    for (long i = 0; i < n; i++)
        count += buf[i] == ',';
    if (count > SR_REJOIN_MAX_ROOMS)
        return "crier_rooms: too many rooms (" SR_REJOIN_LIMITS_TEXT ")";
    sr_rejoin *rj = calloc(1, sizeof(*rj) + count * sizeof(rj->rooms[0]));
    if (!rj)
        return "crier_rooms: out of memory";
    char *next = buf;
    const char *why = NULL;
    while (next && !why) {
        char *e = next;
        char *comma = strchr(e, ',');
        next = comma ? comma + 1 : NULL;
        if (comma)
            *comma = '\0';
        sr_rejoin_room *r = &rj->rooms[rj->n];
        why = parse_entry(e, r);
        for (size_t i = 0; !why && i < rj->n; i++)
            if (!strcmp(rj->rooms[i].room, r->room))
                why = "crier_rooms: a room is named twice";
        if (!why)
            rj->n++;
    }
    if (why) {
        free(rj);
        return why;
    }
    *out = rj;
    return NULL;
}
