/* SPDX-License-Identifier: MIT */
/*
 * redis_backplane.c - rooms shared by several nodes through Redis (see
 * backplane.h and redis_backplane.h): the link. One thread of its own owns
 * both hiredis connections (commands, and subscriptions), connects them
 * (AUTH, SELECT, PING), notices them lost, reconnects with backoff from
 * BACKOFF_MIN_MS to BACKOFF_MAX_MS (each change of state logged once),
 * PINGs every PING_EVERY_MS, and runs the work other threads queue
 * (redis_ops.c) through redis_rooms.c and redis_nodes.c.
 *
 * In Redis, per room (P = the key prefix): see redis_rooms.c; names owned
 * by nodes and node channels: redis_nodes.c; presence: redis_presence.c.
 *
 * Redis unreachable: publishes wait in the work queue (up to queue_limit),
 * marked as delivered locally already; the hub delivers them to this
 * node's members at once.
 *
 * Threading: everything here runs on the backplane's thread, but
 * redis_backplane_start/stop/free (main) and rb_push_work/rb_wake_thread
 * (any thread, under qlock). It calls into the hub (hub_bp_*) with no lock
 * of its own held.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/redis_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "hub/backlog.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define PING_EVERY_MS 1000
#define POLL_UP_MS 250  /* the thread's poll timeout while Redis is up */
#define POLL_DOWN_MS 50 /* ... and while connecting or down (retries due) */
#define KEY_TTL_MIN_MS 1000

void rb_wake_thread(rb *b)
{
    uint64_t one = 1;
    ssize_t n = write(b->wake_fd, &one, sizeof(one));
    (void)n; /* a full counter still wakes it */
}

void rb_push_work(rb *b, work *w)
{
    pthread_mutex_lock(&b->qlock);
    if (b->tail)
        b->tail->next = w;
    else
        b->head = w;
    b->tail = w;
    pthread_mutex_unlock(&b->qlock);
    rb_wake_thread(b);
}

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
    rb_link_down(rc->b, why);
}

/* For /metrics (redis_backplane_figures): the backplane running (one per
 * process; set by start before any thread serves /metrics, cleared by free
 * after they stopped) and the links made again after the first. */
static rb *metrics_rb;
static atomic_uint_least64_t reconnects;

void redis_backplane_figures(redis_figures *out)
{
    *out = (redis_figures){.on = metrics_rb != NULL, .reconnects = atomic_load(&reconnects)};
    rb *b = metrics_rb;
    if (!b)
        return;
    pthread_mutex_lock(&b->qlock);
    for (const work *w = b->head; w; w = w->next)
        out->queued++;
    out->queued_publishes = b->npublish;
    out->pending_bytes = b->pending_bytes;
    pthread_mutex_unlock(&b->qlock);
}

static void become_up(rb *b)
{
    if (b->ever_up)
        atomic_fetch_add(&reconnects, 1);
    b->ever_up = true;
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
    rb_node_channel(b, ch, b->base.node_id);
    const char *argv[] = {"SUBSCRIBE", ch};
    size_t lens[] = {9, strlen(ch)};
    redisAsyncCommandArgv(b->sub.ac, rb_on_sub_reply, NULL, 2, argv, lens);
    rb_cluster_subscribe(b);
    hub_bp_link(b->hub, true);
    for (size_t i = 0; i < SET_BUCKETS; i++)
        for (channel *c = b->channels[i]; c; c = c->next)
            if (c->wanted)
                rb_subscribe_channel(b, c);
}

static void check_ready(rb *b)
{
    if (b->state == LINK_CONNECTING && b->cmd.ready && b->sub.ready)
        become_up(b);
}

void rb_link_down(rb *b, const char *why)
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
                rb_channel_remove(b, c);
        }
    }
    free_conn(&b->cmd);
    free_conn(&b->sub);
    b->retry_at = clock_now_ms() + b->backoff_ms;
    b->backoff_ms = b->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->backoff_ms * 2;
    if (was_up) {
        LOG_WARN(TAG,
                 "lost Redis at %s:%d (%s): delivering locally, publishes queued (up to %u), "
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
        rb_link_down(rc->b, why);
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
        rb_link_down(rc->b, why);
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
        rb_link_down(b, why);
    }
}

static void on_ping_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *rc = ac->ev.data;
    (void)privdata;
    if (rc && reply)
        rc->b->ping_pending = false;
}

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
    case W_WANT:
        rb_want(b, w->room);
        break;
    case W_UNWANT:
        rb_unwant(b, w->room);
        break;
    case W_FETCH:
        if (b->state == LINK_UP && b->cmd.ac)
            rb_send_fetch(b, w); /* else: fetched again once subscribed again */
        break;
    case W_CLAIM:
    case W_OFFER:
    case W_TOUCH:
    case W_RELEASE:
        if (b->state == LINK_UP && b->cmd.ac)
            rb_send_name_work(b, w);
        else if (w->kind == W_CLAIM || w->kind == W_OFFER)
            w->owner_cb(w->arg, -EIO, "");
        break;
    case W_NODE_SEND:
        if (b->state == LINK_UP && b->cmd.ac)
            rb_send_to_node(b, w);
        else
            rb_cluster_unsent(w);
        break;
    case W_CLUSTER_SEND:
        if (b->state == LINK_UP && b->cmd.ac)
            rb_send_cluster(b, w);
        else
            rb_cluster_unsent(w);
        break;
    case W_ROOM_STATE:
        if (b->state == LINK_UP && b->cmd.ac)
            rb_send_room_state(b, w);
        else
            w->room_cb(w->arg, -EIO, "", 0);
        break;
    case W_HISTORY:
        if (b->state == LINK_UP && b->cmd.ac)
            rb_send_history(b, w);
        else
            w->history_cb(w->arg, -EIO, "", 0, 0, NULL, 0);
        break;
    case W_PRESENCE: /* while down: dropped, the hub reports all again once up */
        rb_send_presence(b, w);
        break;
    case W_PRESENCE_GET:
        if (b->state == LINK_UP && b->cmd.ac)
            rb_send_presence_get(b, w);
        else
            w->presence_cb(w->arg, -EIO, NULL);
        break;
    case W_PRESENCE_SYNC: /* while down: the hub goes live again once up */
        if (b->state == LINK_UP && b->cmd.ac)
            rb_send_presence_sync(b, w);
        else if (w->after)
            hub_bp_presence_base(b->hub, w->room, NULL, 0);
        break;
    case W_PUBLISH:
        if (b->cmd.ac) {
            rb_send_publish(b, w); /* settled when Redis answers */
            break;
        }
        rb_publish_settled(b, w->len);
        if (w->done) {
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
        rb_link_down(b, "connect timed out");
    if (b->state != LINK_UP)
        return;
    if (b->ping_pending && now - b->ping_sent_ms > (int64_t)b->connect_timeout_ms) {
        rb_link_down(b, "no answer to PING");
        return;
    }
    if (!b->ping_pending && now - b->last_ping_ms >= PING_EVERY_MS && b->cmd.ac) {
        b->ping_pending = true;
        b->ping_sent_ms = b->last_ping_ms = now;
        redisAsyncCommand(b->cmd.ac, on_ping_reply, NULL, "PING");
    }
    rb_sweep_channels(b, now);
    rb_presence_refresh(b, now);
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

/* Backpressure: what Redis sent on the subscription connection and this
 * thread has not read yet. Much of it means this thread fans out more
 * slowly than the cluster publishes, and no queue shows it yet: the node
 * holds publishers (backlog_set_inbound), here and on the other nodes. */
static void inbound_check(rb *b)
{
    int waiting = 0;
    if (b->sub.fd < 0 || ioctl(b->sub.fd, FIONREAD, &waiting) < 0)
        waiting = 0;
    backlog_set_inbound((size_t)(waiting > 0 ? waiting : 0));
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
        int timeout = b->state == LINK_UP ? POLL_UP_MS : POLL_DOWN_MS;
        if (poll(p, n, timeout) < 0)
            continue;
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(b->wake_fd, &v, sizeof(v));
            (void)r;
        }
        handle_events(&b->cmd, p, n);
        handle_events(&b->sub, p, n);
        inbound_check(b);
    }
    return NULL;
}

backplane *redis_backplane_start(const redis_options *opt, hub *h)
{
    rb *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->base.ops = &rb_ops;
    hub_random_name(b->base.node_id, BP_NODE_ID_LEN);
    b->hub = h;
    snprintf(b->host, sizeof(b->host), "%s", opt->host);
    b->port = opt->port;
    b->db = opt->db;
    snprintf(b->password, sizeof(b->password), "%s", opt->password ? opt->password : "");
    snprintf(b->prefix, sizeof(b->prefix), "%s", opt->prefix);
    b->connect_timeout_ms = opt->connect_timeout_ms;
    b->queue_limit = opt->queue_limit;
    b->max_pending_bytes = opt->max_pending_bytes;
    b->history_size = opt->history_size;
    /* A room's keys live as long as history keeps its newest message (at
     * least a second): a room nobody published to for longer is gone, as a
     * room of the memory backplane is, and starts a new epoch. */
    b->key_ttl_ms = opt->history_ttl_ms > KEY_TTL_MIN_MS ? opt->history_ttl_ms : KEY_TTL_MIN_MS;
    b->history_ttl_ms = opt->history_ttl_ms;
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
    metrics_rb = b;
    return &b->base;
}

/* Work that will never be sent (the backplane stopped): every kind that
 * has an answer is answered -EIO, so that nothing waits for it or leaks. */
static void drop_work(work *w)
{
    for (work *next; w; w = next) {
        next = w->next;
        if (w->kind == W_PUBLISH && w->done) {
            publish_result res = {.rc = -EIO};
            w->done(w->arg, &res);
        } else if (w->kind == W_CLAIM || w->kind == W_OFFER) {
            w->owner_cb(w->arg, -EIO, "");
        } else if (w->kind == W_ROOM_STATE) {
            w->room_cb(w->arg, -EIO, "", 0);
        } else if (w->kind == W_HISTORY) {
            w->history_cb(w->arg, -EIO, "", 0, 0, NULL, 0);
        } else if (w->kind == W_PRESENCE_GET) {
            w->presence_cb(w->arg, -EIO, NULL);
        } else if (w->kind == W_CLUSTER_SEND || w->kind == W_NODE_SEND) {
            rb_cluster_unsent(w);
        }
        free(w->data);
        free(w);
    }
}

void redis_backplane_stop(backplane *bp)
{
    rb *b = (rb *)bp;
    if (!b || atomic_exchange(&b->stop, true))
        return;
    rb_wake_thread(b);
    pthread_join(b->thread, NULL);
    hub_set_backplane(b->hub, NULL); /* nothing publishes any more (see redis_backplane.h) */
    b->state = LINK_DOWN;            /* link_down would log: this is a planned stop */
    free_conn(&b->cmd);              /* pending publishes are answered -EIO */
    free_conn(&b->sub);
    pthread_mutex_lock(&b->qlock);
    work *w = b->head;
    b->head = b->tail = NULL;
    b->up = false;
    b->pending_bytes = 0; /* what was sent was answered -EIO by free_conn */
    pthread_mutex_unlock(&b->qlock);
    drop_work(w);
}

void redis_backplane_free(backplane *bp)
{
    rb *b = (rb *)bp;
    if (!b)
        return;
    redis_backplane_stop(bp);
    if (metrics_rb == b)
        metrics_rb = NULL;
    drop_work(b->head); /* queued after the stop */
    b->head = b->tail = NULL;
    for (size_t i = 0; i < SET_BUCKETS; i++) {
        for (channel *c = b->channels[i], *next; c; c = next) {
            next = c->next;
            free(c);
        }
    }
    rb_presence_free(b);
    close(b->wake_fd);
    pthread_mutex_destroy(&b->qlock);
    free(b);
}
