/* SPDX-License-Identifier: MIT */
/*
 * cluster_api.c - GET /cluster/nodes (README "Server API", "The
 * cluster's nodes"): {"nodes":[...], "partial":bool, "totals":{...}},
 * each node as node_stats.h gathers it, with this node's figures from
 * node_figures. The request waits for the other nodes' answers without
 * holding a thread (api_wait.h); node_stats.c bounds that wait.
 *
 * Threading: node_figures runs on the MHD thread of a request or the
 * backplane's thread (another node's question); it reads atomics, the
 * hub's stats (hub lock) and /proc, with no lock of its own.
 */
#include "gateway/cluster_api.h"

#include <jansson.h>
#include <stdlib.h>

#include "common/proc_stats.h"
#include "common/version.h"
#include "gateway/api_wait.h"
#include "gateway/http.h"
#include "hub/node_stats.h"
#include "transports/carriers/longpoll.h"
#include "transports/carriers/sse.h"
#include "transports/carriers/ws.h"

#define NODE_ROOMS_MAX 100                    /* rooms each node lists, by name */
#define NODES_WAIT_MS (HUB_OP_WAIT_MS + 2000) /* node_stats.c answers first */
#define NODES_LATE_TEXT "the other nodes did not answer in time"

static const cfg *conf;
static hub *the_hub;

/* The first NODE_ROOMS_MAX rooms of this node (hub_list_rooms): "room_list"
 * [{room, members, last_id, epoch, history_bytes}], "room_list_more". */
static void add_rooms(json_t *o)
{
    room_entry *e = malloc(NODE_ROOMS_MAX * sizeof(*e));
    json_t *list = json_array();
    bool more = false;
    size_t n = e && list ? hub_list_rooms(the_hub, "", e, NODE_ROOMS_MAX, &more) : 0;
    for (size_t i = 0; i < n; i++) {
        unsigned members = 0;
        for (int k = 0; k < SUB_KIND_COUNT; k++)
            members += e[i].subscribers[k];
        json_array_append_new(list, json_pack("{s:s,s:s,s:I,s:I,s:I}", "room", e[i].name, "epoch",
                                              e[i].epoch, "last_id", (json_int_t)e[i].last_id,
                                              "members", (json_int_t)members, "history_bytes",
                                              (json_int_t)e[i].history_bytes));
    }
    free(e);
    if (list) {
        json_object_set_new(o, "room_list", list);
        json_object_set_new(o, "room_list_more", json_boolean(more));
    }
}

/* This node's figures (node_stats_fn). */
static json_t *node_figures(void)
{
    hub_stats st;
    hub_get_stats(the_hub, &st);
    struct proc_stats ps = {0};
    bool have_proc = proc_stats_read(&ps) == 0;
    json_t *o = json_pack(
        "{s:s,s:f,s:{s:I,s:I,s:I},s:I,s:I,s:I,s:I,s:I,s:b,s:s}", "version", crier_version(),
        "uptime_s", proc_stats_uptime_s(), "connections", "websocket", (json_int_t)ws_connections(),
        "sse", (json_int_t)sse_streams(), "long_polling", (json_int_t)lp_held(), "rooms",
        (json_int_t)st.rooms, "published", (json_int_t)st.published, "delivered",
        (json_int_t)st.delivered, "dropped", (json_int_t)st.dropped, "history_bytes",
        (json_int_t)st.history_bytes, "backplane_connected", hub_bp_connected(the_hub), "backplane",
        conf->backplane.type == CFG_BACKPLANE_REDIS ? "redis" : "memory");
    if (o && have_proc) {
        json_object_set_new(o, "rss_bytes", json_integer((json_int_t)ps.rss_bytes));
        json_object_set_new(o, "cpu_seconds", json_real(ps.cpu_seconds));
        json_object_set_new(o, "open_fds", json_integer((json_int_t)ps.open_fds));
        json_object_set_new(o, "started_at", json_real(ps.start_time_s));
    }
    if (o)
        add_rooms(o);
    return o;
}

void cluster_api_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
    node_stats_set_provider(node_figures);
}

/* Adds the integer field key of o into totals. */
static void add_total(json_t *totals, const char *key, json_t *o)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return;
    json_t *t = json_object_get(totals, key);
    if (json_is_integer(v) && (!t || json_is_integer(t)))
        json_object_set_new(totals, key,
                            json_integer(json_integer_value(t) + json_integer_value(v)));
    else
        json_object_set_new(totals, key, json_real(json_number_value(t) + json_number_value(v)));
}

/* The sums over the nodes of what adds up. */
static json_t *totals_of(json_t *nodes)
{
    static const char *const keys[] = {"published", "delivered",   "dropped",
                                       "rss_bytes", "cpu_seconds", "open_fds"};
    json_t *totals = json_object();
    json_t *conns = json_object();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            add_total(totals, keys[k], n);
        json_t *c = json_object_get(n, "connections");
        add_total(conns, "websocket", c);
        add_total(conns, "sse", c);
        add_total(conns, "long_polling", c);
    }
    json_object_set_new(totals, "nodes", json_integer((json_int_t)json_array_size(nodes)));
    json_object_set_new(totals, "connections", conns);
    return totals;
}

/* Any thread: every answer is in (or the wait is over). */
static void nodes_answered(void *arg, json_t *nodes, bool partial)
{
    api_wait *w = arg;
    if (!nodes) {
        api_wait_answer_json(w, MHD_HTTP_INTERNAL_SERVER_ERROR, api_wait_error("out of memory"));
        return;
    }
    json_t *body =
        json_pack("{s:o,s:b,s:o}", "totals", totals_of(nodes), "partial", partial, "nodes", nodes);
    api_wait_answer_json(w, MHD_HTTP_OK, body);
}

enum MHD_Result cluster_api_nodes(http_call *call)
{
    if (*call->state) /* resumed: the answer is in */
        return api_wait_reply(call, *call->state);
    api_wait *w = api_wait_start(call, 0, NULL, NODES_WAIT_MS, NODES_LATE_TEXT);
    if (!w)
        return MHD_NO;
    hub_node_stats_async(the_hub, nodes_answered, w);
    return api_wait_reply(call, w);
}
