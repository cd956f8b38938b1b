/* SPDX-License-Identifier: MIT */
/*
 * redis_backplane.c - rooms shared by several nodes through Redis (see
 * backplane.h and redis_backplane.h). What is read from Redis is decoded
 * by bp_codec.c.
 *
 * In Redis, per room (P = the key prefix):
 *   P r:{room}:e   the room's epoch (a numbering starts when it is set)
 *   P r:{room}:n   the last id given (INCR)
 *   P r:{room}:s   a stream of the kept messages, entry ids "{id}-1",
 *                  capped near history.size (XADD MAXLEN ~)
 *   P c:{room}     the channel its messages go out on
 * A publish is one Lua script (numbering, stream, PUBLISH), so Redis orders
 * every room's messages once for all nodes. A node SUBSCRIBEs to the rooms
 * it has members in, and fetches a room's state with another script once
 * subscribed (and again after any hole in the ids, which are consecutive).
 *
 * Threading: one thread of its own owns both hiredis connections (commands,
 * and subscriptions) and everything below marked "thread". Other threads
 * only push work items (under qlock) and wake it through an eventfd. It
 * calls into the hub (hub_bp_*) with no lock of its own held.
 *
 * Redis unreachable: publishes wait in the work queue (up to queue_limit),
 * marked as delivered locally already; the hub delivers them to this
 * node's members at once. Reconnection retries with backoff from 100 ms to
 * 5 s; each change of state is logged once.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/redis_backplane.h"
#include "hub/bp_codec.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

#define TAG "backplane"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define PING_EVERY_MS 1000
#define UNSUBSCRIBE_AFTER_MS 5000 /* a room left is kept subscribed this long */
#define KEY_MAX (ROOM_NAME_MAX + 80)
#define SET_BUCKETS 1024

/* ------------------------------------------------------------- scripts */

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

/* ---------------------------------------------------------------- state */

/* KEYS: the name's key. ARGV: this node, TTL (ms), take ("1"/"0"). Returns
 * the owner, "" for none (an offered name nobody owns yet, or an unknown
 * one). An offered name is "" until claimed. */
static const char claim_lua[] =
    "local o = redis.call('GET', KEYS[1])\n"
    "if not o then return '' end\n"
    "if o ~= '' or ARGV[3] ~= '1' then return o end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return ARGV[1]\n";

#define RELEASED "-" /* the value of a released name */
#define NAME_MAX_LEN 96

typedef enum {
    W_WANT,
    W_UNWANT,
    W_FETCH,
    W_PUBLISH,
    W_CLAIM,
    W_OFFER,
    W_TOUCH,
    W_RELEASE,
    W_NODE_SEND,
    W_ROOM_STATE
} work_kind;

typedef struct work {
    struct work *next;
    work_kind kind;
    char room[ROOM_NAME_MAX + 1];
    /* W_FETCH */
    char epoch[MSG_EPOCH_MAX];
    uint64_t after;
    /* W_PUBLISH */
    char *data;
    size_t len;
    char target[64];
    uint64_t exclude;
    int64_t wall_ms;
    bool local_done;
    publish_done_fn done; /* NULL for a queued one: the hub answered it */
    void *arg;
    /* W_CLAIM, W_TOUCH, W_RELEASE; W_NODE_SEND (node, data, len) */
    char name[NAME_MAX_LEN];
    int64_t ttl_ms;
    bp_owner_fn owner_cb;
    bool take; /* W_CLAIM: become the owner when there is none */
    bp_room_fn room_cb; /* W_ROOM_STATE */
    char node[BP_NODE_ID_LEN + 1];
} work;

/* A room this node subscribes to (thread). */
typedef struct channel {
    struct channel *next;
    bool wanted;
    bool subscribed;     /* SUBSCRIBE sent on the live connection */
    bool confirmed;      /* Redis confirmed it */
    bool unsubscribing;  /* UNSUBSCRIBE sent, not yet confirmed */
    int64_t unwanted_ms; /* when it stopped being wanted */
    char room[ROOM_NAME_MAX + 1];
} channel;

/* One hiredis connection and what it wants polled (thread). */
typedef struct rconn {
    struct rb *b;
    redisAsyncContext *ac;
    int fd;
    bool want_read, want_write;
    bool ready; /* connected, authenticated, selected */
} rconn;

typedef enum { LINK_DOWN, LINK_CONNECTING, LINK_UP } link_state;

typedef struct rb {
    backplane base; /* first */
    hub *hub;
    char host[256];
    int port;
    unsigned db;
    char password[256];
    char prefix[64];
    unsigned connect_timeout_ms;
    unsigned queue_limit;
    size_t history_size;
    int64_t key_ttl_ms;

    pthread_t thread;
    int wake_fd;
    atomic_bool stop;

    pthread_mutex_t qlock; /* guards the work queue, up and npublish */
    work *head, *tail;
    size_t npublish; /* W_PUBLISH items in the queue */
    bool up;

    /* thread */
    link_state state;
    rconn cmd, sub;
    int64_t retry_at, deadline, backoff_ms;
    int64_t last_ping_ms, ping_sent_ms;
    bool ping_pending;
    char last_error[160];
    channel *channels[SET_BUCKETS];
    bp_node_fn node_fn; /* qlock */
    void *node_arg;     /* qlock */
} rb;

static void wake_thread(rb *b)
{
    uint64_t one = 1;
    ssize_t n = write(b->wake_fd, &one, sizeof(one));
    (void)n; /* a full counter still wakes it */
}

/* ------------------------------------------------- hub-facing (any thread) */

static void push_work(rb *b, work *w)
{
    pthread_mutex_lock(&b->qlock);
    if (b->tail)
        b->tail->next = w;
    else
        b->head = w;
    b->tail = w;
    pthread_mutex_unlock(&b->qlock);
    wake_thread(b);
}

static void bp_want_room(backplane *bp, const char *room, bool want)
{
    work *w = calloc(1, sizeof(*w));
    if (!w) {
        LOG_ERR(TAG, "out of memory: room %s not %s", room, want ? "subscribed" : "left");
        return;
    }
    w->kind = want ? W_WANT : W_UNWANT;
    snprintf(w->room, sizeof(w->room), "%s", room);
    push_work((rb *)bp, w);
}

static void bp_fetch(backplane *bp, const char *room, const char *epoch, uint64_t after)
{
    work *w = calloc(1, sizeof(*w));
    if (!w) {
        LOG_ERR(TAG, "out of memory: room %s not fetched", room);
        return;
    }
    w->kind = W_FETCH;
    snprintf(w->room, sizeof(w->room), "%s", room);
    snprintf(w->epoch, sizeof(w->epoch), "%s", epoch);
    w->after = after;
    push_work((rb *)bp, w);
}

static bp_publish_status bp_do_publish(backplane *bp, const bp_publish *p, publish_done_fn done,
                                       void *arg)
{
    rb *b = (rb *)bp;
    work *w = calloc(1, sizeof(*w));
    char *data = w ? malloc(p->len ? p->len : 1) : NULL;
    if (!data) {
        free(w);
        return BP_FULL;
    }
    memcpy(data, p->data, p->len);
    w->kind = W_PUBLISH;
    snprintf(w->room, sizeof(w->room), "%s", p->room);
    w->data = data;
    w->len = p->len;
    snprintf(w->target, sizeof(w->target), "%s", p->target ? p->target : "");
    w->exclude = p->exclude;
    w->wall_ms = clock_wall_ms();
    bp_publish_status st;
    pthread_mutex_lock(&b->qlock);
    if (!b->up && b->npublish >= b->queue_limit) {
        st = BP_FULL;
    } else {
        st = b->up ? BP_SENT : BP_QUEUED;
        w->local_done = !b->up;
        if (b->up) {
            w->done = done;
            w->arg = arg;
        }
        if (b->tail)
            b->tail->next = w;
        else
            b->head = w;
        b->tail = w;
        b->npublish++;
    }
    pthread_mutex_unlock(&b->qlock);
    if (st == BP_FULL) {
        free(data);
        free(w);
    } else {
        wake_thread(b);
    }
    return st;
}

static work *name_work(work_kind kind, const char *name, int64_t ttl_ms)
{
    work *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->kind = kind;
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->ttl_ms = ttl_ms;
    return w;
}

static void bp_claim(backplane *bp, const char *name, bool take, int64_t ttl_ms, bp_owner_fn cb,
                     void *arg)
{
    work *w = name_work(W_CLAIM, name, ttl_ms);
    if (!w) {
        cb(arg, -ENOMEM, "");
        return;
    }
    w->owner_cb = cb;
    w->arg = arg;
    w->take = take;
    push_work((rb *)bp, w);
}

static void bp_offer(backplane *bp, const char *name, int64_t ttl_ms, bp_owner_fn cb, void *arg)
{
    work *w = name_work(W_OFFER, name, ttl_ms);
    if (!w) {
        cb(arg, -ENOMEM, "");
        return;
    }
    w->owner_cb = cb;
    w->arg = arg;
    push_work((rb *)bp, w);
}

static void bp_touch(backplane *bp, const char *name, int64_t ttl_ms)
{
    work *w = name_work(W_TOUCH, name, ttl_ms);
    if (w)
        push_work((rb *)bp, w);
}

static void bp_release(backplane *bp, const char *name, int64_t ttl_ms)
{
    work *w = name_work(W_RELEASE, name, ttl_ms);
    if (w)
        push_work((rb *)bp, w);
}

static void bp_node_send(backplane *bp, const char *node, const char *data, size_t len)
{
    work *w = calloc(1, sizeof(*w));
    char *copy = w ? malloc(len ? len : 1) : NULL;
    if (!copy) {
        free(w);
        LOG_ERR(TAG, "out of memory: a message to node %s is lost", node);
        return;
    }
    memcpy(copy, data, len);
    w->kind = W_NODE_SEND;
    snprintf(w->node, sizeof(w->node), "%s", node);
    w->data = copy;
    w->len = len;
    push_work((rb *)bp, w);
}

static void bp_room_state(backplane *bp, const char *room, bp_room_fn cb, void *arg)
{
    work *w = calloc(1, sizeof(*w));
    if (!w) {
        cb(arg, -EIO, "", 0);
        return;
    }
    w->kind = W_ROOM_STATE;
    snprintf(w->room, sizeof(w->room), "%s", room);
    w->room_cb = cb;
    w->arg = arg;
    push_work((rb *)bp, w);
}

static void bp_on_node_message(backplane *bp, bp_node_fn fn, void *arg)
{
    rb *b = (rb *)bp;
    pthread_mutex_lock(&b->qlock);
    b->node_fn = fn;
    b->node_arg = arg;
    pthread_mutex_unlock(&b->qlock);
}

static const backplane_ops redis_ops = {
    .want_room = bp_want_room,
    .fetch = bp_fetch,
    .publish = bp_do_publish,
    .room_state = bp_room_state,
    .claim = bp_claim,
    .offer = bp_offer,
    .touch = bp_touch,
    .release = bp_release,
    .node_send = bp_node_send,
    .on_node_message = bp_on_node_message,
};

/* -------------------------------------------------------- channel set */

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

static void channel_remove(rb *b, channel *c)
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

static void node_channel(const rb *b, char *out, const char *node)
{
    snprintf(out, KEY_MAX, "%sn:%s", b->prefix, node);
}

static void name_key(const rb *b, char *out, const char *name)
{
    snprintf(out, KEY_MAX, "%so:%s", b->prefix, name);
}

/* ------------------------------------------------------ event hooks */

static void ev_add_read(void *p)
{
    ((rconn *)p)->want_read = true;
}

static void ev_del_read(void *p)
{
    ((rconn *)p)->want_read = false;
}

static void ev_add_write(void *p)
{
    ((rconn *)p)->want_write = true;
}

static void ev_del_write(void *p)
{
    ((rconn *)p)->want_write = false;
}

/* hiredis frees the context after this: forget it. */
static void ev_cleanup(void *p)
{
    rconn *rc = p;
    rc->want_read = rc->want_write = false;
    rc->fd = -1;
    rc->ac = NULL;
    rc->ready = false;
}

/* ------------------------------------------------------ link state */

static void link_down(rb *b, const char *why);

static void free_conn(rconn *rc)
{
    redisAsyncContext *ac = rc->ac;
    if (ac)
        redisAsyncFree(ac); /* calls pending callbacks with NULL, then ev_cleanup */
    rc->ac = NULL;
    rc->fd = -1;
    rc->ready = false;
    rc->want_read = rc->want_write = false;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rconn *rc = ac->ev.data;
    (void)status;
    if (!rc)
        return;
    rc->ac = NULL;
    rc->fd = -1;
    rc->ready = false;
    char why[160];
    snprintf(why, sizeof(why), "%s", ac->errstr[0] ? ac->errstr : "connection closed");
    link_down(rc->b, why);
}

static void subscribe_channel(rb *b, channel *c);
static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata);

static void become_up(rb *b)
{
    b->state = LINK_UP;
    b->backoff_ms = BACKOFF_MIN_MS;
    b->last_ping_ms = clock_now_ms();
    b->ping_pending = false;
    b->last_error[0] = '\0';
    pthread_mutex_lock(&b->qlock);
    b->up = true;
    pthread_mutex_unlock(&b->qlock);
    LOG_INFO(TAG, "connected to Redis at %s:%d", b->host, b->port);
    char ch[KEY_MAX];
    node_channel(b, ch, b->base.node_id);
    const char *argv[] = {"SUBSCRIBE", ch};
    size_t lens[] = {9, strlen(ch)};
    redisAsyncCommandArgv(b->sub.ac, on_sub_reply, NULL, 2, argv, lens);
    hub_bp_link(b->hub, true);
    for (size_t i = 0; i < SET_BUCKETS; i++)
        for (channel *c = b->channels[i]; c; c = c->next)
            if (c->wanted)
                subscribe_channel(b, c);
}

static void check_ready(rb *b)
{
    if (b->state == LINK_CONNECTING && b->cmd.ready && b->sub.ready)
        become_up(b);
}

static void link_down(rb *b, const char *why)
{
    if (b->state == LINK_DOWN)
        return;
    bool was_up = b->state == LINK_UP;
    b->state = LINK_DOWN;
    pthread_mutex_lock(&b->qlock);
    b->up = false;
    pthread_mutex_unlock(&b->qlock);
    /* Every channel is gone with the connection; those not wanted go. */
    for (size_t i = 0; i < SET_BUCKETS; i++) {
        for (channel *c = b->channels[i], *next; c; c = next) {
            next = c->next;
            c->subscribed = c->confirmed = c->unsubscribing = false;
            if (!c->wanted)
                channel_remove(b, c);
        }
    }
    free_conn(&b->cmd);
    free_conn(&b->sub);
    b->retry_at = clock_now_ms() + b->backoff_ms;
    b->backoff_ms = b->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->backoff_ms * 2;
    if (was_up) {
        LOG_WARN(TAG, "lost Redis at %s:%d (%s): delivering locally, publishes queued (up to %u), "
                      "reconnecting",
                 b->host, b->port, why, b->queue_limit);
        hub_bp_link(b->hub, false);
    } else if (strcmp(why, b->last_error)) {
        LOG_WARN(TAG, "cannot reach Redis at %s:%d: %s; retrying", b->host, b->port, why);
    }
    snprintf(b->last_error, sizeof(b->last_error), "%s", why);
}

/* A reply to AUTH, SELECT or PING while connecting. */
static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *rc = ac->ev.data;
    redisReply *r = reply;
    bool last = privdata != NULL; /* the last command of the set-up */
    if (!rc || !r)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        char why[200];
        snprintf(why, sizeof(why), "%s", r->str);
        link_down(rc->b, why);
        return;
    }
    if (last) {
        rc->ready = true;
        check_ready(rc->b);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rconn *rc = ac->ev.data;
    if (!rc)
        return;
    if (status != REDIS_OK) {
        char why[160];
        snprintf(why, sizeof(why), "%s", ac->errstr[0] ? ac->errstr : "connect failed");
        ev_cleanup(rc); /* hiredis frees it after this returns */
        link_down(rc->b, why);
        return;
    }
    rb *b = rc->b;
    static const char mark[] = "last";
    if (b->password[0])
        redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s", b->password);
    if (rc == &b->cmd) {
        redisAsyncCommand(ac, on_setup_reply, NULL, "SELECT %u", b->db);
        redisAsyncCommand(ac, on_setup_reply, (void *)mark, "PING");
    } else {
        redisAsyncCommand(ac, on_setup_reply, (void *)mark, "PING");
    }
}

static bool open_conn(rb *b, rconn *rc)
{
    redisAsyncContext *ac = redisAsyncConnect(b->host, b->port);
    if (!ac)
        return false;
    if (ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        snprintf(b->last_error, sizeof(b->last_error), "%s", why);
        return false;
    }
    rc->b = b;
    rc->ac = ac;
    rc->fd = ac->c.fd;
    rc->ready = false;
    ac->ev.data = rc;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    rc->want_write = true; /* the connect completes when writable */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return true;
}

static void start_connect(rb *b)
{
    b->state = LINK_CONNECTING;
    b->deadline = clock_now_ms() + b->connect_timeout_ms;
    if (!open_conn(b, &b->cmd) || !open_conn(b, &b->sub)) {
        char why[160];
        snprintf(why, sizeof(why), "%s", b->last_error[0] ? b->last_error : "out of memory");
        b->last_error[0] = '\0';
        link_down(b, why);
    }
}

/* --------------------------------------------------------- subscriptions */

static void subscribe_channel(rb *b, channel *c)
{
    if (b->state != LINK_UP || !b->sub.ac || c->subscribed || c->unsubscribing)
        return;
    char ch[KEY_MAX];
    channel_name(b, ch, c->room);
    const char *argv[] = {"SUBSCRIBE", ch};
    size_t lens[] = {9, strlen(ch)};
    if (redisAsyncCommandArgv(b->sub.ac, on_sub_reply, NULL, 2, argv, lens) == REDIS_OK)
        c->subscribed = true;
}

static void unsubscribe_channel(rb *b, channel *c)
{
    char ch[KEY_MAX];
    channel_name(b, ch, c->room);
    const char *argv[] = {"UNSUBSCRIBE", ch};
    size_t lens[] = {11, strlen(ch)};
    if (b->sub.ac && redisAsyncCommandArgv(b->sub.ac, on_sub_reply, NULL, 2, argv, lens) == REDIS_OK)
        c->unsubscribing = true;
}

static void want(rb *b, const char *room)
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
        subscribe_channel(b, c);
}

static void unwant(rb *b, const char *room)
{
    channel *c = channel_find(b, room);
    if (!c)
        return;
    c->wanted = false;
    c->unwanted_ms = clock_now_ms();
    if (!c->subscribed && !c->unsubscribing)
        channel_remove(b, c);
}

/* Rooms left a while ago are unsubscribed (a room that long polls join and
 * leave all the time stays subscribed). */
static void sweep_channels(rb *b, int64_t now)
{
    for (size_t i = 0; i < SET_BUCKETS; i++)
        for (channel *c = b->channels[i]; c; c = c->next)
            if (!c->wanted && c->confirmed && !c->unsubscribing &&
                now - c->unwanted_ms >= UNSUBSCRIBE_AFTER_MS)
                unsubscribe_channel(b, c);
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *rc = ac->ev.data;
    redisReply *r = reply;
    (void)privdata;
    if (!rc || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    rb *b = rc->b;
    const char *kind = r->element[0]->str;
    char mine[KEY_MAX];
    node_channel(b, mine, b->base.node_id);
    if (!strcmp(r->element[1]->str, mine)) {
        pthread_mutex_lock(&b->qlock);
        bp_node_fn fn = b->node_fn;
        void *fn_arg = b->node_arg;
        pthread_mutex_unlock(&b->qlock);
        if (!strcmp(kind, "message") && r->element[2]->type == REDIS_REPLY_STRING && fn)
            fn(fn_arg, r->element[2]->str, r->element[2]->len);
        return;
    }
    const char *room = bp_room_of_channel(b->prefix, r->element[1]->str);
    if (!room)
        return;
    if (!strcmp(kind, "message") && r->element[2]->type == REDIS_REPLY_STRING) {
        char epoch[MSG_EPOCH_MAX] = "", origin[BP_NODE_ID_LEN + 1] = "", target[BP_TARGET_MAX] = "";
        bp_entry e;
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
            subscribe_channel(b, c); /* wanted again meanwhile */
        else
            channel_remove(b, c);
    }
}

/* ----------------------------------------------------------- commands */

typedef struct pending_publish {
    publish_done_fn done;
    void *arg;
} pending_publish;

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
    if (pp) {
        pp->done(pp->arg, &res);
        free(pp);
    }
}


/* Sends one publish; w is the caller's to free. */
static void send_publish(rb *b, work *w)
{
    char ke[KEY_MAX], kn[KEY_MAX], ks[KEY_MAX], ch[KEY_MAX], epoch[MSG_EPOCH_MAX];
    char size[24], ttl[24], wall[24], excl[24];
    key_of(b, ke, w->room, "e");
    key_of(b, kn, w->room, "n");
    key_of(b, ks, w->room, "s");
    channel_name(b, ch, w->room);
    hub_random_name(epoch, 8);
    snprintf(size, sizeof(size), "%zu", b->history_size);
    snprintf(ttl, sizeof(ttl), "%" PRId64, b->key_ttl_ms);
    snprintf(wall, sizeof(wall), "%" PRId64, w->wall_ms);
    snprintf(excl, sizeof(excl), "%" PRIu64, w->exclude);
    const char *target = w->target[0] ? w->target : "-";
    const char *argv[] = {"EVAL", publish_lua, "3",  ke,     kn,         ks,     epoch,
                          size,   ttl,         ch,   wall,   b->base.node_id,
                          excl,   w->local_done ? "1" : "0", target, w->data};
    size_t n = sizeof(argv) / sizeof(argv[0]);
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i + 1 < n; i++)
        lens[i] = strlen(argv[i]);
    lens[n - 1] = w->len; /* the data: not NUL-terminated */
    pending_publish *pp = NULL;
    if (w->done && !(pp = malloc(sizeof(*pp)))) {
        publish_result res = {.rc = -ENOMEM};
        w->done(w->arg, &res);
        return;
    }
    if (pp)
        *pp = (pending_publish){w->done, w->arg};
    if (redisAsyncCommandArgv(b->cmd.ac, on_publish_reply, pp, (int)n, argv, lens) != REDIS_OK) {
        free(pp);
        if (w->done) {
            publish_result res = {.rc = -EIO};
            w->done(w->arg, &res);
        }
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

static void send_fetch(rb *b, const work *w)
{
    pending_fetch *pf = malloc(sizeof(*pf));
    if (!pf)
        return;
    snprintf(pf->room, sizeof(pf->room), "%s", w->room);
    char ke[KEY_MAX], kn[KEY_MAX], ks[KEY_MAX], epoch[MSG_EPOCH_MAX], after[24], ttl[24],
        count[24];
    key_of(b, ke, w->room, "e");
    key_of(b, kn, w->room, "n");
    key_of(b, ks, w->room, "s");
    hub_random_name(epoch, 8);
    snprintf(after, sizeof(after), "%" PRIu64, w->after);
    snprintf(ttl, sizeof(ttl), "%" PRId64, b->key_ttl_ms);
    snprintf(count, sizeof(count), "%zu", b->history_size ? b->history_size : 1);
    const char *argv[] = {"EVAL", fetch_lua, "3", ke, kn, ks, epoch,
                          w->epoch[0] ? w->epoch : "-", after, ttl, count};
    size_t n = sizeof(argv) / sizeof(argv[0]);
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(b->cmd.ac, on_fetch_reply, pf, (int)n, argv, lens) != REDIS_OK)
        free(pf);
}

typedef struct pending_claim {
    bp_owner_fn cb;
    void *arg;
} pending_claim;

static void on_claim_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_claim *pc = privdata;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_STRING)
        pc->cb(pc->arg, -EIO, "");
    else if (!strcmp(r->str, RELEASED))
        pc->cb(pc->arg, -ENOENT, "");
    else
        pc->cb(pc->arg, 0, r->str);
    free(pc);
}

static void on_offer_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_claim *pc = privdata;
    redisReply *r = reply;
    pc->cb(pc->arg, r && r->type != REDIS_REPLY_ERROR ? 0 : -EIO, "");
    free(pc);
}

static void send_name_work(rb *b, work *w)
{
    char key[KEY_MAX], ttl[24];
    name_key(b, key, w->name);
    snprintf(ttl, sizeof(ttl), "%" PRId64, w->ttl_ms > 0 ? w->ttl_ms : 1);
    if (w->kind == W_TOUCH) {
        const char *argv[] = {"PEXPIRE", key, ttl};
        size_t lens[] = {7, strlen(key), strlen(ttl)};
        redisAsyncCommandArgv(b->cmd.ac, NULL, NULL, 3, argv, lens);
    } else if (w->kind == W_OFFER) {
        pending_claim *pc = malloc(sizeof(*pc));
        if (!pc) {
            w->owner_cb(w->arg, -ENOMEM, "");
            return;
        }
        *pc = (pending_claim){w->owner_cb, w->arg};
        const char *argv[] = {"SET", key, "", "PX", ttl, "NX"};
        size_t lens[] = {3, strlen(key), 0, 2, strlen(ttl), 2};
        if (redisAsyncCommandArgv(b->cmd.ac, on_offer_reply, pc, 6, argv, lens) != REDIS_OK) {
            free(pc);
            w->owner_cb(w->arg, -EIO, "");
        }
    } else if (w->kind == W_RELEASE) {
        const char *argv[] = {"SET", key, RELEASED, "PX", ttl};
        size_t lens[] = {3, strlen(key), strlen(RELEASED), 2, strlen(ttl)};
        redisAsyncCommandArgv(b->cmd.ac, NULL, NULL, 5, argv, lens);
    } else {
        pending_claim *pc = malloc(sizeof(*pc));
        if (!pc) {
            w->owner_cb(w->arg, -ENOMEM, "");
            return;
        }
        *pc = (pending_claim){w->owner_cb, w->arg};
        const char *take = w->take ? "1" : "0";
        const char *argv[] = {"EVAL", claim_lua, "1", key, b->base.node_id, ttl, take};
        size_t lens[] = {4, strlen(claim_lua), 1, strlen(key), strlen(b->base.node_id),
                         strlen(ttl), 1};
        if (redisAsyncCommandArgv(b->cmd.ac, on_claim_reply, pc, 7, argv, lens) != REDIS_OK) {
            free(pc);
            w->owner_cb(w->arg, -EIO, "");
        }
    }
}

static void send_to_node(rb *b, work *w)
{
    char ch[KEY_MAX];
    node_channel(b, ch, w->node);
    const char *argv[] = {"PUBLISH", ch, w->data};
    size_t lens[] = {7, strlen(ch), w->len};
    redisAsyncCommandArgv(b->cmd.ac, NULL, NULL, 3, argv, lens);
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

static void send_room_state(rb *b, work *w)
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

static void on_ping_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *rc = ac->ev.data;
    (void)privdata;
    if (rc && reply)
        rc->b->ping_pending = false;
}

/* -------------------------------------------------------------- thread */

/* Takes the queued work this state can do: everything when up; else all
 * but the publishes, which wait (in order) for Redis. */
static work *take_work(rb *b)
{
    pthread_mutex_lock(&b->qlock);
    work *taken = NULL, **tail = &taken;
    work **pp = &b->head;
    b->tail = NULL;
    while (*pp) {
        work *w = *pp;
        if (w->kind == W_PUBLISH && b->state != LINK_UP) {
            b->tail = w;
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->next = NULL;
        *tail = w;
        tail = &w->next;
        if (w->kind == W_PUBLISH)
            b->npublish--;
    }
    pthread_mutex_unlock(&b->qlock);
    return taken;
}

static void do_work(rb *b, work *w)
{
    switch (w->kind) {
    case W_WANT: want(b, w->room); break;
    case W_UNWANT: unwant(b, w->room); break;
    case W_FETCH:
        if (b->state == LINK_UP && b->cmd.ac)
            send_fetch(b, w); /* else: fetched again once subscribed again */
        break;
    case W_CLAIM:
    case W_OFFER:
    case W_TOUCH:
    case W_RELEASE:
        if (b->state == LINK_UP && b->cmd.ac)
            send_name_work(b, w);
        else if (w->kind == W_CLAIM || w->kind == W_OFFER)
            w->owner_cb(w->arg, -EIO, "");
        break;
    case W_NODE_SEND:
        if (b->state == LINK_UP && b->cmd.ac)
            send_to_node(b, w);
        break;
    case W_ROOM_STATE:
        if (b->state == LINK_UP && b->cmd.ac)
            send_room_state(b, w);
        else
            w->room_cb(w->arg, -EIO, "", 0);
        break;
    case W_PUBLISH:
        if (b->cmd.ac) {
            send_publish(b, w);
        } else if (w->done) {
            publish_result res = {.rc = -EIO};
            w->done(w->arg, &res);
        }
        break;
    }
}

static void run_work(rb *b)
{
    work *w = take_work(b);
    while (w) {
        work *next = w->next;
        do_work(b, w);
        free(w->data);
        free(w);
        w = next;
    }
}

static void timers(rb *b, int64_t now)
{
    if (b->state == LINK_DOWN && now >= b->retry_at)
        start_connect(b);
    else if (b->state == LINK_CONNECTING && now >= b->deadline)
        link_down(b, "connect timed out");
    if (b->state != LINK_UP)
        return;
    if (b->ping_pending && now - b->ping_sent_ms > (int64_t)b->connect_timeout_ms) {
        link_down(b, "no answer to PING");
        return;
    }
    if (!b->ping_pending && now - b->last_ping_ms >= PING_EVERY_MS && b->cmd.ac) {
        b->ping_pending = true;
        b->ping_sent_ms = b->last_ping_ms = now;
        redisAsyncCommand(b->cmd.ac, on_ping_reply, NULL, "PING");
    }
    sweep_channels(b, now);
}

static void add_pollfd(struct pollfd *p, nfds_t *n, const rconn *rc)
{
    if (!rc->ac || rc->fd < 0)
        return;
    short ev = (short)((rc->want_read ? POLLIN : 0) | (rc->want_write ? POLLOUT : 0));
    p[*n] = (struct pollfd){.fd = rc->fd, .events = ev};
    (*n)++;
}

static void handle_events(rconn *rc, const struct pollfd *p, nfds_t n)
{
    for (nfds_t i = 1; i < n; i++) {
        if (!rc->ac || p[i].fd != rc->fd)
            continue;
        if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
            redisAsyncHandleRead(rc->ac);
        if (rc->ac && (p[i].revents & POLLOUT))
            redisAsyncHandleWrite(rc->ac);
    }
}

static void *thread_main(void *arg)
{
    rb *b = arg;
    while (!atomic_load(&b->stop)) {
        timers(b, clock_now_ms());
        run_work(b);
        struct pollfd p[3] = {{.fd = b->wake_fd, .events = POLLIN}};
        nfds_t n = 1;
        add_pollfd(p, &n, &b->cmd);
        add_pollfd(p, &n, &b->sub);
        int timeout = b->state == LINK_UP ? 250 : 50;
        if (poll(p, n, timeout) < 0)
            continue;
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(b->wake_fd, &v, sizeof(v));
            (void)r;
        }
        handle_events(&b->cmd, p, n);
        handle_events(&b->sub, p, n);
    }
    return NULL;
}

/* -------------------------------------------------------------- set-up */

backplane *redis_backplane_start(const redis_options *opt, hub *h)
{
    rb *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->base.ops = &redis_ops;
    hub_random_name(b->base.node_id, BP_NODE_ID_LEN);
    b->hub = h;
    snprintf(b->host, sizeof(b->host), "%s", opt->host);
    b->port = opt->port;
    b->db = opt->db;
    snprintf(b->password, sizeof(b->password), "%s", opt->password ? opt->password : "");
    snprintf(b->prefix, sizeof(b->prefix), "%s", opt->prefix);
    b->connect_timeout_ms = opt->connect_timeout_ms;
    b->queue_limit = opt->queue_limit;
    b->history_size = opt->history_size;
    /* A room's keys live as long as history keeps its newest message (at
     * least a second): a room nobody published to for longer is gone, as a
     * room of the memory backplane is, and starts a new epoch. */
    b->key_ttl_ms = opt->history_ttl_ms > 1000 ? opt->history_ttl_ms : 1000;
    b->cmd.fd = b->sub.fd = -1;
    b->state = LINK_DOWN;
    b->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_init(&b->qlock, NULL);
    b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    hub_set_backplane(h, &b->base);
    if (b->wake_fd < 0 || pthread_create(&b->thread, NULL, thread_main, b)) {
        LOG_ERR(TAG, "cannot start the Redis backplane thread");
        if (b->wake_fd >= 0)
            close(b->wake_fd);
        pthread_mutex_destroy(&b->qlock);
        hub_set_backplane(h, NULL);
        free(b);
        return NULL;
    }
    LOG_INFO(TAG, "Redis backplane at %s:%d db %u, key prefix \"%s\", node %s", b->host, b->port,
             b->db, b->prefix, b->base.node_id);
    return &b->base;
}

void redis_backplane_stop(backplane *bp)
{
    rb *b = (rb *)bp;
    if (!b || atomic_exchange(&b->stop, true))
        return;
    wake_thread(b);
    pthread_join(b->thread, NULL);
    hub_set_backplane(b->hub, NULL); /* nothing publishes any more (see redis_backplane.h) */
    b->state = LINK_DOWN; /* link_down would log: this is a planned stop */
    free_conn(&b->cmd);   /* pending publishes are answered -EIO */
    free_conn(&b->sub);
    pthread_mutex_lock(&b->qlock);
    work *w = b->head;
    b->head = b->tail = NULL;
    b->up = false;
    pthread_mutex_unlock(&b->qlock);
    for (work *next; w; w = next) {
        next = w->next;
        if (w->kind == W_PUBLISH && w->done) {
            publish_result res = {.rc = -EIO};
            w->done(w->arg, &res);
        } else if (w->kind == W_CLAIM || w->kind == W_OFFER) {
            w->owner_cb(w->arg, -EIO, "");
        } else if (w->kind == W_ROOM_STATE) {
            w->room_cb(w->arg, -EIO, "", 0);
        }
        free(w->data);
        free(w);
    }
}

void redis_backplane_free(backplane *bp)
{
    rb *b = (rb *)bp;
    if (!b)
        return;
    redis_backplane_stop(bp);
    for (work *w = b->head, *next; w; w = next) { /* queued after the stop: dropped */
        next = w->next;
        if (w->kind == W_CLAIM || w->kind == W_OFFER)
            w->owner_cb(w->arg, -EIO, "");
        free(w->data);
        free(w);
    }
    for (size_t i = 0; i < SET_BUCKETS; i++) {
        for (channel *c = b->channels[i], *next; c; c = next) {
            next = c->next;
            free(c);
        }
    }
    close(b->wake_fd);
    pthread_mutex_destroy(&b->qlock);
    free(b);
}
