/* SPDX-License-Identifier: MIT */
/*
 * fuzz_rejoin.c - libFuzzer harness for the crier_rooms parser of a SignalR
 * connection's URL (transports/signalr/rejoin.c). The first byte says
 * whether the rest is still percent-encoded (odd: yes). What parses must
 * keep every rule: at most SR_REJOIN_MAX_ROOMS rooms, valid and distinct
 * room names, an epoch valid or empty (then the id is 0), and written
 * back as ROOM:EPOCH:ID,... it must parse to the same rooms.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "transports/signalr/rejoin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "%s\n", what);
        abort();
    }
}

static bool append(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool decode = data[0] & 1;
    sr_rejoin *rj = NULL;
    const char *why = sr_rejoin_parse((const char *)data + 1, size - 1, decode, &rj);
    must(!why || !rj, "an error with a result");
    if (!rj)
        return 0;
    must(rj->n >= 1 && rj->n <= SR_REJOIN_MAX_ROOMS, "room count out of bounds");
    buf b = {0};
    for (size_t i = 0; i < rj->n; i++) {
        const sr_rejoin_room *r = &rj->rooms[i];
        must(room_name_is_valid(r->room, strlen(r->room)), "an invalid room name");
        must(!r->epoch[0] ? r->since == 0 : hub_epoch_is_valid(r->epoch), "a bad epoch");
        for (size_t k = 0; k < i; k++)
            must(strcmp(rj->rooms[k].room, r->room) != 0, "a room twice");
        char id[32];
        snprintf(id, sizeof(id), "%" PRIu64, r->since);
        must((i == 0 || append(&b, ",")) && append(&b, r->room) && append(&b, ":") &&
                 append(&b, r->epoch) && append(&b, ":") && append(&b, id),
             "out of memory");
    }
    sr_rejoin *again = NULL;
    must(!sr_rejoin_parse(b.data, b.len, false, &again) && again,
         "written back, it does not parse");
    must(again->n == rj->n && !memcmp(again->rooms, rj->rooms, rj->n * sizeof(rj->rooms[0])),
         "written back, it parses to other rooms");
    free(again);
    free(rj);
    buf_free(&b);
    return 0;
}
