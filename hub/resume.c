/* SPDX-License-Identifier: MIT */
/*
 * resume.c - cursors and resuming: parsing a cursor ("EPOCH:N" or "N"),
 * the gap a resume or a backplane has lost (reason "expired" or "epoch",
 * never a silent gap), and replaying kept history to a member before it
 * goes live. Runs with the hub lock held, and takes the member's sub lock
 * to queue (hub lock -> sub lock).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
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

/* How far a cursor may be ahead of this node's view of a shared room and
 * count as this node lagging behind the others (not a gap). */
#define LAGGING_MAX 10000

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
 * length, or returns 0 when the kept history covers it. */
static size_t find_gap(const room *r, uint64_t since, const char *epoch, char *out, size_t cap,
                       uint64_t *replay_since)
{
    uint64_t first = history_first_id(&r->hist);
    uint64_t resumed_from = first ? first : r->last_id + 1;
    const char *reason = NULL;
    *replay_since = since;
    /* A shared room's cursor a little ahead in its own epoch: another node
     * delivered it already (round robin), this one has not yet: nothing
     * lost, what follows comes (the plain poll skips what the cursor had). */
    if (r->shared && since > r->last_id && since - r->last_id <= LAGGING_MAX && epoch &&
        !strcmp(epoch, r->epoch))
        return 0;
    /* since 0 has seen nothing, in whatever epoch: then only expiry loses. */
    if ((since && epoch && strcmp(epoch, r->epoch)) || since > r->last_id) {
        reason = "epoch"; /* another numbering: everything kept is new to the client */
        *replay_since = 0;
    } else if (since < r->last_id && since + 1 < resumed_from) {
        reason = "expired"; /* older than what history keeps */
    }
    return reason ? gap_json(r, reason, since, resumed_from, out, cap) : 0;
}

/* Hub lock held: queues to s what a resume from (since, epoch) needs: a gap
 * signal first when something is lost (check_gap), then the kept messages
 * with id > since, in order. */
int member_replay(hub *h, room *r, sub *s, uint64_t since, const char *epoch, bool check_gap)
{
    size_t before = r->hist.bytes;
    history_expire(&r->hist, clock_now_ms()); /* nothing past its time, even between ticks */
    room_hist_dropped(h, r, before);
    char info[GAP_INFO_MAX];
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
        sub_wake_hook(s);
    pthread_mutex_unlock(&s->lock);
    msg_unref(gap);
    return rc;
}

/* Hub lock held, r synced: puts s where the join asks (live, or resuming
 * after a cursor: replay first). */
int member_start(hub *h, room *r, sub *s, const hub_join_args *a)
{
    pthread_mutex_lock(&s->lock);
    s->last_id = a->from_now ? r->last_id : a->since;
    pthread_mutex_unlock(&s->lock);
    return a->from_now ? 0 : member_replay(h, r, s, a->since, a->epoch, a->check_gap);
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
