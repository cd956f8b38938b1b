/* SPDX-License-Identifier: MIT */
/*
 * hub.c - rooms, membership, ids, history and fanout (see hub.h).
 *
 * One mutex guards everything here. A publish takes it once: next id,
 * encodings for the formats the room's members use, history, then one queue
 * push and one wake per member. A member whose queue is full is dropped on
 * the spot (unlinked, told through ops->dropped) and never blocks the rest.
 */
#include "hub/hub.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "gateway/buf.h"
#include "gateway/log.h"
#include "hub/history.h"

#define TAG "hub"

/* A sub's place in one room: linked into the room's member list and into
 * the sub's own list of memberships. */
typedef struct membership {
    sub *s;
    struct room *room;
    struct membership *prev, *next; /* in room->members */
    struct membership *sub_next;    /* in s->memberships */
} membership;

typedef struct room {
    struct room *bucket_next;
    uint32_t hash;
    char name[ROOM_NAME_MAX + 1];
    char epoch[MSG_EPOCH_MAX]; /* fixed when the room's numbering starts */
    uint64_t last_id;
    membership *members;
    unsigned count[SUB_KIND_COUNT];
    history hist;
} room;

struct hub {
    pthread_mutex_t lock;
    hub_options opt;
    room **buckets;
    size_t nbuckets;
    size_t nrooms;
    hub_stats stats;
};

/* ---------------------------------------------------------------- rooms */

bool room_name_is_valid(const char *name, size_t len)
{
    if (len < 1 || len > ROOM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

static room *room_find(hub *h, const char *name)
{
    uint32_t hv = str_hash(name);
    for (room *r = h->buckets[hv % h->nbuckets]; r; r = r->bucket_next)
        if (r->hash == hv && !strcmp(r->name, name))
            return r;
    return NULL;
}

static void rehash(hub *h)
{
    size_t n = h->nbuckets * 2;
    room **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < h->nbuckets; i++) {
        room *r = h->buckets[i];
        while (r) {
            room *next = r->bucket_next;
            r->bucket_next = b[r->hash % n];
            b[r->hash % n] = r;
            r = next;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = n;
}

/* A room's epoch: 8 random characters of [A-Za-z0-9]. Ids are only
 * comparable within one epoch; a room that is freed and made again starts
 * a new one (and its ids start again at 1). */
static void new_epoch(char out[MSG_EPOCH_MAX])
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[8] = {0};
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        LOG_WARN(TAG, "getrandom failed; epochs may repeat");
    for (int i = 0; i < 8; i++)
        out[i] = chars[raw[i] % 62];
    out[8] = '\0';
}

static room *room_get_or_create(hub *h, const char *name)
{
    room *r = room_find(h, name);
    if (r)
        return r;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    size_t len = strlen(name);
    memcpy(r->name, name, len + 1);
    r->hash = str_hash(name);
    new_epoch(r->epoch);
    history_init(&r->hist, h->opt.history_size, h->opt.history_ttl_ms);
    if (h->nrooms + 1 > h->nbuckets)
        rehash(h);
    r->bucket_next = h->buckets[r->hash % h->nbuckets];
    h->buckets[r->hash % h->nbuckets] = r;
    h->nrooms++;
    h->stats.rooms += r->name[0] != '~'; /* internal rooms (hubs, stats) not counted */
    return r;
}

static bool room_is_empty(const room *r)
{
    return !r->members && !r->hist.count;
}

static void room_free_if_empty(hub *h, room *r)
{
    if (!room_is_empty(r))
        return;
    room **pp = &h->buckets[r->hash % h->nbuckets];
    while (*pp != r)
        pp = &(*pp)->bucket_next;
    *pp = r->bucket_next;
    history_clear(&r->hist);
    h->nrooms--;
    h->stats.rooms -= r->name[0] != '~';
    free(r);
}

/* ----------------------------------------------------------- membership */

static void member_unlink(hub *h, membership *m)
{
    room *r = m->room;
    if (m->prev)
        m->prev->next = m->next;
    else
        r->members = m->next;
    if (m->next)
        m->next->prev = m->prev;
    r->count[m->s->kind]--;
    h->stats.subscribers[m->s->kind]--;
}

/* Hub lock held. Unlinks every membership of s; rooms left empty are freed
 * unless keep is that room (the caller is still iterating it). */
static void leave_all(hub *h, sub *s, room *keep)
{
    membership *m = s->memberships;
    s->memberships = NULL;
    while (m) {
        membership *next = m->sub_next;
        room *r = m->room;
        member_unlink(h, m);
        free(m);
        if (r != keep)
            room_free_if_empty(h, r);
        m = next;
    }
}

void sub_init(sub *s, sub_kind kind, msg_fmt fmt, size_t limit)
{
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->fmt = fmt;
    pthread_mutex_init(&s->lock, NULL);
    sendq_init(&s->q, limit);
}

void sub_end(sub *s)
{
    pthread_mutex_lock(&s->lock);
    s->ending = true;
    if (s->wake)
        s->wake(s);
    pthread_mutex_unlock(&s->lock);
}

const char *sub_kind_name(sub_kind k)
{
    static const char *const names[SUB_KIND_COUNT] = {"websocket", "sse", "long_polling"};
    return k < SUB_KIND_COUNT ? names[k] : "?";
}

void sub_fini(sub *s)
{
    pthread_mutex_lock(&s->lock);
    sendq_clear(&s->q);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
}

/* --------------------------------------------------------------- fanout */

static void wake(sub *s)
{
    if (s->wake)
        s->wake(s);
}

/* Hub lock held. Queues m to s in s's format, or drops s when its queue is
 * full. Returns true when s was dropped. */
static bool deliver(hub *h, sub *s, msg *m, const char *where, bool counted)
{
    bool drop = false;
    pthread_mutex_lock(&s->lock);
    if (!s->dropped) {
        int rc = msg_encode(m, s->fmt, s->target);
        if (rc == 0)
            rc = sendq_push(&s->q, m);
        if (rc == 0) {
            if (m->id)
                s->last_id = m->id;
            h->stats.delivered += counted;
            wake(s);
        } else if (rc == -ENOBUFS) {
            drop = true;
            s->dropped = true;
            sendq_clear(&s->q); /* its memory goes back now, not at close */
            wake(s);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (drop) {
        h->stats.dropped++;
        LOG_WARN(TAG, "dropped a %s subscriber of %s: send queue full (%zu messages)",
                 sub_kind_name(s->kind), where, s->q.limit);
    }
    return drop;
}

int hub_publish(hub *h, const char *room_name, const char *data, size_t len,
                const publish_opts *opt, uint64_t *id_out)
{
    int rc = -ENOMEM;
    pthread_mutex_lock(&h->lock);
    bool transient = opt && opt->transient;
    room *r = transient ? room_find(h, room_name) : room_get_or_create(h, room_name);
    if (transient && (!r || !r->members)) {
        *id_out = 0;
        rc = 0;
        goto out;
    }
    if (!r)
        goto out;
    msg *m = msg_create_in(r->last_id + 1, r->name, r->epoch, data, len,
                           opt ? opt->target : NULL, hub_now_ms());
    if (!m) {
        room_free_if_empty(h, r);
        goto out;
    }
    r->last_id = m->id;
    if (!transient) {
        h->stats.published++;
        history_push(&r->hist, m);
    }
    for (membership *mb = r->members, *next; mb; mb = next) {
        next = mb->next;
        if (opt && mb->s == opt->exclude)
            continue;
        if (deliver(h, mb->s, m, r->name, !transient))
            leave_all(h, mb->s, r);
    }
    *id_out = m->id;
    msg_unref(m);
    room_free_if_empty(h, r);
    rc = 0;
out:
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* Hub lock held, sub lock held: queues m to s beyond the queue bound
 * (replays are bounded by the history size instead). */
static int queue_replayed(sub *s, msg *m)
{
    int rc = msg_encode(m, s->fmt, s->target);
    if (!rc)
        rc = sendq_push_over_limit(&s->q, m);
    if (!rc && m->id)
        s->last_id = m->id;
    return rc;
}

/* Hub lock held. What a resume from (since, epoch) has lost in r, if
 * anything: writes the gap signal's JSON object into out and returns its
 * length, or returns 0 when the kept history covers it. */
static size_t find_gap(const room *r, uint64_t since, const char *epoch, char *out, size_t cap,
                       uint64_t *replay_since)
{
    uint64_t first = history_first_id(&r->hist);
    uint64_t resumed_from = first ? first : r->last_id + 1;
    const char *reason = NULL;
    *replay_since = since;
    /* since 0 has seen nothing, in whatever epoch: then only expiry loses. */
    if ((since && epoch && strcmp(epoch, r->epoch)) || since > r->last_id) {
        reason = "epoch"; /* another numbering: everything kept is new to the client */
        *replay_since = 0;
    } else if (since < r->last_id && since + 1 < resumed_from) {
        reason = "expired"; /* older than what history keeps */
    }
    if (!reason)
        return 0;
    int n = snprintf(out, cap,
                     "{\"room\":\"%s\",\"epoch\":\"%s\",\"reason\":\"%s\",\"since\":%" PRIu64
                     ",\"resumed_from\":%" PRIu64 "}",
                     r->name, r->epoch, reason, since, resumed_from);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Hub lock held: queues to s what a resume from (since, epoch) needs: a gap
 * signal first when something is lost (check_gap), then the kept messages
 * with id > since, in order. */
static int replay(room *r, sub *s, uint64_t since, const char *epoch, bool check_gap)
{
    char info[ROOM_NAME_MAX + 160];
    size_t info_len = check_gap ? find_gap(r, since, epoch, info, sizeof(info), &since) : 0;
    msg *gap = info_len ? msg_create_gap(info, info_len) : NULL;
    if (info_len && !gap)
        return -ENOMEM;
    if (gap) /* the cursor to go on from: just before what comes next */
        gap->id = (history_first_id(&r->hist) ? history_first_id(&r->hist) : r->last_id + 1) - 1;
    size_t first;
    size_t n = history_since(&r->hist, since, &first);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (gap)
        rc = queue_replayed(s, gap);
    for (size_t i = 0; i < n && !rc; i++)
        rc = queue_replayed(s, history_at(&r->hist, first + i));
    if (n || gap)
        wake(s);
    pthread_mutex_unlock(&s->lock);
    msg_unref(gap);
    return rc;
}

/* The one way into a room: live only, or resuming after a cursor. */
static int join(hub *h, const char *room_name, sub *s, uint64_t since, const char *epoch,
                bool from_now, bool check_gap)
{
    int rc = -ENOMEM;
    pthread_mutex_lock(&h->lock);
    for (membership *m = s->memberships; m; m = m->sub_next) {
        if (!strcmp(m->room->name, room_name)) {
            rc = -EEXIST;
            goto out;
        }
    }
    room *r = room_get_or_create(h, room_name);
    membership *m = r ? calloc(1, sizeof(*m)) : NULL;
    if (!m) {
        if (r)
            room_free_if_empty(h, r);
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    s->last_id = from_now ? r->last_id : since;
    pthread_mutex_unlock(&s->lock);
    if (!from_now && (rc = replay(r, s, since, epoch, check_gap)) != 0) {
        free(m);
        room_free_if_empty(h, r);
        goto out;
    }
    m->s = s;
    m->room = r;
    m->next = r->members;
    if (r->members)
        r->members->prev = m;
    r->members = m;
    m->sub_next = s->memberships;
    s->memberships = m;
    r->count[s->kind]++;
    h->stats.subscribers[s->kind]++;
    rc = 0;
out:
    pthread_mutex_unlock(&h->lock);
    return rc;
}

bool hub_epoch_is_valid(const char *e)
{
    size_t n = strlen(e);
    if (n < 1 || n >= MSG_EPOCH_MAX)
        return false;
    for (; *e; e++)
        if (!((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9')))
            return false;
    return true;
}

bool hub_parse_cursor(const char *text, uint64_t *since, char *epoch)
{
    const char *colon = strchr(text, ':');
    const char *num = colon ? colon + 1 : text;
    epoch[0] = '\0';
    if (colon) {
        size_t n = (size_t)(colon - text);
        if (n >= MSG_EPOCH_MAX)
            return false;
        memcpy(epoch, text, n);
        epoch[n] = '\0';
        if (!hub_epoch_is_valid(epoch))
            return false;
    }
    if (!*num || strlen(num) > 20)
        return false;
    uint64_t v = 0;
    for (; *num; num++) {
        if (*num < '0' || *num > '9' || v > (UINT64_MAX - (uint64_t)(*num - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*num - '0');
    }
    *since = v;
    return true;
}

int hub_join(hub *h, const char *room_name, sub *s, uint64_t since, bool from_now)
{
    return join(h, room_name, s, since, NULL, from_now, false);
}

int hub_resume(hub *h, const char *room_name, sub *s, uint64_t since, const char *epoch)
{
    return join(h, room_name, s, since, epoch, false, true);
}

void hub_leave_room(hub *h, const char *room_name, sub *s)
{
    pthread_mutex_lock(&h->lock);
    for (membership **pp = &s->memberships; *pp; pp = &(*pp)->sub_next) {
        membership *m = *pp;
        if (strcmp(m->room->name, room_name))
            continue;
        *pp = m->sub_next;
        room *r = m->room;
        member_unlink(h, m);
        free(m);
        room_free_if_empty(h, r);
        break;
    }
    pthread_mutex_unlock(&h->lock);
}

int hub_send(hub *h, sub *s, msg *m)
{
    pthread_mutex_lock(&h->lock);
    if (deliver(h, s, m, "its connection", true))
        leave_all(h, s, NULL);
    pthread_mutex_lock(&s->lock);
    bool dropped = s->dropped;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&h->lock);
    return dropped ? -ENOBUFS : 0;
}

void hub_leave(hub *h, sub *s)
{
    pthread_mutex_lock(&h->lock);
    leave_all(h, s, NULL);
    pthread_mutex_unlock(&h->lock);
}

int hub_room_info(hub *h, const char *room_name, room_info *out)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, room_name);
    if (r) {
        out->last_id = r->last_id;
        memcpy(out->epoch, r->epoch, sizeof(out->epoch));
        memcpy(out->subscribers, r->count, sizeof(out->subscribers));
        rc = 0;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void hub_expire(hub *h, int64_t now_ms)
{
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nbuckets; i++) {
        room *r = h->buckets[i];
        while (r) {
            room *next = r->bucket_next;
            history_expire(&r->hist, now_ms);
            room_free_if_empty(h, r);
            r = next;
        }
    }
    pthread_mutex_unlock(&h->lock);
}

void hub_get_stats(hub *h, hub_stats *out)
{
    pthread_mutex_lock(&h->lock);
    *out = h->stats;
    pthread_mutex_unlock(&h->lock);
}

int64_t hub_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --------------------------------------------------------------- set-up */

hub *hub_create(const hub_options *opt)
{
    hub *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->opt = *opt;
    h->nbuckets = 64;
    h->buckets = calloc(h->nbuckets, sizeof(*h->buckets));
    if (!h->buckets) {
        free(h);
        return NULL;
    }
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

void hub_destroy(hub *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nbuckets; i++) {
        room *r = h->buckets[i];
        while (r) {
            room *next = r->bucket_next;
            while (r->members) { /* members left behind: forget them */
                membership *m = r->members;
                r->members = m->next;
                m->s->memberships = NULL;
                free(m);
            }
            history_clear(&r->hist);
            free(r);
            r = next;
        }
    }
    free(h->buckets);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
