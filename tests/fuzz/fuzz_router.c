/* SPDX-License-Identifier: MIT */
/*
 * fuzz_router.c - libFuzzer harness for the one route function
 * (gateway/router.c over gateway/routes.h). The first byte picks the
 * request's facts (method, Upgrade, Accept), the second which parts of the
 * config are on; the rest is "path?query" (a path is cut at its first NUL, as the
 * decoders hand it over). Whatever the bytes: no crash, no read outside
 * the input, and an answer that holds together: the extracted parts lie
 * inside the path and the query, an error carries a status (and a 405 its
 * Allow list), a refusal never goes to libwebsockets, and only a GET goes
 * to a stream or poll daemon.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"
#include "gateway/router.h"
#include "hub/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool ok, const char *what, const char *path)
{
    if (!ok) {
        fprintf(stderr, "%s (path \"%.200s\")\n", what, path);
        abort();
    }
}

static bool inside(const char *p, size_t len, const char *base, size_t size)
{
    return p >= base && len <= size && p + len <= base + size;
}

/* Defaults and four hubs, one path leading another's, with what switches
 * turns off (bits 0 to 3: SSE, long polling, WebSocket, the web root). */
static cfg conf;

static void configure(uint8_t switches)
{
    static const char *const paths[] = {"/hubs/chat", "/hubs/chatroom", "/a/b/c", "/x"};
    cfg_defaults(&conf);
    conf.nhubs = sizeof(paths) / sizeof(paths[0]);
    for (unsigned i = 0; i < conf.nhubs; i++)
        snprintf(conf.hubs[i].path, sizeof(conf.hubs[i].path), "%s", paths[i]);
    conf.transports.sse = !(switches & 0x01);
    conf.transports.long_polling = !(switches & 0x02);
    conf.transports.websocket = !(switches & 0x04);
    if (switches & 0x08)
        conf.web.root[0] = '\0';
    router_init(&conf);
}

static void check(const route_request *rq, const route_result *r, size_t plen, size_t qlen)
{
    const char *path = rq->path;
    must(r->endpoint < ROUTE_ENDPOINTS, "endpoint out of range", path);
    must(!r->status == !r->error, "an error without a status, or a status without one", path);
    must(r->status == 0 || r->status == 400 || r->status == 404 || r->status == 405 ||
             r->status == 414,
         "a status the router does not give", path);
    must((r->status == 405) == (r->allow && r->allow[0]), "405 without an Allow list", path);
    must((r->status == 414) == (plen > ROUTE_PATH_MAX), "414 and the path length disagree", path);
    must(!r->room || inside(r->room, r->room_len, path, plen), "room outside the path", path);
    must(!r->room || r->status || room_name_is_valid(r->room, r->room_len),
         "a served room with an invalid name", path);
    must(!r->conn_id || (rq->query && inside(r->conn_id, r->conn_id_len, rq->query, qlen)),
         "connection id outside the query", path);
    must(!r->conn_id || r->hub, "a connection id without a hub", path);
    must(!r->hub || (r->hub_index < conf.nhubs && r->hub == &conf.hubs[r->hub_index]),
         "hub out of the config", path);
    must(r->carrier == ROUTE_TO_MAIN || rq->method == M_GET, "a non-GET off the main daemon", path);
    must(r->carrier != ROUTE_TO_WEBSOCKET || (rq->upgrade_websocket && !r->status),
         "libwebsockets for a refusal or a request that is no upgrade", path);
    must(r->carrier != ROUTE_TO_STREAMS || rq->accept_event_stream || r->endpoint == EP_EVENTS,
         "the stream daemon for no stream", path);
    must(r->endpoint != EP_NONE || r->status, "no endpoint, no error", path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned methods[] = {M_GET, M_HEAD,    M_POST, M_DELETE,
                                       0,     M_OPTIONS, M_PUT,  M_POST};
    if (size < 2)
        return 0;
    uint8_t facts = data[0]; /* bits 0-2: the method, 3: Upgrade, 4: Accept */
    configure(data[1]);
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    /* path?query, each an exact-size NUL-terminated copy (ASan sees overreads) */
    const char *q = memchr(text, '?', len);
    size_t plen = q ? (size_t)(q - text) : len;
    size_t qlen = q ? len - plen - 1 : 0;
    char *path = malloc(plen + 1), *query = q ? malloc(qlen + 1) : NULL;
    if (!path || (q && !query)) {
        free(path);
        free(query);
        return 0;
    }
    memcpy(path, text, plen);
    path[plen] = '\0';
    if (query) {
        memcpy(query, q + 1, qlen);
        query[qlen] = '\0';
    }
    route_request rq = {.method = methods[facts & 0x07],
                        .path = path,
                        .query = query,
                        .upgrade_websocket = facts & 0x08,
                        .accept_event_stream = facts & 0x10};
    route_result r;
    router_route(&rq, &r);
    check(&rq, &r, strlen(path), query ? strlen(query) : 0);
    /* the method reader on the same bytes */
    unsigned m = router_method(text, len < 8 ? len : 8);
    must(m == 0 || m == M_GET || m == M_HEAD || m == M_POST || m == M_DELETE || m == M_PUT ||
             m == M_OPTIONS,
         "method bits", path);
    free(path);
    free(query);
    return 0;
}
