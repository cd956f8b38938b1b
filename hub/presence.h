/* SPDX-License-Identifier: MIT */
/*
 * presence.h - who is in a room: users (a token's sub) and how many
 * connections each has there; anonymous members only counted.
 *
 * presence_set is the count for one room on one node, a hash table of
 * users. A user's last connection leaving does not remove them at once:
 * they linger PRESENCE_GRACE_MS (a plain long poll between two requests,
 * a quick reconnect), still shown with the count they had, and only then
 * are gone (a leave). The hub keeps one per room (hub lock); the Redis
 * backplane mirrors what each node reports (presence_list is what a reader
 * gets back).
 *
 * Threading: a presence_set has no lock of its own; its owner's lock
 * guards it (the hub lock for a room's).
 */
#ifndef CRIER_PRESENCE_H
#define CRIER_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long a user whose last connection left stays present. */
#define PRESENCE_GRACE_MS 2000

/* One user and their connections (at the time of the answer). */
typedef struct presence_entry {
    const char *user;
    uint64_t connections;
} presence_entry;

/* A room's presence as a reader gets it: users sorted by name, or none
 * when there are more than the reader's max_listed (listed false). */
typedef struct presence_list {
    uint64_t users;     /* distinct users (anonymous members not counted) */
    uint64_t anonymous; /* anonymous connections */
    bool listed;
    const presence_entry *v;
    size_t n;
    /* Over the backplane only (else 0): the nodes with anyone in the room,
     * and every connection there (users' and anonymous). */
    uint64_t nodes;
    uint64_t connections;
} presence_list;

/* rc 0 with l, or -EIO (the backplane is unreachable) / -ENOMEM. Called
 * once, with no lock held, from any thread. */
typedef void (*presence_fn)(void *arg, int rc, const presence_list *l);

typedef struct presence_user presence_user;

typedef struct presence_set {
    presence_user **buckets;
    size_t nbuckets;
    size_t nusers;      /* present: with connections, or lingering */
    size_t nlingering;  /* of them, lingering */
    uint64_t anonymous; /* anonymous connections */
} presence_set;

/* What a change did to a user's presence. */
typedef enum {
    PRESENCE_SAME,   /* nothing a watcher sees: another connection of a present user */
    PRESENCE_COUNT,  /* the user's shown count changed */
    PRESENCE_JOINED, /* the user was not present before */
} presence_change;

/* user NULL or "": an anonymous connection. Returns what changed, or
 * -ENOMEM. *shown: the user's shown count after; *name (may be NULL): the
 * set's own copy of user (NULL for anonymous), valid while the user has a
 * connection counted. */
int presence_add(presence_set *p, const char *user, uint64_t *shown, const char **name);

/* One of user's connections left at now_ms. The last one makes the user
 * linger (shown count kept). Returns PRESENCE_COUNT when the shown count
 * changed (*shown: the new one), else PRESENCE_SAME. Unknown users: SAME. */
presence_change presence_remove(presence_set *p, const char *user, int64_t now_ms, uint64_t *shown);

/* Removes users lingering since before cutoff_ms, calling gone(arg, user)
 * for each before it goes (a leave). Returns how many went. */
size_t presence_sweep(presence_set *p, int64_t cutoff_ms, void (*gone)(void *arg, const char *user),
                      void *arg);

/* Calls each(arg, user, shown) for every present user, in no order. */
void presence_each(const presence_set *p, void (*each)(void *arg, const char *user, uint64_t shown),
                   void *arg);

/* Fills an array of every present user, sorted by name (the caller frees
 * *out; the names are borrowed from p). -ENOMEM. */
int presence_entries(const presence_set *p, presence_entry **out, size_t *n);

/* Frees every user. */
void presence_clear(presence_set *p);

/* Sorts entries by user name (strcmp). */
void presence_sort(presence_entry *v, size_t n);

#endif
