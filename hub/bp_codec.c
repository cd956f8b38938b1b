/* SPDX-License-Identifier: MIT */
/*
 * bp_codec.c - decoding the Redis backplane's messages and answers (see
 * bp_codec.h and the key layout in redis_rooms.c). Pure: any thread.
 */
#include "hub/bp_codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A channel message's head, "epoch id wall origin exclude local target",
 * is at most this long: the widths below (epoch %15s, origin %12s, target
 * %63s) are those of MSG_EPOCH_MAX, BP_NODE_ID_LEN and BP_TARGET_MAX. */
#define HEAD_MAX 200
_Static_assert(MSG_EPOCH_MAX == 16 && BP_NODE_ID_LEN == 12 && BP_TARGET_MAX == 64,
               "bp_parse_message's sscanf widths follow these sizes");

bool bp_parse_message(const char *p, size_t len, char *epoch, bp_entry *e, char *origin,
                      char *target)
{
    const char *nl = memchr(p, '\n', len);
    if (!nl || nl - p > HEAD_MAX)
        return false;
    char head[HEAD_MAX + 1];
    memcpy(head, p, (size_t)(nl - p));
    head[nl - p] = '\0';
    int local = 0;
    long long wall = 0;
    unsigned long long id = 0, exclude = 0;
    if (sscanf(head, "%15s %llu %lld %12s %llu %d %63s", epoch, &id, &wall, origin, &exclude,
               &local, target) != 7)
        return false;
    if (!strcmp(target, "-"))
        target[0] = '\0';
    *e = (bp_entry){.id = id,
                    .wall_ms = wall,
                    .origin = origin,
                    .exclude = exclude,
                    .local_done = local != 0,
                    .target = target,
                    .data = nl + 1,
                    .len = len - (size_t)(nl + 1 - p)};
    return true;
}

bool bp_parse_entry(const redisReply *r, bp_entry *e)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
        return false;
    *e = (bp_entry){.target = "", .origin = ""};
    e->id = strtoull(r->element[0]->str, NULL, 10);
    const redisReply *f = r->element[1];
    bool has_data = false;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len != 1)
            continue;
        switch (k->str[0]) {
        case 'w':
            e->wall_ms = strtoll(v->str, NULL, 10);
            break;
        case 'o':
            e->origin = v->str;
            break;
        case 'x':
            e->exclude = strtoull(v->str, NULL, 10);
            break;
        case 'l':
            e->local_done = v->str[0] == '1';
            break;
        case 't':
            e->target = strcmp(v->str, "-") ? v->str : "";
            break;
        case 'd':
            e->data = v->str;
            e->len = v->len;
            has_data = true;
            break;
        }
    }
    return e->id > 0 && has_data;
}

bool bp_parse_u64(const redisReply *r, uint64_t *out)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = (uint64_t)r->integer;
        return r->integer >= 0;
    }
    if (r->type != REDIS_REPLY_STRING)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(r->str, &end, 10);
    *out = v;
    return !errno && end != r->str;
}

bool bp_fetch_reply_ok(const redisReply *r, uint64_t *last_id)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
           r->element[0]->type == REDIS_REPLY_STRING && bp_parse_u64(r->element[1], last_id) &&
           r->element[2]->type == REDIS_REPLY_ARRAY;
}

const char *bp_room_of_channel(const char *prefix, const char *ch)
{
    size_t n = strlen(prefix);
    if (strncmp(ch, prefix, n) || strncmp(ch + n, "c:", 2))
        return NULL;
    return ch + n + 2;
}

#define SYNC_WORD "sync "

bool bp_parse_presence_sync(const char *p, size_t len, const char **node, size_t *node_len,
                            const char **users, size_t *users_len)
{
    static const char pre[] = BP_PRESENCE_PREFIX SYNC_WORD;
    if (len < sizeof(pre) - 1 || memcmp(p, pre, sizeof(pre) - 1))
        return false;
    const char *q = p + sizeof(pre) - 1, *end = p + len;
    const char *nl = memchr(q, '\n', (size_t)(end - q));
    if (!nl || nl == q || memchr(q, '\0', (size_t)(end - q)))
        return false;
    *node = q;
    *node_len = (size_t)(nl - q);
    *users = nl + 1;
    *users_len = (size_t)(end - nl - 1);
    return true;
}

bp_presence_kind bp_parse_presence(const char *p, size_t len, bool *join, const char **user,
                                   size_t *user_len)
{
    static const char pre[] = BP_PRESENCE_PREFIX, j[] = "join ", l[] = "leave ";
    if (len < sizeof(pre) - 1 || memcmp(p, pre, sizeof(pre) - 1))
        return BP_PRESENCE_NONE;
    const char *q = p + sizeof(pre) - 1, *end = p + len;
    size_t rest = (size_t)(end - q);
    if (rest >= sizeof(SYNC_WORD) - 1 && !memcmp(q, SYNC_WORD, sizeof(SYNC_WORD) - 1))
        return BP_PRESENCE_SYNC;
    if (rest > sizeof(j) - 1 && !memcmp(q, j, sizeof(j) - 1)) {
        *join = true;
        q += sizeof(j) - 1;
    } else if (rest > sizeof(l) - 1 && !memcmp(q, l, sizeof(l) - 1)) {
        *join = false;
        q += sizeof(l) - 1;
    } else {
        return BP_PRESENCE_MALFORMED;
    }
    if (memchr(q, '\0', (size_t)(end - q)))
        return BP_PRESENCE_MALFORMED;
    *user = q;
    *user_len = (size_t)(end - q);
    return BP_PRESENCE_EVENT;
}
