/* SPDX-License-Identifier: MIT */
/*
 * fuzz_msgpack.c - libFuzzer harness for SignalR's MessagePack hub protocol:
 * what a MessagePack client sends after its handshake, as binary units
 * (WebSocket messages, POST bodies) of VarInt-prefixed records.
 *
 * Input: byte 0 picks the transport (bit 0: WebSocket or long polling)
 * and the handshake version (bit 1: 2, with stateful reconnect offered);
 * the rest is a list of units, each one length byte and then that many
 * bytes (the last unit takes what is left). First the parser alone reads
 * the whole input as one unit (sr_mp_next_record, sr_mp_record_parse); every
 * record it accepts is turned back into MessagePack from its JSON form and
 * must come out well-formed. Then a connection of the default "chat" hub,
 * after the messagepack handshake, gets the units through sr_conn_receive
 * on a memory hub made for each input; its queue is drained after each
 * unit, and every record crier sends after the handshake's JSON answer must
 * be one well-formed, VarInt-framed MessagePack record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/config.h"
#include "hub/hub.h"
#include "transports/signalr/mp.h"
#include "transports/signalr/private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static cfg conf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_LEVEL_ERROR);
    cfg_defaults(&conf);
    conf.limits.send_queue = 64;
    conf.limits.max_message_bytes = 2048;
    return 0;
}

static void fail(const char *what, msg_bytes b)
{
    fprintf(stderr, "%s (%zu bytes):", what, b.len);
    for (size_t i = 0; i < b.len && i < 200; i++)
        fprintf(stderr, " %02x", (unsigned char)b.base[i]);
    fprintf(stderr, "\n");
    abort();
}

/* The parser alone: each record accepted goes back to MessagePack. */
static void parse_alone(const unsigned char *p, size_t len)
{
    size_t off = 0, rl;
    const unsigned char *rec;
    const char *why = NULL;
    while (sr_mp_next_record(p, len, &off, conf.limits.max_message_bytes, &rec, &rl, &why) > 0) {
        json_t *j = sr_mp_record_parse(rec, rl, &why);
        if (!j) {
            if (!why)
                fail("a record refused without a reason", (msg_bytes){(const char *)rec, rl});
            why = NULL;
            continue;
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (!sr_mp_pack_json(&pk, j) && !sr_mp_well_formed((unsigned char *)sb.data, sb.size))
            fail("a JSON value packed into malformed MessagePack", (msg_bytes){sb.data, sb.size});
        msgpack_sbuffer_destroy(&sb);
        json_decref(j);
    }
}

/* Every record sent after the handshake answer is one framed record. */
static void check_sent(msg_bytes b, bool *handshake_answered)
{
    if (!*handshake_answered) {
        *handshake_answered = true;
        if (b.len != 3 || memcmp(b.base, "{}\x1e", 3))
            fail("the handshake answer is not {}", b);
        return;
    }
    size_t off = 0, rl;
    const unsigned char *rec;
    const char *why = NULL;
    if (sr_mp_next_record((const unsigned char *)b.base, b.len, &off, SIZE_MAX, &rec, &rl, &why) !=
            1 ||
        off != b.len || !sr_mp_well_formed(rec, rl))
        fail("crier sent a malformed MessagePack record", b);
}

static void drain(sr_conn *c, bool *handshake_answered)
{
    for (;;) {
        pthread_mutex_lock(&c->s.lock);
        msg *m = sendq_peek(&c->s.q);
        if (m) {
            msg_ref(m);
            sendq_pop(&c->s.q);
        }
        msg_bytes b = m ? msg_get(m, c->s.fmt, c->s.target) : (msg_bytes){0};
        pthread_mutex_unlock(&c->s.lock);
        if (!m)
            return;
        check_sent(b, handshake_answered);
        if (c->transport == TR_WS)
            sr_conn_sent(c, m);
        msg_unref(m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    parse_alone(data + 1, size - 1);

    hub_options opt = {.history_size = 16, .history_ttl_ms = 60000};
    hub *h = hub_create(&opt);
    if (!h)
        return 0;
    sr_init(&conf, h);
    sr_conn *c = sr_conn_new(&conf.hubs[0], false, NULL);
    if (!c) {
        sr_fini();
        hub_destroy(h);
        return 0;
    }
    bool v2 = data[0] & 2;
    pthread_mutex_lock(&c->s.lock);
    c->stateful_offered = v2;
    sr_attach_locked(c, data[0] & 1 ? TR_LP : TR_WS);
    pthread_mutex_unlock(&c->s.lock);
    const char *hs = v2 ? "{\"protocol\":\"messagepack\",\"version\":2}\x1e"
                        : "{\"protocol\":\"messagepack\",\"version\":1}\x1e";
    sr_conn_receive(c, hs, strlen(hs));
    bool answered = false;
    drain(c, &answered);
    if (!atomic_load(&c->msgpack))
        abort(); /* the handshake must have been taken */

    const uint8_t *p = data + 1, *end = data + size;
    while (p < end) {
        size_t n = *p++;
        if (n > (size_t)(end - p))
            n = (size_t)(end - p);
        sr_conn_receive(c, (const char *)p, n);
        drain(c, &answered);
        p += n;
    }

    sr_conn_close(c, NULL, false);
    drain(c, &answered);
    sr_conn_unref(c);
    sr_fini();
    hub_destroy(h);
    return 0;
}
