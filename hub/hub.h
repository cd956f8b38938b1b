/* SPDX-License-Identifier: MIT */
/*
 * hub.h - rooms, membership, message ids, history and fanout.
 *
 * The hub knows no sockets and no transports: members are `sub`s (sub.h).
 * Threading: every function may be called from any thread; one hub lock
 * guards the rooms. Fanout happens under it, so once hub_leave returns the
 * hub never touches that sub again.
 */
#ifndef CRIER_HUB_H
#define CRIER_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/backplane.h"
#include "hub/presence.h"
#include "hub/sub.h"

#define ROOM_NAME_MAX 128

/* Rooms named with this prefix are this node's own: never shared through a
 * backplane (e.g. the stats stream). Clients cannot name them. */
#define HUB_LOCAL_PREFIX "~~"

typedef struct hub hub;

typedef struct hub_options {
    size_t history_size;
    int64_t history_ttl_ms;
    size_t max_rooms;         /* rooms clients can name; 0: no cap (-ENOSPC past it) */
    size_t max_rooms_per_sub; /* rooms one member joins; 0: no cap (-EMLINK past it) */
    size_t history_max_bytes; /* all rooms' history; 0: no budget (oldest of largest go) */
    /* presence_events of a room (asked once, when the room is made); NULL: none */
    bool (*presence_events)(void *arg, const char *room);
    void *presence_arg;
} hub_options;

typedef struct room_info {
    uint64_t last_id;
    char epoch[MSG_EPOCH_MAX];
    unsigned subscribers[SUB_KIND_COUNT];
} room_info;

typedef struct hub_stats {
    uint64_t rooms; /* rooms clients can name (not a hub's or the stats stream's) */
    uint64_t published;
    uint64_t delivered;       /* room messages queued to subscribers (the stats stream's not
                                 counted, nor protocol records) */
    uint64_t protocol_frames; /* a protocol's own records queued by hub_send (handshake
                                 replies, completions, pings, closes) */
    uint64_t dropped;         /* subscribers dropped for a full queue */
    uint64_t subscribers[SUB_KIND_COUNT];
    uint64_t history_bytes;   /* what every room's history counts (history.h) */
    uint64_t history_evicted; /* messages dropped early for history_max_bytes */
} hub_stats;

/* Returns true for 1..128 characters of A-Z a-z 0-9 . _ - : */
bool room_name_is_valid(const char *name, size_t len);

hub *hub_create(const hub_options *opt);

/* Frees every room and its history. No member may remain. */
void hub_destroy(hub *h);

typedef struct publish_opts {
    const char *target; /* SignalR target; NULL: each member's default */
    const sub *exclude; /* a member that does not get it (SignalR "others") */
    bool transient;     /* live only: no history, no room made for it, no id used
                           when nobody listens (e.g. the stats stream) */
} publish_opts;

/* Publishes data (a valid JSON text, at most the configured size) to room:
 * gives it the room's next id, keeps it in history and queues it to every
 * member (but opt->exclude). opt may be NULL. Returns 0 with *id_out set,
 * -ENOSPC (a new room past max_rooms) or -ENOMEM. */
int hub_publish(hub *h, const char *room, const char *data, size_t len, const publish_opts *opt,
                uint64_t *id_out);

/* Publishes for every node: through the backplane when there is one (then
 * done is called later, from the backplane's thread), else as hub_publish
 * does (done is called before this returns). done is called exactly once,
 * with no lock held. While the backplane is down the message is delivered
 * to this node's members at once under a local epoch and queued for the
 * others (r->queued), or refused (-EAGAIN) when that queue is full. */
void hub_publish_async(hub *h, const char *room, const char *data, size_t len,
                       const publish_opts *opt, publish_done_fn done, void *arg);

/* Queues m (a record for s alone, e.g. a SignalR completion) to s, with the
 * same bound as room messages. Returns 0, or -ENOBUFS when s was dropped. */
int hub_send(hub *h, sub *s, msg *m);

/* Makes s a member of room. from_now: only messages published after this
 * call; otherwise first queues the kept messages with id > since, in order,
 * then live ones, with no gap or duplicate between. s->last_id is set to the
 * cursor (since, or the room's last id for from_now) before any replay.
 * Returns 0, -EEXIST (already a member), -ENOSPC (a new room past
 * max_rooms), -EMLINK (s is in max_rooms_per_sub rooms already; a hub's
 * own "~" rooms do not count) or -ENOMEM. */
int hub_join(hub *h, const char *room, sub *s, uint64_t since, bool from_now);

/* Like hub_join after a cursor, for a client resuming: when the kept
 * history does not reach back to since, or since > 0 and epoch (when not
 * NULL) is not the room's epoch (or since is beyond the room's last id,
 * which only another epoch can explain), s first gets a gap signal (msg_create_gap: {"room",
 * "epoch", "reason": "expired"|"epoch", "since", "resumed_from"}), then what
 * remains: after another epoch, everything kept. Never a silent gap. */
int hub_resume(hub *h, const char *room, sub *s, uint64_t since, const char *epoch);

/* Called once a join is in effect (at once, or when a shared room's
 * numbering arrived from the backplane), with no lock held: rc 0 and the
 * room's epoch and last id as the member starts from. */
typedef void (*join_done_fn)(void *arg, int rc, const char *epoch, uint64_t last_id);

typedef struct hub_join_args {
    uint64_t since;    /* resume after this id (unless from_now) */
    const char *epoch; /* check_gap: the epoch since belongs to; NULL: any */
    bool from_now;     /* only what is published from now on */
    bool check_gap;    /* hub_resume: signal what is lost */
    join_done_fn done; /* may be NULL */
    void *done_arg;
} hub_join_args;

/* hub_join and hub_resume in one, with a callback for when the join is in
 * effect. With a backplane, a room this node had no member in first has
 * its numbering and history fetched: until then the member gets nothing
 * and done waits; "from now" then means published after this call (by
 * the publishers' wall clocks). Returns 0, -EEXIST, -ENOSPC, -EMLINK or
 * -ENOMEM (see hub_join); done is only called after 0. */
int hub_join_ex(hub *h, const char *room, sub *s, const hub_join_args *a);

/* Parses a resume cursor, "EPOCH:N" (what SSE ids carry) or "N": sets
 * *since, and epoch ("" when absent; MSG_EPOCH_MAX bytes). False when it is
 * neither. */
bool hub_parse_cursor(const char *text, uint64_t *since, char *epoch);

/* True for an epoch as hub_resume takes it: 1 to 15 of A-Z a-z 0-9. */
bool hub_epoch_is_valid(const char *epoch);

/* Removes s from room, if it is a member. */
void hub_leave_room(hub *h, const char *room, sub *s);

/* Removes s from every room it is in. Idempotent. */
void hub_leave(hub *h, sub *s);

/* --- users and connections (users.c) --------------------------------------
 * A member with an identity (sub_set_identity) is registered under its
 * user and connection id from its first successful join until hub_leave. */

/* How many members user has on this node (0: none, or user NULL). */
size_t hub_user_connections(hub *h, const char *user);

/* Copies the connection ids of user's members here (at most cap) into ids;
 * returns how many members it has (may be more than cap). */
size_t hub_user_conn_ids(hub *h, const char *user, char (*ids)[SUB_CONN_ID_MAX], size_t cap);

/* True when a member named conn_id is here; then, when user is not NULL,
 * *user is a malloc'd copy of its user id (NULL: anonymous, or out of
 * memory). */
bool hub_conn_user(hub *h, const char *conn_id, char **user);

/* Users with a member here, and registered members. */
void hub_registry_counts(hub *h, size_t *users, size_t *conns);

/* What the server API does to a user's connections, or to one connection
 * (users.c here, users_cluster.c on every node). */
typedef enum {
    HUB_OP_SEND,  /* queue data (a message to the user or connection) */
    HUB_OP_JOIN,  /* join room from now (multi_room members only) */
    HUB_OP_LEAVE, /* leave room (multi_room members only) */
    HUB_OP_END,   /* sub_end_with_text(SUB_END_DISCONNECTED, reason) */
    HUB_OP_KINDS
} hub_op_kind;

typedef struct hub_user_op {
    hub_op_kind op;
    bool by_conn;       /* name is a connection id; else a user id */
    const char *name;   /* the user id or connection id */
    const char *room;   /* JOIN, LEAVE: a valid room name */
    const char *data;   /* SEND: a valid JSON text */
    size_t len;         /* SEND */
    const char *target; /* SEND: a SignalR target; NULL: each member's default */
    const char *reason; /* END: the text the client sees; NULL: "disconnected" */
} hub_user_op;

/* Added up over every node that answered. */
typedef struct hub_user_result {
    int rc;           /* 0, or -ENOMEM (nothing done here) */
    uint64_t found;   /* the user's members (or the connection: 0 or 1) */
    uint64_t done;    /* SEND queued to, JOIN in the room now, LEAVE left, END ended */
    uint64_t refused; /* JOIN: refused by limits.max_rooms_per_connection or max_rooms */
    uint64_t skipped; /* JOIN, LEAVE: members that carry one room only (plain SSE, poll) */
    bool partial;     /* a node may not have answered: the backplane is down, or a node
                         did not answer within HUB_OP_WAIT_MS */
} hub_user_result;

/* Called once with the result, with no lock held: before hub_user_op
 * returns (no backplane), or later from the backplane's or the timer's
 * thread. */
typedef void (*hub_user_done_fn)(void *arg, const hub_user_result *r);

/* How long an op waits for the other nodes' answers (then: partial). */
#define HUB_OP_WAIT_MS 3000

/* Applies op to this node's members, and through the backplane (when there
 * is one) to every other node's; done gets the sum. Any thread, no lock
 * held. */
void hub_user_op_async(hub *h, const hub_user_op *op, hub_user_done_fn done, void *arg);

/* Applies op to this node's members only; adds to *r. Any thread, no lock
 * held. */
void hub_user_op_here(hub *h, const hub_user_op *op, hub_user_result *r);

/* Timer thread: answers the ops whose other nodes did not all answer
 * within HUB_OP_WAIT_MS (partial). */
void hub_user_ops_tick(hub *h, int64_t now_ms);

/* Backplane thread: a cluster message (backplane_ops.cluster_send) from
 * another node. */
void hub_bp_cluster_message(hub *h, const char *data, size_t len);

/* Fills *out for room. Returns 0, or -ENOENT when the room does not exist
 * (no members and no history). */
int hub_room_info(hub *h, const char *room, room_info *out);

/* hub_room_info for every node: with a backplane, a room with no member
 * here is looked up there, and cb(arg, …) answers later (returns
 * -EINPROGRESS; subscriber counts are this node's). Else as hub_room_info. */
int hub_room_info_async(hub *h, const char *room, room_info *out, bp_room_fn cb, void *arg);

/* --- reading history and the room table (GET /rooms/{room}/history, GET
 * /rooms; hub/history_page.c, hub/room_list.c) --- */

/* What a page of a room's kept history asks for. */
typedef struct history_query {
    uint64_t since;    /* messages with id > since (0: from the oldest kept) */
    const char *epoch; /* the epoch since belongs to; NULL or "": any */
    size_t limit;      /* most messages (at least 1) */
} history_query;

/* A page of kept history, oldest first. */
typedef struct history_page {
    int rc; /* 0, -ENOENT (no such room), -EIO (backplane unreachable), -ENOMEM */
    char epoch[MSG_EPOCH_MAX];
    uint64_t last_id; /* the room's */
    bool gap;         /* history no longer reaches back to since + 1 (or since is
                         from another epoch): what hub_resume would signal */
    bool more;        /* kept messages follow the last one here */
    msg **msgs;       /* n messages, one ref each (history_page_clear) */
    size_t n;
} history_page;

/* Called once with the page (the callee may take its messages: set n to 0). */
typedef void (*history_fn)(void *arg, history_page *page);

/* Fills *out with a page of room's kept history and returns 0, or -ENOENT
 * (no such room). With a shared backplane the room's history lives there:
 * returns -EINPROGRESS and cb(arg, page) answers later, from the
 * backplane's thread (or at once on this one when out of memory). */
int hub_history_async(hub *h, const char *room, const history_query *q, history_page *out,
                      history_fn cb, void *arg);

/* Drops the page's messages. */
void history_page_clear(history_page *p);

/* Pure: where a page after (since, epoch) starts in a room numbered up to
 * last_id in room_epoch whose oldest kept message is first_kept (last_id +
 * 1 when none is kept): returns the id to read after, and sets *gap as
 * hub_resume signals one (another epoch, or expired). */
uint64_t history_page_start(uint64_t since, const char *epoch, const char *room_epoch,
                            uint64_t last_id, uint64_t first_kept, bool *gap);

/* One room of a listing. */
typedef struct room_entry {
    char name[ROOM_NAME_MAX + 1];
    char epoch[MSG_EPOCH_MAX];
    uint64_t last_id;
    unsigned subscribers[SUB_KIND_COUNT]; /* this node's members */
    size_t history_messages;              /* messages this node keeps of it */
    size_t history_bytes;                 /* what they count (history.h) */
} room_entry;

/* Lists the rooms this node has (those clients name; with a shared
 * backplane, those with a member here), sorted by name, after `after`
 * ("" from the first): at most cap of them into out (allocated by the
 * caller). Returns how many; *more: rooms follow. */
size_t hub_list_rooms(hub *h, const char *after, room_entry *out, size_t cap, bool *more);

/* Drops expired history and frees rooms left with nothing. O(rooms).
 * Returns about how many bytes were freed since the last call (history
 * and rooms, evictions included): worth giving back to the OS when large. */
size_t hub_expire(hub *h, int64_t now_ms);

void hub_get_stats(hub *h, hub_stats *out);

/* Writes n (at most 32) random characters of [A-Za-z0-9] and a NUL: room
 * epochs (8) and backplane node ids. */
void hub_random_name(char *out, size_t n);

/* --- presence (presence_room.c) ----------------------------------------
 * Every member of a room a client can name is counted in the room's
 * presence by its user (sub.user; anonymous: counted, not named). A user
 * whose last connection left lingers PRESENCE_GRACE_MS. With the room's
 * presence_events, a user's first connection is a join and their leaving
 * (after the grace) a leave, collected and sent to the room's members
 * once a tick (hub_presence_tick) as one presence message: {"presence":
 * {"user","action"}}, or a list of those when several came. With a shared
 * backplane each node reports its counts there and the backplane decides
 * the joins and leaves of the whole cluster (hub_bp_presence). */

/* Presence of room: cb(arg, 0, list) with users listed up to max_listed
 * (then counts only), from this node (memory backplane; cb is called
 * before this returns) or every node (through the backplane; later, from
 * its thread). */
void hub_presence_get(hub *h, const char *room, size_t max_listed, presence_fn cb, void *arg);

/* Timer thread, every ~100 ms: users lingering past the grace go (a
 * leave), and collected presence events go out. */
void hub_presence_tick(hub *h, int64_t now_ms);

/* Backplane thread: a user joined or left room, cluster-wide. */
void hub_bp_presence(hub *h, const char *room, const char *user, bool join);

/* Backplane thread: the answers to presence_sync (presence_room.c): who is
 * present in room (a JSON array of user names; NULL: no answer, "*": too
 * many to list), on the other nodes (base) or everywhere, in order with
 * the room's presence events (synced). */
void hub_bp_presence_base(hub *h, const char *room, const char *users, size_t len);
void hub_bp_presence_synced(hub *h, const char *room, const char *users, size_t len);

/* --- backplane ------------------------------------------------------------
 * hub_set_backplane is called once, before any member joins, and with NULL
 * once nothing publishes any more (redis_backplane_stop, after every other
 * thread stopped): hub_publish_async reads it without the hub lock. The
 * hub_bp_* functions are the backplane's calls into the hub, from its own
 * thread. */

void hub_set_backplane(hub *h, backplane *bp);

/* The backplane is reachable (up) or not. After it comes back it re-asks
 * for the wanted rooms, and hub_bp_subscribed follows for each. */
void hub_bp_link(hub *h, bool up);

/* True when there is no backplane, or it is reachable. */
bool hub_bp_connected(hub *h);

/* The node now receives the room's messages: the hub fetches its state. */
void hub_bp_subscribed(hub *h, const char *room);

/* One message of a room, in the backplane's order. */
void hub_bp_message(hub *h, const char *room, const char *epoch, const bp_entry *e);

/* The answer to backplane_ops.fetch: the room's epoch and last id, and the
 * kept messages asked for, oldest first. */
void hub_bp_fetched(hub *h, const char *room, const char *epoch, uint64_t last_id,
                    const bp_entry *entries, size_t n);

#endif
