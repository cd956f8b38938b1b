/* SPDX-License-Identifier: MIT */
/*
 * main.c - crier's command line: options, configuration, signals, exit
 * codes (0 clean stop, 1 could not start, 2 bad usage or configuration),
 * --version and --check-config (which start nothing).
 * Blocks SIGINT, SIGTERM and SIGHUP before any thread starts.
 *
 * Threads and locks: docs/concurrency.md
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc_stats.h"
#include "gateway/about.h"
#include "gateway/auth.h"
#include "gateway/config.h"
#include "gateway/reload.h"
#include "gateway/server.h"

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--config FILE] [--listen HOST:PORT] [--log-level LEVEL]\n"
            "             [--check-config] [--version] [--help]\n"
            "\n"
            "crier: a real-time gateway (WebSocket, Server-Sent Events, long polling).\n"
            "\n"
            "  -c, --config FILE       JSON configuration; keys not set keep their defaults\n"
            "                          (see config.example.json). Default: built-in defaults.\n"
            "  -l, --listen HOST:PORT  address to listen on; overrides the config's \"listen\".\n"
            "                          Default: 127.0.0.1:8080. Use 0.0.0.0:8080 for every\n"
            "                          interface, [::1]:8080 for IPv6.\n"
            "  -L, --log-level LEVEL   error, warn, info or debug; overrides \"log_level\".\n"
            "                          Default: info.\n"
            "  -t, --check-config      load and check the configuration (the file, then\n"
            "                          --listen and --log-level, and the key files auth.*\n"
            "                          names), print \"config OK\" or the error, and exit\n"
            "                          0 or 2. Starts nothing.\n"
            "  -V, --version           print the version of crier and of its libraries\n"
            "                          and exit.\n"
            "  -h, --help              show this help and exit.\n"
            "\n"
            "Signals: SIGHUP reads the config file again (the keys that can change live;\n"
            "README \"Reload\"); SIGINT and SIGTERM drain and stop.\n"
            "Exit codes: 0 stopped cleanly (SIGINT, SIGTERM), 1 could not start,\n"
            "2 bad command line or configuration.\n",
            prog);
}

/* --check-config's answer: the file, and where crier would listen and
 * find its pages (the two facts an operator most often gets wrong). */
static void print_config_ok(FILE *out, const cfg *c, const char *config_path)
{
    const char *v6 = strchr(c->listen_host, ':') ? "[" : "";
    fprintf(out, "crier: config OK (%s): listen %s%s%s:%d, web.root %s%s\n",
            config_path ? config_path : "built-in defaults", v6, c->listen_host, *v6 ? "]" : "",
            c->listen_port, c->web.root[0] ? c->web.root : "\"\" (no pages)",
            c->web.root[0] && access(c->web.root, R_OK | X_OK) ? " (missing: no pages)" : "");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"log-level", required_argument, NULL, 'L'},
        {"check-config", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *listen = NULL, *level = NULL;
    bool check_only = false;
    int o;
    proc_stats_start_mark();
    while ((o = getopt_long(argc, argv, "c:l:L:tVh", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            config_path = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'L':
            level = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'V':
            about_print_versions(stdout);
            return 0;
        case 'h':
            usage(stdout, argv[0]);
            return 0;
        default:
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crier: unexpected argument '%s'\n", argv[optind]);
        usage(stderr, argv[0]);
        return 2;
    }

    cfg c;
    char err[CFG_ERR_MAX];
    cfg_defaults(&c);
    if ((config_path && cfg_load_file(&c, config_path, err)) ||
        (listen && cfg_set_listen(&c, listen, err)) ||
        (level && cfg_set_log_level(&c, level, err))) {
        fprintf(stderr, "crier: %s\n", err);
        return 2;
    }
    log_set_level_name(c.log_level);
    log_configure(c.log.json, c.log.access, c.log.max_lines_per_s);
    /* The key files auth.* names are read now: a bad one is a bad config. */
    if (auth_init(&c, err) != 0) {
        fprintf(stderr, "crier: %s\n", err);
        return 2;
    }
    if (check_only) {
        print_config_ok(stdout, &c, config_path);
        auth_fini();
        return 0;
    }

    /* Block the stop signals before any thread starts, so that every thread
     * (MHD's and lws's included) inherits the mask and only server_run's
     * sigwait receives them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP); /* a reload (gateway/reload.c), not a stop */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (reload_init(&c, config_path, listen, level) != 0) {
        fprintf(stderr, "crier: out of memory\n");
        return 1;
    }
    int rc = server_run(&c);
    auth_fini();
    reload_fini();
    return rc;
}
