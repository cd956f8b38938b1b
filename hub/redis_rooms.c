/* SPDX-License-Identifier: MIT */
/*
 * redis_rooms.c - rooms in Redis. Per room (P = the key prefix):
 *   P r:{room}:e   the room's epoch (a numbering starts when it is set)
 *   P r:{room}:n   the last id given (INCR)
 *   P r:{room}:s   a stream of the kept messages, entry ids "{id}-1",
 *                  capped near history.size (XADD MAXLEN ~)
 *   P c:{room}     the channel its messages go out on
 * A publish is one Lua script (numbering, stream, PUBLISH), so Redis orders
 * every room's messages once for all nodes. A node SUBSCRIBEs to the rooms
 * it has members in (the channel set), and fetches a room's state with
 * another script once subscribed (and again after any hole in the ids,
 * which are consecutive). Rooms left are unsubscribed after
 * UNSUBSCRIBE_AFTER_MS. Replies are decoded by bp_codec.c and handed to the
 * hub (hub_bp_message, hub_bp_subscribed, hub_bp_fetched).
 *
 * Threading: the backplane's thread only (the channel set is "thread"
 * state); no lock of its own is held while it calls the hub or a callback.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/redis_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "hub/bp_codec.h"

#define UNSUBSCRIBE_AFTER_MS 5000 /* a room left is kept subscribed this long */

/* KEYS: epoch, seq, stream. ARGV: candidate epoch, stream length, key TTL
 * (ms), channel, wall ms, origin, exclude, local_done, target, data. */
static const char publish_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if not e then e = ARGV[1]; redis.call('DEL', KEYS[2], KEYS[3]) end\n"
    "local n = redis.call('INCR', KEYS[2])\n"
    "redis.call('SET', KEYS[1], e, 'PX', ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
    "if tonumber(ARGV[2]) > 0 then\n"
    "  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], n .. '-1', 'w', ARGV[5],\n"
    "             'o', ARGV[6], 'x', ARGV[7], 'l', ARGV[8], 't', ARGV[9], 'd', ARGV[10])\n"
    "  redis.call('PEXPIRE', KEYS[3], ARGV[3])\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[4], e .. ' ' .. n .. ' ' .. ARGV[5] .. ' ' .. ARGV[6] .. ' ' ..\n"
    "           ARGV[7] .. ' ' .. ARGV[8] .. ' ' .. ARGV[9] .. '\\n' .. ARGV[10])\n"
    "return {e, n}\n";

/* KEYS: epoch, seq, stream. ARGV: candidate epoch, the caller's epoch, the
 * caller's last id, key TTL (ms), most entries. Returns {epoch, last id,
 * entries newest first}: those after the caller's last id when its epoch is
 * still the room's, else the newest kept. */
static const char fetch_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if not e then\n"
    "  e = ARGV[1]\n"
    "  redis.call('SET', KEYS[1], e, 'PX', ARGV[4])\n"
    "  redis.call('DEL', KEYS[2], KEYS[3])\n"
    "end\n"
    "local n = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local from = '-'\n"
    "if e == ARGV[2] then from = (tonumber(ARGV[3]) + 1) .. '-0' end\n"
    "return {e, n, redis.call('XREVRANGE', KEYS[3], '+', from, 'COUNT', ARGV[5])}\n";

static uint32_t channel_bucket(const char *room)
{
    return str_hash(room) % SET_BUCKETS;
}

static channel *channel_find(rb *b, const char *room)
{
    for (channel *c = b->channels[channel_bucket(room)]; c; c = c->next)
        if (!strcmp(c->room, room))
            return c;
    return NULL;
}

static channel *channel_add(rb *b, const char *room)
{
    channel *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    snprintf(c->room, sizeof(c->room), "%s", room);
    uint32_t k = channel_bucket(room);
    c->next = b->channels[k];
    b->channels[k] = c;
    return c;
}

void rb_channel_remove(rb *b, channel *c)
{
    channel **pp = &b->channels[channel_bucket(c->room)];
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    free(c);
}

static void key_of(const rb *b, char *out, const char *room, const char *what)
{
    snprintf(out, KEY_MAX, "%sr:%s:%s", b->prefix, room, what);
}

static void channel_name(const rb *b, char *out, const char *room)
{
    snprintf(out, KEY_MAX, "%sc:%s", b->prefix, room);
}

void rb_subscribe_channel(rb *b, channel *c)
{
    if (b->state != LINK_UP || !b->sub.ac || c->subscribed || c->unsubscribing)
        return;
    char ch[KEY_MAX];
    channel_name(b, ch, c->room);
    const char *argv[] = {"SUBSCRIBE", ch};
    size_t lens[] = {9, strlen(ch)};
    if (redisAsyncCommandArgv(b->sub.ac, rb_on_sub_reply, NULL, 2, argv, lens) == REDIS_OK)
        c->subscribed = true;
}

static void unsubscribe_channel(rb *b, channel *c)
{
    char ch[KEY_MAX];
    channel_name(b, ch, c->room);
    const char *argv[] = {"UNSUBSCRIBE", ch};
    size_t lens[] = {11, strlen(ch)};
    if (b->sub.ac &&
        redisAsyncCommandArgv(b->sub.ac, rb_on_sub_reply, NULL, 2, argv, lens) == REDIS_OK)
        c->unsubscribing = true;
}

void rb_want(rb *b, const char *room)
{
    channel *c = channel_find(b, room);
    if (!c && !(c = channel_add(b, room))) {
        LOG_ERR(TAG, "out of memory: room %s not subscribed", room);
        return;
    }
    c->wanted = true;
    if (c->confirmed && !c->unsubscribing)
        hub_bp_subscribed(b->hub, room); /* still subscribed: only a fetch is needed */
    else
        rb_subscribe_channel(b, c);
}

void rb_unwant(rb *b, const char *room)
{
    channel *c = channel_find(b, room);
    if (!c)
        return;
    c->wanted = false;
    c->unwanted_ms = clock_now_ms();
    if (!c->subscribed && !c->unsubscribing)
        rb_channel_remove(b, c);
}

/* Rooms left a while ago are unsubscribed (a room that long polls join and
 * leave all the time stays subscribed). */
void rb_sweep_channels(rb *b, int64_t now)
{
    for (size_t i = 0; i < SET_BUCKETS; i++)
        for (channel *c = b->channels[i]; c; c = c->next)
            if (!c->wanted && c->confirmed && !c->unsubscribing &&
                now - c->unwanted_ms >= UNSUBSCRIBE_AFTER_MS)
                unsubscribe_channel(b, c);
}

void rb_on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *rc = ac->ev.data;
    redisReply *r = reply;
    (void)privdata;
    if (!rc || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    rb *b = rc->b;
    const char *kind = r->element[0]->str;
    if (rb_node_message(b, r) || rb_cluster_message(b, r))
        return;
    const char *room = bp_room_of_channel(b->prefix, r->element[1]->str);
    if (!room)
        return;
    if (!strcmp(kind, "message") && r->element[2]->type == REDIS_REPLY_STRING) {
        char epoch[MSG_EPOCH_MAX] = "", origin[BP_NODE_ID_LEN + 1] = "", target[BP_TARGET_MAX] = "";
        bp_entry e;
        if (rb_presence_message(b, room, r->element[2]->str, r->element[2]->len))
            return;
        if (bp_parse_message(r->element[2]->str, r->element[2]->len, epoch, &e, origin, target))
            hub_bp_message(b->hub, room, epoch, &e);
        else
            LOG_WARN(TAG, "room %s: a malformed message on its channel, ignored", room);
    } else if (!strcmp(kind, "subscribe")) {
        channel *c = channel_find(b, room);
        if (!c)
            return;
        c->confirmed = true;
        if (c->wanted)
            hub_bp_subscribed(b->hub, room);
    } else if (!strcmp(kind, "unsubscribe")) {
        channel *c = channel_find(b, room);
        if (!c)
            return;
        c->subscribed = c->confirmed = c->unsubscribing = false;
        if (c->wanted)
            rb_subscribe_channel(b, c); /* wanted again meanwhile */
        else
            rb_channel_remove(b, c);
    }
}

/* A publish sent to Redis, until its reply (or hiredis's NULL reply when
 * the connection goes). */
typedef struct pending_publish {
    rb *b;
    size_t len; /* its bytes, in b->pending_bytes until then */
    publish_done_fn done;
    void *arg;
} pending_publish;

void rb_publish_settled(rb *b, size_t len)
{
    pthread_mutex_lock(&b->qlock);
    b->pending_bytes -= len < b->pending_bytes ? len : b->pending_bytes;
    pthread_mutex_unlock(&b->qlock);
}

static void on_publish_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_publish *pp = privdata;
    redisReply *r = reply;
    publish_result res = {0};
    if (!r) {
        res.rc = -EIO;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[0]->type != REDIS_REPLY_STRING || !bp_parse_u64(r->element[1], &res.id)) {
        LOG_ERR(TAG, "unexpected answer to a publish: %s",
                r->type == REDIS_REPLY_ERROR ? r->str : "(not {epoch, id})");
        res.rc = -EIO;
    } else {
        snprintf(res.epoch, sizeof(res.epoch), "%s", r->element[0]->str);
    }
    rb_publish_settled(pp->b, pp->len);
    if (pp->done)
        pp->done(pp->arg, &res);
    free(pp);
}

/* Sends one publish; w is the caller's to free. */
void rb_send_publish(rb *b, work *w)
{
    char ke[KEY_MAX], kn[KEY_MAX], ks[KEY_MAX], ch[KEY_MAX], epoch[MSG_EPOCH_MAX];
    char size[RB_NUM_MAX], ttl[RB_NUM_MAX], wall[RB_NUM_MAX], excl[RB_NUM_MAX];
    key_of(b, ke, w->room, "e");
    key_of(b, kn, w->room, "n");
    key_of(b, ks, w->room, "s");
    channel_name(b, ch, w->room);
    hub_random_name(epoch, RB_EPOCH_LEN);
    snprintf(size, sizeof(size), "%zu", b->history_size);
    snprintf(ttl, sizeof(ttl), "%" PRId64, b->key_ttl_ms);
    snprintf(wall, sizeof(wall), "%" PRId64, w->wall_ms);
    snprintf(excl, sizeof(excl), "%" PRIu64, w->exclude);
    const char *target = w->target[0] ? w->target : "-";
    const char *argv[] = {"EVAL", publish_lua,
                          "3",    ke,
                          kn,     ks,
                          epoch,  size,
                          ttl,    ch,
                          wall,   b->base.node_id,
                          excl,   w->local_done ? "1" : "0",
                          target, w->data};
    size_t n = sizeof(argv) / sizeof(argv[0]);
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i + 1 < n; i++)
        lens[i] = strlen(argv[i]);
    lens[n - 1] = w->len; /* the data: not NUL-terminated */
    pending_publish *pp = malloc(sizeof(*pp));
    if (pp)
        *pp = (pending_publish){b, w->len, w->done, w->arg};
    if (!pp ||
        redisAsyncCommandArgv(b->cmd.ac, on_publish_reply, pp, (int)n, argv, lens) != REDIS_OK) {
        publish_result res = {.rc = pp ? -EIO : -ENOMEM};
        free(pp);
        rb_publish_settled(b, w->len);
        if (w->done)
            w->done(w->arg, &res);
    }
}

typedef struct pending_fetch {
    char room[ROOM_NAME_MAX + 1];
} pending_fetch;

static void on_fetch_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *rc = ac->ev.data;
    pending_fetch *pf = privdata;
    redisReply *r = reply;
    uint64_t last_id = 0;
    if (!rc || !r) {
        free(pf); /* the connection is gone: the room is fetched again when it is back */
        return;
    }
    if (!bp_fetch_reply_ok(r, &last_id)) {
        LOG_ERR(TAG, "room %s: unexpected answer to a fetch: %s", pf->room,
                r->type == REDIS_REPLY_ERROR ? r->str : "(not {epoch, id, entries})");
        free(pf);
        return;
    }
    const redisReply *list = r->element[2];
    size_t n = list->elements, k = 0;
    bp_entry *entries = n ? calloc(n, sizeof(*entries)) : NULL;
    if (n && !entries) {
        LOG_ERR(TAG, "room %s: out of memory reading its history", pf->room);
        n = 0;
    }
    for (size_t i = n; i-- > 0;) /* newest first in the answer; oldest first to the hub */
        if (bp_parse_entry(list->element[i], &entries[k]))
            k++;
    hub_bp_fetched(rc->b->hub, pf->room, r->element[0]->str, last_id, entries, k);
    free(entries);
    free(pf);
}

void rb_send_fetch(rb *b, const work *w)
{
    pending_fetch *pf = malloc(sizeof(*pf));
    if (!pf)
        return;
    snprintf(pf->room, sizeof(pf->room), "%s", w->room);
    char ke[KEY_MAX], kn[KEY_MAX], ks[KEY_MAX], epoch[MSG_EPOCH_MAX], after[RB_NUM_MAX],
        ttl[RB_NUM_MAX], count[RB_NUM_MAX];
    key_of(b, ke, w->room, "e");
    key_of(b, kn, w->room, "n");
    key_of(b, ks, w->room, "s");
    hub_random_name(epoch, RB_EPOCH_LEN);
    snprintf(after, sizeof(after), "%" PRIu64, w->after);
    snprintf(ttl, sizeof(ttl), "%" PRId64, b->key_ttl_ms);
    snprintf(count, sizeof(count), "%zu", b->history_size ? b->history_size : 1);
    const char *argv[] = {"EVAL", fetch_lua, "3",  ke, kn, ks, epoch, w->epoch[0] ? w->epoch : "-",
                          after,  ttl,       count};
    size_t n = sizeof(argv) / sizeof(argv[0]);
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(b->cmd.ac, on_fetch_reply, pf, (int)n, argv, lens) != REDIS_OK)
        free(pf);
}

typedef struct pending_state {
    bp_room_fn cb;
    void *arg;
} pending_state;

static void on_state_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_state *ps = privdata;
    redisReply *r = reply;
    uint64_t last = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        ps->cb(ps->arg, -EIO, "", 0);
    else if (r->element[0]->type != REDIS_REPLY_STRING)
        ps->cb(ps->arg, -ENOENT, "", 0);
    else if (r->element[1]->type == REDIS_REPLY_STRING && !bp_parse_u64(r->element[1], &last))
        ps->cb(ps->arg, -EIO, "", 0);
    else
        ps->cb(ps->arg, 0, r->element[0]->str, last);
    free(ps);
}

void rb_send_room_state(rb *b, work *w)
{
    pending_state *ps = malloc(sizeof(*ps));
    if (!ps) {
        w->room_cb(w->arg, -EIO, "", 0);
        return;
    }
    *ps = (pending_state){w->room_cb, w->arg};
    char ke[KEY_MAX], kn[KEY_MAX];
    key_of(b, ke, w->room, "e");
    key_of(b, kn, w->room, "n");
    const char *argv[] = {"MGET", ke, kn};
    size_t lens[] = {4, strlen(ke), strlen(kn)};
    if (redisAsyncCommandArgv(b->cmd.ac, on_state_reply, ps, 3, argv, lens) != REDIS_OK) {
        free(ps);
        w->room_cb(w->arg, -EIO, "", 0);
    }
}
