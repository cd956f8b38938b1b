/* SPDX-License-Identifier: MIT */
/*
 * plain/poll.h - the plain room protocol over long polling
 * (GET /rooms/{room}/poll?since=N&epoch=E): each poll joins the room from
 * the client's cursor, is held (carriers/longpoll.c) until the room has
 * something for it, and answers
 * {"gap":...,"messages":[...],"last_id":N,"epoch":"E"}. Handlers run on the
 * MHD thread of the request.
 */
#ifndef CRIER_PLAIN_POLL_H
#define CRIER_PLAIN_POLL_H

#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"
#include "hub/hub.h"
#include "transports/carriers/http_call.h"

/* Main thread, before the daemons start. */
void plain_poll_init(const cfg *c, hub *h);

/* GET /rooms/{room}/poll: call->room is a valid room name. */
enum MHD_Result plain_poll_handle(http_call *call);

/* The route's completed hook: ends the poll's hold and membership. */
void plain_poll_completed(void *state);

/* Sub lock held: the cursor a from-now join of s started from, read right
 * after the join (the hub may have queued live messages already). */
uint64_t plain_poll_join_cursor_locked(const sub *s);

/* Sub lock held: takes what s has queued into a plain poll answer,
 * {"gap":...,"messages":[...],"last_id":N,"epoch":"E"}. last_id is the id
 * of the last message in it, or when it has none the sub's cursor; for a
 * dropped sub (whose queue the hub emptied) the client's `cursor` and its
 * `cursor_epoch` ("" or NULL for none: then `epoch`), never past a message
 * it did not get. Returns NULL on ENOMEM. */
char *plain_poll_build_answer(sub *s, uint64_t cursor, const char *cursor_epoch, const char *epoch,
                              size_t *len_out);

#endif
