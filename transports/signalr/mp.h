/* SPDX-License-Identifier: MIT */
/*
 * signalr/mp.h - SignalR's MessagePack hub protocol, the pure part: the
 * VarInt length prefix of binary records, the value mapping between
 * MessagePack and JSON (crier's payloads are JSON), a record received in
 * MessagePack turned into the JSON protocol's record object (so that one
 * handler serves both protocols), and a JSON protocol record (completion,
 * ping, close, ack, sequence) written as a MessagePack record. The
 * MessagePack itself is read and written by msgpack-c (Debian's
 * libmsgpack-dev); nothing here holds state.
 *
 * Value mapping (README "SignalR", MessagePack):
 *   MessagePack nil, bool, int, float, str, array, map <-> JSON null, bool,
 *   integer, real, string, array, object. A map key that is an integer
 *   becomes its decimal text; other non-string keys are refused. A bin (or
 *   ext) value from a client becomes a base64 string (RFC 4648, padded);
 *   NaN and infinities become null; an integer above 2^63-1 a real.
 *
 * Threads: every function is pure and may be called from any thread.
 */
#ifndef CRIER_SIGNALR_MP_H
#define CRIER_SIGNALR_MP_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

/* The longest VarInt prefix: 5 bytes, for lengths below 2 GB. */
#define SR_MP_VARINT_MAX 5
/* Deepest nesting of arrays and maps taken from a client. */
#define SR_MP_DEPTH_MAX 32

/* Writes the VarInt of n (< 2^31) to out; returns its length (1..5). */
size_t sr_mp_varint_put(unsigned char out[SR_MP_VARINT_MAX], size_t n);

/* Reads a VarInt prefix from p (len bytes): 1 with *value and *used, 0 when
 * it is cut short, -1 when it is malformed (more than 5 bytes, or 2 GB or
 * more). */
int sr_mp_varint_get(const unsigned char *p, size_t len, size_t *value, size_t *used);

/* The next record of a unit received (a WebSocket message, a POST body):
 * from data + *off, a VarInt prefix and that many bytes of MessagePack.
 * Returns 1 with *rec and *rec_len set and *off moved past it, 0 at the end of the
 * unit, -1 with *why (static) when the prefix is malformed, says more than
 * max bytes, or more than the unit holds. */
int sr_mp_next_record(const unsigned char *data, size_t len, size_t *off, size_t max,
                      const unsigned char **rec, size_t *rec_len, const char **why);

/* True when p (len bytes) is exactly one well-formed MessagePack value
 * nested at most SR_MP_DEPTH_MAX deep, each array and map holding no more
 * elements than it has bytes after it. Checked before msgpack-c reads it:
 * msgpack-c allocates an array's elements from the count in its header,
 * so 5 bytes could ask it for gigabytes. */
bool sr_mp_well_formed(const unsigned char *p, size_t len);

/* One received record (its MessagePack bytes, the prefix removed) as the
 * JSON protocol's record object ({"type":1,"invocationId":…,"target":…,
 * "arguments":[…]}, {"type":8,"sequenceId":N}, …): a new reference, or
 * NULL with *why (static) when it is malformed. */
json_t *sr_mp_record_parse(const unsigned char *p, size_t len, const char **why);

/* A MessagePack value as JSON: a new reference, or NULL with *why. */
json_t *sr_mp_to_json(const msgpack_object *o, const char **why);

/* Packs the JSON value v; returns 0, or -1 (out of memory). */
int sr_mp_pack_json(msgpack_packer *pk, const json_t *v);

/* Frames an sbuffer's bytes as one record: the VarInt prefix then the
 * bytes, into a malloc'd buffer of *out_len bytes (NULL on ENOMEM). */
unsigned char *sr_mp_frame(const msgpack_sbuffer *sb, size_t *out_len);

/* A JSON protocol record (text, without the separator) of type 1, 3, 6,
 * 7, 8 or 9 as one framed MessagePack record, malloc'd (*out_len bytes);
 * NULL when it is not such a record or memory ran out. A completion with
 * "error" has result kind 1, one with "result" kind 3 (null included),
 * one with neither kind 2. */
unsigned char *sr_mp_record_from_json(const char *json, size_t len, size_t *out_len);

#endif
