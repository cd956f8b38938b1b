/* SPDX-License-Identifier: MIT */
/*
 * backlog.h - the fanout backlog, and whether publishers wait for it.
 *
 * The backlog is measured per subscriber: a send queue (sendq.h) that takes
 * part (sendq_pace: every sub's does) is "behind" from the push that takes
 * it past its mark (half of limits.send_queue) until a pop brings it back
 * to the mark. The backlog is the set of behind queues, across every room.
 *
 * Publishers wait (backlog_holding) while this node has too many publishes
 * on their way through the backplane (backlog_set_flight_max), or while at
 * least one behind queue is
 * draining: it gave up a message within the stall time
 * (limits.subscriber_stall_ms), or crossed its mark within it. So a
 * publisher faster than crier's fanout is slowed to the fanout's pace and
 * never fills the queues of subscribers that read. A behind queue that has
 * not shrunk for the stall time while others kept up (another behind queue
 * drained a whole stall time after it stopped, or no behind queue drains
 * any more) is "stalled": it holds nobody back any more, so publishing goes
 * on, its queue fills, and the hub drops that subscriber when its queue is
 * full (fanout.c), as before. If it drains again it holds publishers back
 * again. One behind queue alone that stopped is judged after the stall
 * time; several that all stopped (the readers' host or the network stalled,
 * or this process was starved) hold publishers for four stall times before
 * any is judged, so a pause of everyone is not a mass drop.
 *
 * With a shared backplane the publishers of every node also wait while
 * another node's queues hold (backlog_cluster.h): each node tells the
 * others when its own verdict changes. A node that is behind on the
 * backplane's messages (backlog_set_inbound: received, not read yet) holds
 * as a behind queue does: its fanout is slower than the cluster publishes.
 *
 * Threading: backlog_lock (backlog.c) guards the list of behind queues and
 * each queue's `listed` and `link`; it is taken after the sub lock (sendq.c
 * calls in with the owning sub's lock held) or alone (backlog_holding), and
 * nothing is taken under it; backlog_enter and backlog_leave tell
 * backlog_cluster.c of a change after letting it go. A queue's progress time is an atomic, written
 * with its sub lock held and read under backlog_lock. Counters are atomics.
 */
#ifndef CRIER_BACKLOG_H
#define CRIER_BACKLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sendq;

/* Who was made to wait (crier_publish_paced_total{transport}). */
typedef enum {
    PACE_HTTP,         /* a POST /rooms/{room}/messages answer waited */
    PACE_WEBSOCKET,    /* a WebSocket (plain or SignalR) was not read for a while */
    PACE_SIGNALR_HTTP, /* a SignalR send over SSE or long polling (its POST) waited */
    PACE_SERVER_API,   /* a POST /users/{user}/messages or /connections/{id}/messages */
    PACE_KINDS
} pace_kind;

/* Any thread, before publishing starts (hub_create): a behind queue that
 * does not shrink for stall_ms no longer holds publishers back. */
void backlog_set_stall_ms(int64_t stall_ms);

/* Any thread, no lock held: true while publishers are to wait: this
 * node's publishes in flight are at their bound, another node holds
 * (backlog_cluster.h), or a behind queue here is draining
 * (backlog_queues_holding). A few atomic loads when nothing holds. */
bool backlog_holding(void);

/* Any thread, no lock held but backlog_cluster.c's announce lock: true
 * while a behind queue of this node is draining, or the node is behind on
 * the backplane's messages (what this node tells the other nodes). Stalled
 * queues are set aside on the way. Two atomic loads when nothing is
 * behind, else O(behind queues). */
bool backlog_queues_holding(void);

/* Any thread, before publishing starts: with a backplane, this node's
 * publishes sent to it and not yet come back (answered) hold publishers
 * while there are n or more of them (0: never). They reach the subscriber
 * queues only when they come back, so the queues alone would show the
 * backlog too late (a WebSocket publisher's frames would all be read). */
void backlog_set_flight_max(long n);

/* Backplane thread: bytes from the backplane not read yet. From
 * INBOUND_HOLD_BYTES on, until they are down to INBOUND_CLEAR_BYTES, the
 * node is behind on what the other nodes publish (its fanout of them is
 * slower): backlog_queues_holding is true, as for a behind queue. */
#define INBOUND_HOLD_BYTES (32 * 1024)
#define INBOUND_CLEAR_BYTES (8 * 1024)
void backlog_set_inbound(size_t waiting);
bool backlog_inbound_behind(void);

/* Any thread: delta publishes sent to the backplane (+1) or answered (-1). */
void backlog_flight(int delta);
long backlog_in_flight(void);

/* Queues behind now (stalled ones set aside not counted). */
unsigned backlog_behind(void);

/* Any thread, before publishing starts: fn is called each time a hold
 * may have ended (the last behind queue here is back at its mark, this
 * node caught up with the backplane, its publishes in flight dropped below
 * their bound, another node stopped holding), so that parked publishers go
 * at once, not on the next timer tick (transports/carriers/publish_pace.c).
 * fn runs on the thread that saw it, maybe with a sub lock held: it must
 * take no lock. NULL: none. */
void backlog_set_release_hook(void (*fn)(void));
/* Calls the release hook (backlog_cluster.c: another node stopped holding). */
void backlog_released(void);

/* Counts one publisher made to wait. */
void backlog_count_paced(pace_kind k);
uint64_t backlog_paced_total(pace_kind k);

/* Queues judged stalled (set aside) since start. */
uint64_t backlog_stalled_total(void);

/* --- sendq.c, with the owning sub's lock held */
/* q went past its mark (now_ms: when), or a stalled one drained again. */
void backlog_enter(struct sendq *q, int64_t now_ms);
/* q, behind, gave up a message at now_ms. */
void backlog_progress(struct sendq *q, int64_t now_ms);
/* q is back at its mark, or cleared. */
void backlog_leave(struct sendq *q);

#endif
