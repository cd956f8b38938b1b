/* SPDX-License-Identifier: MIT */
/*
 * message.h - one published message, immutable once shared, refcounted.
 *
 * A message is encoded once per wire format that its room's members use, and
 * those bytes are shared by every subscriber: nothing is copied per
 * subscriber. Encodings are added only under the hub lock (before the message
 * is handed to subscribers, or while replaying history to a joining one);
 * readers reach a message through a send queue guarded by its subscriber's
 * lock, which orders the encoding before the read. msg_ref/msg_unref are
 * atomic and may be called from any thread.
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

typedef enum {
    MSG_FMT_JSON,        /* {"id":N,"room":"…","data":…}: WebSocket frames, long-poll items */
    MSG_FMT_SSE,         /* id: N \n data: … \n\n */
    MSG_FMT_SIGNALR,     /* {"type":1,"target":"T","arguments":[…]} RS: a SignalR record */
    MSG_FMT_SIGNALR_SSE, /* the same record as an SSE event (data: … \r\n \r\n) */
    MSG_FMT_COUNT
} msg_fmt;

/* Room epochs are short random strings (see hub.c). */
#define MSG_EPOCH_MAX 16

/* The SignalR client method a gap signal invokes (one argument: the gap
 * object). Room messages carry headers crier-id, crier-epoch and crier-room,
 * which clients other than crier.js ignore. */
#define MSG_GAP_TARGET "CrierGap"

/* SignalR's record separator, which ends every record. */
#define MSG_RS '\x1e'

/* One SignalR encoding of a message, for one target. */
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
    int64_t created_ms; /* monotonic clock, for history TTL */
    int64_t wall_ms;    /* publisher's wall clock (backplane messages only; else 0) */
    uint64_t exclude_uid; /* backplane: the sub of this node that does not get it; 0 none */
    bool delivered_here;  /* backplane: this node delivered it already (while the backplane
                             was down); kept in history, not delivered again */
    char *json;         /* MSG_HEADROOM bytes, then the envelope; owned */
    size_t json_len;    /* envelope length, without headroom */
    size_t data_off;    /* the data value inside the envelope */
    size_t data_len;
    char *sse; /* SSE event, encoded on first need; owned */
    size_t sse_len;
    char *target; /* SignalR target named at publish; NULL: each member's default */
    bool direct;  /* a record for one connection (json holds it); no envelope */
    bool gap;     /* a gap signal for one subscriber: {"gap":{…}}; data is the inner object */
    bool uncounted; /* a SignalR record outside stateful reconnect's numbering (handshake
                       reply, ping, close, ack, sequence); invocations and completions count */
    char epoch[MSG_EPOCH_MAX]; /* the room's epoch when published; "" for none */
    _Atomic(msg_variant *) variants; /* SignalR encodings; prepended under the hub lock */
    size_t hist_cost; /* hub lock: the bytes its room's history counted it for (history.c) */
} msg;

/* Creates a message with one ref. data must be a valid JSON text (the caller
 * validated it); room must be a valid room name. target, when not NULL,
 * names the SignalR client method it invokes (copied). Returns NULL on
 * ENOMEM. */
msg *msg_create(uint64_t id, const char *room, const char *data, size_t data_len,
                const char *target, int64_t created_ms);

/* msg_create for a room with an epoch: the envelope carries "epoch" and the
 * SSE id is "EPOCH:N". */
msg *msg_create_in(uint64_t id, const char *room, const char *epoch, const char *data,
                   size_t data_len, const char *target, int64_t created_ms);

/* Creates a gap signal for one subscriber: info is the JSON object telling
 * what was lost. The hub sets its id to the cursor to go on from (the id
 * just before the first one delivered next). Its JSON form is {"gap":info}; its SSE form an event named
 * "gap" with info as data; msg_data gives info. */
msg *msg_create_gap(const char *info, size_t len);

/* Creates a message that is one SignalR record (JSON text without the
 * separator) for one connection: a completion, a ping, a close. Its
 * MSG_FMT_SIGNALR and MSG_FMT_SIGNALR_SSE forms are made here. */
msg *msg_create_record(const char *json, size_t len);

/* Adds the encoding fmt if missing; target is the member's default SignalR
 * target (ignored by other formats). Hub lock held. Returns 0 or -ENOMEM. */
int msg_encode(msg *m, msg_fmt fmt, const char *target);

/* The bytes of an encoding added earlier; borrowed while a ref is held. */
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
