/* SPDX-License-Identifier: MIT */
/*
 * members.c - subs and their membership of rooms: sub_init/sub_end/
 * sub_end_with/sub_fini, joining (hub_join, hub_resume, hub_join_ex, within
 * limits.max_rooms_per_connection) and leaving. A membership is linked
 * into its room's member list (list.h) and into the sub's memberships;
 * both are guarded by the hub lock, the sub's own fields by its sub lock,
 * taken after the hub lock.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"

void sub_init(sub *s, sub_kind kind, msg_fmt fmt, size_t limit)
{
    static atomic_uint_fast64_t next_uid = 1;
    memset(s, 0, sizeof(*s));
    s->uid = atomic_fetch_add(&next_uid, 1);
    s->kind = kind;
    s->fmt = fmt;
    list_init(&s->user_link);
    pthread_mutex_init(&s->lock, NULL);
    sendq_init(&s->q, limit);
    sendq_pace(&s->q); /* a subscriber's queue paces publishers (backlog.h) */
}

void sub_new_conn_id(char out[SUB_CONN_ID_MAX])
{
    hub_random_name(out, SUB_CONN_ID_LEN);
}

bool sub_conn_id_is_valid(const char *id, size_t len)
{
    if (!id || !len || len >= SUB_CONN_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

int sub_set_identity(sub *s, const char *user, const char *conn_id)
{
    if (conn_id && !sub_conn_id_is_valid(conn_id, strlen(conn_id)))
        return -EINVAL;
    char *u = user && *user ? strdup(user) : NULL;
    if (user && *user && !u)
        return -ENOMEM;
    free(s->user);
    s->user = u;
    if (conn_id)
        snprintf(s->conn_id, sizeof(s->conn_id), "%s", conn_id);
    else
        sub_new_conn_id(s->conn_id);
    return 0;
}

void sub_end(sub *s)
{
    pthread_mutex_lock(&s->lock);
    s->ending = true;
    if (s->wake)
        s->wake(s);
    pthread_mutex_unlock(&s->lock);
}

void sub_end_with(sub *s, sub_end_reason why)
{
    sub_end_with_text(s, why, NULL);
}

void sub_end_with_text(sub *s, sub_end_reason why, const char *text)
{
    char *copy = text ? strdup(text) : NULL; /* out of memory: the reason without its text */
    pthread_mutex_lock(&s->lock);
    if (!s->end_reason) {
        s->end_reason = why;
        s->end_text = copy;
        copy = NULL;
    }
    if (!s->ends_itself) {
        s->ending = true;
        if (s->wake)
            s->wake(s);
    }
    pthread_mutex_unlock(&s->lock);
    free(copy);
}

const char *sub_end_reason_text(sub_end_reason why)
{
    static const char *const texts[SUB_END_REASON_COUNT] = {"ended", "token expired",
                                                            "disconnected"};
    return why < SUB_END_REASON_COUNT ? texts[why] : "ended";
}

const char *sub_kind_name(sub_kind k)
{
    static const char *const names[SUB_KIND_COUNT] = {"websocket", "sse", "long_polling"};
    return k < SUB_KIND_COUNT ? names[k] : "?";
}

void sub_fini(sub *s)
{
    sub_deadline_forget(s); /* before the lock: the sweep holds its lock, then s's */
    pthread_mutex_lock(&s->lock);
    sendq_clear(&s->q);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
    free(s->user);
    s->user = NULL;
    free(s->end_text);
    s->end_text = NULL;
}

/* Hub lock held. Links m (for s) into r. */
static void member_link(hub *h, room *r, membership *m, sub *s)
{
    m->s = s;
    m->room = r;
    list_push_front(&r->members, &m->link);
    m->sub_next = s->memberships;
    s->memberships = m;
    r->count[s->kind]++;
    h->stats.subscribers[s->kind]++;
    room_presence_join(h, r, m);
}

static void member_unlink(hub *h, membership *m)
{
    room *r = m->room;
    if (m->pending && m->args.done)
        hub_defer_join(h, m->args.done, m->args.done_arg, -ECANCELED, "", 0);
    list_remove(&m->link);
    r->count[m->s->kind]--;
    h->stats.subscribers[m->s->kind]--;
    room_presence_leave(h, r, m);
}

/* Hub lock held. Unlinks every membership of s; rooms left empty are freed
 * unless keep is that room (the caller is still iterating it). */
void member_leave_all(hub *h, sub *s, room *keep)
{
    membership *m = s->memberships;
    s->memberships = NULL;
    while (m) {
        membership *next = m->sub_next;
        room *r = m->room;
        member_unlink(h, m);
        free(m);
        if (r != keep)
            room_free_if_empty(h, r);
        m = next;
    }
}

int member_join_locked(hub *h, const char *room_name, sub *s, const hub_join_args *a)
{
    int rc = -ENOMEM;
    size_t joined = 0;
    for (membership *m = s->memberships; m; m = m->sub_next) {
        if (!strcmp(m->room->name, room_name)) {
            rc = -EEXIST;
            goto out;
        }
        joined += !room_name_is_internal(m->room->name); /* a hub's own room is not the client's */
    }
    if (h->opt.max_rooms_per_sub && !room_name_is_internal(room_name) &&
        joined >= h->opt.max_rooms_per_sub) {
        char what[112];
        snprintf(what, sizeof(what),
                 "a join refused: limits.max_rooms_per_connection (%zu) reached",
                 h->opt.max_rooms_per_sub);
        limit_refused(LIMIT_ROOMS_PER_CONN, what);
        rc = -EMLINK;
        goto out;
    }
    room *r = room_get_or_create(h, room_name, &rc);
    membership *m = r ? calloc(1, sizeof(*m)) : NULL;
    if (!m) {
        if (r)
            room_free_if_empty(h, r);
        goto out;
    }
    if (!r->synced) { /* its numbering comes from the backplane first */
        m->pending = true;
        m->args = *a;
        if (a->epoch)
            snprintf(m->epoch, sizeof(m->epoch), "%s", a->epoch);
        m->args.epoch = a->epoch ? m->epoch : NULL;
        m->join_wall_ms = clock_wall_ms();
        pthread_mutex_lock(&s->lock);
        s->last_id = a->from_now ? 0 : a->since;
        pthread_mutex_unlock(&s->lock);
    } else if ((rc = member_start(h, r, m, s, a)) != 0) {
        free(m);
        room_free_if_empty(h, r);
        goto out;
    } else if (a->done) {
        hub_defer_join(h, a->done, a->done_arg, 0, r->epoch, member_position(r, m));
    }
    member_link(h, r, m, s);
    rc = 0;
    if (!s->registered && s->conn_id[0] && registry_add(h, s) == -ENOMEM)
        LOG_WARN(TAG, "out of memory: connection %s is not in the user registry", s->conn_id);
out:
    return rc;
}

int hub_join_ex(hub *h, const char *room_name, sub *s, const hub_join_args *a)
{
    pthread_mutex_lock(&h->lock);
    int rc = member_join_locked(h, room_name, s, a);
    hub_unlock(h);
    return rc;
}

int hub_join(hub *h, const char *room_name, sub *s, uint64_t since, bool from_now)
{
    hub_join_args a = {.since = since, .from_now = from_now};
    return hub_join_ex(h, room_name, s, &a);
}

int hub_resume(hub *h, const char *room_name, sub *s, uint64_t since, const char *epoch)
{
    hub_join_args a = {.since = since, .epoch = epoch, .check_gap = true};
    return hub_join_ex(h, room_name, s, &a);
}

bool member_leave_locked(hub *h, const char *room_name, sub *s)
{
    for (membership **pp = &s->memberships; *pp; pp = &(*pp)->sub_next) {
        membership *m = *pp;
        if (strcmp(m->room->name, room_name))
            continue;
        *pp = m->sub_next;
        room *r = m->room;
        member_unlink(h, m);
        free(m);
        room_free_if_empty(h, r);
        return true;
    }
    return false;
}

void hub_leave_room(hub *h, const char *room_name, sub *s)
{
    pthread_mutex_lock(&h->lock);
    member_leave_locked(h, room_name, s);
    hub_unlock(h);
}

void hub_leave(hub *h, sub *s)
{
    pthread_mutex_lock(&h->lock);
    member_leave_all(h, s, NULL);
    registry_remove(h, s);
    hub_unlock(h);
}
