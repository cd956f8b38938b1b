/* SPDX-License-Identifier: MIT */
/*
 * redis_history.c - a page of a shared room's kept history, read from its
 * stream in Redis (the keys of redis_rooms.c) by one script: the room's
 * epoch and last id, the oldest message history still keeps (the newest
 * history.size, younger than history.ttl_s: what a resume on any node
 * would replay) and up to `count` entries after the cursor, oldest first.
 * Nothing is subscribed and nothing is kept on this node.
 *
 * Threading: the backplane's thread only; no lock of its own is held
 * while it calls back.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/redis_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "hub/bp_codec.h"

#define SINCE_MAX ((uint64_t)1 << 53) /* exact in Lua's numbers; beyond any last id */

/* KEYS: epoch, seq, stream. ARGV: since, the caller's epoch ('-': any),
 * most entries, history size (0: none kept), oldest wall ms kept (exclusive).
 * Returns {''} for no room, else {epoch, last id, oldest kept id (last id
 * + 1 when none), entries oldest first}. Expired entries at the head are
 * skipped a batch at a time (at most the stream's length, about the
 * history size). */
static const char history_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if not e then return {''} end\n"
    "local n = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local since = tonumber(ARGV[1])\n"
    "if since > n or (ARGV[2] ~= '-' and ARGV[2] ~= e and since > 0) then since = 0 end\n"
    "local cur = n - tonumber(ARGV[4]) + 1\n"
    "if cur < 1 then cur = 1 end\n"
    "local minw = tonumber(ARGV[5])\n"
    "local first = n + 1\n"
    "while cur <= n do\n"
    "  local batch = redis.call('XRANGE', KEYS[3], string.format('%d-0', cur), '+', 'COUNT', 100)\n"
    "  for _, ent in ipairs(batch) do\n"
    "    local f, w = ent[2], 0\n"
    "    for i = 1, #f, 2 do if f[i] == 'w' then w = tonumber(f[i + 1]) or 0 end end\n"
    "    if w > minw then first = tonumber(string.match(ent[1], '^%d+')); break end\n"
    "  end\n"
    "  if first <= n or #batch < 100 then break end\n"
    "  cur = tonumber(string.match(batch[#batch][1], '^%d+')) + 1\n"
    "end\n"
    "local from = since + 1\n"
    "if from < first then from = first end\n"
    "local entries = {}\n"
    "if from <= n then\n"
    "  entries = redis.call('XRANGE', KEYS[3], string.format('%d-0', from), '+', 'COUNT', "
    "ARGV[3])\n"
    "end\n"
    "return {e, n, first, entries}\n";

typedef struct pending_history {
    char room[ROOM_NAME_MAX + 1];
    bp_history_fn cb;
    void *arg;
} pending_history;

/* True when r is {epoch, last id, first kept, entries}, with the numbers set. */
static bool history_reply_ok(const redisReply *r, uint64_t *last_id, uint64_t *first)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
           r->element[0]->type == REDIS_REPLY_STRING && bp_parse_u64(r->element[1], last_id) &&
           bp_parse_u64(r->element[2], first) && r->element[3]->type == REDIS_REPLY_ARRAY;
}

static void on_history_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_history *ph = privdata;
    redisReply *r = reply;
    uint64_t last_id = 0, first = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        ph->cb(ph->arg, -ENOENT, "", 0, 0, NULL, 0);
    } else if (!r || !history_reply_ok(r, &last_id, &first) || !r->element[0]->len ||
               r->element[0]->len >= MSG_EPOCH_MAX) {
        if (r)
            LOG_ERR(TAG, "room %s: unexpected answer to a history read: %s", ph->room,
                    r->type == REDIS_REPLY_ERROR ? r->str : "(not {epoch, id, first, entries})");
        ph->cb(ph->arg, -EIO, "", 0, 0, NULL, 0);
    } else {
        const redisReply *list = r->element[3];
        size_t k = 0;
        bp_entry *entries = list->elements ? calloc(list->elements, sizeof(*entries)) : NULL;
        if (list->elements && !entries) {
            ph->cb(ph->arg, -ENOMEM, "", 0, 0, NULL, 0);
            free(ph);
            return;
        }
        for (size_t i = 0; i < list->elements; i++)
            if (bp_parse_entry(list->element[i], &entries[k]))
                k++;
        ph->cb(ph->arg, 0, r->element[0]->str, last_id, first, entries, k);
        free(entries);
    }
    free(ph);
}

void rb_send_history(rb *b, work *w)
{
    pending_history *ph = malloc(sizeof(*ph));
    if (!ph) {
        w->history_cb(w->arg, -ENOMEM, "", 0, 0, NULL, 0);
        return;
    }
    *ph = (pending_history){.cb = w->history_cb, .arg = w->arg};
    snprintf(ph->room, sizeof(ph->room), "%s", w->room);
    char ke[KEY_MAX], kn[KEY_MAX], ks[KEY_MAX];
    char since[RB_NUM_MAX], count[RB_NUM_MAX], size[RB_NUM_MAX], minw[RB_NUM_MAX];
    snprintf(ke, sizeof(ke), "%sr:%s:e", b->prefix, w->room);
    snprintf(kn, sizeof(kn), "%sr:%s:n", b->prefix, w->room);
    snprintf(ks, sizeof(ks), "%sr:%s:s", b->prefix, w->room);
    snprintf(since, sizeof(since), "%" PRIu64, w->after < SINCE_MAX ? w->after : SINCE_MAX);
    snprintf(count, sizeof(count), "%zu", w->count ? w->count : 1);
    /* history keeps nothing with a size or a TTL of 0 (history.c) */
    snprintf(size, sizeof(size), "%zu", b->history_ttl_ms > 0 ? b->history_size : 0);
    snprintf(minw, sizeof(minw), "%" PRId64, clock_wall_ms() - b->history_ttl_ms);
    const char *argv[] = {"EVAL", history_lua, "3", ke, kn, ks, since, w->epoch[0] ? w->epoch : "-",
                          count,  size,        minw};
    size_t n = sizeof(argv) / sizeof(argv[0]);
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(b->cmd.ac, on_history_reply, ph, (int)n, argv, lens) != REDIS_OK) {
        free(ph);
        w->history_cb(w->arg, -EIO, "", 0, 0, NULL, 0);
    }
}
