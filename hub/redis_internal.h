/* SPDX-License-Identifier: MIT */
/*
 * redis_internal.h - what the Redis backplane's files share: its state
 * (rb), the work items other threads queue for its thread, the channel set
 * and the connections, and the calls between its files:
 *   redis_backplane.c  the link: both hiredis connections, reconnecting,
 *                      PING, the work queue's thread, start/stop;
 *   redis_ops.c        backplane_ops (any thread): queue work and wake the thread;
 *   redis_rooms.c      rooms in Redis: keys, the publish and fetch scripts,
 *                      room state, channel subscriptions and what comes on them;
 *   redis_history.c    a page of a room's kept history (GET /rooms/{room}/history);
 *   redis_nodes.c      the cluster: names owned by nodes (claim, offer,
 *                      touch, release) and messages between nodes;
 *   redis_presence.c   presence: each node's counts per room with a TTL,
 *                      read over the live nodes, joins and leaves;
 *   redis_cluster.c    the hub's own messages between nodes (cluster_send).
 * What is read from Redis is decoded by bp_codec.c. Private to hub/.
 *
 * Threading: fields marked "thread" and every function declared here but
 * rb_push_work and rb_wake_thread run on the backplane's own thread only.
 * qlock guards the work queue, `up`, `npublish` and node_fn/node_arg. No
 * lock of its own is held while the thread calls the hub or a callback.
 *
 * Threads and locks: docs/concurrency.md
 */
#ifndef CRIER_REDIS_INTERNAL_H
#define CRIER_REDIS_INTERNAL_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/redis_backplane.h"

#define TAG "backplane"
#define KEY_MAX (ROOM_NAME_MAX + 80) /* a key or channel name: prefix, kind, room */
#define SET_BUCKETS 1024             /* the channel set's hash buckets */
#define RB_EPOCH_LEN 8               /* a candidate epoch, as long as a room's */
#define RB_NUM_MAX 24                /* a decimal 64-bit number as text, with its NUL */
#define RB_TARGET_MAX 64             /* a SignalR target carried with a publish */
#define RELEASED "-"                 /* the value of a released name */
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
    W_ROOM_STATE,
    W_HISTORY,
    W_PRESENCE,
    W_PRESENCE_GET,
    W_PRESENCE_SYNC, /* after: 1 for the base */
    W_CLUSTER_SEND
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
    char target[RB_TARGET_MAX];
    uint64_t exclude;
    int64_t wall_ms;
    bool local_done;
    publish_done_fn done; /* NULL for a queued one: the hub answered it */
    void *arg;
    /* W_CLAIM, W_TOUCH, W_RELEASE; W_NODE_SEND (node, data, len) */
    char name[NAME_MAX_LEN];
    int64_t ttl_ms;
    bp_owner_fn owner_cb;
    bool take;          /* W_CLAIM: become the owner when there is none */
    bp_room_fn room_cb; /* W_ROOM_STATE */
    /* W_HISTORY (room, epoch, after: since, and at most count entries) */
    size_t count;
    bp_history_fn history_cb;
    char node[BP_NODE_ID_LEN + 1];
    /* W_PRESENCE: the user is data (len); the count is after */
    bool p_events, p_reset, p_present;
    /* W_PRESENCE_GET */
    presence_fn presence_cb;
    size_t max_listed;
    bp_count_fn count_cb; /* W_CLUSTER_SEND, may be NULL; node "": every node */
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
    size_t max_pending_bytes;
    size_t history_size;
    int64_t key_ttl_ms;
    int64_t history_ttl_ms; /* how long history keeps a message (history.ttl_s) */

    pthread_t thread;
    int wake_fd;
    atomic_bool stop;

    pthread_mutex_t qlock; /* guards the work queue, up, npublish and pending_bytes */
    work *head, *tail;
    size_t npublish; /* W_PUBLISH items in the queue */
    /* Bytes of publishes not yet answered by Redis: in the queue, or sent
     * and waiting for their reply (in hiredis's buffers). A slow Redis
     * cannot make them grow past max_pending_bytes. */
    size_t pending_bytes;
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
    /* thread: rooms this node has presence in (redis_presence.c), and
     * when their keys are refreshed next */
    struct presence_room *presence_rooms[SET_BUCKETS];
    int64_t presence_refresh_at;
    bool ever_up; /* thread: the link was up once (a later up is a reconnect) */
} rb;

/* --- redis_backplane.c: the link and the thread */
void rb_wake_thread(rb *b);
void rb_push_work(rb *b, work *w); /* any thread */
void rb_link_down(rb *b, const char *why);

/* --- redis_ops.c */
extern const backplane_ops rb_ops;

/* --- redis_rooms.c */
void rb_want(rb *b, const char *room);
void rb_unwant(rb *b, const char *room);
void rb_subscribe_channel(rb *b, channel *c);
void rb_channel_remove(rb *b, channel *c);
void rb_sweep_channels(rb *b, int64_t now);
void rb_on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata);
void rb_send_publish(rb *b, work *w);

/* Any thread: a publish of len bytes is answered (or given up): it no
 * longer counts in pending_bytes. */
void rb_publish_settled(rb *b, size_t len);
void rb_send_fetch(rb *b, const work *w);
void rb_send_room_state(rb *b, work *w);

/* --- redis_history.c */
void rb_send_history(rb *b, work *w);

/* --- redis_nodes.c */
void rb_node_channel(const rb *b, char *out, const char *node);
/* A pub/sub reply on this node's own channel: handled (true), or not one. */
bool rb_node_message(rb *b, const redisReply *r);
void rb_send_name_work(rb *b, work *w);
void rb_send_to_node(rb *b, work *w);

/* --- redis_presence.c */
void rb_send_presence(rb *b, work *w);
void rb_send_presence_get(rb *b, work *w);
void rb_send_presence_sync(rb *b, work *w);
void rb_presence_refresh(rb *b, int64_t now);
/* A message on a room's channel: a presence event (handled: true), or not one. */
bool rb_presence_message(rb *b, const char *room, const char *data, size_t len);
void rb_presence_free(rb *b);
/* --- redis_cluster.c: the hub's messages between nodes (cluster_send) */
void rb_cluster_subscribe(rb *b);
void rb_send_cluster(rb *b, work *w);
/* A pub/sub reply on a cluster channel: handed to the hub (true), or not one. */
bool rb_cluster_message(rb *b, const redisReply *r);
/* A cluster send not sent (down, stopping): its cb gets -1. */
void rb_cluster_unsent(work *w);
/* PUBLISHes w's data on channel ch; w->count_cb (when set) gets the count
 * of receivers (-1: not sent). */
void rb_publish_counted(rb *b, const char *ch, work *w);

#endif
