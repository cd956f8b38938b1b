/* SPDX-License-Identifier: MIT */
/*
 * router.c - the route function (router.h) over the table of routes.h.
 * Owns the table's compiled form: its rows, the hubs {hub} stands for, what
 * is switched on, and each endpoint's Allow text. All of it is written at
 * start on the main thread (router_init, router_set_available) and only
 * read afterwards, from any thread, without a lock.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "gateway/router.h"

#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "hub/hub.h"

#define ROOM_SEGMENT "{room}"
#define HUB_PATH "{hub}"
#define ANY_REST "*"
#define ALLOW_MAX sizeof("GET, HEAD, POST, PUT, DELETE, OPTIONS")

/* One line of the table: what the router reads of it. */
typedef struct route_row {
    route_endpoint endpoint;
    const char *pattern;
    unsigned methods;
    route_carry carry;
    route_needs needs;
    route_access access;
} route_row;

#define ROUTE_ROW(name, pattern, methods, get, needs, access, ...)                                 \
    {EP_##name, pattern, methods, CARRY_##get, NEEDS_##needs, RIGHT_##access},
static const route_row rows[] = {ROUTE_TABLE(ROUTE_ROW)};
#undef ROUTE_ROW
#define ROW_COUNT (sizeof(rows) / sizeof(rows[0]))

/* The methods, in the order an Allow list names them. */
static const struct {
    const char *name;
    unsigned bit;
} methods[] = {{"GET", M_GET}, {"HEAD", M_HEAD},     {"POST", M_POST},
               {"PUT", M_PUT}, {"DELETE", M_DELETE}, {"OPTIONS", M_OPTIONS}};
#define METHOD_COUNT (sizeof(methods) / sizeof(methods[0]))

static const cfg_hub *hubs; /* the cfg's; set at start, read-only after */
static unsigned nhubs;
static bool available[ROUTE_NEEDS];
static char allow_text[ROUTE_ENDPOINTS][ALLOW_MAX];

/* "GET, HEAD" for the bits of set. */
static void allow_list(unsigned set, char out[ALLOW_MAX])
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < METHOD_COUNT; i++)
        if (set & methods[i].bit)
            n += (size_t)snprintf(out + n, ALLOW_MAX - n, "%s%s", n ? ", " : "", methods[i].name);
}

void router_init(const cfg *c)
{
    hubs = c->hubs;
    nhubs = c->nhubs;
    available[NEEDS_ALWAYS] = true;
    available[NEEDS_SSE] = c->transports.sse;
    available[NEEDS_LONG_POLLING] = c->transports.long_polling;
    available[NEEDS_WEBSOCKET] = c->transports.websocket;
    available[NEEDS_WEB] = c->web.root[0] != '\0';
    for (size_t i = 0; i < ROW_COUNT; i++)
        allow_list(rows[i].methods, allow_text[rows[i].endpoint]);
}

void router_set_available(route_needs need, bool on)
{
    if (need < ROUTE_NEEDS)
        available[need] = on;
}

unsigned router_method(const char *name, size_t len)
{
    for (size_t i = 0; name && i < METHOD_COUNT; i++)
        if (strlen(methods[i].name) == len && !memcmp(name, methods[i].name, len))
            return methods[i].bit;
    return 0;
}

/* ------------------------------------------------------------ matching */

/* The parts a pattern extracts from a path. */
typedef struct parts {
    const char *room;
    size_t room_len;
    const cfg_hub *hub;
    unsigned hub_index;
} parts;

static bool match(const char *pat, const char *path, parts *pt);

/* {hub} at path, then the rest of the pattern: the first hub whose path
 * leads path and whose remainder matches. */
static bool match_hub(const char *rest, const char *path, parts *pt)
{
    for (unsigned i = 0; i < nhubs; i++) {
        size_t n = strlen(hubs[i].path);
        if (n && !strncmp(path, hubs[i].path, n) && match(rest, path + n, pt)) {
            pt->hub = &hubs[i];
            pt->hub_index = i;
            return true;
        }
    }
    return false;
}

/* True when path matches pattern pat (routes.h), filling pt. */
static bool match(const char *pat, const char *path, parts *pt)
{
    while (*pat) {
        if (!strcmp(pat, ANY_REST))
            return true;
        if (!strncmp(pat, HUB_PATH, strlen(HUB_PATH)))
            return match_hub(pat + strlen(HUB_PATH), path, pt);
        if (!strncmp(pat, ROOM_SEGMENT, strlen(ROOM_SEGMENT))) {
            pt->room = path;
            pt->room_len = strcspn(path, "/");
            path += pt->room_len;
            pat += strlen(ROOM_SEGMENT);
            continue;
        }
        if (*pat == '{' && strchr(pat, '}')) { /* {user}, {id}: one non-empty segment */
            size_t n = strcspn(path, "/");
            if (!n)
                return false;
            path += n;
            pat = strchr(pat, '}') + 1;
            continue;
        }
        if (*pat++ != *path++)
            return false;
    }
    return *path == '\0';
}

/* The first row whose pattern matches path, or NULL. A path must start
 * with '/' (no other names a file under the web root either). */
static const route_row *find_row(const char *path, parts *pt)
{
    if (path[0] != '/')
        return NULL;
    for (size_t i = 0; i < ROW_COUNT; i++) {
        *pt = (parts){0};
        if (match(rows[i].pattern, path, pt))
            return &rows[i];
    }
    return NULL;
}

/* ------------------------------------------------------------- routing */

static void refuse(route_result *r, unsigned status, const char *error)
{
    r->status = status;
    r->error = error;
    if (status == 405)
        r->allow = allow_text[r->endpoint];
}

/* Who carries a request of row. parts_ok: the path's parts are sound (its
 * room name is valid), whether or not the endpoint is switched on. Only a
 * GET goes anywhere but the main daemon; an upgrade goes to libwebsockets
 * only where the endpoint takes it, and never to a stream or poll daemon. */
static route_carrier carrier_of(const route_row *row, const route_request *rq,
                                const route_result *r, bool parts_ok)
{
    if (rq->method != M_GET || !parts_ok)
        return ROUTE_TO_MAIN;
    bool served = r->status == 0;
    switch (row->carry) {
    case CARRY_STREAMS:
        return rq->upgrade_websocket ? ROUTE_TO_MAIN : ROUTE_TO_STREAMS;
    case CARRY_POLLS:
        return rq->upgrade_websocket ? ROUTE_TO_MAIN : ROUTE_TO_POLLS;
    case CARRY_WEBSOCKET:
        return rq->upgrade_websocket && served ? ROUTE_TO_WEBSOCKET : ROUTE_TO_MAIN;
    case CARRY_SIGNALR:
        if (rq->upgrade_websocket)
            return served ? ROUTE_TO_WEBSOCKET : ROUTE_TO_MAIN;
        if (rq->accept_event_stream)
            return ROUTE_TO_STREAMS; /* SignalR's SSE transport opens its stream */
        return r->conn_id ? ROUTE_TO_POLLS : ROUTE_TO_MAIN; /* a long poll */
    case CARRY_MAIN:
        break;
    }
    return ROUTE_TO_MAIN;
}

void router_route(const route_request *rq, route_result *r)
{
    *r = (route_result){.endpoint = EP_NONE, .carrier = ROUTE_TO_MAIN};
    if (strnlen(rq->path, ROUTE_PATH_MAX + 1) > ROUTE_PATH_MAX) {
        refuse(r, 414, "the path is longer than " ROUTE_PATH_MAX_TEXT " bytes");
        return;
    }
    parts pt;
    const route_row *row = find_row(rq->path, &pt);
    if (!row) {
        refuse(r, 404, "no such endpoint");
        return;
    }
    r->endpoint = row->endpoint;
    r->methods = allow_text[row->endpoint];
    r->room = pt.room;
    r->room_len = pt.room_len;
    r->hub = pt.hub;
    r->hub_index = pt.hub_index;
    r->access = row->access;
    if (pt.hub)
        r->conn_id = query_value(rq->query, "id", &r->conn_id_len);
    bool parts_ok = !pt.room || room_name_is_valid(pt.room, pt.room_len);
    if (!row->methods || !available[row->needs])
        refuse(r, 404, "no such endpoint");
    else if (!(rq->method & (row->methods | M_OPTIONS)))
        refuse(r, 405, "method not allowed");
    else if (!parts_ok)
        refuse(r, 400, "invalid room name: use 1 to 128 characters of A-Z a-z 0-9 . _ - :");
    r->carrier = carrier_of(row, rq, r, parts_ok);
}
