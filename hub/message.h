/* SPDX-License-Identifier: MIT */
/*
 * message.h - one published message, immutable once shared, refcounted, and
 * its encode-once cache of wire formats.
 *
 * A message is encoded once per wire format (and, for formats that depend on
 * it, per target) that its room's members use, and those bytes are shared by
 * every subscriber: nothing is copied per subscriber. The hub knows two
 * formats of its own (the JSON envelope and the plain SSE event); protocols
 * register the others (msg_format_register) with an encoder, so the hub holds
 * no protocol's wire syntax (the SignalR record lives in
 * transports/signalr/encode.c).
 *
 * Threads and locks (docs/concurrency.md): encodings are added only under
 * the hub lock (before the message is handed to subscribers, or while
 * replaying history to a joining one), and each is published with a release
 * store after its bytes are written; readers reach a message through a send
 * queue guarded by its subscriber's lock, which orders the encoding before
 * the read (the acquire load on the cache list is a second guarantee). Bytes
 * once published never move or change until the last msg_unref.
 * msg_ref/msg_unref are atomic and may be called from any thread. The format
 * table is written by msg_format_register under its own mutex; a format id
 * is only used after the call that registered it returned it, which orders
 * the table entry before every use.
 */
#ifndef CRIER_MESSAGE_H
#define CRIER_MESSAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes reserved in front of the JSON envelope, so that a WebSocket library
 * can write its frame header in place (libwebsockets' LWS_PRE is 16 here;
 * ws.c asserts that it fits). */
#define MSG_HEADROOM 16

/* A wire format: one of the hub's own below, or an id that
 * msg_format_register returned. */
typedef int msg_fmt;
enum {
    MSG_FMT_JSON, /* {"id":N,"room":"…","data":…}: WebSocket frames, long-poll items */
    MSG_FMT_SSE,  /* id: N \n data: … \n\n */
    MSG_FMT_BUILTIN_COUNT
};

/* How many formats there can be, the hub's own included. */
#define MSG_FMT_MAX 8

/* Room epochs are short random strings (see hub.c). */
#define MSG_EPOCH_MAX 16

/* One cached encoding of a message in a registered format, for one target
 * (NULL for formats that do not depend on one, and for the encodings a
 * direct message is created with, which serve every target). */
typedef struct msg_variant {
    struct msg_variant *next;
    msg_fmt fmt;
    const char *target; /* borrowed: the message's own or a configured one */
    size_t len;
    char bytes[]; /* MSG_HEADROOM, then len bytes */
} msg_variant;

typedef struct msg_bytes {
    const char *base;
    size_t len;
} msg_bytes;

typedef struct msg {
    atomic_uint refs;
    uint64_t id;
    int64_t created_ms;   /* monotonic clock, for history TTL */
    int64_t wall_ms;      /* publisher's wall clock (backplane messages only; else 0) */
    uint64_t exclude_uid; /* backplane: the sub of this node that does not get it; 0 none */
    bool delivered_here;  /* backplane: this node delivered it already (while the backplane
                             was down); kept in history, not delivered again */
    char *json;           /* MSG_HEADROOM bytes, then the envelope; owned */
    size_t json_len;      /* envelope length, without headroom */
    size_t data_off;      /* the data value inside the envelope */
    size_t data_len;
    char *sse; /* SSE event, encoded on first need; owned */
    size_t sse_len;
    char *target;   /* target named at publish (a protocol's method name); NULL: each
                       member's default */
    bool direct;    /* bytes for one connection (json holds them); no envelope */
    bool gap;       /* a gap signal for one subscriber: {"gap":{…}}; data is the inner object */
    bool presence;  /* presence events of a room: {"presence":…}; no id, not kept */
    const char *to; /* a message to a user or a connection (msg_create_to): "user" or
                       "connection" (static), the envelope's key in place of "room"; NULL */
    bool uncounted; /* a direct message outside its protocol's numbering of what it
                       sends (set and read by the protocol that made it) */
    char epoch[MSG_EPOCH_MAX];       /* the room's epoch when published; "" for none */
    _Atomic(msg_variant *) variants; /* registered formats' encodings; prepended under
                                        the hub lock, each with a release store */
    size_t hist_cost; /* hub lock: the bytes its room's history counted it for (history.c) */
} msg;

/* Creates a message with one ref. data must be a valid JSON text (the caller
 * validated it); room must be a valid room name. target, when not NULL,
 * names the client method it invokes in protocols that have targets
 * (copied); it overrides each member's default. Returns NULL on ENOMEM. */
msg *msg_create(uint64_t id, const char *room, const char *data, size_t data_len,
                const char *target, int64_t created_ms);

/* msg_create for a room with an epoch: the envelope carries "epoch" and the
 * SSE id is "EPOCH:N". */
msg *msg_create_in(uint64_t id, const char *room, const char *epoch, const char *data,
                   size_t data_len, const char *target, int64_t created_ms);

/* Creates a gap signal for one subscriber: info is the JSON object telling
 * what was lost. The hub sets its id to the cursor to go on from (the id
 * just before the first one delivered next). Its JSON form is {"gap":info}; its SSE form an event
 * named "gap" with info as data; msg_data gives info. */
msg *msg_create_gap(const char *info, size_t len);

/* Creates a room's presence events (id 0, no history): data is one
 * {"user","action"} object or a list of them. Its JSON form is
 * {"presence":data}, its SSE form an event named "presence" with data. */
msg *msg_create_presence(const char *data, size_t len);

/* Creates a message for a user's connections or for one connection (the
 * server API): to is MSG_TO_USER or MSG_TO_CONNECTION, name the user id or
 * connection id (any text: escaped), data a valid JSON text, target as
 * msg_create's. Its JSON form is {"user":"alice","data":…} (or
 * "connection"), its SSE form an event named "user" (or "connection") with
 * data and no id (a stream's resume cursor stays the room's), and in
 * registered formats it is a message without an id. It has no id and no
 * epoch: it is in no room's numbering and no history. NULL on ENOMEM. */
#define MSG_TO_USER "user"
#define MSG_TO_CONNECTION "connection"
msg *msg_create_to(const char *to, const char *name, const char *data, size_t data_len,
                   const char *target);

/* Creates a direct message: len bytes for one connection (a protocol's
 * reply, ping, close), left for the caller to write at *out before it
 * shares the message, with MSG_HEADROOM in front. msg_get gives these bytes
 * in every format, except those the creator added with msg_encode_direct.
 * msg_encode does nothing on it. Returns NULL on ENOMEM. */
msg *msg_create_direct(size_t len, char **out);

/* ------------------------------------------------- registered formats */

/* Where an encoder writes: msg_sink_alloc gives room for exactly len bytes
 * (after MSG_HEADROOM); call it once. NULL on ENOMEM. */
typedef struct msg_sink msg_sink;
char *msg_sink_alloc(msg_sink *sink, size_t len);

/* A registered format. encode writes m's form for target into sink and
 * returns 0, or a negative errno (-ENOMEM when msg_sink_alloc failed). It
 * runs under the hub lock (or at creation of a direct message), must not
 * block and must not read the envelope as a C string (it is not
 * NUL-terminated). */
typedef struct msg_format {
    const char *name; /* for logs */
    /* true: the bytes depend on the target, so they are cached per (format,
     * target), and a message with no target anywhere cannot be encoded
     * (-EINVAL); false: once per message, target NULL. */
    bool per_target;
    int (*encode)(const msg *m, const char *target, msg_sink *sink);
    /* true: the bytes are binary, not UTF-8 text (a WebSocket carries them
     * in binary frames: msg_format_is_binary). */
    bool binary;
} msg_format;

/* Registers f (kept by pointer: static storage) and returns its id, or -1
 * when MSG_FMT_MAX formats exist. Any thread; call it once per format
 * (e.g. under pthread_once) before a message is encoded in it. */
msg_fmt msg_format_register(const msg_format *f);

/* True when fmt is a registered format of binary bytes. Any thread, no
 * lock (as msg_get). */
bool msg_format_is_binary(msg_fmt fmt);

/* Adds the encoding fmt if missing; target is the member's default target
 * (used only by per-target formats; the message's own target wins). Hub
 * lock held. Returns 0, -EINVAL (per-target format, no target) or -ENOMEM. */
int msg_encode(msg *m, msg_fmt fmt, const char *target);

/* For the creator of a direct message, before sharing it: adds its
 * encoding in the registered format fmt, served to every target. Returns 0
 * or a negative errno. */
int msg_encode_direct(msg *m, msg_fmt fmt);

/* The bytes of an encoding added earlier ({NULL, 0} if none); borrowed while
 * a ref is held. Hot path: no allocation, no lock; a walk of the message's
 * few cached encodings. */
msg_bytes msg_get(const msg *m, msg_fmt fmt, const char *target);

/* The published JSON value; borrowed while a ref is held. */
msg_bytes msg_data(const msg *m);

/* The bytes m holds now: its allocations (envelope, encodings made so far,
 * target) and an allocator overhead per allocation. Hub lock held. */
size_t msg_footprint(const msg *m);

msg *msg_ref(msg *m);
void msg_unref(msg *m);

/* Writes the SSE form of one event (id line, one data line per line of
 * payload, blank line) into out. Returns the length it needs; writes only
 * when out_cap is large enough. Pure; used by msg_encode and by tests. */
size_t msg_format_sse(char *out, size_t out_cap, uint64_t id, const char *data, size_t len);

#endif
