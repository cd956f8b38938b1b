/* SPDX-License-Identifier: MIT */
/*
 * auth.h - verifies what a client presents into a principal (common/
 * access.h): a JSON Web Token (libjwt; only auth.jwt.algorithms, each with
 * its own key: HS* with hmac_secret, RS* and ES* with public_key_file; "none"
 * never) or a server API key (auth.api_keys, auth.api_keys_file). Tokens
 * come as "Authorization: Bearer T" or "?access_token=T"; API keys as
 * "Authorization: Bearer K".
 *
 * Threading: auth_init and auth_fini on the main thread (start, stop),
 * auth_reload on it at a SIGHUP; auth_authenticate from any thread (it
 * verifies with the keys current when it starts).
 */
#ifndef CRIER_AUTH_H
#define CRIER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/access.h"
#include "common/cfg.h"

/* Loads the keys c->auth names (public key file, API key file) and checks
 * them. Returns 0, or -1 with err naming the key and the problem (the
 * caller exits 2). Logs a warning when auth is off (everything is open). */
int auth_init(const cfg *c, char err[CFG_ERR_MAX]);

/* Reads and checks the key files c names, as auth_init would, and keeps
 * nothing. Returns 0, or -1 with err set. */
int auth_check(const cfg *c, char err[CFG_ERR_MAX]);

/* At a SIGHUP reload: loads the keys the new live config (a reference from
 * live_acquire, which this takes over) names and makes them current, or
 * returns -1 with err set and keeps the old ones. Main thread. */
int auth_reload(const cfg *live, char err[CFG_ERR_MAX]);

void auth_fini(void);

/* Who presents what: the Authorization header's value (NULL: none) and the
 * request's raw query (NULL: none; its access_token= is read, percent-
 * decoded). Returns a principal (the caller owns one reference), or NULL:
 * with *error NULL the client presented nothing (anonymous), with *error
 * set the credential is refused (a 401): a static text naming the reason,
 * e.g. "token expired", "token signature does not verify", "token
 * algorithm none is not accepted", "token issuer does not match",
 * "unknown API key". now_ms: ms since the epoch. */
access_principal *auth_authenticate(const char *authorization, const char *query, int64_t now_ms,
                                    const char **error);

/* True when authorization ("Bearer K") carries one of the API keys
 * (compared in constant time). */
bool auth_is_api_key(const char *authorization);

#endif
