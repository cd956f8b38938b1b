/* SPDX-License-Identifier: MIT */
/*
 * redis_presence.c - presence through Redis. Per room (P = the key prefix):
 *   P p:{room}:{node}  a hash: user -> this node's connections ("" for the
 *                      anonymous ones), PEXPIREd PRESENCE_TTL_MS
 *   P pn:{room}        a set of the nodes that reported into the room
 * A node updates its hash with a script as its counts change (and, when
 * the room has presence_events, the script sums the user over the nodes
 * before and after: 0 -> more is a join, more -> 0 a leave, PUBLISHed on
 * the room's channel as "!p join USER" / "!p leave USER", which no room
 * message can start with). Every PRESENCE_REFRESH_MS the node refreshes the
 * TTL of its hashes (the rooms it has anyone in: presence_rooms, this
 * thread's own set). A node that dies stops refreshing: its hashes are
 * gone PRESENCE_TTL_MS later at most, and readers (another script: the sum
 * over the nodes whose hash is still there) no longer count them. A node
 * whose link comes back gets every count again from the hub (reset first).
 *
 * Threading: the backplane's thread only; presence_fn callbacks are called
 * with no lock held.
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
#include "common/log.h"
#include "hub/bp_codec.h"

#define PRESENCE_TTL_MS 15000    /* a node's hash lives this long unrefreshed */
#define PRESENCE_REFRESH_MS 5000 /* ... and is refreshed this often */

/* A room this node has presence in (thread). */
typedef struct presence_room {
    struct presence_room *next;
    char room[ROOM_NAME_MAX + 1];
} presence_room;

/* KEYS: this node's hash, the room's node set, the room's channel. ARGV:
 * node, user, count, TTL, events ("1"), the hashes' prefix (P p:{room}:),
 * reset ("1": forget this node's hash first). */
static const char update_lua[] =
    "if ARGV[7] == '1' then redis.call('DEL', KEYS[1]) end\n"
    "local function total(u)\n"
    "  local t = 0\n"
    "  for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "    local c = redis.call('HGET', ARGV[6] .. n, u)\n"
    "    if c then t = t + tonumber(c) end\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "local ev = ARGV[5] == '1' and ARGV[2] ~= ''\n"
    "local before = 0\n"
    "if ev then before = total(ARGV[2]) end\n"
    "if tonumber(ARGV[3]) > 0 then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n"
    "else redis.call('HDEL', KEYS[1], ARGV[2]) end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[4])\n"
    "if ev then\n"
    "  local after = total(ARGV[2])\n"
    "  if before == 0 and after > 0 then\n"
    "    redis.call('PUBLISH', KEYS[3], '" BP_PRESENCE_PREFIX "join ' .. ARGV[2])\n"
    "  elseif before > 0 and after == 0 then\n"
    "    redis.call('PUBLISH', KEYS[3], '" BP_PRESENCE_PREFIX "leave ' .. ARGV[2])\n"
    "  end\n"
    "end\n"
    "return 1\n";

/* KEYS: this node's hash, the room's node set. ARGV: node, TTL. */
static const char refresh_lua[] = "if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 1 then\n"
                                  "  redis.call('SADD', KEYS[2], ARGV[1])\n"
                                  "  redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"
                                  "end\n"
                                  "return 1\n";

/* KEYS: the room's node set. ARGV: the hashes' prefix, most users listed.
 * Returns {users, anonymous connections, {user, connections, ...} or {}
 * past the most listed, nodes, connections}; nodes whose hash is gone
 * leave the set. */
static const char get_lua[] =
    "local t, users, anon, nodes, conns = {}, 0, 0, 0, 0\n"
    "for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local h = redis.call('HGETALL', ARGV[1] .. n)\n"
    "  if #h == 0 then redis.call('SREM', KEYS[1], n) else nodes = nodes + 1 end\n"
    "  for i = 1, #h, 2 do\n"
    "    local c = tonumber(h[i + 1]) or 0\n"
    "    conns = conns + c\n"
    "    if h[i] == '' then anon = anon + c\n"
    "    else\n"
    "      if not t[h[i]] then users = users + 1; t[h[i]] = 0 end\n"
    "      t[h[i]] = t[h[i]] + c\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local out = {}\n"
    "if users <= tonumber(ARGV[2]) then\n"
    "  for u, c in pairs(t) do out[#out + 1] = u; out[#out + 1] = tostring(c) end\n"
    "end\n"
    "return {users, anon, out, nodes, conns}\n";

/* KEYS: the room's node set, its channel. ARGV: the hashes' prefix, this
 * node, most users listed, base ("1"). Who is present (a connection on a
 * live node), as a JSON array of names, or "*" past the most listed: with
 * base, on the other nodes, returned; else on every node, PUBLISHed on the
 * channel for this node ("!p sync NODE\n" USERS), in order with the room's
 * presence events. */
static const char sync_lua[] =
    "local t, n = {}, 0\n"
    "for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  if ARGV[4] ~= '1' or node ~= ARGV[2] then\n"
    "    local h = redis.call('HGETALL', ARGV[1] .. node)\n"
    "    for i = 1, #h, 2 do\n"
    "      if h[i] ~= '' and (tonumber(h[i + 1]) or 0) > 0 and not t[h[i]] then\n"
    "        t[h[i]] = true; n = n + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local out = '*'\n"
    "if n <= tonumber(ARGV[3]) then\n"
    "  local list = {}\n"
    "  for u in pairs(t) do list[#list + 1] = u end\n"
    "  out = n == 0 and '[]' or cjson.encode(list)\n"
    "end\n"
    "if ARGV[4] == '1' then return out end\n"
    "redis.call('PUBLISH', KEYS[2], '" BP_PRESENCE_PREFIX "sync ' .. ARGV[2] .. '\\n' .. out)\n"
    "return 1\n";

static void hash_prefix(const rb *b, char *out, const char *room)
{
    snprintf(out, KEY_MAX, "%sp:%s:", b->prefix, room);
}

static void node_hash(const rb *b, char *out, const char *room)
{
    snprintf(out, KEY_MAX, "%sp:%s:%s", b->prefix, room, b->base.node_id);
}

static void node_set(const rb *b, char *out, const char *room)
{
    snprintf(out, KEY_MAX, "%spn:%s", b->prefix, room);
}

static presence_room **room_slot(rb *b, const char *room)
{
    presence_room **pp = &b->presence_rooms[str_hash(room) % SET_BUCKETS];
    while (*pp && strcmp((*pp)->room, room))
        pp = &(*pp)->next;
    return pp;
}

/* Keeps the set of rooms to refresh in step with what the hub reported. */
static void track_room(rb *b, const char *room, bool present)
{
    presence_room **pp = room_slot(b, room);
    if (present && !*pp) {
        presence_room *r = calloc(1, sizeof(*r));
        if (!r) {
            LOG_ERR(TAG, "out of memory: presence of room %s not refreshed", room);
            return;
        }
        snprintf(r->room, sizeof(r->room), "%s", room);
        *pp = r;
    } else if (!present && *pp) {
        presence_room *r = *pp;
        *pp = r->next;
        free(r);
    }
}

static bool link_up(const rb *b)
{
    return b->state == LINK_UP && b->cmd.ac;
}

void rb_send_presence(rb *b, work *w)
{
    track_room(b, w->room, w->p_present);
    if (!link_up(b))
        return;
    char kh[KEY_MAX], ks[KEY_MAX], ch[KEY_MAX], prefix[KEY_MAX], count[RB_NUM_MAX], ttl[RB_NUM_MAX];
    node_hash(b, kh, w->room);
    node_set(b, ks, w->room);
    snprintf(ch, sizeof(ch), "%sc:%s", b->prefix, w->room);
    hash_prefix(b, prefix, w->room);
    snprintf(count, sizeof(count), "%" PRIu64, w->after);
    snprintf(ttl, sizeof(ttl), "%d", PRESENCE_TTL_MS);
    const char *argv[] = {"EVAL",
                          update_lua,
                          "3",
                          kh,
                          ks,
                          ch,
                          b->base.node_id,
                          w->data,
                          count,
                          ttl,
                          w->p_events ? "1" : "0",
                          prefix,
                          w->p_reset ? "1" : "0"};
    size_t lens[] = {4,          sizeof(update_lua) - 1,  1,      strlen(kh),    strlen(ks),
                     strlen(ch), strlen(b->base.node_id), w->len, strlen(count), strlen(ttl),
                     1,          strlen(prefix),          1};
    redisAsyncCommandArgv(b->cmd.ac, NULL, NULL, 13, argv, lens);
}

void rb_presence_refresh(rb *b, int64_t now)
{
    if (now < b->presence_refresh_at || !link_up(b))
        return;
    b->presence_refresh_at = now + PRESENCE_REFRESH_MS;
    char ttl[RB_NUM_MAX];
    snprintf(ttl, sizeof(ttl), "%d", PRESENCE_TTL_MS);
    for (size_t i = 0; i < SET_BUCKETS; i++) {
        for (presence_room *r = b->presence_rooms[i]; r; r = r->next) {
            char kh[KEY_MAX], ks[KEY_MAX];
            node_hash(b, kh, r->room);
            node_set(b, ks, r->room);
            const char *argv[] = {"EVAL", refresh_lua, "2", kh, ks, b->base.node_id, ttl};
            size_t lens[] = {4,          sizeof(refresh_lua) - 1, 1,          strlen(kh),
                             strlen(ks), strlen(b->base.node_id), strlen(ttl)};
            redisAsyncCommandArgv(b->cmd.ac, NULL, NULL, 7, argv, lens);
        }
    }
}

typedef struct pending_get {
    presence_fn cb;
    void *arg;
} pending_get;

static bool is_int(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0;
}

/* Decodes {users, anonymous, {user, n, ...}, nodes, connections} and
 * answers (the last two came later: 0 when absent). */
static void on_get_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_get *pg = privdata;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || !is_int(r->element[0]) ||
        !is_int(r->element[1]) || r->element[2]->type != REDIS_REPLY_ARRAY) {
        pg->cb(pg->arg, -EIO, NULL);
        free(pg);
        return;
    }
    const redisReply *list = r->element[2];
    size_t n = list->elements / 2;
    presence_entry *v = n ? calloc(n, sizeof(*v)) : NULL;
    if (n && !v) {
        pg->cb(pg->arg, -ENOMEM, NULL);
        free(pg);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *u = list->element[2 * i], *c = list->element[2 * i + 1];
        if (u->type != REDIS_REPLY_STRING || c->type != REDIS_REPLY_STRING)
            continue;
        v[k++] = (presence_entry){u->str, strtoull(c->str, NULL, 10)};
    }
    presence_sort(v, k);
    presence_list l = {.users = (uint64_t)r->element[0]->integer,
                       .anonymous = (uint64_t)r->element[1]->integer,
                       .listed = k == (uint64_t)r->element[0]->integer,
                       .v = v,
                       .n = k};
    if (r->elements >= 5 && is_int(r->element[3]) && is_int(r->element[4])) {
        l.nodes = (uint64_t)r->element[3]->integer;
        l.connections = (uint64_t)r->element[4]->integer;
    }
    pg->cb(pg->arg, 0, &l);
    free(v);
    free(pg);
}

void rb_send_presence_get(rb *b, work *w)
{
    pending_get *pg = malloc(sizeof(*pg));
    if (!pg) {
        w->presence_cb(w->arg, -ENOMEM, NULL);
        return;
    }
    *pg = (pending_get){w->presence_cb, w->arg};
    char ks[KEY_MAX], prefix[KEY_MAX], max[RB_NUM_MAX];
    node_set(b, ks, w->room);
    hash_prefix(b, prefix, w->room);
    snprintf(max, sizeof(max), "%zu", w->max_listed);
    const char *argv[] = {"EVAL", get_lua, "1", ks, prefix, max};
    size_t lens[] = {4, sizeof(get_lua) - 1, 1, strlen(ks), strlen(prefix), strlen(max)};
    if (redisAsyncCommandArgv(b->cmd.ac, on_get_reply, pg, 6, argv, lens) != REDIS_OK) {
        free(pg);
        w->presence_cb(w->arg, -EIO, NULL);
    }
}

/* The base's answer: who is present on the other nodes. No answer (the
 * connection gone): the hub goes live when the link is back. */
static void on_base_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *rc = ac->ev.data;
    char *room = privdata;
    const redisReply *r = reply;
    if (rc && r && r->type == REDIS_REPLY_STRING)
        hub_bp_presence_base(rc->b->hub, room, r->str, r->len);
    else if (rc && r)
        hub_bp_presence_base(rc->b->hub, room, NULL, 0);
    free(room);
}

void rb_send_presence_sync(rb *b, work *w)
{
    bool base = w->after;
    char *room = base ? strdup(w->room) : NULL;
    if (base && !room) {
        hub_bp_presence_base(b->hub, w->room, NULL, 0);
        return;
    }
    char ks[KEY_MAX], ch[KEY_MAX], prefix[KEY_MAX], max[RB_NUM_MAX];
    node_set(b, ks, w->room);
    snprintf(ch, sizeof(ch), "%sc:%s", b->prefix, w->room);
    hash_prefix(b, prefix, w->room);
    snprintf(max, sizeof(max), "%zu", w->max_listed);
    const char *argv[] = {"EVAL", sync_lua,        "2", ks, ch, prefix, b->base.node_id,
                          max,    base ? "1" : "0"};
    size_t lens[] = {4,
                     sizeof(sync_lua) - 1,
                     1,
                     strlen(ks),
                     strlen(ch),
                     strlen(prefix),
                     strlen(b->base.node_id),
                     strlen(max),
                     1};
    if (redisAsyncCommandArgv(b->cmd.ac, base ? on_base_reply : NULL, room, 9, argv, lens) !=
            REDIS_OK &&
        base) {
        free(room);
        hub_bp_presence_base(b->hub, w->room, NULL, 0);
    }
}

bool rb_presence_message(rb *b, const char *room, const char *data, size_t len)
{
    bool join = false;
    const char *who = NULL;
    size_t who_len = 0;
    bp_presence_kind k = bp_parse_presence(data, len, &join, &who, &who_len);
    if (k == BP_PRESENCE_NONE)
        return false;
    if (k == BP_PRESENCE_SYNC) {
        const char *node, *users;
        size_t node_len, users_len;
        if (!bp_parse_presence_sync(data, len, &node, &node_len, &users, &users_len))
            LOG_WARN(TAG, "room %s: a malformed presence sync on its channel, ignored", room);
        else if (node_len == strlen(b->base.node_id) && !memcmp(node, b->base.node_id, node_len))
            hub_bp_presence_synced(b->hub, room, users, users_len);
        return true; /* another node's: not for this one */
    }
    if (k == BP_PRESENCE_MALFORMED) {
        LOG_WARN(TAG, "room %s: a malformed presence event on its channel, ignored", room);
        return true;
    }
    char *user = strndup(who, who_len);
    if (!user)
        return true;
    hub_bp_presence(b->hub, room, user, join);
    free(user);
    return true;
}

void rb_presence_free(rb *b)
{
    for (size_t i = 0; i < SET_BUCKETS; i++) {
        for (presence_room *r = b->presence_rooms[i], *next; r; r = next) {
            next = r->next;
            free(r);
        }
        b->presence_rooms[i] = NULL;
    }
}
