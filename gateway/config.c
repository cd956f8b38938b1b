/* SPDX-License-Identifier: MIT */
/*
 * config.c - the built-in defaults and the JSON config file. Every typed key
 * is one row of key_table (dotted name, kind, field, range); the loader walks
 * the JSON object against that table and names the full dotted key in every
 * error. cfg_set_listen and cfg_set_log_level are shared with the CLI.
 */
#include "gateway/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Longest part of an offending value quoted back in a message. */
#define QUOTE_MAX 128

enum key_kind { KIND_BOOL, KIND_UINT, KIND_SIZE, KIND_STRING };

/* A string key's parser: applies value to c and returns NULL, or leaves c
 * alone and returns the reason, phrased "expected ...". */
typedef const char *(*string_parser)(cfg *c, const char *value);

typedef struct key_spec {
    const char *name;    /* dotted: "limits.send_queue" */
    enum key_kind kind;  /* how the JSON value is checked and stored */
    size_t offset;       /* of the field in cfg; KIND_BOOL, KIND_UINT, KIND_SIZE */
    long long min;       /* KIND_UINT, KIND_SIZE */
    long long max;       /* KIND_UINT, KIND_SIZE */
    string_parser parse; /* KIND_STRING */
} key_spec;

/* clang-format off */
/* offsetof(cfg, field), and a compile error unless the field has type T. */
#define FIELD(field, T) \
    (offsetof(cfg, field) + 0 * sizeof(char[_Generic(((cfg *)0)->field, T: 1, default: -1)]))

/* The JSON key is the field's path in cfg: BOOL_KEY(rooms.client_publish). */
#define BOOL_KEY(field) {#field, KIND_BOOL, FIELD(field, bool), 0, 0, NULL}
#define UINT_KEY(field, lo, hi) {#field, KIND_UINT, FIELD(field, unsigned), lo, hi, NULL}
#define SIZE_KEY(field, lo, hi) {#field, KIND_SIZE, FIELD(field, size_t), lo, hi, NULL}
#define STRING_KEY(name, parser) {name, KIND_STRING, 0, 0, 0, parser}
/* clang-format on */

static const char *parse_listen(cfg *c, const char *value);
static const char *parse_log_level(cfg *c, const char *value);

static const key_spec key_table[] = {
    STRING_KEY("listen", parse_listen),
    STRING_KEY("log_level", parse_log_level),
    BOOL_KEY(transports.websocket),
    BOOL_KEY(transports.sse),
    BOOL_KEY(transports.long_polling),
    SIZE_KEY(limits.max_message_bytes, 1, 16 * 1024 * 1024),
    UINT_KEY(limits.send_queue, 1, 1000000),
    UINT_KEY(limits.poll_timeout_s, 1, 3600),
    UINT_KEY(limits.keepalive_s, 1, 3600),
    UINT_KEY(limits.header_timeout_s, 1, 300),
    SIZE_KEY(limits.max_header_bytes, 1024, 65536),
    UINT_KEY(limits.max_connections, 0, 1000000),
    BOOL_KEY(rooms.client_publish),
    UINT_KEY(history.size, 0, 1000000),
    UINT_KEY(history.ttl_s, 0, 604800),
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

void cfg_defaults(cfg *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    strcpy(c->log_level, "info");
    c->transports.websocket = true;
    c->transports.sse = true;
    c->transports.long_polling = true;
    c->limits.max_message_bytes = 65536;
    c->limits.send_queue = 1024;
    c->limits.poll_timeout_s = 25;
    c->limits.keepalive_s = 15;
    c->limits.header_timeout_s = 5;
    c->limits.max_header_bytes = 8192;
    c->limits.max_connections = 0;
    c->rooms.client_publish = true;
    c->history.size = 1000;
    c->history.ttl_s = 300;
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

static int apply_value(cfg *c, const key_spec *k, const json_t *v, const char *origin, char *err)
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
    return apply_root(c, root, &jerr, path, err);
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
