/* SPDX-License-Identifier: MIT */
/*
 * users.c - the node-local registry of who is connected: user id -> that
 * user's members, connection id -> its member. A member is registered by
 * its first successful join (hub_join_ex: its identity, sub_set_identity,
 * is set by then) and taken out by hub_leave, so the registry holds the
 * members that are live on this node. The server API's user- and
 * connection-targeted calls look members up here.
 *
 * Two chained hash tables that double as they fill: users (one user_entry
 * per user with at least one member; its members linked through
 * sub.user_link) and conns (subs chained through sub.conn_next). Anonymous
 * members (no user) are only in conns.
 *
 * Threading: everything here is guarded by the hub lock (registry_add and
 * registry_remove are called with it held; the hub_* lookups take it). No
 * lock of its own, so the hub's lock order is unchanged.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"

#define TABLE_INITIAL 64 /* buckets of each table at first; doubled past one entry per bucket */

struct user_entry {
    struct user_entry *next;
    uint32_t hash;
    size_t count;   /* members in subs */
    list_node subs; /* sub.user_link */
    char name[];
};

/* Hub lock held. Doubles the user table; false when out of memory (the
 * table still works, only slower). */
static bool users_grow(hub *h)
{
    size_t n = h->nuser_buckets ? h->nuser_buckets * 2 : TABLE_INITIAL;
    user_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < h->nuser_buckets; i++) {
        user_entry *u = h->user_buckets[i];
        while (u) {
            user_entry *next = u->next;
            u->next = b[u->hash % n];
            b[u->hash % n] = u;
            u = next;
        }
    }
    free(h->user_buckets);
    h->user_buckets = b;
    h->nuser_buckets = n;
    return true;
}

static bool conns_grow(hub *h)
{
    size_t n = h->nconn_buckets ? h->nconn_buckets * 2 : TABLE_INITIAL;
    sub **b = calloc(n, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < h->nconn_buckets; i++) {
        sub *s = h->conn_buckets[i];
        while (s) {
            sub *next = s->conn_next;
            uint32_t k = str_hash(s->conn_id) % n;
            s->conn_next = b[k];
            b[k] = s;
            s = next;
        }
    }
    free(h->conn_buckets);
    h->conn_buckets = b;
    h->nconn_buckets = n;
    return true;
}

/* Hub lock held: user's entry, or NULL. */
static user_entry *user_find(const hub *h, const char *user)
{
    if (!h->nuser_buckets || !user)
        return NULL;
    uint32_t hash = str_hash(user);
    for (user_entry *u = h->user_buckets[hash % h->nuser_buckets]; u; u = u->next)
        if (u->hash == hash && !strcmp(u->name, user))
            return u;
    return NULL;
}

/* Hub lock held: the member named conn_id, or NULL. */
sub *registry_conn(const hub *h, const char *conn_id)
{
    if (!h->nconn_buckets || !conn_id)
        return NULL;
    for (sub *s = h->conn_buckets[str_hash(conn_id) % h->nconn_buckets]; s; s = s->conn_next)
        if (!strcmp(s->conn_id, conn_id))
            return s;
    return NULL;
}

/* Hub lock held: the list of user's members (sub.user_link), or NULL. */
list_node *registry_user(const hub *h, const char *user, size_t *count)
{
    user_entry *u = user_find(h, user);
    if (count)
        *count = u ? u->count : 0;
    return u ? &u->subs : NULL;
}

/* Hub lock held: links user's entry for s, made when it is the first. */
static int user_add(hub *h, sub *s)
{
    user_entry *u = user_find(h, s->user);
    if (!u) {
        if (h->nusers >= h->nuser_buckets && !users_grow(h) && !h->nuser_buckets)
            return -ENOMEM;
        size_t len = strlen(s->user);
        u = calloc(1, sizeof(*u) + len + 1);
        if (!u)
            return -ENOMEM;
        memcpy(u->name, s->user, len + 1);
        u->hash = str_hash(s->user);
        list_init(&u->subs);
        u->next = h->user_buckets[u->hash % h->nuser_buckets];
        h->user_buckets[u->hash % h->nuser_buckets] = u;
        h->nusers++;
    }
    list_push_back(&u->subs, &s->user_link);
    u->count++;
    return 0;
}

/* Hub lock held: unlinks s from its user's entry, freed when it was the last. */
static void user_remove(hub *h, sub *s)
{
    user_entry *u = user_find(h, s->user);
    list_remove(&s->user_link);
    if (!u || --u->count)
        return;
    user_entry **pp = &h->user_buckets[u->hash % h->nuser_buckets];
    while (*pp != u)
        pp = &(*pp)->next;
    *pp = u->next;
    free(u);
    h->nusers--;
}

int registry_add(hub *h, sub *s)
{
    if (s->registered || !s->conn_id[0])
        return 0; /* registered already, or no identity (a hub's own member) */
    if (h->nconns >= h->nconn_buckets && !conns_grow(h) && !h->nconn_buckets)
        return -ENOMEM;
    if (registry_conn(h, s->conn_id)) {
        /* Never with random ids: each connection is one member. */
        LOG_WARN(TAG, "connection id %s is taken: the new member is not registered", s->conn_id);
        return -EEXIST;
    }
    if (s->user && user_add(h, s))
        return -ENOMEM;
    uint32_t k = str_hash(s->conn_id) % h->nconn_buckets;
    s->conn_next = h->conn_buckets[k];
    h->conn_buckets[k] = s;
    h->nconns++;
    s->registered = true;
    return 0;
}

void registry_remove(hub *h, sub *s)
{
    if (!s->registered)
        return;
    s->registered = false;
    if (s->user)
        user_remove(h, s);
    sub **pp = &h->conn_buckets[str_hash(s->conn_id) % h->nconn_buckets];
    while (*pp && *pp != s)
        pp = &(*pp)->conn_next;
    if (*pp)
        *pp = s->conn_next;
    s->conn_next = NULL;
    h->nconns--;
}

void registry_free(hub *h)
{
    for (size_t i = 0; i < h->nuser_buckets; i++) {
        user_entry *u = h->user_buckets[i];
        while (u) {
            user_entry *next = u->next;
            list_for_each_safe (n, tmp, &u->subs) /* members left behind: forget them */
                list_init(n);
            free(u);
            u = next;
        }
    }
    free(h->user_buckets);
    free(h->conn_buckets);
    h->user_buckets = NULL;
    h->conn_buckets = NULL;
    h->nuser_buckets = h->nconn_buckets = h->nusers = h->nconns = 0;
}

/* ------------------------------------------------------------ lookups */

size_t hub_user_connections(hub *h, const char *user)
{
    size_t n = 0;
    pthread_mutex_lock(&h->lock);
    registry_user(h, user, &n);
    hub_unlock(h);
    return n;
}

size_t hub_user_conn_ids(hub *h, const char *user, char (*ids)[SUB_CONN_ID_MAX], size_t cap)
{
    size_t n = 0, k = 0;
    pthread_mutex_lock(&h->lock);
    list_node *subs = registry_user(h, user, &n);
    if (subs)
        list_for_each_safe (node, tmp, subs) {
            if (k == cap)
                break;
            sub *s = list_entry(node, sub, user_link);
            memcpy(ids[k++], s->conn_id, SUB_CONN_ID_MAX);
        }
    hub_unlock(h);
    return n;
}

bool hub_conn_user(hub *h, const char *conn_id, char **user)
{
    pthread_mutex_lock(&h->lock);
    sub *s = registry_conn(h, conn_id);
    if (s && user)
        *user = s->user ? strdup(s->user) : NULL;
    hub_unlock(h);
    return s != NULL;
}

void hub_registry_counts(hub *h, size_t *users, size_t *conns)
{
    pthread_mutex_lock(&h->lock);
    *users = h->nusers;
    *conns = h->nconns;
    hub_unlock(h);
}

/* ------------------------------------------------- server API ops, here */

/* Hub lock held: op on one member s; adds to *r. m: SEND's message. */
static void op_on(hub *h, const hub_user_op *op, sub *s, msg *m, hub_user_result *r)
{
    r->found++;
    switch (op->op) {
    case HUB_OP_SEND:
        if (hub_deliver(h, s, m, s->conn_id, true))
            member_leave_all(h, s, NULL);
        else
            r->done++;
        break;
    case HUB_OP_JOIN: {
        if (!s->multi_room) {
            r->skipped++;
            break;
        }
        hub_join_args a = {.from_now = true};
        int rc = member_join_locked(h, op->room, s, &a);
        if (rc == 0 || rc == -EEXIST)
            r->done++;
        else if (rc == -EMLINK || rc == -ENOSPC)
            r->refused++;
        break;
    }
    case HUB_OP_LEAVE:
        if (!s->multi_room)
            r->skipped++;
        else
            r->done += member_leave_locked(h, op->room, s);
        break;
    case HUB_OP_END:
        /* Its sub lock comes after the hub lock; the wake hooks only queue. */
        sub_end_with_text(s, SUB_END_DISCONNECTED, op->reason);
        r->done++;
        break;
    case HUB_OP_KINDS:
        break;
    }
}

void hub_user_op_here(hub *h, const hub_user_op *op, hub_user_result *r)
{
    msg *m = NULL;
    if (op->op == HUB_OP_SEND && !(m = msg_create_to(op->by_conn ? MSG_TO_CONNECTION : MSG_TO_USER,
                                                     op->name, op->data, op->len, op->target))) {
        r->rc = -ENOMEM;
        return;
    }
    pthread_mutex_lock(&h->lock);
    if (op->by_conn) {
        sub *s = registry_conn(h, op->name);
        if (s)
            op_on(h, op, s, m, r);
    } else {
        list_node *subs = registry_user(h, op->name, NULL);
        /* An END or a dropped SEND never unregisters (hub_leave does), so
         * the list holds still; a join or leave does not touch it either. */
        if (subs)
            list_for_each_safe (n, tmp, subs)
                op_on(h, op, list_entry(n, sub, user_link), m, r);
    }
    hub_unlock(h);
    msg_unref(m);
}
