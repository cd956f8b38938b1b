/* SPDX-License-Identifier: MIT */
/*
 * config.c - the built-in defaults and the JSON config file. Every typed key
 * is one row of key_table (dotted name, kind, field, range); the loader walks
 * the JSON object against that table and names the full dotted key in every
 * error. "hubs" is one row too, whose loader walks the nested hub and method
 * objects itself. cfg_set_listen and cfg_set_log_level are shared with the CLI.
 */
#include "gateway/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>

#include "gateway/config_path.h"
#include "gateway/web_root.h"
#include "hub/hub.h"

/* Longest part of an offending value quoted back in a message. */
#define QUOTE_MAX 128

enum key_kind { KIND_BOOL, KIND_UINT, KIND_SIZE, KIND_STRING, KIND_OBJECT };

/* A string key's parser: applies value to c and returns NULL, or leaves c
 * alone and returns the reason, phrased "expected ...". */
typedef const char *(*string_parser)(cfg *c, const char *value);

/* An object key's loader: checks the whole JSON value and applies it to c,
 * returning 0, or -1 with err set ("<origin>: '<dotted key>' ..."). */
typedef int (*object_loader)(cfg *c, json_t *v, const char *origin, char *err);

typedef struct key_spec {
    const char *name;    /* dotted: "limits.send_queue" */
    enum key_kind kind;  /* how the JSON value is checked and stored */
    size_t offset;       /* of the field in cfg; KIND_BOOL, KIND_UINT, KIND_SIZE */
    long long min;       /* KIND_UINT, KIND_SIZE */
    long long max;       /* KIND_UINT, KIND_SIZE */
    string_parser parse; /* KIND_STRING */
    object_loader load;  /* KIND_OBJECT */
} key_spec;

/* clang-format off */
/* offsetof(cfg, field), and a compile error unless the field has type T. */
#define FIELD(field, T) \
    (offsetof(cfg, field) + 0 * sizeof(char[_Generic(((cfg *)0)->field, T: 1, default: -1)]))

/* The JSON key is the field's path in cfg: BOOL_KEY(rooms.client_publish). */
#define BOOL_KEY(field) {#field, KIND_BOOL, FIELD(field, bool), 0, 0, NULL, NULL}
#define UINT_KEY(field, lo, hi) {#field, KIND_UINT, FIELD(field, unsigned), lo, hi, NULL, NULL}
#define SIZE_KEY(field, lo, hi) {#field, KIND_SIZE, FIELD(field, size_t), lo, hi, NULL, NULL}
#define STRING_KEY(name, parser) {name, KIND_STRING, 0, 0, 0, parser, NULL}
#define OBJECT_KEY(name, loader) {name, KIND_OBJECT, 0, 0, 0, NULL, loader}
/* clang-format on */

static const char *parse_listen(cfg *c, const char *value);
static const char *parse_log_level(cfg *c, const char *value);
static const char *parse_log_format(cfg *c, const char *value);
static const char *parse_web_root(cfg *c, const char *value);
static const char *parse_latency(cfg *c, const char *value);
static int load_hubs(cfg *c, json_t *v, const char *origin, char *err);
static const char *parse_backplane_type(cfg *c, const char *value);
static const char *parse_backplane_url(cfg *c, const char *value);
static const char *parse_backplane_password(cfg *c, const char *value);
static const char *parse_key_prefix(cfg *c, const char *value);
static int load_rate(cfg *c, json_t *v, const char *origin, char *err);
static int load_jwt(cfg *c, json_t *v, const char *origin, char *err);
static int load_room_rules(cfg *c, json_t *v, const char *origin, char *err);
static int load_api_keys(cfg *c, json_t *v, const char *origin, char *err);
static const char *parse_api_keys_file(cfg *c, const char *value);
static int load_origins(cfg *c, json_t *v, const char *origin, char *err);
static int load_client_publish(cfg *c, json_t *v, const char *origin, char *err);
static const char *parse_upstream_url(cfg *c, const char *value);
static const char *parse_upstream_events(cfg *c, const char *value);
static const char *parse_upstream_connect(cfg *c, const char *value);
static int load_connect_secret(cfg *c, json_t *v, const char *origin, char *err);

static const key_spec key_table[] = {
    STRING_KEY("listen", parse_listen),
    STRING_KEY("log_level", parse_log_level),
    STRING_KEY("log.format", parse_log_format),
    BOOL_KEY(log.access),
    UINT_KEY(log.max_lines_per_s, 0, 1000000),
    BOOL_KEY(transports.websocket),
    BOOL_KEY(transports.sse),
    BOOL_KEY(transports.long_polling),
    SIZE_KEY(limits.max_message_bytes, 1, 16 * 1024 * 1024),
    UINT_KEY(limits.send_queue, 1, 1000000),
    UINT_KEY(limits.poll_timeout_s, 1, 3600),
    UINT_KEY(limits.keepalive_s, 1, 3600),
    UINT_KEY(limits.header_timeout_s, 1, 300),
    UINT_KEY(limits.body_timeout_s, 1, 300),
    SIZE_KEY(limits.max_header_bytes, 1024, 65536),
    UINT_KEY(limits.max_connections, 0, 1000000),
    UINT_KEY(limits.max_rooms, 1, 100000000),
    UINT_KEY(limits.max_rooms_per_connection, 1, 1000000),
    SIZE_KEY(limits.max_fragment_bytes_total, 64 * 1024, 1LL << 40),
    UINT_KEY(limits.publish_wait_ms, 0, 600000),
    UINT_KEY(limits.subscriber_stall_ms, 100, 600000),
    OBJECT_KEY("limits.rate", load_rate),
    OBJECT_KEY("rooms.client_publish", load_client_publish),
    UINT_KEY(history.size, 0, 1000000),
    UINT_KEY(history.ttl_s, 0, 604800),
    SIZE_KEY(history.max_bytes, 64 * 1024, 1LL << 40),
    OBJECT_KEY("hubs", load_hubs),
    STRING_KEY("web.root", parse_web_root),
    UINT_KEY(signalr.client_timeout_s, 1, 3600),
    UINT_KEY(signalr.handshake_timeout_s, 1, 300),
    UINT_KEY(signalr.disconnect_timeout_s, 1, 3600),
    UINT_KEY(signalr.max_pending_connections, 1, 1000000),
    UINT_KEY(signalr.negotiate_rate_per_s, 1, 1000000),
    UINT_KEY(signalr.negotiate_burst, 1, 1000000),
    STRING_KEY("backplane.type", parse_backplane_type),
    STRING_KEY("backplane.url", parse_backplane_url),
    STRING_KEY("backplane.password", parse_backplane_password),
    STRING_KEY("backplane.key_prefix", parse_key_prefix),
    UINT_KEY(backplane.connect_timeout_ms, 100, 60000),
    UINT_KEY(backplane.queue_limit, 0, 1000000),
    SIZE_KEY(backplane.max_pending_bytes, 64 * 1024, 1LL << 40),
    BOOL_KEY(trust_proxy),
    UINT_KEY(workers, 0, 64),
    STRING_KEY("latency", parse_latency),
    UINT_KEY(coalesce_ms, 1, 1000),
    OBJECT_KEY("auth.jwt", load_jwt),
    OBJECT_KEY("auth.rooms", load_room_rules),
    OBJECT_KEY("auth.api_keys", load_api_keys),
    STRING_KEY("auth.api_keys_file", parse_api_keys_file),
    BOOL_KEY(auth.protect_admin),
    OBJECT_KEY("cors.allowed_origins", load_origins),
    BOOL_KEY(cors.allow_credentials),
    UINT_KEY(cors.max_age_s, 0, 86400),
    UINT_KEY(presence.max_listed, 0, 1000000),
    STRING_KEY("upstream.url", parse_upstream_url),
    STRING_KEY("upstream.events", parse_upstream_events),
    STRING_KEY("upstream.connect", parse_upstream_connect),
    OBJECT_KEY("upstream.connect_secret", load_connect_secret),
    UINT_KEY(upstream.timeout_ms, 100, 600000),
    UINT_KEY(upstream.max_in_flight, 1, 100000),
    SIZE_KEY(upstream.max_answer_bytes, 1024, 64 * 1024 * 1024),
    UINT_KEY(upstream.events_queue, 1, 1000000),
};

#define KEY_COUNT (sizeof(key_table) / sizeof(key_table[0]))

__attribute__((format(printf, 2, 3))) static int set_err(char *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, CFG_ERR_MAX, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The target of a hub that names none, and of its sending methods that name none. */
#define DEFAULT_TARGET "ReceiveMessage"

/* The largest "args" a method may declare. */
#define ARGS_MAX 32

/* Appends a method to h; the built-in hubs only, so no checks. */
static void add_method(cfg_hub *h, const char *name, cfg_action action, const char *target,
                       int args)
{
    cfg_method *m = &h->methods[h->nmethods++];
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->action = action;
    snprintf(m->target, sizeof(m->target), "%s", target);
    m->args = args;
}

static bool ascii_case_equal(const char *a, const char *b);

/* Adds target to h's publish_targets unless it is there already or empty. */
static void add_publish_target(cfg_hub *h, const char *target)
{
    if (!*target || h->npublish_targets >= CFG_MAX_TARGETS)
        return;
    for (unsigned i = 0; i < h->npublish_targets; i++)
        if (ascii_case_equal(h->publish_targets[i], target))
            return;
    size_t n = strnlen(target, CFG_NAME_MAX - 1); /* target may be h's own default_target */
    char *out = h->publish_targets[h->npublish_targets++];
    memmove(out, target, n);
    out[n] = '\0';
}

/* publish_targets when the hub does not set it: its default_target and
 * the targets of its methods. */
static void default_publish_targets(cfg_hub *h)
{
    h->npublish_targets = 0;
    add_publish_target(h, h->default_target);
    for (unsigned i = 0; i < h->nmethods; i++)
        add_publish_target(h, h->methods[i].target);
}

bool cfg_publish_target_allowed(const cfg *c, const char *target)
{
    for (unsigned i = 0; i < c->nhubs; i++)
        for (unsigned k = 0; k < c->hubs[i].npublish_targets; k++)
            if (ascii_case_equal(c->hubs[i].publish_targets[k], target))
                return true;
    return false;
}

void cfg_defaults(cfg *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    strcpy(c->log_level, "info");
    c->log.max_lines_per_s = 200;
    snprintf(c->web.root, sizeof(c->web.root), "%s", web_root_default());
    c->transports.websocket = true;
    c->transports.sse = true;
    c->transports.long_polling = true;
    c->limits.max_message_bytes = 65536;
    c->limits.send_queue = 1024;
    c->limits.poll_timeout_s = 25;
    c->limits.keepalive_s = 15;
    c->limits.header_timeout_s = 5;
    c->limits.body_timeout_s = 10;
    c->limits.max_header_bytes = 8192;
    c->limits.max_connections = 0;
    c->limits.max_rooms = 100000;
    c->limits.max_rooms_per_connection = 100;
    c->limits.max_fragment_bytes_total = 64 * 1024 * 1024;
    c->limits.publish_wait_ms = 10000;
    c->limits.subscriber_stall_ms = 2000;
    c->rooms.client_publish = true;
    c->history.size = 1000;
    c->history.ttl_s = 300;
    c->history.max_bytes = 256 * 1024 * 1024;
    c->workers = 0;
    c->latency = CFG_LATENCY_EFFICIENT;
    c->coalesce_ms = 40;

    cfg_hub *chat = &c->hubs[c->nhubs++];
    strcpy(chat->name, "chat");
    strcpy(chat->path, "/hubs/chat");
    strcpy(chat->default_target, DEFAULT_TARGET);
    add_method(chat, "SendMessage", CFG_ACTION_BROADCAST, DEFAULT_TARGET, 2);
    add_method(chat, "SendToRoom", CFG_ACTION_ROOM, DEFAULT_TARGET, -1);
    add_method(chat, "JoinRoom", CFG_ACTION_JOIN, "", 1);
    add_method(chat, "LeaveRoom", CFG_ACTION_LEAVE, "", 1);
    default_publish_targets(chat);

    c->signalr.client_timeout_s = 30;
    c->signalr.handshake_timeout_s = 15;
    c->signalr.disconnect_timeout_s = 15;
    c->signalr.max_pending_connections = 10000;
    c->signalr.negotiate_rate_per_s = 20;
    c->signalr.negotiate_burst = 100;

    c->backplane.type = CFG_BACKPLANE_MEMORY;
    parse_backplane_url(c, "redis://127.0.0.1:6379/0");
    strcpy(c->backplane.key_prefix, "crier:");
    c->backplane.connect_timeout_ms = 2000;
    c->backplane.queue_limit = 10000;
    c->backplane.max_pending_bytes = (size_t)64 << 20;

    c->auth.jwt.leeway_s = 5;
    c->auth.protect_admin = true;
    c->presence.max_listed = 1000;
    c->cors.max_age_s = 600;
    c->upstream.timeout_ms = 5000;
    c->upstream.max_in_flight = 1000;
    c->upstream.max_answer_bytes = 1024 * 1024;
    c->upstream.events_queue = 10000;
}

/* ---- listen and log_level ---------------------------------------------- */

/* "1" .. "65535", digits only; -1 otherwise. */
static int parse_port(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
        return -1;
    int port = atoi(s);
    return port >= 1 && port <= 65535 ? port : -1;
}

/* Every byte of s[0..len) is alphanumeric or in extra. */
static bool all_chars(const char *s, size_t len, const char *extra)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && (ch == '\0' || !strchr(extra, ch)))
            return false;
    }
    return true;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into host (not NUL-terminated) and port
 * text. Returns NULL or the reason it cannot. */
static const char *split_host_port(const char *s, const char **host, size_t *host_len,
                                   const char **port)
{
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return "expected [IPV6]:PORT";
        *host = s + 1;
        *host_len = (size_t)(close - *host);
        *port = close + 2;
        if (*host_len == 0 || !memchr(*host, ':', *host_len) || !all_chars(*host, *host_len, ":.%"))
            return "expected an IPv6 address between the brackets";
        return NULL;
    }
    const char *colon = strchr(s, ':');
    if (!colon)
        return "expected HOST:PORT";
    if (strchr(colon + 1, ':'))
        return "expected an IPv6 host in brackets, e.g. [::1]:8080";
    *host = s;
    *host_len = (size_t)(colon - s);
    *port = colon + 1;
    if (!all_chars(*host, *host_len, ".-_"))
        return "expected HOST to be a hostname or an IPv4 address";
    return NULL;
}

static const char *parse_listen(cfg *c, const char *value)
{
    const char *host, *port_text;
    size_t host_len;
    const char *why = split_host_port(value, &host, &host_len, &port_text);
    if (why)
        return why;
    int port = parse_port(port_text);
    if (port < 0)
        return "expected a port from 1 to 65535";
    if (host_len >= sizeof(c->listen_host))
        return "expected a host of at most 255 bytes";
    if (host_len == 0) {
        host = "0.0.0.0";
        host_len = strlen(host);
    }
    memcpy(c->listen_host, host, host_len);
    c->listen_host[host_len] = '\0';
    c->listen_port = port;
    return NULL;
}

/* The config file being loaded by this thread (cfg_load_file): a relative
 * path in it (web.root, auth.api_keys_file, auth.jwt.public_key_file) is
 * taken from its directory (config_path.h); NULL otherwise. */
static _Thread_local const char *loading_path;

/* A web.root that is set must be a directory now ("" serves no pages);
 * the built-in default is checked at start instead (static.c), where a
 * missing one is only a warning. A relative path in a config file is taken
 * from the file's directory (web_root.c). */
static const char *parse_web_root(cfg *c, const char *value)
{
    char path[sizeof(c->web.root)];
    if (!config_path_from_file(loading_path, value, path, sizeof(path)))
        return "expected a directory path shorter than 512 bytes";
    struct stat st;
    if (*path && (stat(path, &st) || !S_ISDIR(st.st_mode)))
        return strcmp(path, value) ? "expected an existing directory (a relative path is taken "
                                     "from the config file's directory)"
                                   : "expected an existing directory (\"\" serves no pages)";
    strcpy(c->web.root, path);
    return NULL;
}

static const char *parse_log_level(cfg *c, const char *value)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcmp(value, levels[i]) == 0) {
            strcpy(c->log_level, levels[i]);
            return NULL;
        }
    }
    return "expected error, warn, info or debug";
}

static const char *parse_latency(cfg *c, const char *value)
{
    if (strcmp(value, "low") == 0)
        c->latency = CFG_LATENCY_LOW;
    else if (strcmp(value, "efficient") == 0)
        c->latency = CFG_LATENCY_EFFICIENT;
    else
        return "expected low or efficient";
    return NULL;
}

static const char *parse_log_format(cfg *c, const char *value)
{
    if (strcmp(value, "text") && strcmp(value, "json"))
        return "expected text or json";
    c->log.json = !strcmp(value, "json");
    return NULL;
}

/* ---- backplane ---------------------------------------------------------- */

static const char *parse_backplane_type(cfg *c, const char *value)
{
    if (!strcmp(value, "memory"))
        c->backplane.type = CFG_BACKPLANE_MEMORY;
    else if (!strcmp(value, "redis"))
        c->backplane.type = CFG_BACKPLANE_REDIS;
    else
        return "expected memory or redis";
    return NULL;
}

#define URL_RULE "expected redis://[[user]:password@]host[:port][/db]"

/* "redis://[[user]:password@]host[:port][/db]"; host may be [IPv6]. */
static const char *parse_backplane_url(cfg *c, const char *value)
{
    static const char scheme[] = "redis://";
    if (strncmp(value, scheme, sizeof(scheme) - 1) || strlen(value) >= sizeof(c->backplane.url))
        return URL_RULE;
    const char *p = value + sizeof(scheme) - 1;
    const char *at = strrchr(p, '@');
    char password[256] = "";
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || (size_t)(at - colon - 1) >= sizeof(password))
            return URL_RULE;
        memcpy(password, colon + 1, (size_t)(at - colon - 1));
        password[at - colon - 1] = '\0';
        p = at + 1;
    }
    const char *host = p;
    size_t host_len;
    const char *rest;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || close == p + 1 || !all_chars(p + 1, (size_t)(close - p - 1), ":.%"))
            return URL_RULE;
        host = p + 1;
        host_len = (size_t)(close - p - 1);
        rest = close + 1;
    } else {
        host_len = strcspn(p, ":/");
        rest = p + host_len;
        if (!host_len || !all_chars(host, host_len, ".-_"))
            return URL_RULE;
    }
    if (host_len >= sizeof(c->backplane.host))
        return "expected a host of at most 255 bytes";
    int port = 6379;
    if (*rest == ':') {
        char port_text[8] = "";
        size_t n = strcspn(rest + 1, "/");
        if (n >= sizeof(port_text))
            return "expected a port from 1 to 65535";
        memcpy(port_text, rest + 1, n);
        if ((port = parse_port(port_text)) < 0)
            return "expected a port from 1 to 65535";
        rest += 1 + n;
    }
    unsigned db = 0;
    if (*rest == '/' && rest[1]) {
        size_t n = strlen(rest + 1);
        if (n > 4 || strspn(rest + 1, "0123456789") != n || atoi(rest + 1) > 1000)
            return "expected a database number from 0 to 1000 after the '/'";
        db = (unsigned)atoi(rest + 1);
    } else if (*rest && strcmp(rest, "/")) {
        return URL_RULE;
    }
    strcpy(c->backplane.url, value);
    memcpy(c->backplane.host, host, host_len);
    c->backplane.host[host_len] = '\0';
    c->backplane.port = port;
    c->backplane.db = db;
    if (!c->backplane.password_from_key)
        strcpy(c->backplane.password, password);
    return NULL;
}

static const char *parse_backplane_password(cfg *c, const char *value)
{
    if (strlen(value) >= sizeof(c->backplane.password))
        return "expected at most 255 bytes";
    strcpy(c->backplane.password, value);
    c->backplane.password_from_key = true;
    return NULL;
}

static const char *parse_key_prefix(cfg *c, const char *value)
{
    size_t n = strlen(value);
    if (n < 1 || n >= sizeof(c->backplane.key_prefix) || !all_chars(value, n, ":_.-"))
        return "expected 1 to 63 of A-Z a-z 0-9 : _ . -";
    strcpy(c->backplane.key_prefix, value);
    return NULL;
}

/* "<what>: <reason>, got '<value>'", the value cut at QUOTE_MAX bytes. */
static int string_err(char *err, const char *what, const char *why, const char *value)
{
    size_t len = strlen(value);
    return set_err(err, "%s: %s, got '%.*s%s'", what, why, QUOTE_MAX, value,
                   len > QUOTE_MAX ? "..." : "");
}

int cfg_set_listen(cfg *c, const char *hostport, char err[CFG_ERR_MAX])
{
    const char *why = parse_listen(c, hostport);
    return why ? string_err(err, "listen", why, hostport) : 0;
}

int cfg_set_log_level(cfg *c, const char *name, char err[CFG_ERR_MAX])
{
    const char *why = parse_log_level(c, name);
    return why ? string_err(err, "log_level", why, name) : 0;
}

/* ---- upstream ------------------------------------------------------------ */

#define UPSTREAM_URL_RULE "expected an http:// or https:// URL of at most 255 bytes, no spaces"

/* NULL when value may be an upstream URL, else the reason. */
static const char *url_problem(const char *value)
{
    size_t n = strlen(value);
    if (n >= CFG_URL_MAX || (strncmp(value, "http://", 7) && strncmp(value, "https://", 8)))
        return UPSTREAM_URL_RULE;
    const char *host = strstr(value, "://") + 3;
    if (!*host || *host == '/')
        return UPSTREAM_URL_RULE;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] <= ' ' || value[i] == 0x7f)
            return UPSTREAM_URL_RULE;
    return NULL;
}

/* An upstream URL into out ("" clears it). */
static const char *set_url(char out[CFG_URL_MAX], const char *value)
{
    const char *why = *value ? url_problem(value) : NULL;
    if (!why)
        memcpy(out, value, strlen(value) + 1);
    return why;
}

static const char *parse_upstream_url(cfg *c, const char *value)
{
    return set_url(c->upstream.url, value);
}

static const char *parse_upstream_events(cfg *c, const char *value)
{
    return set_url(c->upstream.events, value);
}

static const char *parse_upstream_connect(cfg *c, const char *value)
{
    return set_url(c->upstream.connect, value);
}

static int load_secret_string(char out[CFG_SECRET_MAX], json_t *v, size_t min, const char *key,
                              const char *origin, char *err);

/* upstream.connect_secret: never echoed in an error (a secret). */
static int load_connect_secret(cfg *c, json_t *v, const char *origin, char *err)
{
    return load_secret_string(c->upstream.connect_secret, v, 32, "upstream.connect_secret", origin,
                              err);
}

/* rooms.client_publish: true, false, or "upstream" (frames go to upstream.url). */
static int load_client_publish(cfg *c, json_t *v, const char *origin, char *err)
{
    if (json_is_boolean(v)) {
        c->rooms.client_publish = json_is_true(v);
        c->rooms.client_publish_upstream = false;
        return 0;
    }
    if (json_is_string(v) && !strcmp(json_string_value(v), "upstream")) {
        c->rooms.client_publish = true;
        c->rooms.client_publish_upstream = true;
        return 0;
    }
    return set_err(err, "%s: 'rooms.client_publish' must be true, false or \"upstream\"", origin);
}

/* What needs another key: checked once the whole file is applied. */
static int check_together(const cfg *c, const char *origin, char *err)
{
    if (c->upstream.connect[0] && c->backplane.type == CFG_BACKPLANE_REDIS &&
        !c->upstream.connect_secret[0])
        return set_err(err,
                       "%s: 'upstream.connect' with 'backplane.type' \"redis\" needs "
                       "'upstream.connect_secret' (the same on every node: it signs what the "
                       "connect proxy accepted into the connection token)",
                       origin);
    if (c->rooms.client_publish_upstream && !c->upstream.url[0])
        return set_err(
            err, "%s: 'rooms.client_publish' is \"upstream\", which needs 'upstream.url'", origin);
    return 0;
}

/* ---- hubs -------------------------------------------------------------- */

/* Room for any dotted key below "hubs" once its names have been checked:
 * "hubs." NAME ".methods." NAME ".default_target" and the terminator. */
#define KEY_MAX 192

/* What a hub, method or target name may be; keep in step with valid_name. */
#define NAME_RULE "1 to 63 letters, digits or '_', not starting with a digit"
_Static_assert(CFG_NAME_MAX == 64, "NAME_RULE states CFG_NAME_MAX - 1");
#define PATH_LEN_RULE "expected a path of 2 to 127 characters"
_Static_assert(CFG_PATH_MAX == 128, "PATH_LEN_RULE states CFG_PATH_MAX - 1");

/* Indexed by cfg_action; the order the message lists them in. */
static const char *const action_names[] = {
    [CFG_ACTION_BROADCAST] = "broadcast", [CFG_ACTION_OTHERS] = "others",
    [CFG_ACTION_ROOM] = "room",           [CFG_ACTION_JOIN] = "join",
    [CFG_ACTION_LEAVE] = "leave",
};

#define ACTION_COUNT (sizeof(action_names) / sizeof(action_names[0]))

/* ASCII only, whatever the locale. */
static bool ascii_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static char ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* a and b are equal ignoring ASCII case, as SignalR matches method names. */
static bool ascii_case_equal(const char *a, const char *b)
{
    for (; *a && ascii_lower(*a) == ascii_lower(*b); a++, b++)
        ;
    return ascii_lower(*a) == ascii_lower(*b);
}

/* NAME_RULE: 1 .. CFG_NAME_MAX - 1 of A-Z a-z 0-9 _, not starting with a digit. */
static bool valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len >= CFG_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!ascii_alnum(s[i]) && s[i] != '_')
            return false;
    }
    return true;
}

/* NULL when p may be a hub's path, else the reason, phrased "expected ...".
 * The gateway serves /rooms, /healthz, /metrics and /stats itself, and a
 * hub's negotiate endpoint at PATH/negotiate. */
static const char *path_problem(const char *p)
{
    static const char *const reserved[] = {"/healthz", "/metrics", "/stats"};
    static const char negotiate[] = "/negotiate";
    size_t len = strlen(p);
    if (p[0] != '/')
        return "expected a path starting with '/'";
    if (len < 2 || len >= CFG_PATH_MAX)
        return PATH_LEN_RULE;
    for (size_t i = 0; i < len; i++) {
        if (!ascii_alnum(p[i]) && !strchr("._-/", p[i]))
            return "expected only letters, digits, '.', '_', '-' and '/' in a path";
    }
    if (strstr(p, "//"))
        return "expected no empty segment ('//') in a path";
    if (p[len - 1] == '/')
        return "expected a path not ending in '/'";
    if (strcmp(p, "/rooms") == 0 || strncmp(p, "/rooms/", strlen("/rooms/")) == 0)
        return "expected a path outside /rooms, which the gateway serves";
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcmp(p, reserved[i]) == 0)
            return "expected a path other than /healthz, /metrics and /stats";
    }
    size_t nlen = sizeof(negotiate) - 1;
    if (len >= nlen && strcmp(p + len - nlen, negotiate) == 0)
        return "expected a path not ending in /negotiate, which the gateway adds";
    return NULL;
}

/* "<parent>.<child>" into key. parent is a checked key and child a checked
 * name or a literal, so it always fits; were it not to, it is cut. (Not
 * snprintf: gcc -O2 cannot see that it fits, and -Wformat-truncation fires.) */
static void sub_key(char key[KEY_MAX], const char *parent, const char *child)
{
    size_t plen = strlen(parent), clen = strlen(child);
    if (plen > KEY_MAX - 2)
        plen = KEY_MAX - 2;
    if (clen > KEY_MAX - 2 - plen)
        clen = KEY_MAX - 2 - plen;
    memcpy(key, parent, plen);
    key[plen] = '.';
    memcpy(key + plen + 1, child, clen);
    key[plen + 1 + clen] = '\0';
}

/* "<origin>: '<parent>.<name>': expected a <what> name of ...", for a hub or
 * method name that is not one; the name is cut at QUOTE_MAX bytes. */
static int name_err(char *err, const char *origin, const char *parent, const char *name,
                    const char *what)
{
    return set_err(err, "%s: '%s.%.*s%s': expected a %s name of " NAME_RULE, origin, parent,
                   QUOTE_MAX, name, strlen(name) > QUOTE_MAX ? "..." : "", what);
}

/* Fails on the first member of obj (the value of key) not in allowed, a
 * NULL-terminated list. */
static int check_members(json_t *obj, const char *const *allowed, const char *key,
                         const char *origin, char *err)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *member = json_object_iter_key(it);
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], member) != 0)
            i++;
        if (!allowed[i])
            return set_err(err, "%s: unknown key '%s.%s'", origin, key, member);
    }
    return 0;
}

/* A name-valued string (a target) into out; key names it in messages. */
static int load_name_value(char out[CFG_NAME_MAX], json_t *v, const char *key, const char *origin,
                           char *err)
{
    if (!json_is_string(v))
        return set_err(err, "%s: '%s' must be a string", origin, key);
    const char *s = json_string_value(v);
    if (!valid_name(s)) {
        char what[CFG_ERR_MAX];
        snprintf(what, sizeof(what), "%s: '%s'", origin, key);
        return string_err(err, what, "expected a target name of " NAME_RULE, s);
    }
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* A method answered by a backend: {"upstream": URL[, "args": N]}, with no
 * action or target (the backend's answer decides what happens). */
static int load_upstream_method(cfg_hub *h, cfg_method *m, json_t *v, const char *mkey,
                                const char *origin, char *err)
{
    char key[KEY_MAX];
    if (json_object_get(v, "action") || json_object_get(v, "target"))
        return set_err(err, "%s: '%s' has 'upstream': it takes no 'action' or 'target'", origin,
                       mkey);
    sub_key(key, mkey, "upstream");
    json_t *url = json_object_get(v, "upstream");
    const char *why = json_is_string(url) ? url_problem(json_string_value(url)) : UPSTREAM_URL_RULE;
    if (why) {
        char what[CFG_ERR_MAX];
        snprintf(what, sizeof(what), "%s: '%s'", origin, key);
        return string_err(err, what, why, json_is_string(url) ? json_string_value(url) : "");
    }
    memcpy(m->upstream, json_string_value(url), strlen(json_string_value(url)) + 1);
    m->action = CFG_ACTION_UPSTREAM;
    m->args = -1;
    sub_key(key, mkey, "args");
    json_t *args = json_object_get(v, "args");
    if (args) {
        if (!json_is_integer(args) || json_integer_value(args) < 0 ||
            json_integer_value(args) > ARGS_MAX)
            return set_err(err, "%s: '%s' must be an integer from 0 to %d", origin, key, ARGS_MAX);
        m->args = (int)json_integer_value(args);
    }
    h->methods[h->nmethods++] = *m;
    return 0;
}

/* Appends the method name (value v) to h, whose key is hkey. */
static int load_method(cfg_hub *h, const char *name, json_t *v, const char *hkey,
                       const char *origin, char *err)
{
    static const char *const members[] = {"action", "target", "args", "upstream", NULL};
    char mkey[KEY_MAX], key[KEY_MAX];
    sub_key(key, hkey, "methods");
    if (!valid_name(name))
        return name_err(err, origin, key, name, "method");
    sub_key(mkey, key, name);
    if (!json_is_object(v))
        return set_err(err, "%s: '%s' must be an object", origin, mkey);
    if (check_members(v, members, mkey, origin, err) != 0)
        return -1;
    for (unsigned i = 0; i < h->nmethods; i++) {
        if (ascii_case_equal(h->methods[i].name, name))
            return set_err(err, "%s: '%s' repeats method '%s' (method names are case-insensitive)",
                           origin, mkey, h->methods[i].name);
    }

    cfg_method m;
    memset(&m, 0, sizeof(m));
    memcpy(m.name, name, strlen(name) + 1);

    if (json_object_get(v, "upstream"))
        return load_upstream_method(h, &m, v, mkey, origin, err);

    sub_key(key, mkey, "action");
    json_t *action = json_object_get(v, "action");
    if (!action)
        return set_err(err, "%s: '%s' is required", origin, key);
    size_t a = 0;
    while (a < ACTION_COUNT &&
           !(json_is_string(action) && strcmp(json_string_value(action), action_names[a]) == 0))
        a++;
    if (a == ACTION_COUNT)
        return set_err(err, "%s: '%s' must be one of broadcast, others, room, join, leave", origin,
                       key);
    m.action = (cfg_action)a;
    bool sends = m.action == CFG_ACTION_BROADCAST || m.action == CFG_ACTION_OTHERS ||
                 m.action == CFG_ACTION_ROOM;
    bool takes_room =
        m.action == CFG_ACTION_ROOM || m.action == CFG_ACTION_JOIN || m.action == CFG_ACTION_LEAVE;

    sub_key(key, mkey, "target");
    json_t *target = json_object_get(v, "target");
    if (target && !sends)
        return set_err(err, "%s: '%s' must not be given for action '%s'", origin, key,
                       action_names[a]);
    if (target) {
        if (load_name_value(m.target, target, key, origin, err) != 0)
            return -1;
    } else if (sends) {
        memcpy(m.target, h->default_target, sizeof(m.target));
    }

    /* The room counts as an argument, so actions taking one need >= 1. */
    sub_key(key, mkey, "args");
    json_t *args = json_object_get(v, "args");
    int lo = takes_room ? 1 : 0;
    if (args) {
        if (!json_is_integer(args) || json_integer_value(args) < lo ||
            json_integer_value(args) > ARGS_MAX)
            return set_err(err, "%s: '%s' must be an integer from %d to %d", origin, key, lo,
                           ARGS_MAX);
        m.args = (int)json_integer_value(args);
    } else {
        m.args = m.action == CFG_ACTION_JOIN || m.action == CFG_ACTION_LEAVE ? 1 : -1;
    }

    h->methods[h->nmethods++] = m;
    return 0;
}

/* "publish_targets" (v, NULL when absent; key names it): an array of
 * target names, or the default list. */
static int load_publish_targets(cfg_hub *h, json_t *v, const char *key, const char *origin,
                                char *err)
{
    if (!v) {
        default_publish_targets(h);
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > CFG_MAX_TARGETS)
        return set_err(err, "%s: '%s' must be an array of at most %d target names", origin, key,
                       CFG_MAX_TARGETS);
    h->npublish_targets = 0;
    size_t i;
    json_t *t;
    json_array_foreach(v, i, t)
    {
        char name[CFG_NAME_MAX];
        if (load_name_value(name, t, key, origin, err) != 0)
            return -1;
        add_publish_target(h, name);
    }
    return 0;
}

/* Appends the hub name (value v) to c->hubs, which has room for it. */
static int load_hub(cfg *c, const char *name, json_t *v, const char *origin, char *err)
{
    static const char *const members[] = {
        "path", "default_target", "methods", "publish_targets", "rejoin_query", NULL};
    char hkey[KEY_MAX], key[KEY_MAX];
    if (!valid_name(name))
        return name_err(err, origin, "hubs", name, "hub");
    sub_key(hkey, "hubs", name);
    if (!json_is_object(v))
        return set_err(err, "%s: '%s' must be an object", origin, hkey);
    if (check_members(v, members, hkey, origin, err) != 0)
        return -1;

    cfg_hub *h = &c->hubs[c->nhubs];
    memset(h, 0, sizeof(*h));
    memcpy(h->name, name, strlen(name) + 1);

    sub_key(key, hkey, "path");
    json_t *path = json_object_get(v, "path");
    if (!path)
        return set_err(err, "%s: '%s' is required", origin, key);
    if (!json_is_string(path))
        return set_err(err, "%s: '%s' must be a string", origin, key);
    const char *p = json_string_value(path);
    const char *why = path_problem(p);
    if (why) {
        char what[CFG_ERR_MAX];
        snprintf(what, sizeof(what), "%s: '%s'", origin, key);
        return string_err(err, what, why, p);
    }
    for (unsigned i = 0; i < c->nhubs; i++) {
        if (strcmp(c->hubs[i].path, p) == 0)
            return set_err(err, "%s: '%s': '%s' is already the path of hub '%s'", origin, key, p,
                           c->hubs[i].name);
    }
    memcpy(h->path, p, strlen(p) + 1);

    sub_key(key, hkey, "default_target");
    json_t *target = json_object_get(v, "default_target");
    if (!target)
        strcpy(h->default_target, DEFAULT_TARGET);
    else if (load_name_value(h->default_target, target, key, origin, err) != 0)
        return -1;

    sub_key(key, hkey, "methods");
    json_t *methods = json_object_get(v, "methods");
    if (!methods)
        return set_err(err, "%s: '%s' is required", origin, key);
    if (!json_is_object(methods))
        return set_err(err, "%s: '%s' must be an object", origin, key);
    if (json_object_size(methods) > CFG_MAX_METHODS)
        return set_err(err, "%s: '%s' must have at most %d methods", origin, key, CFG_MAX_METHODS);
    const char *mname;
    json_t *mv;
    json_object_foreach(methods, mname, mv)
    {
        if (load_method(h, mname, mv, hkey, origin, err) != 0)
            return -1;
    }
    sub_key(key, hkey, "publish_targets");
    if (load_publish_targets(h, json_object_get(v, "publish_targets"), key, origin, err) != 0)
        return -1;
    sub_key(key, hkey, "rejoin_query");
    json_t *rejoin = json_object_get(v, "rejoin_query");
    if (rejoin && !json_is_boolean(rejoin))
        return set_err(err, "%s: '%s' must be true or false", origin, key);
    h->rejoin_query = json_is_true(rejoin);
    c->nhubs++;
    return 0;
}

/* "hubs": replaces the hubs in c with those of v, in the file's order. */
static int load_hubs(cfg *c, json_t *v, const char *origin, char *err)
{
    if (!json_is_object(v))
        return set_err(err, "%s: 'hubs' must be an object", origin);
    if (json_object_size(v) > CFG_MAX_HUBS)
        return set_err(err, "%s: 'hubs' must have at most %d hubs", origin, CFG_MAX_HUBS);
    memset(c->hubs, 0, sizeof(c->hubs));
    c->nhubs = 0;
    const char *name;
    json_t *hv;
    json_object_foreach(v, name, hv)
    {
        if (load_hub(c, name, hv, origin, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- auth, cors, limits.rate (README "Access control") ------------------ */

/* "<parent>[<i>]" into key, e.g. "auth.rooms[3]". */
static void index_key(char key[KEY_MAX], const char *parent, size_t i)
{
    char idx[24];
    snprintf(idx, sizeof(idx), "[%zu]", i);
    size_t plen = strlen(parent), ilen = strlen(idx);
    if (plen > KEY_MAX - 1 - ilen)
        plen = KEY_MAX - 1 - ilen;
    memcpy(key, parent, plen);
    memcpy(key + plen, idx, ilen + 1);
}

/* A string value of at most CFG_SECRET_MAX - 1 bytes into out; min bytes at
 * least. The value is never quoted back: it may be a secret. */
static int load_secret_string(char out[CFG_SECRET_MAX], json_t *v, size_t min, const char *key,
                              const char *origin, char *err)
{
    if (!json_is_string(v))
        return set_err(err, "%s: '%s' must be a string", origin, key);
    size_t len = json_string_length(v);
    if (len < min || len >= CFG_SECRET_MAX || strlen(json_string_value(v)) != len)
        return set_err(err, "%s: '%s' must be %zu to %d bytes (no NUL)", origin, key, min,
                       CFG_SECRET_MAX - 1);
    memcpy(out, json_string_value(v), len + 1);
    return 0;
}

/* limits.rate.<name>: {"per_s": N, "burst": M}; burst defaults to 2 * per_s. */
static int load_one_rate(cfg_rate *r, json_t *v, const char *key, const char *origin, char *err)
{
    static const char *const members[] = {"per_s", "burst", NULL};
    char subkey[KEY_MAX];
    if (!json_is_object(v))
        return set_err(err, "%s: '%s' must be an object {\"per_s\": N, \"burst\": M}", origin, key);
    if (check_members(v, members, key, origin, err) != 0)
        return -1;
    json_t *per_s = json_object_get(v, "per_s"), *burst = json_object_get(v, "burst");
    sub_key(subkey, key, "per_s");
    if (!per_s)
        return set_err(err, "%s: '%s' is required", origin, subkey);
    if (!json_is_integer(per_s) || json_integer_value(per_s) < 0 ||
        json_integer_value(per_s) > 1000000)
        return set_err(err, "%s: '%s' must be an integer from 0 to 1000000 (0: no limit)", origin,
                       subkey);
    sub_key(subkey, key, "burst");
    if (burst && (!json_is_integer(burst) || json_integer_value(burst) < 1 ||
                  json_integer_value(burst) > 1000000))
        return set_err(err, "%s: '%s' must be an integer from 1 to 1000000", origin, subkey);
    r->per_s = (unsigned)json_integer_value(per_s);
    r->burst = burst ? (unsigned)json_integer_value(burst) : 2 * r->per_s;
    return 0;
}

/* limits.rate: {"publish": {...}, "connect": {...}, "request": {...}}; the
 * buckets named are replaced, the others kept. */
static int load_rate(cfg *c, json_t *v, const char *origin, char *err)
{
    static const char *const members[] = {"publish", "connect", "request", NULL};
    if (!json_is_object(v))
        return set_err(err, "%s: 'limits.rate' must be an object", origin);
    if (check_members(v, members, "limits.rate", origin, err) != 0)
        return -1;
    cfg_rate *rates[] = {&c->limits.rate.publish, &c->limits.rate.connect, &c->limits.rate.request};
    for (size_t i = 0; members[i]; i++) {
        json_t *r = json_object_get(v, members[i]);
        char key[KEY_MAX];
        sub_key(key, "limits.rate", members[i]);
        if (r && load_one_rate(rates[i], r, key, origin, err) != 0)
            return -1;
    }
    return 0;
}

/* The JWS names of the CFG_JWT_* bits, in bit order. */
static const char *const jwt_alg_names[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                            "RS512", "ES256", "ES384", "ES512"};
#define JWT_ALG_COUNT (sizeof(jwt_alg_names) / sizeof(jwt_alg_names[0]))
_Static_assert(CFG_JWT_ES512 == 1u << (JWT_ALG_COUNT - 1), "jwt_alg_names follows CFG_JWT_*");

/* auth.jwt.algorithms: a non-empty array of names into *bits. */
static int load_algorithms(unsigned *bits, json_t *v, const char *origin, char *err)
{
    static const char key[] = "auth.jwt.algorithms";
    if (!json_is_array(v) || json_array_size(v) == 0)
        return set_err(err, "%s: '%s' must be a non-empty array of algorithm names", origin, key);
    *bits = 0;
    size_t i;
    json_t *a;
    json_array_foreach(v, i, a)
    {
        if (!json_is_string(a))
            return set_err(err, "%s: '%s' must be a non-empty array of algorithm names", origin,
                           key);
        const char *name = json_string_value(a);
        if (strcasecmp(name, "none") == 0)
            return set_err(err,
                           "%s: '%s': 'none' is never accepted (it would take unsigned tokens)",
                           origin, key);
        size_t k = 0;
        while (k < JWT_ALG_COUNT && strcmp(name, jwt_alg_names[k]) != 0)
            k++;
        if (k == JWT_ALG_COUNT)
            return set_err(err,
                           "%s: '%s': unknown algorithm '%.*s%s', expected HS256, HS384, HS512, "
                           "RS256, RS384, RS512, ES256, ES384 or ES512",
                           origin, key, QUOTE_MAX, name, strlen(name) > QUOTE_MAX ? "..." : "");
        *bits |= 1u << k;
    }
    return 0;
}

/* auth.jwt.public_key_file: a path, relative ones taken from the config
 * file's directory (read and checked by auth_init). */
static int load_key_file(char out[CFG_SECRET_MAX], json_t *v, const char *origin, char *err)
{
    static const char key[] = "auth.jwt.public_key_file";
    char written[CFG_SECRET_MAX];
    if (load_secret_string(written, v, 1, key, origin, err) != 0)
        return -1;
    if (!config_path_from_file(loading_path, written, out, CFG_SECRET_MAX))
        return set_err(err,
                       "%s: '%s' must be a path of at most %d bytes with the config file's "
                       "directory (a relative path is taken from it)",
                       origin, key, CFG_SECRET_MAX - 1);
    return 0;
}

/* auth.jwt: replaces the whole jwt section. The algorithms must each have
 * their key: HS* the hmac_secret, RS* and ES* the public_key_file. */
static int load_jwt(cfg *c, json_t *v, const char *origin, char *err)
{
    static const char *const members[] = {"hmac_secret", "public_key_file", "algorithms", "issuer",
                                          "audience",    "leeway_s",        NULL};
    if (!json_is_object(v))
        return set_err(err, "%s: 'auth.jwt' must be an object", origin);
    if (check_members(v, members, "auth.jwt", origin, err) != 0)
        return -1;
    __typeof__(c->auth.jwt) *j = &c->auth.jwt;
    memset(j, 0, sizeof(*j));
    j->leeway_s = 5;
    json_t *m;
    if ((m = json_object_get(v, "hmac_secret")) &&
        load_secret_string(j->hmac_secret, m, 1, "auth.jwt.hmac_secret", origin, err) != 0)
        return -1;
    if ((m = json_object_get(v, "public_key_file")) &&
        load_key_file(j->public_key_file, m, origin, err) != 0)
        return -1;
    if ((m = json_object_get(v, "issuer")) &&
        load_secret_string(j->issuer, m, 1, "auth.jwt.issuer", origin, err) != 0)
        return -1;
    if ((m = json_object_get(v, "audience")) &&
        load_secret_string(j->audience, m, 1, "auth.jwt.audience", origin, err) != 0)
        return -1;
    if ((m = json_object_get(v, "leeway_s"))) {
        if (!json_is_integer(m) || json_integer_value(m) < 0 || json_integer_value(m) > 3600)
            return set_err(err, "%s: 'auth.jwt.leeway_s' must be an integer from 0 to 3600",
                           origin);
        j->leeway_s = (unsigned)json_integer_value(m);
    }
    bool secret = j->hmac_secret[0], key = j->public_key_file[0];
    if (!secret && !key)
        return set_err(err, "%s: 'auth.jwt' needs 'hmac_secret' or 'public_key_file' (or both)",
                       origin);
    if ((m = json_object_get(v, "algorithms"))) {
        if (load_algorithms(&j->algorithms, m, origin, err) != 0)
            return -1;
    } else {
        j->algorithms = (secret ? CFG_JWT_HS256 : 0) | (key ? CFG_JWT_RS256 | CFG_JWT_ES256 : 0);
    }
    for (size_t k = 0; k < JWT_ALG_COUNT; k++) {
        unsigned bit = 1u << k;
        if (!(j->algorithms & bit))
            continue;
        if ((bit & CFG_JWT_HMAC) && !secret)
            return set_err(err,
                           "%s: 'auth.jwt.algorithms' lists %s, which needs "
                           "'auth.jwt.hmac_secret'",
                           origin, jwt_alg_names[k]);
        if (!(bit & CFG_JWT_HMAC) && !key)
            return set_err(err,
                           "%s: 'auth.jwt.algorithms' lists %s, which needs "
                           "'auth.jwt.public_key_file'",
                           origin, jwt_alg_names[k]);
    }
    c->auth.jwt_enabled = true;
    return 0;
}

/* auth.rooms[].subscribe and .publish; indexed by cfg_access. */
static const char *const access_names[] = {
    [CFG_ACCESS_PUBLIC] = "public",
    [CFG_ACCESS_TOKEN] = "token",
    [CFG_ACCESS_CLAIM] = "claim",
    [CFG_ACCESS_API_KEY] = "api_key",
};
#define ACCESS_COUNT (sizeof(access_names) / sizeof(access_names[0]))

/* What auth.rooms[].match may be; keep in step with match_is_valid. */
#define MATCH_RULE                                                                                 \
    "expected a room name (1 to 128 of A-Z a-z 0-9 . _ - :), optionally ending in '*', or '*'"

/* "*", or a room name, or a room name's prefix followed by '*'. */
static bool match_is_valid(const char *s)
{
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '*')
        len--;
    return (len == 0 && s[0] == '*') || room_name_is_valid(s, len);
}

/* One level ("subscribe" or "publish") of rule key; absent: "claim". */
static int load_access(cfg_access *out, json_t *rule, const char *which, const char *key,
                       const char *origin, char *err)
{
    json_t *v = json_object_get(rule, which);
    *out = CFG_ACCESS_CLAIM;
    if (!v)
        return 0;
    for (size_t a = 0; a < ACCESS_COUNT; a++) {
        if (json_is_string(v) && strcmp(json_string_value(v), access_names[a]) == 0) {
            *out = (cfg_access)a;
            return 0;
        }
    }
    char subkey[KEY_MAX];
    sub_key(subkey, key, which);
    return set_err(err, "%s: '%s' must be one of public, token, claim, api_key", origin, subkey);
}

/* auth.rooms: replaces the rules, kept in the file's order. */
static int load_room_rules(cfg *c, json_t *v, const char *origin, char *err)
{
    static const char *const members[] = {"match", "subscribe", "publish", "presence_events", NULL};
    if (!json_is_array(v) || json_array_size(v) > CFG_MAX_ROOM_RULES)
        return set_err(err, "%s: 'auth.rooms' must be an array of at most %d rules", origin,
                       CFG_MAX_ROOM_RULES);
    c->auth.nrooms = 0;
    size_t i;
    json_t *rule;
    json_array_foreach(v, i, rule)
    {
        char key[KEY_MAX], subkey[KEY_MAX];
        index_key(key, "auth.rooms", i);
        if (!json_is_object(rule))
            return set_err(err,
                           "%s: '%s' must be an object {\"match\": ..., \"subscribe\": ..., "
                           "\"publish\": ...}",
                           origin, key);
        if (check_members(rule, members, key, origin, err) != 0)
            return -1;
        cfg_room_rule *r = &c->auth.rooms[c->auth.nrooms];
        sub_key(subkey, key, "match");
        json_t *match = json_object_get(rule, "match");
        if (!match)
            return set_err(err, "%s: '%s' is required", origin, subkey);
        if (!json_is_string(match))
            return set_err(err, "%s: '%s' must be a string", origin, subkey);
        if (!match_is_valid(json_string_value(match))) {
            char what[CFG_ERR_MAX];
            snprintf(what, sizeof(what), "%s: '%s'", origin, subkey);
            return string_err(err, what, MATCH_RULE, json_string_value(match));
        }
        snprintf(r->match, sizeof(r->match), "%s", json_string_value(match));
        if (load_access(&r->subscribe, rule, "subscribe", key, origin, err) != 0 ||
            load_access(&r->publish, rule, "publish", key, origin, err) != 0)
            return -1;
        json_t *pe = json_object_get(rule, "presence_events");
        sub_key(subkey, key, "presence_events");
        if (pe && !json_is_boolean(pe))
            return set_err(err, "%s: '%s' must be true or false", origin, subkey);
        r->presence_events = pe && json_is_true(pe);
        c->auth.nrooms++;
    }
    return 0;
}

/* An API key: API_KEY_MIN to CFG_SECRET_MAX - 1 visible ASCII characters. */
#define API_KEY_MIN 16

/* auth.api_keys: replaces the list. A key is never quoted back. */
static int load_api_keys(cfg *c, json_t *v, const char *origin, char *err)
{
    if (!json_is_array(v) || json_array_size(v) > CFG_MAX_API_KEYS)
        return set_err(err, "%s: 'auth.api_keys' must be an array of at most %d keys", origin,
                       CFG_MAX_API_KEYS);
    c->auth.napi_keys = 0;
    size_t i;
    json_t *k;
    json_array_foreach(v, i, k)
    {
        char key[KEY_MAX];
        index_key(key, "auth.api_keys", i);
        const char *s = json_string_value(k);
        size_t len = s ? strlen(s) : 0;
        bool visible = s && len == json_string_length(k);
        for (size_t n = 0; visible && n < len; n++)
            visible = s[n] > ' ' && s[n] < 0x7f;
        if (!visible || len < API_KEY_MIN || len >= CFG_SECRET_MAX)
            return set_err(err,
                           "%s: '%s' must be a string of %d to %d visible ASCII characters "
                           "(no spaces)",
                           origin, key, API_KEY_MIN, CFG_SECRET_MAX - 1);
        memcpy(c->auth.api_keys[c->auth.napi_keys++], s, len + 1);
    }
    return 0;
}

/* auth.api_keys_file: read (and checked) by auth_init; a relative path is
 * taken from the config file's directory. */
static const char *parse_api_keys_file(cfg *c, const char *value)
{
    if (!*value || strlen(value) >= sizeof(c->auth.api_keys_file))
        return "expected a file path of 1 to 511 bytes";
    if (!config_path_from_file(loading_path, value, c->auth.api_keys_file,
                               sizeof(c->auth.api_keys_file)))
        return "expected a path of at most 511 bytes with the config file's directory (a "
               "relative path is taken from it)";
    return NULL;
}

/* "scheme://host[:port]" as browsers send it in Origin: a lowercase
 * scheme and host, no path, no default port. NULL, or the reason. */
static const char *origin_problem(const char *s)
{
    const char *sep = strstr(s, "://");
    if (!sep || sep == s)
        return "expected \"*\" or an origin scheme://host[:port] (no path)";
    for (const char *p = s; p < sep; p++) {
        if (!((*p >= 'a' && *p <= 'z') ||
              (p > s && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))))
            return "expected a lowercase scheme such as https (an origin is scheme://host[:port])";
    }
    const char *host = sep + 3, *end = host;
    if (*host == '[') {
        end = strchr(host, ']');
        if (!end)
            return "expected an IPv6 host in brackets, e.g. http://[::1]:8080";
        for (const char *p = host + 1; p < end; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == ':' || *p == '.'))
                return "expected a lowercase IPv6 address between the brackets";
        end++;
    } else {
        while ((*end >= 'a' && *end <= 'z') || (*end >= '0' && *end <= '9') || *end == '-' ||
               *end == '.')
            end++;
        if (end == host)
            return "expected a host after scheme:// (lowercase, as browsers send it)";
    }
    if (*end == ':') {
        int port = parse_port(end + 1);
        if (port < 0)
            return "expected a port from 1 to 65535 after the host, and nothing after it";
        size_t slen = (size_t)(sep - s);
        if ((port == 443 && slen == 5 && !strncmp(s, "https", 5)) ||
            (port == 80 && slen == 4 && !strncmp(s, "http", 4)))
            return "expected no default port (browsers leave :443 and :80 out of Origin)";
        return NULL;
    }
    if (*end)
        return "expected no path, query or uppercase letters (an origin is scheme://host[:port])";
    return NULL;
}

/* cors.allowed_origins: replaces the list. */
static int load_origins(cfg *c, json_t *v, const char *origin, char *err)
{
    if (!json_is_array(v) || json_array_size(v) > CFG_MAX_ORIGINS)
        return set_err(err, "%s: 'cors.allowed_origins' must be an array of at most %d origins",
                       origin, CFG_MAX_ORIGINS);
    c->cors.nallowed_origins = 0;
    size_t i;
    json_t *o;
    json_array_foreach(v, i, o)
    {
        char key[KEY_MAX];
        index_key(key, "cors.allowed_origins", i);
        if (!json_is_string(o))
            return set_err(err, "%s: '%s' must be a string", origin, key);
        const char *s = json_string_value(o);
        const char *why = strcmp(s, "*") == 0 ? NULL
                          : strlen(s) >= CFG_SECRET_MAX
                              ? "expected an origin shorter than 512 bytes"
                              : origin_problem(s);
        if (why) {
            char what[CFG_ERR_MAX];
            snprintf(what, sizeof(what), "%s: '%s'", origin, key);
            return string_err(err, what, why, s);
        }
        strcpy(c->cors.allowed_origins[c->cors.nallowed_origins++], s);
    }
    return 0;
}

/* ---- the JSON file ----------------------------------------------------- */

/* The table row for key inside section (NULL at the top level), or NULL. */
static const key_spec *find_key(const char *section, const char *key)
{
    size_t sec_len = section ? strlen(section) : 0;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const char *name = key_table[i].name;
        if (section) {
            if (strncmp(name, section, sec_len) != 0 || name[sec_len] != '.')
                continue;
            name += sec_len + 1;
        } else if (strchr(name, '.')) {
            continue;
        }
        if (strcmp(name, key) == 0)
            return &key_table[i];
    }
    return NULL;
}

/* A top-level key is a section when some table row is "key.something". */
static bool is_section(const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (strncmp(key_table[i].name, key, len) == 0 && key_table[i].name[len] == '.')
            return true;
    }
    return false;
}

static int apply_integer(cfg *c, const key_spec *k, const json_t *v, const char *origin, char *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < k->min || json_integer_value(v) > k->max)
        return set_err(err, "%s: '%s' must be an integer from %lld to %lld", origin, k->name,
                       k->min, k->max);
    /* In range, so the narrowing below is exact. */
    void *field = (char *)c + k->offset;
    if (k->kind == KIND_UINT)
        *(unsigned *)field = (unsigned)json_integer_value(v);
    else
        *(size_t *)field = (size_t)json_integer_value(v);
    return 0;
}

static int apply_value(cfg *c, const key_spec *k, json_t *v, const char *origin, char *err)
{
    switch (k->kind) {
    case KIND_BOOL:
        if (!json_is_boolean(v))
            return set_err(err, "%s: '%s' must be true or false", origin, k->name);
        *(bool *)((char *)c + k->offset) = json_is_true(v);
        return 0;
    case KIND_UINT:
    case KIND_SIZE:
        return apply_integer(c, k, v, origin, err);
    case KIND_STRING: {
        if (!json_is_string(v))
            return set_err(err, "%s: '%s' must be a string", origin, k->name);
        const char *why = k->parse(c, json_string_value(v));
        if (!why)
            return 0;
        char what[CFG_ERR_MAX];
        snprintf(what, sizeof(what), "%s: '%s'", origin, k->name);
        return string_err(err, what, why, json_string_value(v));
    }
    case KIND_OBJECT:
        return k->load(c, v, origin, err);
    }
    return set_err(err, "%s: '%s' has an unknown kind", origin, k->name);
}

/* Applies every member of obj, the top level (section NULL) or one section. */
static int apply_object(cfg *c, json_t *obj, const char *section, const char *origin, char *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!section && is_section(key)) {
            if (!json_is_object(v))
                return set_err(err, "%s: '%s' must be an object", origin, key);
            if (strcmp(key, "auth") == 0)
                c->auth.enabled = true; /* any "auth" section turns access control on */
            if (apply_object(c, v, key, origin, err) != 0)
                return -1;
            continue;
        }
        const key_spec *k = find_key(section, key);
        if (!k)
            return set_err(err, "%s: unknown key '%s%s%s'", origin, section ? section : "",
                           section ? "." : "", key);
        if (apply_value(c, k, v, origin, err) != 0)
            return -1;
    }
    return 0;
}

/* Takes root (NULL after a parse error described by jerr). On any error *c
 * is left as it was: the keys go onto a copy, committed only at the end. */
static int apply_root(cfg *c, json_t *root, const json_error_t *jerr, const char *origin, char *err)
{
    if (!root)
        return set_err(err, "%s:%d:%d: %s", origin, jerr->line, jerr->column, jerr->text);
    int rc = 0;
    cfg tmp = *c;
    if (!json_is_object(root))
        rc = set_err(err, "%s: the top level must be an object", origin);
    else
        rc = apply_object(&tmp, root, NULL, origin, err);
    if (rc == 0)
        rc = check_together(&tmp, origin, err);
    if (rc == 0)
        *c = tmp;
    json_decref(root);
    return rc;
}

int cfg_load_file(cfg *c, const char *path, char err[CFG_ERR_MAX])
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return set_err(err, "%s: cannot open config file: %s", path, strerror(errno));
    json_error_t jerr;
    errno = 0;
    json_t *root = json_loadf(fp, 0, &jerr);
    if (!root && ferror(fp)) {
        const char *why = errno ? strerror(errno) : "read error";
        fclose(fp);
        return set_err(err, "%s: cannot read config file: %s", path, why);
    }
    fclose(fp);
    loading_path = path;
    int rc = apply_root(c, root, &jerr, path, err);
    loading_path = NULL;
    return rc;
}

int cfg_load_string(cfg *c, const char *json, const char *origin, char err[CFG_ERR_MAX])
{
    if (!origin)
        origin = "<string>";
    if (!json)
        return set_err(err, "%s: no JSON text", origin);
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    return apply_root(c, root, &jerr, origin, err);
}
