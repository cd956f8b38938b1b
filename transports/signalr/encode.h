/* SPDX-License-Identifier: MIT */
/*
 * signalr/encode.h - SignalR's wire encoding of hub messages: the Invocation
 * record a room message becomes ({"type":1,"target":T,"arguments":[…]} RS,
 * with crier-* headers), its SSE event form, and direct records (handshake
 * reply, completion, ping, close, sequence) for one connection. Both forms
 * are formats registered with the hub's encode-once cache (hub/message.h);
 * the hub calls the encoders under its lock and knows nothing of SignalR.
 *
 * Threads and locks: docs/concurrency.md. The format ids are registered on
 * first use (pthread_once) from any thread; the encoders run under the hub
 * lock; sr_record_create on any thread.
 */
#ifndef CRIER_SIGNALR_ENCODE_H
#define CRIER_SIGNALR_ENCODE_H

#include <stddef.h>

#include "hub/message.h"

/* SignalR's record separator, which ends every record. */
#define SR_RS '\x1e'

/* The SignalR client method a gap signal invokes (one argument: the gap
 * object), whatever the member's default target. Room messages carry headers
 * crier-id, crier-epoch and crier-room, which clients other than crier.js
 * ignore. */
#define SR_GAP_TARGET "CrierGap"
/* The target presence events invoke: one argument, {"user","action"} or a
 * list of them (README "Presence"). */
#define SR_PRESENCE_TARGET "CrierPresence"

/* The format of a record as WebSocket messages and poll bodies carry it,
 * and the same record as an SSE event (data: … \r\n \r\n). Registered with
 * the hub on the first call. */
msg_fmt sr_fmt_record(void);
msg_fmt sr_fmt_sse(void);
#define SR_FMT_RECORD (sr_fmt_record())
#define SR_FMT_SSE (sr_fmt_sse())

/* The MessagePack hub protocol's form of a room message: its invocation
 * record [1, headers, nil, target, arguments] after a VarInt length (the
 * JSON payload's values mapped as signalr/mp.h says). Binary: WebSocket
 * frames of this format are binary frames. */
msg_fmt sr_fmt_mp(void);
#define SR_FMT_MP (sr_fmt_mp())

/* Creates a direct message that is one SignalR record (JSON text without
 * the separator) for one connection: a completion, a ping, a close. Both
 * formats are made here. Returns NULL on ENOMEM. */
msg *sr_record_create(const char *json, size_t len);

/* The same record for a MessagePack connection: a direct message whose
 * bytes are its MessagePack form (signalr/mp.h, sr_mp_record_from_json).
 * NULL on ENOMEM or for a record that has no such form. */
msg *sr_mp_record_create(const char *json, size_t len);

#endif
