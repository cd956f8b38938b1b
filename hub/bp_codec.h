/* SPDX-License-Identifier: MIT */
/*
 * bp_codec.h - decoding what the Redis backplane reads from Redis: a
 * room's channel messages (pub/sub), the entries of its stream, and the
 * numbers and shapes of script answers, and the presence events on a
 * room's channel. Pure (no I/O, no state), any
 * thread; split from redis_backplane.c so that it can be tested and
 * fuzzed on its own (tests/fuzz/fuzz_redis.c).
 */
#ifndef CRIER_BP_CODEC_H
#define CRIER_BP_CODEC_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/backplane.h"

#define BP_TARGET_MAX 64 /* a target as carried, with its NUL */

/* Parses a channel message, "epoch id wall origin exclude local target\n"
 * then the data (what publish_lua PUBLISHes). epoch: MSG_EPOCH_MAX bytes,
 * origin BP_NODE_ID_LEN + 1, target BP_TARGET_MAX; e points into p and
 * those. False when the head is malformed. */
bool bp_parse_message(const char *p, size_t len, char *epoch, bp_entry *e, char *origin,
                      char *target);

/* Reads one stream entry [id, [field, value, …]] into e (pointing into r).
 * False unless it has an id and data. */
bool bp_parse_entry(const redisReply *r, bp_entry *e);

/* A non-negative integer, as an integer reply or decimal text. */
bool bp_parse_u64(const redisReply *r, uint64_t *out);

/* The answer to fetch_lua, {epoch, last id, entries}: true when it has
 * that shape, with *last_id set. */
bool bp_fetch_reply_ok(const redisReply *r, uint64_t *last_id);

/* What starts a presence event on a room's channel: "!p join USER" or
 * "!p leave USER", as redis_presence.c's script PUBLISHes them (no room
 * message starts with it: those start with their epoch). */
#define BP_PRESENCE_PREFIX "!p "

typedef enum {
    BP_PRESENCE_NONE,      /* not a presence event: a room message */
    BP_PRESENCE_EVENT,     /* a join or leave, *join and the user set */
    BP_PRESENCE_MALFORMED, /* starts with the prefix, but is neither */
    BP_PRESENCE_SYNC,      /* "!p sync NODE\nUSERS": bp_parse_presence_sync */
} bp_presence_kind;

/* Reads a channel message (len bytes at p) as a presence event. With
 * BP_PRESENCE_EVENT, *join says join or leave and *user (pointing into p,
 * *user_len bytes, not NUL-terminated) is the user: at least one byte, no
 * NUL (a user id never has one; a cut one would name another user). */
bp_presence_kind bp_parse_presence(const char *p, size_t len, bool *join, const char **user,
                                   size_t *user_len);

/* Reads "!p sync NODE\nUSERS" (redis_presence.c's sync script: who is
 * present, for NODE, in order with the room's events): *node and *users
 * point into p. False when it is not of that form. */
bool bp_parse_presence_sync(const char *p, size_t len, const char **node, size_t *node_len,
                            const char **users, size_t *users_len);

/* The room of a channel named prefix "c:" room, or NULL. */
const char *bp_room_of_channel(const char *prefix, const char *channel);

#endif
