/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the hub's own files share (hub.c, rooms.c, members.c,
 * resume.c, fanout.c, history_budget.c, hub_backplane.c): the hub, room
 * and membership types and the functions one of them calls in another.
 * Private to hub/: nothing outside hub/ includes it (the public API is
 * hub.h).
 *
 * Every function declared here is called with the hub lock held, unless it
 * says otherwise; none takes it. One mutex (struct hub `lock`) guards
 * everything these types hold; a sub's own fields are under its sub lock,
 * taken after the hub lock (never the other way).
 *
 * Threads and locks: docs/concurrency.md
 */
#ifndef CRIER_HUB_INTERNAL_H
#define CRIER_HUB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/list.h"
#include "hub/backplane.h"
#include "hub/history.h"
#include "hub/hub.h"

#define TAG "hub"

/* Rooms whose name starts with this are a hub's own (a SignalR hub's, the
 * stats stream's): not counted in max_rooms nor in max_rooms_per_sub. */
#define HUB_INTERNAL_CHAR '~'

/* A room's epoch: this many random characters of [A-Za-z0-9]. */
#define ROOM_EPOCH_LEN 8

/* A gap signal's JSON object: the room name and this much more at most. */
#define GAP_INFO_MAX (ROOM_NAME_MAX + 160)

/* A sub's place in one room: linked into the room's member list and into
 * the sub's own list of memberships. */
typedef struct membership {
    sub *s;
    struct room *room;
    list_node link;              /* in room->members */
    struct membership *sub_next; /* in s->memberships */
    /* Backplane only: a join waiting for its room's numbering and history
     * (fetched from the backplane). It gets nothing until then. */
    bool pending;
    hub_join_args args;
    char epoch[MSG_EPOCH_MAX]; /* args.epoch, copied */
    int64_t join_wall_ms;      /* "from now" means: published after this */
    /* Backplane only: a resume whose cursor is ahead of this node's view of
     * the room in the room's epoch (this node lags the backplane; the
     * client got that far from another node). Messages of skip_epoch up to
     * skip_through are not delivered to it (the client has them); once the
     * room passes the cursor this ends (skip_through 0). skip_check_ms:
     * when to ask the backplane whether the cursor is the room's at all
     * (LAG_WAIT_MS after the resume; 0 once asked). resume.c. */
    uint64_t skip_through;
    char skip_epoch[MSG_EPOCH_MAX];
    int64_t skip_check_ms;
    /* presence: counted in its room's (a hub's own rooms are not), under
     * user (the presence set's copy; NULL: anonymous) */
    bool in_presence;
    const char *user;
} membership;

#define member_of(node) list_entry(node, membership, link)

typedef struct room {
    struct room *bucket_next;
    uint32_t hash;
    char name[ROOM_NAME_MAX + 1];
    char epoch[MSG_EPOCH_MAX]; /* fixed when the room's numbering starts */
    uint64_t last_id;
    list_node members; /* membership.link, the latest joined first */
    unsigned count[SUB_KIND_COUNT];
    history hist;
    /* Backplane only. A shared room is numbered by the backplane: it is
     * `synced` once its numbering and history were fetched; until then (and
     * while a fetch fills a hole) messages from the backplane wait in
     * `waiting`. While the backplane is down, messages published here are
     * delivered here under a local epoch (local_epoch, local_last). */
    bool shared;
    bool synced;
    bool known;       /* epoch and last_id came from the backplane at least once */
    bool fetch_again; /* messages were let go while waiting: fetch once more */
    msg **waiting;
    size_t nwaiting;
    size_t waiting_bytes; /* their footprint, counted in hub->waiting_bytes too */
    char local_epoch[MSG_EPOCH_MAX];
    uint64_t local_last;
    int64_t empty_since_ms; /* when its last member left; 0 while it has members */
    size_t heap_pos; /* 1 + its index in hub->heap while its history holds bytes; 0 not in it */
    struct held_publish *held; /* answers waiting for this node to take their message */
    /* presence_room.c: who is here (rooms clients name), the events
     * collected for the next tick, and the room's place in hub->presence_work */
    presence_set presence;
    bool presence_events;
    buf presence_batch; /* ,-separated {"user","action"} objects */
    size_t presence_nbatch;
    bool presence_queued; /* in hub->presence_work */
    /* presence_room.c, with a shared backplane and presence_events:
     * catching up with the presence events published while this node
     * subscribes to the room's channel (psync PSYNC_LIVE once caught up).
     * psync_base: who was present on the other nodes when this node's
     * presence in the room began (JSON text). */
    unsigned char psync;
    bool psync_subscribed; /* the room's channel is subscribed (fetched) */
    char *psync_base;
    int64_t psync_since;
    list_node presence_link;
} room;

/* A publish the backplane has numbered and this node has not taken yet. */
typedef struct held_publish {
    publish_done_fn done;
    void *arg;
    publish_result res;
    int64_t since_ms;
    struct held_publish *next;
} held_publish;

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
    size_t hist_bytes;    /* sum of every room's hist.bytes */
    uint64_t evicted;     /* messages dropped for history_max_bytes */
    size_t freed_bytes;   /* history bytes and rooms freed since the last hub_expire */
    size_t waiting_bytes; /* footprint of every room's `waiting` messages */
    /* presence_room.c: rooms with lingering users or events to send */
    list_node presence_work;
    /* users.c: the registry of live members by user and by connection id */
    struct user_entry **user_buckets;
    size_t nuser_buckets, nusers;
    sub **conn_buckets;
    size_t nconn_buckets, nconns;
    /* users_cluster.c: server API ops waiting for the other nodes' answers */
    struct user_op_wait *ops;
    uint64_t next_op;
};

typedef struct user_op_wait user_op_wait;

/* users_cluster.c: what a cluster_send's count callback needs to find its op. */
typedef struct op_count_ctx {
    hub *h;
    uint64_t req;
} op_count_ctx;

typedef struct user_entry user_entry;

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

static inline bool room_name_is_internal(const char *name)
{
    return name[0] == HUB_INTERNAL_CHAR;
}

static inline bool room_has_members(const room *r)
{
    return !list_empty(&r->members);
}

/* Hub lock and s's lock held: calls s's wake hook, if it has one. */
static inline void sub_wake_hook(sub *s)
{
    if (s->wake)
        s->wake(s);
}

/* --- hub.c: deferred calls */
void hub_defer_join(hub *h, join_done_fn done, void *arg, int rc, const char *epoch,
                    uint64_t last_id);
void hub_defer_publish(hub *h, held_publish *p);
/* Lets the hub lock go, then makes the calls that were due. */
void hub_unlock(hub *h);

/* --- rooms.c: the room table */
room *room_find(hub *h, const char *name);
room *room_get_or_create(hub *h, const char *name, int *rc);
void room_free_if_empty_at(hub *h, room *r, int64_t now);
void room_free_if_empty(hub *h, room *r);
void room_clear_waiting(hub *h, room *r);
bool hub_is_shared(const hub *h, const char *name);
void room_new_epoch(char out[MSG_EPOCH_MAX]);

/* --- users.c: the user and connection registry */
/* Registers s (with an identity, not yet registered) under its user and
 * connection id: 0, -EEXIST (the id is taken) or -ENOMEM. */
int registry_add(hub *h, sub *s);
/* Takes s out, if it is in. */
void registry_remove(hub *h, sub *s);
/* hub_destroy: frees the tables (members left behind are forgotten). */
void registry_free(hub *h);
/* The member named conn_id, or NULL. */
sub *registry_conn(const hub *h, const char *conn_id);
/* The list of user's members (linked by sub.user_link) and their number;
 * NULL (and 0) when user has none here. */
list_node *registry_user(const hub *h, const char *user, size_t *count);

/* --- users_cluster.c: no lock held; hub_destroy's part: every op still
 * waiting is answered (partial). */
void user_ops_finish_all(hub *h);

/* --- members.c: membership */
void member_leave_all(hub *h, sub *s, room *keep);
/* hub_join_ex and hub_leave_room with the hub lock held (leave: true when
 * s was a member). */
int member_join_locked(hub *h, const char *room_name, sub *s, const hub_join_args *a);
bool member_leave_locked(hub *h, const char *room_name, sub *s);

/* --- deadline.c: no lock held; sub_fini's part: s goes, and its deadline. */
void sub_deadline_forget(sub *s);

/* --- resume.c: cursors, gaps, replay */
int member_start(hub *h, room *r, membership *mb, sub *s, const hub_join_args *a);
int member_replay(hub *h, room *r, membership *mb, sub *s, uint64_t since, const char *epoch,
                  bool check_gap);
/* The cursor a join's answer gives: the room's last id, or the member's
 * cursor while this node lags behind it. */
uint64_t member_position(const room *r, const membership *mb);
/* Hub lock held: whether room_fanout passes m by mb (mb's client had it
 * from a node ahead of this one); ends mb's skipping once past it. */
bool member_skips(const room *r, membership *mb, const msg *m);
/* Hub lock held: asks the backplane about cursors of r's members that the
 * room has not reached LAG_WAIT_MS after their resume. */
void room_check_lagging(hub *h, room *r, int64_t now);
uint64_t room_cursor_at(const room *r, int64_t t);
void room_signal_gap(hub *h, room *r, const char *reason, uint64_t since, uint64_t next);

/* --- fanout.c: delivery */
bool hub_deliver(hub *h, sub *s, msg *m, const char *where, bool counted);
void room_fanout(hub *h, room *r, msg *m, const sub *exclude, uint64_t exclude_uid, bool counted);

/* --- history_budget.c: history.max_bytes */
void room_hist_dropped(hub *h, room *r, size_t before);
void room_keep_in_history(hub *h, room *r, msg *m);

/* --- presence_room.c */
void room_presence_join(hub *h, room *r, membership *m);
void room_presence_leave(hub *h, room *r, membership *m);
bool room_presence_holds(const room *r); /* lingering users or events: the room stays */
void room_presence_free(hub *h, room *r);
void hub_presence_resync(hub *h); /* the backplane came back: report every count */
/* Hub lock held: r's channel is subscribed and r fetched (hub_bp_fetched). */
void room_presence_subscribed(hub *h, room *r);

/* --- hub_backplane.c: held publishes */
void room_release_held(hub *h, room *r, int64_t now, bool all);

#endif
