/* SPDX-License-Identifier: MIT */
/*
 * fanout.c - publishing and delivery: numbering a message (by this hub, or
 * through the backplane: hub_publish_async), queueing it to every member in
 * its format, and dropping a member whose queue is full on the spot
 * (unlinked, its queue emptied, `dropped` set and its wake called): it
 * never blocks the rest. A publish takes the hub lock once: next id,
 * encodings, history, then one queue push and one wake per member (sub lock
 * taken per member, after the hub lock).
 *
 * With a backplane, a publish is answered when the backplane has numbered
 * it, but members here get it when it comes back from the backplane; its
 * answer is held until then (publish_numbered; hub_backplane.c releases it).
 * Until its answer it counts as in flight (backlog_flight): too many hold
 * publishers back, as a behind queue does.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "hub/backlog.h"

/* Hub lock held. Queues m to s in s's format, or drops s when its queue is
 * full. Returns true when s was dropped. */
bool hub_deliver(hub *h, sub *s, msg *m, const char *where, bool counted)
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
            sub_wake_hook(s);
        } else if (rc == -ENOBUFS) {
            drop = true;
            s->dropped = true;
            sendq_clear(&s->q); /* its memory goes back now, not at close */
            sub_wake_hook(s);
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
void room_fanout(hub *h, room *r, msg *m, const sub *exclude, uint64_t exclude_uid, bool counted)
{
    list_for_each_safe (n, next, &r->members) {
        membership *mb = member_of(n);
        /* a pending member gets presence events (not numbered) already */
        if ((mb->pending && !m->presence) || mb->s == exclude ||
            (exclude_uid && mb->s->uid == exclude_uid) || member_skips(r, mb, m))
            continue;
        if (hub_deliver(h, mb->s, m, r->name, counted))
            member_leave_all(h, mb->s, r);
    }
}

int hub_send(hub *h, sub *s, msg *m)
{
    pthread_mutex_lock(&h->lock);
    /* a protocol's own record for one connection: not a room message, so
     * counted apart from the deliveries */
    if (hub_deliver(h, s, m, "its connection", false))
        member_leave_all(h, s, NULL);
    else
        h->stats.protocol_frames++;
    pthread_mutex_lock(&s->lock);
    bool dropped = s->dropped;
    pthread_mutex_unlock(&s->lock);
    hub_unlock(h);
    return dropped ? -ENOBUFS : 0;
}

/* Hub lock held: numbers m in r by this hub alone, keeps and delivers it. */
static int publish_here(hub *h, const char *room_name, const char *data, size_t len,
                        const publish_opts *opt, publish_result *res)
{
    bool transient = opt && opt->transient;
    int rc = 0;
    room *r = transient ? room_find(h, room_name) : room_get_or_create(h, room_name, &rc);
    if (transient && (!r || !room_has_members(r)))
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
    room_fanout(h, r, m, opt ? opt->exclude : NULL, 0, !transient);
    if (!transient) {
        h->stats.published++;
        room_keep_in_history(h, r, m);
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
    if (!r || !room_has_members(r))
        return;
    if (!r->local_epoch[0]) {
        room_new_epoch(r->local_epoch);
        r->local_last = 0;
    }
    msg *m = msg_create_in(r->local_last + 1, r->name, r->local_epoch, data, len,
                           opt ? opt->target : NULL, clock_now_ms());
    if (!m)
        return;
    r->local_last = m->id;
    room_fanout(h, r, m, opt ? opt->exclude : NULL, 0, true);
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
    if (!p) {
        backlog_flight(-1); /* else when room_release_held answers it */
        ps->done(ps->arg, res);
    }
    free(ps);
}

void hub_publish_async(hub *h, const char *room_name, const char *data, size_t len,
                       const publish_opts *opt, publish_done_fn done, void *arg)
{
    publish_result res = {0};
    bool transient = opt && opt->transient;
    if (!hub_is_shared(h, room_name) || transient) {
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
    /* in flight until its answer is given (publish_numbered may run before
     * publish returns) */
    backlog_flight(1);
    bp_publish_status sent = h->bp->ops->publish(h->bp, &p, publish_numbered, ps);
    if (sent != BP_SENT)
        backlog_flight(-1);
    switch (sent) {
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
