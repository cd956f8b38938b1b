/* SPDX-License-Identifier: MIT */
/*
 * signalr/rejoin.h - the rooms a SignalR connection rejoins when it starts,
 * from its URL's query (a hub with "rejoin_query": true; README "Gaps with
 * the official client"): crier_rooms=ROOM:EPOCH:ID,ROOM:EPOCH:ID,...
 * (percent-encoded or not), each room resumed after ID of EPOCH, or from
 * the start of its history for ROOM::0. Pure parsing; any thread.
 */
#ifndef CRIER_SIGNALR_REJOIN_H
#define CRIER_SIGNALR_REJOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/hub.h"

#define SR_REJOIN_PARAM "crier_rooms"
#define SR_REJOIN_MAX_BYTES 4096 /* of the value, percent-decoded */
#define SR_REJOIN_MAX_ROOMS 64
#define SR_REJOIN_LIMITS_TEXT "at most 4096 bytes and 64 rooms"

typedef struct sr_rejoin_room {
    char room[ROOM_NAME_MAX + 1];
    char epoch[MSG_EPOCH_MAX]; /* "": none (then since is 0: what history holds) */
    uint64_t since;
} sr_rejoin_room;

typedef struct sr_rejoin {
    size_t n;
    sr_rejoin_room rooms[]; /* n of them */
} sr_rejoin;

/* Parses the len bytes at text (the parameter's value; decode: it is still
 * percent-encoded, as in a raw query). Returns NULL with *out set (malloc'd,
 * free() it; NULL for an empty value), or a static text saying what is
 * wrong (also for out of memory). */
const char *sr_rejoin_parse(const char *text, size_t len, bool decode, sr_rejoin **out);

#endif
