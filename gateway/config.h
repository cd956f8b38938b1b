/* SPDX-License-Identifier: MIT */
/*
 * config.h - loads crier's configuration (common/cfg.h): built-in defaults,
 * overlaid by a JSON file and the command line. Main thread, at start-up.
 */
#ifndef CRIER_CONFIG_H
#define CRIER_CONFIG_H

#include <stdbool.h>

#include "common/cfg.h"

/* Fills *c with the built-in defaults. */
void cfg_defaults(cfg *c);

/* Overlays the JSON file at path onto *c. Returns 0, or -1 with a message in
 * err (naming the key, or the line and column of malformed JSON). */
int cfg_load_file(cfg *c, const char *path, char err[CFG_ERR_MAX]);

/* Same as cfg_load_file, for JSON text already in memory (used by tests).
 * origin names the source in messages. */
int cfg_load_string(cfg *c, const char *json, const char *origin, char err[CFG_ERR_MAX]);

/* Parses "HOST:PORT" (HOST may be empty for 0.0.0.0, or [v6]) into c.
 * Returns 0 or -1 with err set. */
int cfg_set_listen(cfg *c, const char *hostport, char err[CFG_ERR_MAX]);

/* True when some hub of c lists target in its publish_targets (compared
 * ignoring ASCII case, as SignalR clients match method names). */
bool cfg_publish_target_allowed(const cfg *c, const char *target);

/* Returns 0 when name is a known log level, -1 otherwise. */
int cfg_set_log_level(cfg *c, const char *name, char err[CFG_ERR_MAX]);

#endif
