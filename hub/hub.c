/* SPDX-License-Identifier: MIT */
/*
 * hub.c - rooms, membership, ids, history and fanout (see hub.h).
 *
 * One mutex guards everything here. A publish takes it once: next id,
 * encodings for the formats the room's members use, history, then one queue
 * push and one wake per member. A member whose queue is full is dropped on
 * the spot (unlinked, its queue emptied, `dropped` set and its wake called)
 * and never blocks the rest. Callbacks (a join's done, a publish's answer)
 * are deferred: hub_unlock makes them once the lock is let go.
 *
 * With a backplane, a publish is answered when the backplane has numbered
 * it, but members here get it when it comes back from the backplane. Its
 * answer is held until this node has taken it (a held publish), so that
 * whoever published reads what they wrote from this node at once.
 *
 * Limits (hub_options): rooms clients can name are capped (max_rooms), so
 * are the rooms one member joins (max_rooms_per_sub), and the bytes all
 * histories keep (history_max_bytes): past that budget the oldest messages
 * of the largest room go first. Rooms holding history are kept in a
 * max-heap by their history's bytes for that, fixed after every change to
 * a room's history (room_hist_changed). A resume whose cursor points into
 * what was evicted gets the gap signal, as after expiry (find_gap).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/hub.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/parse.h"
#include "hub/backplane.h"
#include "hub/history.h"

#define TAG "hub"

/* A sub's place in one room: linked into the room's member list and into
 * the sub's own list of memberships. */
typedef struct membership {
    sub *s;
    struct room *room;
    struct membership *prev, *next; /* in room->members */
    struct membership *sub_next;    /* in s->memberships */
    /* Backplane only: a join waiting for its room's numbering and history
     * (fetched from the backplane). It gets nothing until then. */
    bool pending;
    hub_join_args args;
    char epoch[MSG_EPOCH_MAX]; /* args.epoch, copied */
    int64_t join_wall_ms;      /* "from now" means: published after this */
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
    /* Backplane only. A shared room is numbered by the backplane: it is
     * `synced` once its numbering and history were fetched; until then (and
     * while a fetch fills a hole) messages from the backplane wait in
     * `waiting`. While the backplane is down, messages published here are
     * delivered here under a local epoch (local_epoch, local_last). */
    bool shared;
    bool synced;
    bool known; /* epoch and last_id came from the backplane at least once */
    bool fetch_again; /* messages were let go while waiting: fetch once more */
    msg **waiting;
    size_t nwaiting;
    size_t waiting_bytes; /* their footprint, counted in hub->waiting_bytes too */
    char local_epoch[MSG_EPOCH_MAX];
    uint64_t local_last;
    int64_t empty_since_ms; /* when its last member left; 0 while it has members */
    size_t heap_pos; /* 1 + its index in hub->heap while its history holds bytes; 0 not in it */
    struct held_publish *held; /* answers waiting for this node to take their message */
} room;

/* A publish the backplane has numbered and this node has not taken yet. */
typedef struct held_publish {
    publish_done_fn done;
    void *arg;
    publish_result res;
    int64_t since_ms;
    struct held_publish *next;
} held_publish;

/* How long an answer is held at most (a message that does not come back,
 * e.g. while the backplane reconnects): then it is given anyway. */
#define PUBLISH_HOLD_MS 1000

#define ROOM_WAITING_MAX 10000 /* messages held while a room's fetch is under way */
/* ... and the bytes all rooms may hold so together: past it a room lets its
 * waiting messages go and fetches again, as past ROOM_WAITING_MAX. */
#define WAITING_MAX_BYTES ((size_t)64 << 20)
#define ROOM_LINGER_MS 5000    /* a shared room left by all stays subscribed this long */

struct hub {
    pthread_mutex_t lock;
    hub_options opt;
    room **buckets;
    size_t nbuckets;
    size_t nrooms;
    hub_stats stats;
    backplane *bp; /* NULL: the memory backplane (this hub numbers everything) */
    bool bp_up;
    /* join callbacks due, called by hub_unlock once the lock is let go */
    struct join_call *calls;
    size_t ncalls, calls_cap;
    /* every room whose history holds bytes, largest first (a binary heap) */
    struct room **heap;
    size_t nheap, heap_cap;
    size_t hist_bytes;  /* sum of every room's hist.bytes */
    uint64_t evicted;   /* messages dropped for history_max_bytes */
    size_t freed_bytes; /* history bytes and rooms freed since the last hub_expire */
    size_t waiting_bytes; /* footprint of every room's `waiting` messages */
};

/* A callback due once the hub lock is let go: a join's (done) or a held
 * publish's (published, with res). */
typedef struct join_call {
    join_done_fn done;
    void *arg;
    int rc;
    char epoch[MSG_EPOCH_MAX];
    uint64_t last_id;
    publish_done_fn published;
    publish_result res;
} join_call;

static join_call *call_slot(hub *h)
{
    if (h->ncalls == h->calls_cap) {
        size_t cap = h->calls_cap ? h->calls_cap * 2 : 16;
        join_call *c = realloc(h->calls, cap * sizeof(*c));
        if (!c)
            return NULL;
        h->calls = c;
        h->calls_cap = cap;
    }
    return &h->calls[h->ncalls++];
}

/* Hub lock held: done(arg, rc, …) is to be called after the lock. */
static void defer_call(hub *h, join_done_fn done, void *arg, int rc, const char *epoch,
                       uint64_t last_id)
{
    join_call *c = call_slot(h);
    if (!c) {
        LOG_ERR(TAG, "out of memory: a join's answer is lost");
        return;
    }
    *c = (join_call){.done = done, .arg = arg, .rc = rc, .last_id = last_id};
    snprintf(c->epoch, sizeof(c->epoch), "%s", epoch);
}

/* Hub lock held: p's answer is to be given after the lock; p is freed. */
static void defer_publish(hub *h, held_publish *p)
{
    join_call *c = call_slot(h);
    if (c)
        *c = (join_call){.published = p->done, .arg = p->arg, .res = p->res};
    else
        LOG_ERR(TAG, "out of memory: a publish's answer is lost");
    free(p);
}

/* Hub lock held: answers r's held publishes that this node has now taken
 * (or that r's numbering has moved past), and, when now is given, those
 * held longer than PUBLISH_HOLD_MS; all of them when all. */
static void release_held(hub *h, struct room *r, int64_t now, bool all)
{
    held_publish **pp = &r->held;
    while (*pp) {
        held_publish *p = *pp;
        if (all || p->res.id <= r->last_id || strcmp(p->res.epoch, r->epoch) ||
            (now && now - p->since_ms >= PUBLISH_HOLD_MS)) {
            *pp = p->next;
            defer_publish(h, p);
        } else {
            pp = &p->next;
        }
    }
}

/* Lets the hub lock go, then makes the calls that were due. */
static void hub_unlock(hub *h)
{
    join_call *calls = h->calls;
    size_t n = h->ncalls;
    if (n) {
        h->calls = NULL;
        h->ncalls = h->calls_cap = 0;
    }
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        if (calls[i].published)
            calls[i].published(calls[i].arg, &calls[i].res);
        else
            calls[i].done(calls[i].arg, calls[i].rc, calls[i].epoch, calls[i].last_id);
    }
    if (n)
        free(calls);
}

/* ------------------------------------------------- history byte budget */

static void heap_set(hub *h, size_t i, room *r)
{
    h->heap[i] = r;
    r->heap_pos = i + 1;
}

static void heap_up(hub *h, size_t i)
{
    room *r = h->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->heap[parent]->hist.bytes >= r->hist.bytes)
            break;
        heap_set(h, i, h->heap[parent]);
        i = parent;
    }
    heap_set(h, i, r);
}

static void heap_down(hub *h, size_t i)
{
    room *r = h->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->nheap)
            break;
        if (c + 1 < h->nheap && h->heap[c + 1]->hist.bytes > h->heap[c]->hist.bytes)
            c++;
        if (h->heap[c]->hist.bytes <= r->hist.bytes)
            break;
        heap_set(h, i, h->heap[c]);
        i = c;
    }
    heap_set(h, i, r);
}

static void heap_remove(hub *h, room *r)
{
    size_t i = r->heap_pos - 1;
    r->heap_pos = 0;
    room *last = h->heap[--h->nheap];
    if (last == r)
        return;
    heap_set(h, i, last);
    heap_up(h, i);
    heap_down(h, last->heap_pos - 1);
}

/* Hub lock held: r's history changed; puts r where its bytes now rank it.
 * (Out of memory for the heap: r is simply not a candidate for eviction.) */
static void room_hist_changed(hub *h, room *r)
{
    if (!r->hist.bytes) {
        if (r->heap_pos)
            heap_remove(h, r);
        return;
    }
    if (!r->heap_pos) {
        if (h->nheap == h->heap_cap) {
            size_t cap = h->heap_cap ? h->heap_cap * 2 : 64;
            room **a = realloc(h->heap, cap * sizeof(*a));
            if (!a)
                return;
            h->heap = a;
            h->heap_cap = cap;
        }
        heap_set(h, h->nheap++, r);
    }
    heap_up(h, r->heap_pos - 1);
    heap_down(h, r->heap_pos - 1);
}

/* Hub lock held: r's history after expiry, a clear or an eviction. */
static void room_hist_dropped(hub *h, room *r, size_t before)
{
    if (r->hist.bytes < before)
        h->freed_bytes += before - r->hist.bytes;
    room_hist_changed(h, r);
}

/* Hub lock held: while all history holds more than history_max_bytes, the
 * oldest message of the largest room goes. Rooms left empty are freed by
 * the next hub_expire (the caller may be holding one). */
static void enforce_history_budget(hub *h)
{
    size_t max = h->opt.history_max_bytes;
    if (!max || h->hist_bytes <= max)
        return;
    uint64_t n = 0;
    while (h->hist_bytes > max && h->nheap) {
        room *r = h->heap[0];
        size_t before = r->hist.bytes;
        history_drop_oldest(&r->hist);
        room_hist_dropped(h, r, before);
        n++;
    }
    h->evicted += n;
    if (n) {
        char what[160];
        snprintf(what, sizeof(what),
                 "history.max_bytes (%zu) reached: the oldest messages of the largest rooms "
                 "are dropped early",
                 max);
        limit_refused(LIMIT_HISTORY_BYTES, what);
    }
}

/* Hub lock held: m goes into r's history, within the byte budget. */
static void keep_in_history(hub *h, room *r, msg *m)
{
    history_push(&r->hist, m);
    room_hist_changed(h, r);
    enforce_history_budget(h);
}

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

void hub_random_name(char *out, size_t n)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[32] = {0};
    if (n > sizeof(raw))
        n = sizeof(raw);
    if (getrandom(raw, n, 0) != (ssize_t)n)
        LOG_WARN(TAG, "getrandom failed; names may repeat");
    for (size_t i = 0; i < n; i++)
        out[i] = chars[raw[i] % 62];
    out[n] = '\0';
}

/* A room's epoch: 8 random characters of [A-Za-z0-9]. Ids are only
 * comparable within one epoch; a room that is freed and made again starts
 * a new one (and its ids start again at 1). */
static void new_epoch(char out[MSG_EPOCH_MAX])
{
    hub_random_name(out, 8);
}

static bool is_shared(const hub *h, const char *name)
{
    return h->bp && strncmp(name, HUB_LOCAL_PREFIX, strlen(HUB_LOCAL_PREFIX)) != 0;
}

/* Hub lock held: a room clients name (not a hub's or the stats stream's)
 * would pass limits.max_rooms. */
static bool rooms_full(hub *h, const char *name)
{
    if (!h->opt.max_rooms || name[0] == '~' || h->stats.rooms < h->opt.max_rooms)
        return false;
    char what[96];
    snprintf(what, sizeof(what), "a new room refused: limits.max_rooms (%zu) reached",
             h->opt.max_rooms);
    limit_refused(LIMIT_ROOMS, what);
    return true;
}

/* Returns the room, or NULL with *rc -ENOSPC (limits.max_rooms) or -ENOMEM. */
static room *room_get_or_create(hub *h, const char *name, int *rc)
{
    room *r = room_find(h, name);
    if (r)
        return r;
    *rc = -ENOSPC;
    if (rooms_full(h, name))
        return NULL;
    *rc = -ENOMEM;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    size_t len = strlen(name);
    memcpy(r->name, name, len + 1);
    r->hash = str_hash(name);
    new_epoch(r->epoch);
    r->shared = is_shared(h, name);
    r->synced = !r->shared;
    if (r->shared)
        r->epoch[0] = '\0'; /* the backplane's, once fetched */
    history_init(&r->hist, h->opt.history_size, h->opt.history_ttl_ms);
    r->hist.total = &h->hist_bytes;
    if (h->nrooms + 1 > h->nbuckets)
        rehash(h);
    r->bucket_next = h->buckets[r->hash % h->nbuckets];
    h->buckets[r->hash % h->nbuckets] = r;
    h->nrooms++;
    h->stats.rooms += r->name[0] != '~'; /* internal rooms (hubs, stats) not counted */
    if (r->shared && h->bp)
        h->bp->ops->want_room(h->bp, r->name, true);
    return r;
}

/* A room of this hub's own lives while it has members or history; a shared
 * one while it has members, and ROOM_LINGER_MS after (its history lives in
 * the backplane; lingering spares a fetch to members that come and go, as
 * long polls do). */
static bool room_is_empty(room *r, int64_t now)
{
    if (r->members) {
        r->empty_since_ms = 0;
        return false;
    }
    if (!r->shared)
        return !r->hist.count;
    if (r->held)
        return false; /* hub_expire answers them first */
    if (!r->empty_since_ms)
        r->empty_since_ms = now;
    return now - r->empty_since_ms >= ROOM_LINGER_MS;
}

static void clear_waiting(hub *h, room *r)
{
    for (size_t i = 0; i < r->nwaiting; i++)
        msg_unref(r->waiting[i]);
    free(r->waiting);
    r->waiting = NULL;
    r->nwaiting = 0;
    h->waiting_bytes -= r->waiting_bytes;
    r->waiting_bytes = 0;
}

static void room_free_if_empty_at(hub *h, room *r, int64_t now)
{
    if (!room_is_empty(r, now))
        return;
    room **pp = &h->buckets[r->hash % h->nbuckets];
    while (*pp != r)
        pp = &(*pp)->bucket_next;
    *pp = r->bucket_next;
    size_t before = r->hist.bytes;
    history_clear(&r->hist);
    room_hist_dropped(h, r, before);
    clear_waiting(h, r);
    if (r->shared && h->bp)
        h->bp->ops->want_room(h->bp, r->name, false);
    h->freed_bytes += sizeof(*r);
    h->nrooms--;
    h->stats.rooms -= r->name[0] != '~';
    free(r);
}

static void room_free_if_empty(hub *h, room *r)
{
    room_free_if_empty_at(h, r, clock_now_ms());
}

/* ----------------------------------------------------------- membership */

static void member_unlink(hub *h, membership *m)
{
    room *r = m->room;
    if (m->pending && m->args.done)
        defer_call(h, m->args.done, m->args.done_arg, -ECANCELED, "", 0);
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
    static atomic_uint_fast64_t next_uid = 1;
    memset(s, 0, sizeof(*s));
    s->uid = atomic_fetch_add(&next_uid, 1);
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

/* Hub lock held. Queues m to every live member of r but the excluded one
 * (a sub, or a sub uid), dropping those whose queue is full. */
static void fanout(hub *h, room *r, msg *m, const sub *exclude, uint64_t exclude_uid, bool counted)
{
    for (membership *mb = r->members, *next; mb; mb = next) {
        next = mb->next;
        if (mb->pending || mb->s == exclude || (exclude_uid && mb->s->uid == exclude_uid))
            continue;
        if (deliver(h, mb->s, m, r->name, counted))
            leave_all(h, mb->s, r);
    }
}

/* Hub lock held: numbers m in r by this hub alone, keeps and delivers it. */
static int publish_here(hub *h, const char *room_name, const char *data, size_t len,
                        const publish_opts *opt, publish_result *res)
{
    bool transient = opt && opt->transient;
    int rc = 0;
    room *r = transient ? room_find(h, room_name) : room_get_or_create(h, room_name, &rc);
    if (transient && (!r || !r->members))
        return 0;
    if (!r)
        return rc;
    msg *m = msg_create_in(r->last_id + 1, r->name, r->epoch, data, len, opt ? opt->target : NULL,
                           clock_now_ms());
    if (!m) {
        room_free_if_empty(h, r);
        return -ENOMEM;
    }
    r->last_id = m->id;
    /* Delivered first, so that the encodings its members need are made
     * (and counted) when history keeps it. */
    fanout(h, r, m, opt ? opt->exclude : NULL, 0, !transient);
    if (!transient) {
        h->stats.published++;
        keep_in_history(h, r, m);
    }
    res->id = m->id;
    memcpy(res->epoch, r->epoch, sizeof(res->epoch));
    msg_unref(m);
    room_free_if_empty(h, r);
    return 0;
}

int hub_publish(hub *h, const char *room_name, const char *data, size_t len,
                const publish_opts *opt, uint64_t *id_out)
{
    publish_result res = {0};
    pthread_mutex_lock(&h->lock);
    int rc = publish_here(h, room_name, data, len, opt, &res);
    hub_unlock(h);
    *id_out = res.id;
    return rc;
}

/* Hub lock held. The backplane is down: delivers to this node's members of
 * a shared room under the room's local epoch (made at the first such
 * message), and keeps nothing: the backplane gets it later. */
static void publish_degraded(hub *h, const char *room_name, const char *data, size_t len,
                             const publish_opts *opt, publish_result *res)
{
    room *r = room_find(h, room_name);
    h->stats.published++;
    if (!r || !r->members)
        return;
    if (!r->local_epoch[0]) {
        new_epoch(r->local_epoch);
        r->local_last = 0;
    }
    msg *m = msg_create_in(r->local_last + 1, r->name, r->local_epoch, data, len,
                           opt ? opt->target : NULL, clock_now_ms());
    if (!m)
        return;
    r->local_last = m->id;
    fanout(h, r, m, opt ? opt->exclude : NULL, 0, true);
    res->id = m->id;
    memcpy(res->epoch, r->local_epoch, sizeof(res->epoch));
    msg_unref(m);
}

/* A publish sent to the backplane: whose answer it is. */
typedef struct publish_sent {
    hub *h;
    publish_done_fn done;
    void *arg;
    char room[ROOM_NAME_MAX + 1];
} publish_sent;

/* Any thread (the backplane's): the backplane numbered a publish. Its
 * answer is given now, or held until this node has taken the message when
 * the room is followed here and has not got that far. */
static void publish_numbered(void *arg, const publish_result *res)
{
    publish_sent *ps = arg;
    hub *h = ps->h;
    held_publish *p = NULL;
    if (!res->rc && !res->queued) {
        pthread_mutex_lock(&h->lock);
        room *r = room_find(h, ps->room);
        if (h->bp_up && r && r->shared && r->known && !strcmp(r->epoch, res->epoch) &&
            r->last_id < res->id && (p = malloc(sizeof(*p)))) {
            *p = (held_publish){ps->done, ps->arg, *res, clock_now_ms(), r->held};
            r->held = p;
        }
        hub_unlock(h);
    }
    if (!p)
        ps->done(ps->arg, res);
    free(ps);
}

void hub_publish_async(hub *h, const char *room_name, const char *data, size_t len,
                       const publish_opts *opt, publish_done_fn done, void *arg)
{
    publish_result res = {0};
    bool transient = opt && opt->transient;
    if (!is_shared(h, room_name) || transient) {
        pthread_mutex_lock(&h->lock);
        res.rc = publish_here(h, room_name, data, len, opt, &res);
        hub_unlock(h);
        done(arg, &res);
        return;
    }
    bp_publish p = {.room = room_name,
                    .data = data,
                    .len = len,
                    .target = opt ? opt->target : NULL,
                    .exclude = opt && opt->exclude ? opt->exclude->uid : 0};
    publish_sent *ps = malloc(sizeof(*ps));
    if (!ps) {
        res.rc = -ENOMEM;
        done(arg, &res);
        return;
    }
    *ps = (publish_sent){.h = h, .done = done, .arg = arg};
    snprintf(ps->room, sizeof(ps->room), "%s", room_name);
    switch (h->bp->ops->publish(h->bp, &p, publish_numbered, ps)) {
    case BP_SENT:
        pthread_mutex_lock(&h->lock);
        h->stats.published++;
        hub_unlock(h);
        return;
    case BP_QUEUED:
        pthread_mutex_lock(&h->lock);
        publish_degraded(h, room_name, data, len, opt, &res);
        hub_unlock(h);
        res.queued = true;
        break;
    case BP_FULL:
        res.rc = -EAGAIN;
        break;
    }
    free(ps);
    done(arg, &res);
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
static int replay(hub *h, room *r, sub *s, uint64_t since, const char *epoch, bool check_gap)
{
    size_t before = r->hist.bytes;
    history_expire(&r->hist, clock_now_ms()); /* nothing past its time, even between ticks */
    room_hist_dropped(h, r, before);
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

/* Hub lock held. Links m (for s) into r. */
static void member_link(hub *h, room *r, membership *m, sub *s)
{
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
}

/* Hub lock held, r synced: puts s where the join asks (live, or resuming
 * after a cursor: replay first). */
static int start_member(hub *h, room *r, sub *s, const hub_join_args *a)
{
    pthread_mutex_lock(&s->lock);
    s->last_id = a->from_now ? r->last_id : a->since;
    pthread_mutex_unlock(&s->lock);
    return a->from_now ? 0 : replay(h, r, s, a->since, a->epoch, a->check_gap);
}

int hub_join_ex(hub *h, const char *room_name, sub *s, const hub_join_args *a)
{
    int rc = -ENOMEM;
    size_t joined = 0;
    pthread_mutex_lock(&h->lock);
    for (membership *m = s->memberships; m; m = m->sub_next) {
        if (!strcmp(m->room->name, room_name)) {
            rc = -EEXIST;
            goto out;
        }
        joined += m->room->name[0] != '~'; /* a hub's own room is not the client's */
    }
    if (h->opt.max_rooms_per_sub && room_name[0] != '~' && joined >= h->opt.max_rooms_per_sub) {
        char what[112];
        snprintf(what, sizeof(what),
                 "a join refused: limits.max_rooms_per_connection (%zu) reached",
                 h->opt.max_rooms_per_sub);
        limit_refused(LIMIT_ROOMS_PER_CONN, what);
        rc = -EMLINK;
        goto out;
    }
    room *r = room_get_or_create(h, room_name, &rc);
    membership *m = r ? calloc(1, sizeof(*m)) : NULL;
    if (!m) {
        if (r)
            room_free_if_empty(h, r);
        goto out;
    }
    if (!r->synced) { /* its numbering comes from the backplane first */
        m->pending = true;
        m->args = *a;
        if (a->epoch)
            snprintf(m->epoch, sizeof(m->epoch), "%s", a->epoch);
        m->args.epoch = a->epoch ? m->epoch : NULL;
        m->join_wall_ms = clock_wall_ms();
        pthread_mutex_lock(&s->lock);
        s->last_id = a->from_now ? 0 : a->since;
        pthread_mutex_unlock(&s->lock);
    } else if ((rc = start_member(h, r, s, a)) != 0) {
        free(m);
        room_free_if_empty(h, r);
        goto out;
    } else if (a->done) {
        defer_call(h, a->done, a->done_arg, 0, r->epoch, r->last_id);
    }
    member_link(h, r, m, s);
    rc = 0;
out:
    hub_unlock(h);
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
    return parse_u64(num, since);
}

int hub_join(hub *h, const char *room_name, sub *s, uint64_t since, bool from_now)
{
    hub_join_args a = {.since = since, .from_now = from_now};
    return hub_join_ex(h, room_name, s, &a);
}

int hub_resume(hub *h, const char *room_name, sub *s, uint64_t since, const char *epoch)
{
    hub_join_args a = {.since = since, .epoch = epoch, .check_gap = true};
    return hub_join_ex(h, room_name, s, &a);
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
    hub_unlock(h);
}

int hub_send(hub *h, sub *s, msg *m)
{
    pthread_mutex_lock(&h->lock);
    if (deliver(h, s, m, "its connection", true))
        leave_all(h, s, NULL);
    pthread_mutex_lock(&s->lock);
    bool dropped = s->dropped;
    pthread_mutex_unlock(&s->lock);
    hub_unlock(h);
    return dropped ? -ENOBUFS : 0;
}

void hub_leave(hub *h, sub *s)
{
    pthread_mutex_lock(&h->lock);
    leave_all(h, s, NULL);
    hub_unlock(h);
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
    hub_unlock(h);
    return rc;
}

int hub_room_info_async(hub *h, const char *room_name, room_info *out, bp_room_fn cb, void *arg)
{
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, room_name);
    backplane *bp = is_shared(h, room_name) ? h->bp : NULL;
    /* A shared room with no member here (lingering) may be gone elsewhere. */
    bool local = r && r->synced && (!bp || r->members);
    if (local) {
        out->last_id = r->last_id;
        memcpy(out->epoch, r->epoch, sizeof(out->epoch));
        memcpy(out->subscribers, r->count, sizeof(out->subscribers));
    }
    hub_unlock(h);
    if (local)
        return 0;
    if (!bp)
        return -ENOENT;
    bp->ops->room_state(bp, room_name, cb, arg);
    return -EINPROGRESS;
}

size_t hub_expire(hub *h, int64_t now_ms)
{
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nbuckets; i++) {
        room *r = h->buckets[i];
        while (r) {
            room *next = r->bucket_next;
            size_t before = r->hist.bytes;
            history_expire(&r->hist, now_ms);
            room_hist_dropped(h, r, before);
            release_held(h, r, now_ms, false);
            room_free_if_empty_at(h, r, now_ms);
            r = next;
        }
    }
    size_t freed = h->freed_bytes;
    h->freed_bytes = 0;
    hub_unlock(h);
    return freed;
}

void hub_get_stats(hub *h, hub_stats *out)
{
    pthread_mutex_lock(&h->lock);
    *out = h->stats;
    out->history_bytes = h->hist_bytes;
    out->history_evicted = h->evicted;
    hub_unlock(h);
}

/* ------------------------------------------------------------ backplane */

void hub_set_backplane(hub *h, backplane *bp)
{
    pthread_mutex_lock(&h->lock);
    h->bp = bp;
    h->bp_up = false;
    hub_unlock(h);
}

bool hub_bp_connected(hub *h)
{
    pthread_mutex_lock(&h->lock);
    bool up = !h->bp || h->bp_up;
    hub_unlock(h);
    return up;
}

void hub_bp_link(hub *h, bool up)
{
    pthread_mutex_lock(&h->lock);
    h->bp_up = up;
    for (size_t i = 0; i < h->nbuckets; i++) {
        for (room *r = h->buckets[i]; r; r = r->bucket_next) {
            if (!up) {
                /* what was numbered comes back with the next fetch, if
                 * ever: answering waits for nothing now */
                release_held(h, r, 0, true);
                continue;
            }
            r->local_epoch[0] = '\0'; /* the backplane numbers again */
            r->local_last = 0;
        }
    }
    hub_unlock(h);
}

/* Hub lock held: asks the backplane for what r may have missed (all it
 * keeps, the first time); messages wait until the answer. */
static void refetch(hub *h, room *r)
{
    if (!h->bp)
        return; /* stopping */
    r->synced = false;
    h->bp->ops->fetch(h->bp, r->name, r->known ? r->epoch : "", r->known ? r->last_id : 0);
}

void hub_bp_subscribed(hub *h, const char *name)
{
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, name);
    if (r && r->shared)
        refetch(h, r);
    hub_unlock(h);
}

/* How long ago, by this node's wall clock, a message was published at
 * wall_ms: 0 for a time ahead of it. wall_ms is whatever the backplane
 * carried, so any value is taken without overflow. */
static int64_t wall_age(int64_t wall_ms)
{
    int64_t now = clock_wall_ms();
    if (wall_ms >= now)
        return 0;
    uint64_t age = (uint64_t)now - (uint64_t)wall_ms;
    return age > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)age;
}

/* A message from the backplane as this node keeps it: what origin asked of
 * this node (an excluded sub, nothing when it delivered it already). */
static msg *entry_msg(hub *h, const room *r, const char *epoch, const bp_entry *e)
{
    msg *m = msg_create_in(e->id, r->name, epoch, e->data, e->len,
                           e->target && *e->target ? e->target : NULL,
                           clock_now_ms() - wall_age(e->wall_ms));
    if (!m)
        return NULL;
    m->wall_ms = e->wall_ms;
    bool mine = e->origin && !strcmp(e->origin, h->bp->node_id);
    m->exclude_uid = mine ? e->exclude : 0;
    m->delivered_here = mine && e->local_done;
    return m;
}

/* Hub lock held, r synced: m is the next in r's order. */
static void take_next(hub *h, room *r, msg *m)
{
    r->last_id = m->id;
    release_held(h, r, 0, false);
    if (!m->delivered_here)
        fanout(h, r, m, NULL, m->exclude_uid, true);
    keep_in_history(h, r, m);
}

/* Hub lock held, r synced. Takes m unless r has seen it; returns false when
 * m is not the next one (a hole: r needs a fetch). */
static bool apply(hub *h, room *r, msg *m)
{
    if (strcmp(m->epoch, r->epoch)) {
        if (m->id != 1)
            return false;
        /* A new numbering that starts here (the backplane forgot the room,
         * e.g. its keys expired): nothing before it to lose. */
        memcpy(r->epoch, m->epoch, sizeof(r->epoch));
        r->last_id = 0;
        size_t before = r->hist.bytes;
        history_clear(&r->hist);
        room_hist_dropped(h, r, before);
    }
    if (m->id <= r->last_id)
        return true;
    if (m->id != r->last_id + 1)
        return false;
    take_next(h, r, m);
    return true;
}

/* Hub lock held. Keeps m until r's fetch is answered; past the bounds
 * (messages in this room, bytes in all rooms) they are let go, and a fetch
 * after that one brings them. */
static void wait_push(hub *h, room *r, msg *m)
{
    size_t cost = msg_footprint(m);
    if (r->nwaiting >= ROOM_WAITING_MAX || h->waiting_bytes + cost > WAITING_MAX_BYTES) {
        clear_waiting(h, r);
        r->fetch_again = true;
        return;
    }
    if (!(r->nwaiting & (r->nwaiting - 1)) || !r->waiting) { /* grow at powers of two */
        size_t cap = r->nwaiting ? r->nwaiting * 2 : 8;
        msg **w = realloc(r->waiting, cap * sizeof(*w));
        if (!w) {
            r->fetch_again = true;
            return;
        }
        r->waiting = w;
    }
    r->waiting[r->nwaiting++] = msg_ref(m);
    r->waiting_bytes += cost;
    h->waiting_bytes += cost;
}

void hub_bp_message(hub *h, const char *name, const char *epoch, const bp_entry *e)
{
    pthread_mutex_lock(&h->lock);
    room *r = h->bp ? room_find(h, name) : NULL;
    msg *m = r && r->shared ? entry_msg(h, r, epoch, e) : NULL;
    if (!m) {
        if (r && r->shared && r->synced)
            refetch(h, r); /* out of memory: fetch it again later */
    } else if (!r->synced) {
        wait_push(h, r, m);
    } else if (!apply(h, r, m)) {
        refetch(h, r);
        wait_push(h, r, m);
    }
    msg_unref(m);
    hub_unlock(h);
}

/* Hub lock held: tells r's live members that messages are lost (reason
 * "epoch" or "expired"); they go on from `next`. */
static void signal_gap(hub *h, room *r, const char *reason, uint64_t since, uint64_t next)
{
    char info[ROOM_NAME_MAX + 160];
    int n = snprintf(info, sizeof(info),
                     "{\"room\":\"%s\",\"epoch\":\"%s\",\"reason\":\"%s\",\"since\":%" PRIu64
                     ",\"resumed_from\":%" PRIu64 "}",
                     r->name, r->epoch, reason, since, next);
    msg *gap = n > 0 && (size_t)n < sizeof(info) ? msg_create_gap(info, (size_t)n) : NULL;
    if (!gap)
        return;
    gap->id = next - 1;
    fanout(h, r, gap, NULL, 0, false);
    msg_unref(gap);
    LOG_WARN(TAG, "room %s: messages lost while the backplane was away (%s); members told", r->name,
             reason);
}

/* Hub lock held: the cursor of a "from now" join made at wall time t: the
 * last kept message published before t. */
static uint64_t cursor_at(const room *r, int64_t t)
{
    uint64_t cursor = r->last_id;
    for (size_t i = r->hist.count; i-- > 0;) {
        msg *m = history_at(&r->hist, i);
        if (m->wall_ms < t)
            break;
        cursor = m->id - 1;
    }
    return cursor;
}

/* Hub lock held: r is synced; its pending members start. */
static void start_pending(hub *h, room *r)
{
    for (membership *mb = r->members; mb; mb = mb->next) {
        if (!mb->pending)
            continue;
        hub_join_args a = mb->args;
        if (a.from_now) {
            a.since = cursor_at(r, mb->join_wall_ms);
            a.from_now = false;
            a.check_gap = false;
        }
        mb->pending = false;
        if (start_member(h, r, mb->s, &a))
            LOG_WARN(TAG, "room %s: out of memory replaying to a member", r->name);
        if (a.done)
            defer_call(h, a.done, a.done_arg, 0, r->epoch, r->last_id);
    }
}

/* Hub lock held, r synced: delivers what waited for the fetch, until a hole. */
static void drain_waiting(hub *h, room *r)
{
    msg **w = r->waiting;
    size_t n = r->nwaiting;
    r->waiting = NULL;
    r->nwaiting = 0;
    h->waiting_bytes -= r->waiting_bytes;
    r->waiting_bytes = 0;
    size_t i = 0;
    while (i < n && apply(h, r, w[i])) {
        msg_unref(w[i]);
        i++;
    }
    if (i < n) {
        refetch(h, r);
        for (; i < n; i++) {
            wait_push(h, r, w[i]);
            msg_unref(w[i]);
        }
    }
    free(w);
}

void hub_bp_fetched(hub *h, const char *name, const char *epoch, uint64_t last_id,
                    const bp_entry *entries, size_t n)
{
    pthread_mutex_lock(&h->lock);
    room *r = h->bp ? room_find(h, name) : NULL;
    if (!r || !r->shared || !epoch[0])
        goto out;
    bool changed = r->known && strcmp(epoch, r->epoch);
    uint64_t before = r->last_id;
    if (!r->known || changed) {
        snprintf(r->epoch, sizeof(r->epoch), "%s", epoch);
        r->last_id = 0;
        size_t kept = r->hist.bytes;
        history_clear(&r->hist);
        room_hist_dropped(h, r, kept);
    }
    if (changed)
        signal_gap(h, r, "epoch", before, n ? entries[0].id : last_id + 1);
    else if (r->known && n && entries[0].id > r->last_id + 1)
        signal_gap(h, r, "expired", before, entries[0].id);
    r->known = true;
    for (size_t i = 0; i < n; i++) {
        if (entries[i].id <= r->last_id)
            continue;
        msg *m = entry_msg(h, r, r->epoch, &entries[i]);
        if (m)
            take_next(h, r, m);
        msg_unref(m);
    }
    if (last_id > r->last_id)
        r->last_id = last_id;
    release_held(h, r, 0, false);
    r->synced = true;
    start_pending(h, r);
    drain_waiting(h, r);
    if (r->synced && r->fetch_again) {
        r->fetch_again = false;
        refetch(h, r);
    }
out:
    hub_unlock(h);
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
    /* Answers still held (the backplane is stopped): given before anything
     * goes, since answering may call back into the hub. */
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nbuckets; i++)
        for (room *r = h->buckets[i]; r; r = r->bucket_next)
            release_held(h, r, 0, true);
    hub_unlock(h);
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
            clear_waiting(h, r);
            free(r);
            r = next;
        }
    }
    free(h->calls);
    free(h->heap);
    free(h->buckets);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
