/* SPDX-License-Identifier: MIT */
/*
 * resume.c - cursors and resuming: parsing a cursor ("EPOCH:N" or "N"),
 * the gap a resume or a backplane has lost (reason "expired" or "epoch",
 * never a silent gap), and replaying kept history to a member before it
 * goes live. Runs with the hub lock held, and takes the member's sub lock
 * to queue (hub lock -> sub lock).
 *
 * A resume that lands on a node behind the backplane (its cursor, from a
 * node ahead, is past what this node has taken of the room, same epoch)
 * is live at once but skips what the cursor had as the node catches up
 * (member_skips): no duplicate, no false gap. LAG_WAIT_MS after, if this
 * node has still not reached the cursor, the backplane is asked where the
 * room stands (room_check_lagging, from hub_expire): a cursor the room
 * never reached gets a gap signal ("epoch") and what is kept.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"

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

/* How long a resume whose cursor is ahead of this node's view of a shared
 * room (same epoch: this node lags the others) waits for this node to
 * reach it before the backplane is asked whether the cursor is the room's
 * at all (however far ahead: the backplane decides, not a guess here). */
#define LAG_WAIT_MS 2000

/* Writes a gap signal's JSON object for r into out: {"room", "epoch",
 * "reason", "since", "resumed_from"}. Returns its length, or 0 when it
 * does not fit. */
static size_t gap_json(const room *r, const char *reason, uint64_t since, uint64_t resumed_from,
                       char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "{\"room\":\"%s\",\"epoch\":\"%s\",\"reason\":\"%s\",\"since\":%" PRIu64
                     ",\"resumed_from\":%" PRIu64 "}",
                     r->name, r->epoch, reason, since, resumed_from);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
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
 * length, or returns 0 when the kept history covers it. *lagging: the
 * cursor is ahead of this node's view of the shared room (nothing lost). */
static size_t find_gap(const room *r, uint64_t since, const char *epoch, char *out, size_t cap,
                       uint64_t *replay_since, bool *lagging)
{
    uint64_t first = history_first_id(&r->hist);
    uint64_t resumed_from = first ? first : r->last_id + 1;
    const char *reason = NULL;
    *replay_since = since;
    *lagging = false;
    /* A shared room's cursor a little ahead in its own epoch: another node
     * delivered it already (round robin), this one has not yet: nothing
     * lost, what follows comes, and what the cursor had is not sent again
     * (member_skips). */
    if (r->shared && since > r->last_id && epoch && !strcmp(epoch, r->epoch)) {
        *lagging = true;
        return 0;
    }
    /* since 0 has seen nothing, in whatever epoch: then only expiry loses. */
    if ((since && epoch && strcmp(epoch, r->epoch)) || since > r->last_id) {
        reason = "epoch"; /* another numbering: everything kept is new to the client */
        *replay_since = 0;
    } else if (since < r->last_id && since + 1 < resumed_from) {
        reason = "expired"; /* older than what history keeps */
    }
    return reason ? gap_json(r, reason, since, resumed_from, out, cap) : 0;
}

/* Hub lock held: queues to s a gap signal (info, when info_len) and then
 * the kept messages of r with id > since, in order. */
static int queue_replay(room *r, sub *s, const char *info, size_t info_len, uint64_t since)
{
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
        sub_wake_hook(s);
    pthread_mutex_unlock(&s->lock);
    msg_unref(gap);
    return rc;
}

/* Hub lock held: queues to s what a resume from (since, epoch) needs: a gap
 * signal first when something is lost (check_gap), then the kept messages
 * with id > since, in order. A cursor ahead of this node (it lags the
 * backplane) makes mb skip what the cursor had instead (member_skips). */
int member_replay(hub *h, room *r, membership *mb, sub *s, uint64_t since, const char *epoch,
                  bool check_gap)
{
    size_t before = r->hist.bytes;
    history_expire(&r->hist, clock_now_ms()); /* nothing past its time, even between ticks */
    room_hist_dropped(h, r, before);
    char info[GAP_INFO_MAX];
    bool lagging = false;
    uint64_t cursor = since;
    size_t info_len =
        check_gap ? find_gap(r, since, epoch, info, sizeof(info), &since, &lagging) : 0;
    if (lagging) {
        mb->skip_through = cursor;
        snprintf(mb->skip_epoch, sizeof(mb->skip_epoch), "%s", r->epoch);
        mb->skip_check_ms = clock_now_ms() + LAG_WAIT_MS;
        LOG_DBG(TAG, "room %s: a resume from %" PRIu64 " is ahead of this node (%" PRIu64 ")",
                r->name, cursor, r->last_id);
        return 0;
    }
    return queue_replay(r, s, info, info_len, since);
}

uint64_t member_position(const room *r, const membership *mb)
{
    if (mb->skip_through > r->last_id && !strcmp(mb->skip_epoch, r->epoch))
        return mb->skip_through;
    return r->last_id;
}

bool member_skips(const room *r, membership *mb, const msg *m)
{
    if (!mb->skip_through)
        return false;
    bool same = !strcmp(mb->skip_epoch, r->epoch); /* the room's numbering is the cursor's */
    if (m->gap) {
        if (same && m->id <= mb->skip_through)
            return true; /* lost before the cursor: nothing this member misses */
        mb->skip_through = 0;
        return false;
    }
    if (!m->id)
        return false; /* presence, a message to a user or connection */
    if (!strcmp(m->epoch, mb->skip_epoch)) {
        if (m->id <= mb->skip_through)
            return true; /* the client had it (from a node ahead of this one) */
        mb->skip_through = 0;
    } else if (same) {
        /* another epoch while the room's is still the cursor's: the local
         * epoch of a backplane outage, delivered as to every member */
    } else {
        mb->skip_through = 0; /* the room was numbered anew (after its gap signal) */
    }
    return false;
}

/* Hub lock held, r synced: puts s where the join asks (live, or resuming
 * after a cursor: replay first). */
int member_start(hub *h, room *r, membership *mb, sub *s, const hub_join_args *a)
{
    pthread_mutex_lock(&s->lock);
    s->last_id = a->from_now ? r->last_id : a->since;
    pthread_mutex_unlock(&s->lock);
    return a->from_now ? 0 : member_replay(h, r, mb, s, a->since, a->epoch, a->check_gap);
}

/* Hub lock held: the cursor of a "from now" join made at wall time t: the
 * last kept message published before t. */
uint64_t room_cursor_at(const room *r, int64_t t)
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

/* Hub lock held: tells r's live members that messages are lost (reason
 * "epoch" or "expired"); they go on from `next`. */
void room_signal_gap(hub *h, room *r, const char *reason, uint64_t since, uint64_t next)
{
    char info[GAP_INFO_MAX];
    size_t n = gap_json(r, reason, since, next, info, sizeof(info));
    msg *gap = n ? msg_create_gap(info, n) : NULL;
    if (!gap)
        return;
    gap->id = next - 1;
    room_fanout(h, r, gap, NULL, 0, false);
    msg_unref(gap);
    LOG_WARN(TAG, "room %s: messages lost while the backplane was away (%s); members told", r->name,
             reason);
}

/* A question to the backplane about r's cursors that this node has not
 * reached LAG_WAIT_MS after their resume. */
typedef struct lag_question {
    hub *h;
    backplane *bp;
    char room[ROOM_NAME_MAX + 1];
} lag_question;

/* Hub lock held: the backplane's answer for mb (asked, skip_check_ms -1). */
static void settle_lagging(room *r, membership *mb, int rc, const char *epoch, uint64_t last_id)
{
    if (rc) { /* no answer (the backplane is down): asked again later */
        mb->skip_check_ms = clock_now_ms() + LAG_WAIT_MS;
        return;
    }
    mb->skip_check_ms = 0;
    if (!strcmp(epoch, mb->skip_epoch) && last_id >= mb->skip_through) {
        /* the room has the cursor: this node is that far behind; what the
         * cursor had is still skipped, what follows comes when it arrives */
        LOG_WARN(TAG,
                 "room %s: this node is behind the backplane (%" PRIu64 " < %" PRIu64
                 ") for more than %d ms",
                 r->name, r->last_id, mb->skip_through, LAG_WAIT_MS);
        return;
    }
    /* The room never numbered that far: the cursor is not one of its ids
     * (as a cursor ahead of a room on one node): a gap signal, then all
     * that is kept. */
    uint64_t since = mb->skip_through;
    mb->skip_through = 0;
    uint64_t first = history_first_id(&r->hist);
    char info[GAP_INFO_MAX];
    size_t n = gap_json(r, "epoch", since, first ? first : r->last_id + 1, info, sizeof(info));
    LOG_WARN(TAG,
             "room %s: a resume from %" PRIu64 " is past the room's last id %" PRIu64
             ": gap signal, then what is kept",
             r->name, since, last_id);
    if (n && queue_replay(r, mb->s, info, n, 0))
        LOG_WARN(TAG, "room %s: out of memory replaying to a member", r->name);
}

/* The backplane's thread (or the asker's): where the room stands. */
static void lag_answered(void *arg, int rc, const char *epoch, uint64_t last_id)
{
    lag_question *q = arg;
    hub *h = q->h;
    pthread_mutex_lock(&h->lock);
    room *r = room_find(h, q->room);
    if (r) {
        list_for_each_safe (n, next, &r->members) {
            membership *mb = member_of(n);
            if (mb->skip_through && mb->skip_check_ms == -1)
                settle_lagging(r, mb, rc, epoch ? epoch : "", last_id);
        }
    }
    hub_unlock(h);
    free(q);
}

/* After the hub lock (a deferred call): asks the backplane. */
static void lag_ask(void *arg, int rc, const char *epoch, uint64_t last_id)
{
    lag_question *q = arg;
    (void)rc, (void)epoch, (void)last_id;
    q->bp->ops->room_state(q->bp, q->room, lag_answered, q);
}

void room_check_lagging(hub *h, room *r, int64_t now)
{
    bool ask = false;
    list_for_each_safe (n, next, &r->members) {
        membership *mb = member_of(n);
        if (mb->skip_through && mb->skip_check_ms > 0 && now >= mb->skip_check_ms) {
            mb->skip_check_ms = -1; /* asked */
            ask = true;
        }
    }
    if (!ask || !h->bp || !h->bp->ops->room_state)
        return;
    lag_question *q = malloc(sizeof(*q));
    if (!q) {
        list_for_each_safe (n, next, &r->members) /* asked again at the next expiry */
            if (member_of(n)->skip_check_ms == -1)
                member_of(n)->skip_check_ms = now;
        return;
    }
    *q = (lag_question){.h = h, .bp = h->bp};
    snprintf(q->room, sizeof(q->room), "%s", r->name);
    hub_defer_join(h, lag_ask, q, 0, "", 0);
}
