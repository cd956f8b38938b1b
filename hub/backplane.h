/* SPDX-License-Identifier: MIT */
/*
 * backplane.h - how the hub of one node reaches the others.
 *
 * With the memory backplane (the default) there is none: the hub numbers
 * and delivers every message itself. With a shared one (Redis, see
 * redis_backplane.c) the numbering of each room lives in the backplane:
 * a publish goes there first, gets the room's next id, is kept in the
 * room's shared history, and comes back to every node that has members in
 * the room, in the same order on all of them. A node asks only for the
 * rooms its members are in.
 *
 * The hub calls the backplane through backplane_ops and is called back
 * through the hub_bp_* functions in hub.h, from the backplane's own thread.
 *
 * Threading: want_room and fetch are called with the hub lock held and must
 * only queue work (never block, never call back into the hub). publish is
 * called without it, from any thread. The others are called from any
 * thread, node_send also with a sub lock or fwd_lock held (SignalR), so
 * they too only queue; callbacks come later from the backplane's thread,
 * except that claim, offer, room_state and history may answer at once on the
 * caller's thread (out of memory): call those with no lock held that the
 * callback takes. See docs/concurrency.md.
 */
#ifndef CRIER_BACKPLANE_H
#define CRIER_BACKPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/message.h"
#include "hub/presence.h"

#define BP_NODE_ID_LEN 12 /* random [A-Za-z0-9], new at every start */

/* One message as the backplane carries it. Borrowed for the call. */
typedef struct bp_entry {
    uint64_t id;
    int64_t wall_ms;    /* the publishing node's wall clock when it published */
    const char *origin; /* node id of the publisher */
    uint64_t exclude;   /* uid of a sub on origin that does not get it; 0: none */
    bool local_done;    /* origin delivered it to its own members already (it was
                           published while the backplane was unreachable) */
    const char *target; /* SignalR target; "" for each member's default */
    const char *data;
    size_t len;
} bp_entry;

/* How a publish ended: called once, from any thread, with no lock held. */
typedef struct publish_result {
    int rc;      /* 0; -EAGAIN: backplane down and its queue full; -EIO: the backplane
                    connection was lost before the answer (published or not);
                    -ENOMEM */
    uint64_t id; /* the room's id for it (0 when queued and not delivered here) */
    char epoch[MSG_EPOCH_MAX];
    bool queued; /* the backplane was down: delivered here only, for now */
} publish_result;

typedef void (*publish_done_fn)(void *arg, const publish_result *r);

/* What a publish through the backplane asks for. */
typedef struct bp_publish {
    const char *room;
    const char *data;
    size_t len;
    const char *target; /* NULL: none */
    uint64_t exclude;   /* sub uid, 0: none */
} bp_publish;

typedef enum {
    BP_SENT,   /* done will be called when the backplane answers */
    BP_QUEUED, /* the backplane is down: kept for later; the hub delivers it locally now */
    BP_FULL,   /* the backplane is down and its queue is full: not published */
} bp_publish_status;

typedef struct backplane backplane;

/* The answer to a claim: rc 0 and the owner's node id (maybe this node's),
 * -ENOENT when the name was released (closed), -EIO when unreachable. */
typedef void (*bp_owner_fn)(void *arg, int rc, const char *owner);

/* The answer to room_state: rc 0 with the room's epoch and last id, or
 * -ENOENT (no such room), -EIO (unreachable). */
typedef void (*bp_room_fn)(void *arg, int rc, const char *epoch, uint64_t last_id);

/* The answer to history: rc 0 with the room's epoch, its last id, the id
 * of its oldest kept message (last_id + 1 when none) and the entries asked
 * for, oldest first (borrowed for the call); or -ENOENT (no such room),
 * -EIO (unreachable), -ENOMEM. */
typedef void (*bp_history_fn)(void *arg, int rc, const char *epoch, uint64_t last_id,
                              uint64_t first_kept, const bp_entry *entries, size_t n);

/* A message from another node to this one (bp_node_send), on the
 * backplane's thread. */
typedef void (*bp_node_fn)(void *arg, const char *data, size_t len);

/* What a node reports of one user in one room (backplane_ops.presence). */
typedef struct bp_presence {
    const char *room;
    const char *user;  /* "": the anonymous connections */
    uint64_t count;    /* this node's connections of user in room; 0: gone */
    bool events;       /* the room has presence_events: publish joins and leaves */
    bool reset;        /* first forget everything this node reported of room */
    bool room_present; /* this node has anyone in room after this */
} bp_presence;

/* The answer to a cluster_send to every node: how many nodes received it
 * (this one included, when it listens already), or -1 when it was not
 * sent (unreachable). */
typedef void (*bp_count_fn)(void *arg, long nodes);

typedef struct backplane_ops {
    /* Hub lock held. The node has members in room (want) or no longer has. */
    void (*want_room)(backplane *bp, const char *room, bool want);
    /* Hub lock held. Asks for the room's numbering and the kept messages
     * after `after` when epoch is still the room's ("" or another epoch:
     * every kept message). Answered by hub_bp_fetched. */
    void (*fetch)(backplane *bp, const char *room, const char *epoch, uint64_t after);
    /* No hub lock. For BP_SENT, done(arg, …) is called later, once. */
    bp_publish_status (*publish)(backplane *bp, const bp_publish *p, publish_done_fn done,
                                 void *arg);
    /* No hub lock. Where a room stands, for one that has no member here. */
    void (*room_state)(backplane *bp, const char *room, bp_room_fn cb, void *arg);
    /* No hub lock. At most count kept messages of room with id > since,
     * oldest first; from the oldest kept when since is past the room's last
     * id, or epoch (not "") is not the room's. cb as room_state's. */
    void (*history)(backplane *bp, const char *room, uint64_t since, const char *epoch,
                    size_t count, bp_history_fn cb, void *arg);

    /* --- names owned by one node (SignalR connections), any thread --- */
    /* Tells who owns name (cb: "" for nobody, or an unknown name), first
     * making this node its owner when it was offered, nobody owns it yet,
     * and take is true. Ownership lapses after ttl_ms unless touched. */
    void (*claim)(backplane *bp, const char *name, bool take, int64_t ttl_ms, bp_owner_fn cb,
                  void *arg);
    void (*touch)(backplane *bp, const char *name, int64_t ttl_ms);
    /* Makes name known, owned by nobody yet, for ttl_ms: only a known name
     * can be claimed. cb: rc 0, or -EIO. */
    void (*offer)(backplane *bp, const char *name, int64_t ttl_ms, bp_owner_fn cb, void *arg);
    /* Marks name released (claims answer -ENOENT) for ttl_ms. */
    void (*release)(backplane *bp, const char *name, int64_t ttl_ms);
    /* Sends data to one node, in order with this node's other sends to it;
     * dropped while the backplane is down. */
    void (*node_send)(backplane *bp, const char *node, const char *data, size_t len);
    /* As node_send, then cb(arg, how many received it): 0 when the node is
     * gone (dead, or its link down), -1 when it was not sent (unreachable).
     * cb may run at once on the caller's thread (out of memory). Optional. */
    void (*node_send_counted)(backplane *bp, const char *node, const char *data, size_t len,
                              bp_count_fn cb, void *arg);
    /* presence and presence_get are optional (NULL: presence stays this
     * node's own). Hub lock held: this node's count of one user in a room changed
     * (queued, in order; while the backplane is down it is dropped: the hub
     * reports everything again when it comes back). */
    void (*presence)(backplane *bp, const bp_presence *p);
    /* No hub lock. The room's presence over every live node: cb later (or
     * at once, out of memory), -EIO when unreachable. */
    void (*presence_get)(backplane *bp, const char *room, size_t max_listed, presence_fn cb,
                         void *arg);
    /* Optional (NULL: no catching up). Hub lock held, queued: with base,
     * reads who is present in room on the other nodes and answers through
     * hub_bp_presence_base; without, publishes who is present now on the
     * room's channel for this node (hub_bp_presence_synced, in order with
     * the room's presence events). */
    void (*presence_sync)(backplane *bp, const char *room, bool base, size_t max_listed);
    /* Sets who receives this node's messages (before it is used). */
    void (*on_node_message)(backplane *bp, bp_node_fn fn, void *arg);
    /* The hub's own messages between nodes (the server API's user and
     * connection ops, users_cluster.c), on channels of their own: to one
     * node, or with node NULL to every node (this one too), then cb(arg,
     * how many received it) when cb is not NULL. They arrive through
     * hub_bp_cluster_message. Dropped (cb: -1) while the backplane is down. */
    void (*cluster_send)(backplane *bp, const char *node, const char *data, size_t len,
                         bp_count_fn cb, void *arg);
} backplane_ops;

struct backplane {
    const backplane_ops *ops;
    char node_id[BP_NODE_ID_LEN + 1];
};

#endif
