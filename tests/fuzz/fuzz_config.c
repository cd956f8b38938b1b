/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - libFuzzer harness for the config loader
 * (cfg_load_string, gateway/config.c): any text either loads or gives an
 * error message, never a crash; a loaded config keeps its invariants
 * (NUL-terminated strings, counts within their arrays, a port in range).
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
