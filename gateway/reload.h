/* SPDX-License-Identifier: MIT */
/*
 * reload.h - SIGHUP: the config file read again and its reloadable keys put
 * into effect without dropping a connection (README "Reload").
 *
 * Threading: main thread only (reload_init before server_run, reload_run
 * from server_run's signal loop, reload_fini after it).
 */
#ifndef CRIER_RELOAD_H
#define CRIER_RELOAD_H

#include "common/cfg.h"

/* Remembers where the config came from (path NULL: built-in defaults;
 * listen and level: the command line's overrides, NULL: none) and makes c
 * the live config (common/live.h). Returns 0, or -1 out of memory. */
int reload_init(const cfg *c, const char *path, const char *listen, const char *level);

/* Reads the config again. Applies the reloadable keys and logs which
 * changed; names the keys that changed but need a restart in one warning;
 * refuses a config that does not load (one error line, nothing changes). */
void reload_run(void);

/* Frees what reload_init kept and the live config. */
void reload_fini(void);

/* The config file's path as given, or NULL (built-in defaults). */
const char *reload_config_path(void);

/* Reloads applied, and refused, since start (for /metrics). */
unsigned reload_count(int refused);

#endif
