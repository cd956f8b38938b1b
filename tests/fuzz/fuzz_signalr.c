/* SPDX-License-Identifier: MIT */
/*
 * fuzz_signalr.c - libFuzzer harness for what a SignalR client sends: record
 * framing (JSON texts each ending with the 0x1E separator) and the hub
 * protocol (handshake, invocations, stream invocations, completions, pings,
 * close, and stateful reconnect's acks and sequences), through
 * sr_conn_receive on a connection of the default "chat" hub (plus an
 * "others" method), as the WebSocket, long-polling or SSE transport would
 * deliver it, on a memory hub made for each input.
 *
 * Input: byte 0 picks the transport (bits 0-1: WebSocket, long polling,
 * SSE) and whether negotiate offered stateful reconnect (bit 2); the rest
 * is split at 0xFF bytes into delivery units (WebSocket messages, POST
 * bodies), each handed to sr_conn_receive; on a WebSocket, a unit that is
 * the one byte 0xFE is instead the socket dropping and the client coming
 * back (stateful reconnect's detach and resume, as signalr/transports.c
 * does them). After each unit the queue is
 * drained as the transport would (numbering what a stateful WebSocket
 * sends), and every record crier sends must be a valid JSON text ending
 * with the separator.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/config.h"
#include "hub/hub.h"
#include "hub/json_check.h"
#include "transports/signalr/private.h"

/* The WebSocket drops (ws_closed) and the client resumes (sr_ws_open). */
static void drop_and_resume(sr_conn *c)
{
    if (!sr_conn_detach(c)) {
        sr_conn_close(c, NULL, false);
        return;
    }
    pthread_mutex_lock(&c->s.lock);
    bool resumed = sr_conn_resume_locked(c);
    pthread_mutex_unlock(&c->s.lock);
    if (resumed) {
        pthread_mutex_lock(&c->recv_lock);
        c->awaiting_sequence = true;
        pthread_mutex_unlock(&c->recv_lock);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static cfg conf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_LEVEL_ERROR);
    cfg_defaults(&conf);
    conf.limits.send_queue = 64; /* a full queue is reachable too */
    cfg_hub *h = &conf.hubs[0];
    cfg_method *m = &h->methods[h->nmethods++];
    *m = (cfg_method){.action = CFG_ACTION_OTHERS, .args = -1};
    snprintf(m->name, sizeof(m->name), "SendOthers");
    snprintf(m->target, sizeof(m->target), "others");
    return 0;
}

/* Every record sent must be JSON text + RS. */
static void check_record(const sr_conn *c, msg_bytes b)
{
    if (c->s.fmt != SR_FMT_RECORD)
        return; /* SSE framing: data: lines */
    json_check_error je;
    if (!b.len || b.base[b.len - 1] != SR_RS || json_check(b.base, b.len - 1, &je)) {
        fprintf(stderr, "crier sent an invalid record (%s): %.*s\n", b.len ? je.what : "empty",
                (int)(b.len > 2000 ? 2000 : b.len), b.base);
        abort();
    }
}

/* What the transport does with the queue: takes each message, writes it,
 * and (stateful WebSocket) numbers it. */
static void drain(sr_conn *c)
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
        check_record(c, b);
        if (c->transport == TR_WS)
            sr_conn_sent(c, m);
        msg_unref(m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const sr_transport transports[] = {TR_WS, TR_LP, TR_SSE, TR_WS};
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
    pthread_mutex_lock(&c->s.lock);
    c->stateful_offered = (data[0] & 4) != 0;
    sr_attach_locked(c, transports[data[0] & 3]);
    pthread_mutex_unlock(&c->s.lock);

    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    while (p <= end) {
        const char *sep = memchr(p, 0xFF, (size_t)(end - p));
        const char *unit_end = sep ? sep : end;
        if (unit_end - p == 1 && (uint8_t)*p == 0xFE && c->transport == TR_WS)
            drop_and_resume(c);
        else
            sr_conn_receive(c, p, (size_t)(unit_end - p));
        drain(c);
        p = unit_end + 1;
    }

    sr_conn_close(c, NULL, false);
    drain(c);
    sr_conn_unref(c);
    sr_fini(); /* the registry's ref: frees it */
    hub_destroy(h);
    return 0;
}
