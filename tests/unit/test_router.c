/* SPDX-License-Identifier: MIT */
/*
 * test_router.c - the one route function (gateway/router.c over the table
 * of gateway/routes.h): every route with every method, the parts it
 * extracts (room, hub, connection id), the carrier the acceptor hands a
 * connection to (libwebsockets or which libmicrohttpd daemon), and every
 * kind of malformed path with the error it gets.
 */
#include "gateway/router.h"

#include <stdlib.h>

#include "gateway/config.h"
#include "hub/hub.h"
#include "tests/unit/test.h"

static cfg conf;

/* Defaults (web root "web", every transport on) and three hubs, one of
 * whose paths leads another's. */
static void setup(void)
{
    cfg_defaults(&conf);
    static const char *const paths[] = {"/hubs/chat", "/hubs/chatroom", "/a/b/c"};
    conf.nhubs = 3;
    for (unsigned i = 0; i < conf.nhubs; i++) {
        snprintf(conf.hubs[i].name, sizeof(conf.hubs[i].name), "h%u", i);
        snprintf(conf.hubs[i].path, sizeof(conf.hubs[i].path), "%s", paths[i]);
    }
    router_init(&conf);
}

/* The span [p, p + len) lies inside [base, base + size]. */
static bool inside(const char *p, size_t len, const char *base, size_t size)
{
    return p >= base && p + len <= base + size;
}

typedef struct req {
    unsigned method;
    const char *path, *query;
    bool upgrade, accept;
} req;

/* Routes r, and checks what holds for every answer: parts inside the
 * input, an error with every status, an Allow list with every 405. */
static route_result route(req r)
{
    route_result out;
    router_route(&(route_request){r.method, r.path, r.query, r.upgrade, r.accept}, &out);
    bool ok = true;
    ok &= !out.room || inside(out.room, out.room_len, r.path, strlen(r.path));
    ok &=
        !out.conn_id || (r.query && inside(out.conn_id, out.conn_id_len, r.query, strlen(r.query)));
    ok &= !out.hub || (out.hub == &conf.hubs[out.hub_index] && out.hub_index < conf.nhubs);
    ok &= !out.status == !out.error;
    ok &= (out.status == 405) == (out.allow != NULL);
    ok &= out.status == 0 || out.status == 400 || out.status == 404 || out.status == 405 ||
          out.status == 414;
    if (!ok) {
        fprintf(stderr, "  invariant broken for %s\n", r.path);
        test_failed_checks++;
    }
    return out;
}

/* method on path gets endpoint ep with status (0: served). */
static void expect(unsigned method, const char *path, route_endpoint ep, unsigned status)
{
    route_result r = route((req){method, path, NULL, false, false});
    if (r.endpoint != ep || r.status != status) {
        fprintf(stderr, "  FAIL %s (method %u): endpoint %d status %u, expected %d %u\n", path,
                method, r.endpoint, r.status, ep, status);
        test_failed_checks++;
    }
}

static const unsigned every_method[] = {M_GET, M_HEAD, M_POST, M_DELETE, 0};
#define METHODS (sizeof(every_method) / sizeof(every_method[0]))

/* Each method on path: served when allowed, else 405 with allow. */
static void expect_methods(const char *path, route_endpoint ep, unsigned allowed, const char *allow)
{
    for (size_t i = 0; i < METHODS; i++) {
        unsigned m = every_method[i];
        expect(m, path, ep, m & allowed ? 0 : 405);
        route_result r = route((req){m, path, NULL, false, false});
        if (r.status == 405)
            CHECK_STR(r.allow, allow);
    }
}

static void test_method_names(void)
{
    CHECK(router_method("GET", 3) == M_GET);
    CHECK(router_method("HEAD", 4) == M_HEAD);
    CHECK(router_method("POST", 4) == M_POST);
    CHECK(router_method("DELETE", 6) == M_DELETE);
    CHECK(router_method("get", 3) == 0); /* case matters */
    CHECK(router_method("GETX", 4) == 0);
    CHECK(router_method("GETX", 3) == M_GET); /* len bytes only */
    CHECK(router_method("GE", 2) == 0);
    CHECK(router_method("PUT", 3) == M_PUT); /* the server API's room membership */
    CHECK(router_method("OPTIONS", 7) == M_OPTIONS);
    CHECK(router_method("PATCH", 5) == 0);
    CHECK(router_method("", 0) == 0);
    CHECK(router_method(NULL, 0) == 0);
}

static void test_fixed_paths(void)
{
    setup();
    expect_methods("/healthz", EP_HEALTHZ, M_GET | M_HEAD, "GET, HEAD");
    expect_methods("/metrics", EP_METRICS, M_GET | M_HEAD, "GET, HEAD");
    expect_methods("/stats/events", EP_STATS, M_GET | M_HEAD, "GET, HEAD");
    route_result r = route((req){M_GET, "/stats/events", NULL, false, true});
    CHECK(r.carrier == ROUTE_TO_MAIN); /* the dashboard's stream: the main daemon */
    CHECK(!r.room && !r.hub && !r.conn_id);
}

static void test_rooms(void)
{
    setup();
    expect_methods("/rooms/a", EP_ROOM, M_GET | M_HEAD, "GET, HEAD");
    expect_methods("/rooms/a/events", EP_EVENTS, M_GET | M_HEAD, "GET, HEAD");
    expect_methods("/rooms/a/poll", EP_POLL, M_GET | M_HEAD, "GET, HEAD");
    expect_methods("/rooms/a/messages", EP_MESSAGES, M_POST, "POST");
    expect_methods("/rooms/a/ws", EP_WS, M_GET | M_HEAD, "GET, HEAD");
    expect_methods("/rooms/a/history", EP_HISTORY, M_GET | M_HEAD, "GET, HEAD");
    expect_methods("/rooms", EP_ROOMS, M_GET | M_HEAD, "GET, HEAD");
    const char *path = "/rooms/Ab.9_-:x/events";
    route_result r = route((req){M_GET, path, "since=1", false, false});
    CHECK(r.room == path + 7 && r.room_len == 8 && !r.hub && !r.conn_id);
    /* every room character, and the longest name */
    char longest[7 + ROOM_NAME_MAX + 10];
    snprintf(longest, sizeof(longest), "/rooms/%0*d/poll", ROOM_NAME_MAX, 7);
    r = route((req){M_GET, longest, NULL, false, false});
    CHECK(r.endpoint == EP_POLL && r.status == 0 && r.room_len == ROOM_NAME_MAX);
}

static void test_hubs(void)
{
    setup();
    static const char *const all = "GET, HEAD, POST, DELETE";
    expect_methods("/hubs/chat", EP_HUB, M_GET | M_HEAD | M_POST | M_DELETE, all);
    expect_methods("/hubs/chatroom", EP_HUB, M_GET | M_HEAD | M_POST | M_DELETE, all);
    expect_methods("/a/b/c", EP_HUB, M_GET | M_HEAD | M_POST | M_DELETE, all);
    expect_methods("/hubs/chat/negotiate", EP_NEGOTIATE, M_POST, "POST");
    expect_methods("/hubs/chatroom/negotiate", EP_NEGOTIATE, M_POST, "POST");
    expect_methods("/a/b/c/negotiate", EP_NEGOTIATE, M_POST, "POST");
    static const struct {
        const char *path;
        unsigned hub;
    } which[] = {
        {"/hubs/chat", 0},           {"/hubs/chatroom", 1},           {"/a/b/c", 2},
        {"/hubs/chat/negotiate", 0}, {"/hubs/chatroom/negotiate", 1}, {"/a/b/c/negotiate", 2}};
    for (size_t i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
        route_result r = route((req){M_POST, which[i].path, NULL, false, false});
        CHECK(r.hub == &conf.hubs[which[i].hub] && r.hub_index == which[i].hub && !r.room);
    }
    /* not a hub, nor a hub's negotiate: the web pages */
    expect(M_GET, "/hubs/x/negotiate", EP_STATIC, 0);
    expect(M_POST, "/hubs/x/negotiate", EP_STATIC, 405);
    expect(M_GET, "/hubs/chat/", EP_STATIC, 0);
    expect(M_GET, "/hubs/cha", EP_STATIC, 0);
    expect(M_GET, "/hubs/chatx", EP_STATIC, 0);
    expect(M_POST, "/hubs/chat/negotiate/", EP_STATIC, 405);
    expect(M_POST, "/hubs/chat/negotiatex", EP_STATIC, 405);
    expect(M_POST, "/hubs/chat//negotiate", EP_STATIC, 405);
    expect(M_POST, "/hubs/negotiate", EP_STATIC, 405);
    expect(M_GET, "/hubs", EP_STATIC, 0);
    /* no hubs at all */
    conf.nhubs = 0;
    router_init(&conf);
    expect(M_GET, "/hubs/chat", EP_STATIC, 0);
    expect(M_POST, "/hubs/chat/negotiate", EP_STATIC, 405);
}

static void test_connection_id(void)
{
    setup();
    const char *q = "a=1&id=tok_en&id=2";
    route_result r = route((req){M_GET, "/hubs/chat", q, false, false});
    CHECK(r.conn_id == q + 7 && r.conn_id_len == 6);
    q = "id=";
    r = route((req){M_POST, "/hubs/chat", q, false, false});
    CHECK(r.conn_id == q + 3 && r.conn_id_len == 0);
    r = route((req){M_GET, "/hubs/chat", "xid=1&idx=2", false, false});
    CHECK(!r.conn_id);
    r = route((req){M_GET, "/hubs/chat", NULL, false, false});
    CHECK(!r.conn_id);
    r = route((req){M_GET, "/rooms/a/poll", "id=1", false, false});
    CHECK(!r.conn_id); /* only a hub path has one */
}

/* path's GET (upgrade, accept, query as given) goes to carrier. */
static void expect_carrier(req r, route_carrier carrier)
{
    route_result out = route(r);
    if (out.carrier != carrier) {
        fprintf(stderr, "  FAIL %s?%s (method %u upgrade %d accept %d): carrier %d, expected %d\n",
                r.path, r.query ? r.query : "", r.method, r.upgrade, r.accept, out.carrier,
                carrier);
        test_failed_checks++;
    }
}

/* The acceptor's choices: only a GET goes anywhere but the main daemon. */
static void test_carriers(void)
{
    setup();
    /* event streams and long polls: their daemons, but never an upgrade */
    expect_carrier((req){M_GET, "/rooms/a/events", NULL, false, false}, ROUTE_TO_STREAMS);
    expect_carrier((req){M_GET, "/rooms/a/events", NULL, false, true}, ROUTE_TO_STREAMS);
    expect_carrier((req){M_GET, "/rooms/a/events", NULL, true, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_HEAD, "/rooms/a/events", NULL, false, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_POST, "/rooms/a/events", NULL, false, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_GET, "/rooms/a!/events", NULL, false, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_GET, "/rooms/a/poll", "since=3", false, false}, ROUTE_TO_POLLS);
    expect_carrier((req){M_GET, "/rooms/a/poll", NULL, true, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_HEAD, "/rooms/a/poll", NULL, false, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_GET, "/rooms//poll", NULL, false, false}, ROUTE_TO_MAIN);
    /* plain WebSocket: an upgrade only */
    expect_carrier((req){M_GET, "/rooms/a/ws", "since=1", true, false}, ROUTE_TO_WEBSOCKET);
    expect_carrier((req){M_GET, "/rooms/a/ws", NULL, false, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_HEAD, "/rooms/a/ws", NULL, true, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_GET, "/rooms/a b/ws", NULL, true, false}, ROUTE_TO_MAIN);
    /* a hub path: upgrade, event stream, long poll (an id), or neither */
    expect_carrier((req){M_GET, "/hubs/chat", "id=x", true, true}, ROUTE_TO_WEBSOCKET);
    expect_carrier((req){M_GET, "/hubs/chatroom", NULL, true, false}, ROUTE_TO_WEBSOCKET);
    expect_carrier((req){M_GET, "/hubs/chat", "id=x", false, true}, ROUTE_TO_STREAMS);
    expect_carrier((req){M_GET, "/hubs/chat", NULL, false, true}, ROUTE_TO_STREAMS);
    expect_carrier((req){M_GET, "/a/b/c", "id=x", false, false}, ROUTE_TO_POLLS);
    expect_carrier((req){M_GET, "/a/b/c", "id=", false, false}, ROUTE_TO_POLLS);
    expect_carrier((req){M_GET, "/hubs/chat", "xid=x", false, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_GET, "/hubs/chat", NULL, false, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_POST, "/hubs/chat", "id=x", false, true}, ROUTE_TO_MAIN);
    expect_carrier((req){M_DELETE, "/hubs/chat", "id=x", true, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_HEAD, "/hubs/chat", "id=x", false, true}, ROUTE_TO_MAIN);
    /* everything else: the main daemon, upgrade or not */
    static const char *const mains[] = {"/hubs/chat/negotiate", "/healthz",   "/metrics",
                                        "/stats/events",        "/rooms/a",   "/rooms/a/messages",
                                        "/index.html",          "/rooms/a/x", "nope"};
    for (size_t i = 0; i < sizeof(mains) / sizeof(mains[0]); i++)
        for (int up = 0; up < 2; up++)
            for (int acc = 0; acc < 2; acc++)
                expect_carrier((req){M_GET, mains[i], "id=1", up, acc}, ROUTE_TO_MAIN);
}

/* A transport switched off: its endpoint is 404, and an upgrade goes to the
 * main daemon (which answers it); a stream or a poll still goes to its
 * daemon, which answers the 404. */
static void test_switched_off(void)
{
    setup();
    conf.transports.sse = false;
    conf.transports.long_polling = false;
    conf.transports.websocket = false;
    router_init(&conf);
    for (size_t i = 0; i < METHODS; i++) {
        expect(every_method[i], "/rooms/a/events", EP_EVENTS, 404);
        expect(every_method[i], "/rooms/a/poll", EP_POLL, 404);
        expect(every_method[i], "/rooms/a/ws", EP_WS, 404);
    }
    expect(M_GET, "/rooms/a", EP_ROOM, 0);
    expect(M_GET, "/hubs/chat", EP_HUB, 0); /* SignalR decides on its transports */
    expect_carrier((req){M_GET, "/rooms/a/events", NULL, false, false}, ROUTE_TO_STREAMS);
    expect_carrier((req){M_GET, "/rooms/a/poll", NULL, false, false}, ROUTE_TO_POLLS);
    expect_carrier((req){M_GET, "/rooms/a/ws", NULL, true, false}, ROUTE_TO_MAIN);
    expect_carrier((req){M_GET, "/hubs/chat", NULL, true, false}, ROUTE_TO_WEBSOCKET);
    setup();
    snprintf(conf.web.root, sizeof(conf.web.root), "%s", "");
    router_init(&conf);
    expect(M_GET, "/index.html", EP_STATIC, 404);
    expect(M_POST, "/index.html", EP_STATIC, 404); /* 404 before 405 */
    router_set_available(NEEDS_WEB, true);
    expect(M_GET, "/index.html", EP_STATIC, 0);
    router_set_available(NEEDS_WEB, false); /* a web root that is not there */
    expect(M_HEAD, "/", EP_STATIC, 404);
    router_set_available(ROUTE_NEEDS, true); /* out of range: ignored */
}

/* Paths that name nothing, or something malformed, and what they get. */
static void test_malformed_paths(void)
{
    setup();
    /* no leading slash: no route (not even the pages') */
    expect(M_GET, "", EP_NONE, 404);
    expect(M_GET, "healthz", EP_NONE, 404);
    expect(M_POST, "rooms/a/messages", EP_NONE, 404);
    expect(M_GET, "*", EP_NONE, 404);
    expect(M_GET, "http://x/healthz", EP_NONE, 404);
    /* empty segments, trailing slashes: not the endpoint (pages, or 404 under /rooms/) */
    expect(M_GET, "//healthz", EP_STATIC, 0);
    expect(M_GET, "/healthz/", EP_STATIC, 0);
    expect(M_GET, "/metrics//", EP_STATIC, 0);
    expect(M_GET, "/stats/events/", EP_STATIC, 0);
    expect(M_GET, "/stats", EP_STATIC, 0);
    expect(M_GET, "/rooms", EP_ROOMS, 0); /* the room list */
    expect(M_GET, "/rooms/a/history/", EP_ROOMS_ELSE, 404);
    expect(M_GET, "/rooms//history", EP_HISTORY, 400);
    expect(M_GET, "/rooms/", EP_ROOM, 400);  /* an empty room name */
    expect(M_POST, "/rooms/", EP_ROOM, 405); /* 405 before 400 */
    expect(M_GET, "/rooms//events", EP_EVENTS, 400);
    expect(M_POST, "/rooms//messages", EP_MESSAGES, 400);
    expect(M_GET, "/rooms/a/", EP_ROOMS_ELSE, 404);
    expect(M_GET, "/rooms/a//events", EP_ROOMS_ELSE, 404);
    expect(M_GET, "/rooms/a/events/", EP_ROOMS_ELSE, 404);
    expect(M_POST, "/rooms/a/messages/", EP_ROOMS_ELSE, 404);
    /* unknown suffixes under a room: 404, whatever the method */
    for (size_t i = 0; i < METHODS; i++) {
        expect(every_method[i], "/rooms/a/b", EP_ROOMS_ELSE, 404);
        expect(every_method[i], "/rooms/a/event", EP_ROOMS_ELSE, 404);
        expect(every_method[i], "/rooms/a/wss", EP_ROOMS_ELSE, 404);
        expect(every_method[i], "/rooms/a/b/events", EP_ROOMS_ELSE, 404);
        expect(every_method[i], "/rooms/a/EVENTS", EP_ROOMS_ELSE, 404);
    }
    /* the router sees decoded paths: a '%' left in a room is a bad name */
    expect(M_GET, "/rooms/a%20b/events", EP_EVENTS, 400);
    expect(M_GET, "/rooms/a%2Fb", EP_ROOM, 400);
    expect(M_GET, "/rooms/a b", EP_ROOM, 400);
    expect(M_GET, "/%68ealthz", EP_STATIC, 0); /* not decoded here: not /healthz */
    /* overlong room names */
    char name[ROOM_NAME_MAX + 2];
    memset(name, 'r', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    char path[256];
    snprintf(path, sizeof(path), "/rooms/%s/events", name);
    expect(M_GET, path, EP_EVENTS, 400);
    snprintf(path, sizeof(path), "/rooms/%s", name);
    expect(M_HEAD, path, EP_ROOM, 400);
    snprintf(path, sizeof(path), "/rooms/%s/ws", name);
    route_result r = route((req){M_GET, path, NULL, true, false});
    CHECK(r.status == 400 && r.carrier == ROUTE_TO_MAIN);
    /* dot segments are not resolved: ".." is a room name like any other,
     * and the pages' handler refuses what leads out of the web root */
    expect(M_GET, "/rooms/../events", EP_EVENTS, 0);
    expect(M_GET, "/rooms/./ws", EP_WS, 0);
    expect(M_GET, "/rooms/a/../events", EP_ROOMS_ELSE, 404);
    expect(M_GET, "/rooms/a/./events", EP_ROOMS_ELSE, 404);
    expect(M_GET, "/./healthz", EP_STATIC, 0);
    expect(M_GET, "/hubs/chat/../chat", EP_STATIC, 0);
    expect(M_GET, "/../etc/passwd", EP_STATIC, 0);
    /* control and other bytes (a NUL ends the path; the decoder stops there) */
    expect(M_GET,
           "/rooms/a\x01"
           "b/events",
           EP_EVENTS, 400);
    expect(M_GET, "/rooms/a\tb", EP_ROOM, 400);
    expect(M_GET, "/rooms/\x7f/poll", EP_POLL, 400);
    expect(M_GET, "/rooms/\xc3\xa9/poll", EP_POLL, 400);
    expect(M_GET, "/healthz\r\n", EP_STATIC, 0);
    expect(M_GET, "/hubs/chat\x01", EP_STATIC, 0);
}

/* Paths longer than ROUTE_PATH_MAX: 414 before anything else. */
static void test_long_paths(void)
{
    setup();
    size_t big = 100000;
    char *p = malloc(big + 1);
    if (!p)
        return;
    memset(p, 'a', big);
    p[0] = '/';
    p[ROUTE_PATH_MAX] = '\0';
    expect(M_GET, p, EP_STATIC, 0); /* exactly the limit */
    p[ROUTE_PATH_MAX] = 'a';
    p[ROUTE_PATH_MAX + 1] = '\0';
    for (size_t i = 0; i < METHODS; i++)
        expect(every_method[i], p, EP_NONE, 414);
    route_result r = route((req){M_GET, p, NULL, true, true});
    CHECK(r.carrier == ROUTE_TO_MAIN && r.error && strstr(r.error, "1024"));
    memcpy(p, "/rooms/a/", 9); /* under /rooms/ too */
    expect(M_GET, p, EP_NONE, 414);
    p[0] = 'x'; /* no leading slash: still 414 first */
    expect(M_GET, p, EP_NONE, 414);
    p[0] = '/';
    p[big] = '\0';
    expect(M_POST, p, EP_NONE, 414);
    free(p);
}

/* The server API's paths: {user} and {id} are one non-empty segment; PUT
 * is taken where the table says. */
static void test_server_api_paths(void)
{
    setup();
    expect_methods("/users/alice/messages", EP_USER_MSGS, M_POST, "POST");
    expect(M_PUT, "/users/alice/messages", EP_USER_MSGS, 405);
    expect_methods("/users/a%20b@c/connections", EP_USER_CONNS, M_DELETE, "DELETE");
    expect_methods("/connections/Ab-_9/messages", EP_CONN_MSGS, M_POST, "POST");
    expect_methods("/connections/x", EP_CONN, M_DELETE, "DELETE");
    expect(M_PUT, "/rooms/a/members/alice", EP_ROOM_MEMBER, 0);
    expect(M_DELETE, "/rooms/a/members/alice", EP_ROOM_MEMBER, 0);
    expect(M_GET, "/rooms/a/members/alice", EP_ROOM_MEMBER, 405);
    route_result r = route((req){M_GET, "/rooms/a/members/alice", NULL, false, false});
    CHECK_STR(r.allow, "PUT, DELETE");
    expect(M_PUT, "/rooms/a b/members/alice", EP_ROOM_MEMBER, 400);
    /* An empty or extra segment is no such endpoint (the pages' catch-all). */
    expect(M_POST, "/users//messages", EP_STATIC, 405);
    expect(M_POST, "/users/a/b/messages", EP_STATIC, 405);
    expect(M_DELETE, "/connections/", EP_STATIC, 405);
    expect(M_PUT, "/rooms/a/members/", EP_ROOMS_ELSE, 404);
    /* The cluster view: GET and HEAD only, an operator endpoint. */
    expect(M_GET, "/cluster/nodes", EP_CLUSTER, 0);
    expect(M_HEAD, "/cluster/nodes", EP_CLUSTER, 0);
    expect(M_POST, "/cluster/nodes", EP_CLUSTER, 405);
    CHECK(route((req){M_GET, "/cluster/nodes", NULL, false, false}).access == RIGHT_ADMIN);
}

/* Every line of the table is reachable, and its errors carry a status. */
static void test_every_endpoint(void)
{
    setup();
    static const char *const paths[ROUTE_ENDPOINTS] = {
        [EP_HUB] = "/hubs/chat",
        [EP_NEGOTIATE] = "/hubs/chat/negotiate",
        [EP_HEALTHZ] = "/healthz",
        [EP_METRICS] = "/metrics",
        [EP_STATS] = "/stats/events",
        [EP_CLUSTER] = "/cluster/nodes",
        [EP_ROOMS] = "/rooms",
        [EP_ROOM] = "/rooms/a",
        [EP_HISTORY] = "/rooms/a/history",
        [EP_PRESENCE] = "/rooms/a/presence",
        [EP_EVENTS] = "/rooms/a/events",
        [EP_POLL] = "/rooms/a/poll",
        [EP_MESSAGES] = "/rooms/a/messages",
        [EP_WS] = "/rooms/a/ws",
        [EP_ROOM_MEMBER] = "/rooms/a/members/alice",
        [EP_USER_MSGS] = "/users/alice/messages",
        [EP_USER_CONNS] = "/users/alice/connections",
        [EP_CONN_MSGS] = "/connections/c1/messages",
        [EP_CONN] = "/connections/c1",
        [EP_ROOMS_ELSE] = "/rooms/a/x",
        [EP_STATIC] = "/app.js",
    };
    for (int ep = EP_NONE + 1; ep < ROUTE_ENDPOINTS; ep++) {
        CHECK(paths[ep] != NULL);
        if (!paths[ep])
            continue;
        bool reached = false;
        for (size_t i = 0; i < METHODS; i++) {
            route_result r = route((req){every_method[i], paths[ep], NULL, false, false});
            CHECK((int)r.endpoint == ep);
            reached |= r.status == 0;
        }
        CHECK(reached == (ep != EP_ROOMS_ELSE));
    }
}

/* OPTIONS (a CORS preflight) is served on every endpoint, with the
 * endpoint's methods to name; where the path is no endpoint it is not. */
static void test_options(void)
{
    setup();
    static const struct {
        const char *path;
        route_endpoint ep;
        const char *methods;
    } cases[] = {
        {"/rooms/a/messages", EP_MESSAGES, "POST"},
        {"/rooms/a/events", EP_EVENTS, "GET, HEAD"},
        {"/rooms/a/poll", EP_POLL, "GET, HEAD"},
        {"/rooms/a/ws", EP_WS, "GET, HEAD"},
        {"/rooms/a", EP_ROOM, "GET, HEAD"},
        {"/rooms/a/history", EP_HISTORY, "GET, HEAD"},
        {"/rooms", EP_ROOMS, "GET, HEAD"},
        {"/hubs/chat", EP_HUB, "GET, HEAD, POST, DELETE"},
        {"/hubs/chat/negotiate", EP_NEGOTIATE, "POST"},
        {"/healthz", EP_HEALTHZ, "GET, HEAD"},
        {"/metrics", EP_METRICS, "GET, HEAD"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        route_result r = route((req){M_OPTIONS, cases[i].path, "id=x", false, false});
        CHECK(r.endpoint == cases[i].ep && r.status == 0);
        CHECK_STR(r.methods, cases[i].methods);
        CHECK(r.carrier == ROUTE_TO_MAIN); /* the main daemon answers it */
    }
    expect(M_OPTIONS, "/rooms/a/x", EP_ROOMS_ELSE, 404);
    expect(M_OPTIONS, "/rooms/a b/events", EP_EVENTS, 400);
    expect(M_OPTIONS, "/nope", EP_STATIC, 0); /* http.c: 404 unless the file is there */
    route_result r = route((req){M_POST, "/rooms/a/events", NULL, false, false});
    CHECK(r.status == 405);
    CHECK_STR(r.allow, "GET, HEAD"); /* OPTIONS is everywhere: Allow lists the endpoint's */
    CHECK_STR(r.methods, "GET, HEAD");
}

TEST_MAIN("router", TEST(test_method_names), TEST(test_fixed_paths), TEST(test_rooms),
          TEST(test_hubs), TEST(test_connection_id), TEST(test_carriers), TEST(test_switched_off),
          TEST(test_malformed_paths), TEST(test_long_paths), TEST(test_every_endpoint),
          TEST(test_server_api_paths), TEST(test_options))
