/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - libFuzzer harness for the config loader
 * (cfg_load_string, gateway/config.c): any text either loads or gives an
 * error message, never a crash; a loaded config keeps its invariants
 * (NUL-terminated strings, counts within their arrays, a port in range;
 * each jwt algorithm with its key, rate buckets with a burst).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "config invariant broken: %s\n", what);
        abort();
    }
}

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* auth, cors and limits.rate: counts within their arrays, strings
 * terminated, the jwt algorithms each with its key and never empty, a
 * default burst of twice the rate. */
static void check_access(const cfg *c)
{
    must(c->auth.nrooms <= CFG_MAX_ROOM_RULES && c->auth.napi_keys <= CFG_MAX_API_KEYS &&
             c->cors.nallowed_origins <= CFG_MAX_ORIGINS,
         "access counts");
    for (unsigned i = 0; i < c->auth.nrooms; i++)
        must(terminated(c->auth.rooms[i].match, CFG_ROOM_PATTERN_MAX) &&
                 c->auth.rooms[i].match[0] && c->auth.rooms[i].subscribe <= CFG_ACCESS_API_KEY &&
                 c->auth.rooms[i].publish <= CFG_ACCESS_API_KEY,
             "room rule");
    for (unsigned i = 0; i < c->auth.napi_keys; i++)
        must(terminated(c->auth.api_keys[i], CFG_SECRET_MAX) && strlen(c->auth.api_keys[i]) >= 16,
             "api key");
    for (unsigned i = 0; i < c->cors.nallowed_origins; i++)
        must(terminated(c->cors.allowed_origins[i], CFG_SECRET_MAX), "origin");
    if (c->auth.jwt_enabled) {
        unsigned a = c->auth.jwt.algorithms;
        must(a != 0 && a < (1u << 9), "jwt algorithms");
        must(!(a & CFG_JWT_HMAC) || c->auth.jwt.hmac_secret[0], "an HS algorithm without a secret");
        must(!(a & ~CFG_JWT_HMAC) || c->auth.jwt.public_key_file[0],
             "an RS/ES algorithm without a key file");
        must(c->auth.jwt.leeway_s <= 3600, "leeway");
    }
    must(!c->auth.jwt_enabled || c->auth.enabled, "jwt without auth");
    const cfg_rate *r[] = {&c->limits.rate.publish, &c->limits.rate.connect,
                           &c->limits.rate.request};
    for (size_t i = 0; i < 3; i++)
        must(r[i]->per_s <= 1000000 && (r[i]->burst >= 1 || r[i]->per_s == 0), "rate");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cfg c;
    char err[CFG_ERR_MAX];
    cfg_defaults(&c);
    err[0] = '\0';
    int rc = cfg_load_string(&c, text, "fuzz", err);
    if (rc) {
        must(terminated(err, sizeof(err)) && err[0], "an error with a message");
    } else {
        must(c.nhubs <= CFG_MAX_HUBS, "nhubs");
        for (unsigned i = 0; i < c.nhubs; i++) {
            const cfg_hub *h = &c.hubs[i];
            must(h->nmethods <= CFG_MAX_METHODS, "nmethods");
            must(terminated(h->name, sizeof(h->name)) && terminated(h->path, sizeof(h->path)) &&
                     terminated(h->default_target, sizeof(h->default_target)),
                 "hub strings");
            for (unsigned k = 0; k < h->nmethods; k++)
                must(terminated(h->methods[k].name, sizeof(h->methods[k].name)) &&
                         terminated(h->methods[k].target, sizeof(h->methods[k].target)),
                     "method strings");
        }
        check_access(&c);
        must(c.listen_port >= 0 && c.listen_port <= 65535, "listen port");
        must(terminated(c.listen_host, sizeof(c.listen_host)) &&
                 terminated(c.log_level, sizeof(c.log_level)) &&
                 terminated(c.web.root, sizeof(c.web.root)) &&
                 terminated(c.backplane.url, sizeof(c.backplane.url)) &&
                 terminated(c.backplane.host, sizeof(c.backplane.host)) &&
                 terminated(c.backplane.password, sizeof(c.backplane.password)) &&
                 terminated(c.backplane.key_prefix, sizeof(c.backplane.key_prefix)),
             "config strings");
    }
    free(text);
    return 0;
}
