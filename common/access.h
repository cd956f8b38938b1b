/* SPDX-License-Identifier: MIT */
/*
 * access.h - who a connection is and what the room rules let it do. A
 * principal is what a client proved: a token's user id (sub), its expiry
 * and the rooms its claims list, or a server API key. The rules are
 * auth.rooms (cfg.h): the first whose match fits the room decides, and a
 * room no rule matches needs "claim". Pure: no I/O, no crypto
 * (gateway/auth.c verifies tokens and keys and makes principals).
 *
 * NULL is the anonymous principal (no token, no key) everywhere here.
 *
 * Threading: a principal is immutable once made and reference counted
 * (atomically): any thread may read it and take or drop a reference.
 * access_room only reads the config: any thread.
 */
#ifndef CRIER_ACCESS_H
#define CRIER_ACCESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"

typedef enum { ACCESS_SUBSCRIBE, ACCESS_PUBLISH } access_right;

/* What a check found: allowed, or why not. NEEDS_TOKEN is a 401 (present a
 * token), the rest are 403 (this token or key does not give it). */
typedef enum {
    ACCESS_ALLOWED = 0,
    ACCESS_NEEDS_TOKEN,   /* rule "token" or "claim", and no token was presented */
    ACCESS_NEEDS_CLAIM,   /* rule "claim": the token's rooms claim does not list it */
    ACCESS_NEEDS_API_KEY, /* rule "api_key": only the server side */
} access_verdict;

/* Room name patterns of a token's "rooms" claim: a name, or a prefix ending
 * in '*' (suffix wildcard). */
typedef struct access_patterns {
    char **items;
    size_t n;
} access_patterns;

typedef struct access_principal {
    atomic_uint refs;
    char *user;         /* the token's sub; NULL: none (an API key, or a token without sub) */
    int64_t expires_ms; /* exp plus auth.jwt.leeway_s, in ms since the epoch; 0: never */
    bool token;         /* proved by a valid token */
    bool api_key;       /* proved by a server API key */
    bool proxied;       /* accepted by the upstream connect proxy: counts as a token for
                           the room rules (its rights are the proxy's), but a later
                           request of its connection needs no token */
    char *claims;       /* the token's claims as compact JSON text (for upstream calls);
                           NULL: none */
    access_patterns subscribe, publish; /* the token's rooms.subscribe and rooms.publish */
} access_principal;

/* A new principal with one reference and no rights yet (fill it before it
 * is shared). user may be NULL; it is copied. NULL on ENOMEM. */
access_principal *access_principal_new(const char *user, int64_t expires_ms, bool token,
                                       bool api_key);

/* Appends a copy of pattern to one of p's lists (before p is shared).
 * Returns 0, or -1 on ENOMEM. */
int access_patterns_add(access_patterns *list, const char *pattern);

/* Takes a reference (NULL: nothing); returns p. */
access_principal *access_ref(access_principal *p);

/* Drops a reference (NULL: nothing); the last frees p. */
void access_unref(access_principal *p);

/* True when name fits pattern: equal, or pattern ends in '*' and name
 * starts with what comes before it. */
bool access_pattern_matches(const char *pattern, const char *name);

/* May p (NULL: anonymous) take right on room under c's auth.rooms? With
 * auth off (c->auth.enabled false) everything is allowed. An API key is
 * allowed everything. Once a live config is set (common/live.h: start-up
 * and each SIGHUP reload), its rules are used instead of c's; the same
 * holds for access_room_presence_events. */
access_verdict access_room(const cfg *c, const access_principal *p, const char *room,
                           access_right right);

/* The HTTP status of a refusal (401 or 403) and a static text naming the
 * reason, e.g. "subscribing to this room needs a token". */
unsigned access_status(access_verdict v);
const char *access_reason(access_verdict v, access_right right);

/* The presence_events of the first auth.rooms rule that matches room;
 * false when none does (and with auth off: there are no rules). */
bool access_room_presence_events(const cfg *c, const char *room);

/* The user id for logs: p's user, "api-key", or "-" (anonymous). */
const char *access_user_label(const access_principal *p);

#endif
