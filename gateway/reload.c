/* SPDX-License-Identifier: MIT */
/*
 * reload.c - SIGHUP (reload.h): load the file as at start, keep what needs
 * a restart as it runs, and swap in the rest: the live config (common/
 * live.h, read by access_room, cors and the admin check), the auth keys
 * (gateway/auth.c), the rate limits, limits.max_connections and the log
 * settings. Which keys are which: the two tables below and README
 * "Reload".
 *
 * Threading: main thread only; the modules it calls make the swap safe for
 * their readers on other threads (docs/concurrency.md "Reload").
 */
#include "gateway/reload.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/live.h"
#include "common/log.h"
#include "common/rate_limits.h"
#include "gateway/auth.h"
#include "gateway/config.h"
#include "gateway/server.h"

#define TAG "reload"

/* A part of cfg, by name: its bytes compare equal when unchanged (both
 * configs are built the same way, from cfg_defaults' zeroed memory). */
typedef struct part {
    const char *name;
    size_t off, len;
} part;

#define PART(name, field)                                                                          \
    {                                                                                              \
        name, offsetof(cfg, field), sizeof(((cfg *)0)->field)                                      \
    }

/* Put into effect by a reload. */
static const part reloadable[] = {
    PART("log_level", log_level),
    PART("log.format", log.json),
    PART("log.access", log.access),
    PART("log.max_lines_per_s", log.max_lines_per_s),
    PART("limits.max_connections", limits.max_connections),
    PART("limits.rate.publish", limits.rate.publish),
    PART("limits.rate.connect", limits.rate.connect),
    PART("limits.rate.request", limits.rate.request),
    PART("auth.jwt", auth.jwt),
    PART("auth.jwt", auth.jwt_enabled),
    PART("auth.rooms", auth.rooms),
    PART("auth.rooms", auth.nrooms),
    PART("auth.api_keys", auth.api_keys),
    PART("auth.api_keys", auth.napi_keys),
    PART("auth.api_keys_file", auth.api_keys_file),
    PART("auth.protect_admin", auth.protect_admin),
    PART("cors", cors),
};

/* Kept as they run until a restart (a reload warns when they changed). */
static const part restart_needed[] = {
    PART("listen", listen_host),
    PART("listen", listen_port),
    PART("transports", transports),
    PART("limits.max_message_bytes", limits.max_message_bytes),
    PART("limits.send_queue", limits.send_queue),
    PART("limits.poll_timeout_s", limits.poll_timeout_s),
    PART("limits.keepalive_s", limits.keepalive_s),
    PART("limits.header_timeout_s", limits.header_timeout_s),
    PART("limits.body_timeout_s", limits.body_timeout_s),
    PART("limits.max_header_bytes", limits.max_header_bytes),
    PART("limits.max_rooms", limits.max_rooms),
    PART("limits.max_rooms_per_connection", limits.max_rooms_per_connection),
    PART("limits.max_fragment_bytes_total", limits.max_fragment_bytes_total),
    PART("rooms", rooms),
    PART("upstream", upstream),
    PART("history", history),
    PART("hubs", hubs),
    PART("hubs", nhubs),
    PART("web", web),
    PART("signalr", signalr),
    PART("backplane", backplane),
    PART("auth (on or off)", auth.enabled),
    PART("trust_proxy", trust_proxy),
    PART("presence", presence),
};

#define COUNT(a) (sizeof(a) / sizeof(a[0]))

static struct {
    char *path, *listen, *level; /* as reload_init got them; NULL: none */
    cfg *running;                /* what is in effect */
} rl;
static atomic_uint applied, refused;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int reload_init(const cfg *c, const char *path, const char *listen, const char *level)
{
    reload_fini();
    rl.running = malloc(sizeof(*rl.running));
    if (!rl.running || (path && !(rl.path = dup_or_null(path))) ||
        (listen && !(rl.listen = dup_or_null(listen))) ||
        (level && !(rl.level = dup_or_null(level))) || live_set(c) != 0) {
        reload_fini();
        return -1;
    }
    memcpy(rl.running, c, sizeof(*c));
    return 0;
}

void reload_fini(void)
{
    free(rl.path);
    free(rl.listen);
    free(rl.level);
    free(rl.running);
    memset(&rl, 0, sizeof(rl));
    live_fini();
}

const char *reload_config_path(void)
{
    return rl.path;
}

unsigned reload_count(int was_refused)
{
    return atomic_load(was_refused ? &refused : &applied);
}

static bool same(const cfg *a, const cfg *b, const part *p)
{
    return memcmp((const char *)a + p->off, (const char *)b + p->off, p->len) == 0;
}

/* The names of the parts of table that differ between a and b, ", "
 * between, each once, into out. Returns how many. */
static unsigned differing(const cfg *a, const cfg *b, const part *table, size_t n, char *out,
                          size_t cap)
{
    unsigned count = 0;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (same(a, b, &table[i]) ||
            (i > 0 && !strcmp(table[i].name, table[i - 1].name) && !same(a, b, &table[i - 1])))
            continue;
        int w = snprintf(out + used, cap - used, "%s%s", count ? ", " : "", table[i].name);
        if (w > 0 && (size_t)w < cap - used)
            used += (size_t)w;
        count++;
    }
    return count;
}

/* The file (and the command line's overrides) into a fresh cfg. */
static int load(cfg *c, char err[CFG_ERR_MAX])
{
    cfg_defaults(c);
    if (rl.path && cfg_load_file(c, rl.path, err))
        return -1;
    if (rl.listen && cfg_set_listen(c, rl.listen, err))
        return -1;
    if (rl.level && cfg_set_log_level(c, rl.level, err))
        return -1;
    return 0;
}

static void refuse(const char *why)
{
    atomic_fetch_add(&refused, 1);
    LOG_ERR(TAG, "reload refused, the running configuration is kept: %s", why);
}

/* A lowered limits.max_connections drops no client: those over it stay,
 * and the acceptor refuses new ones (503) until fewer than cap are open.
 * Said once, at the reload, so that an operator is not left guessing. */
static void warn_over_cap(unsigned cap)
{
    unsigned open = server_connections_open();
    if (open > cap)
        LOG_WARN(TAG,
                 "limits.max_connections is now %u with %u connections open: the %u over it stay "
                 "open (none is closed), and new connections are refused (503) until fewer "
                 "than %u are open",
                 cap, open, open - cap, cap);
}

/* Puts merged (in effect from now on) into the modules that read it. */
static int apply(const cfg *merged, char err[CFG_ERR_MAX])
{
    if (live_set(merged) != 0) {
        snprintf(err, CFG_ERR_MAX, "out of memory");
        return -1;
    }
    const cfg *now = live_acquire();
    if (!now || auth_reload(now, err) != 0) { /* takes over the reference */
        live_set(rl.running);                 /* the rules go back with the keys */
        return -1;
    }
    if (rate_limits_reload(merged) != 0)
        LOG_ERR(TAG, "limits.rate: out of memory making a table; the rates are not all changed");
    log_set_level_name(merged->log_level);
    log_configure(merged->log.json, merged->log.access, merged->log.max_lines_per_s);
    warn_over_cap(server_set_max_connections(merged));
    return 0;
}

void reload_run(void)
{
    if (!rl.running)
        return;
    LOG_INFO(TAG, "SIGHUP: reading %s again", rl.path ? rl.path : "(no config file: defaults)");
    char err[CFG_ERR_MAX] = "", names[512];
    cfg *fresh = malloc(sizeof(*fresh)), *merged = malloc(sizeof(*merged));
    if (!fresh || !merged) {
        refuse("out of memory");
    } else if (load(fresh, err) != 0) {
        refuse(err);
    } else if (auth_check(fresh, err) != 0) {
        refuse(err);
    } else {
        if (differing(rl.running, fresh, restart_needed, COUNT(restart_needed), names,
                      sizeof(names)))
            LOG_WARN(TAG, "changed but need a restart (still as before): %s", names);
        memcpy(merged, rl.running, sizeof(*merged));
        for (size_t i = 0; i < COUNT(reloadable); i++)
            memcpy((char *)merged + reloadable[i].off, (const char *)fresh + reloadable[i].off,
                   reloadable[i].len);
        unsigned n =
            differing(rl.running, merged, reloadable, COUNT(reloadable), names, sizeof(names));
        if (apply(merged, err) != 0) {
            refuse(err);
        } else {
            memcpy(rl.running, merged, sizeof(*merged));
            atomic_fetch_add(&applied, 1);
            bool files = merged->auth.api_keys_file[0] || merged->auth.jwt.public_key_file[0];
            LOG_INFO(TAG, "configuration reloaded: %s%s%s",
                     n ? "changed " : "no reloadable key changed", names,
                     files ? " (the auth key files read again)" : "");
        }
    }
    free(fresh);
    free(merged);
}
