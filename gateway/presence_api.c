/* SPDX-License-Identifier: MIT */
/*
 * presence_api.c - GET /rooms/{room}/presence: {"room", "users": [{"user",
 * "connections"}], "count", "anonymous"}, "users" left out past
 * presence.max_listed. With the memory backplane the hub answers at once;
 * with Redis the request is suspended until the backplane's thread answers
 * (the MHD thread never waits; api_wait.h), at most LOOKUP_WAIT_MS (then
 * 504).
 *
 * Threads and locks: docs/concurrency.md
 */
#include "gateway/presence_api.h"

#include <errno.h>
#include <stdio.h>

#include <jansson.h>

#include "gateway/api_wait.h"

#define LOOKUP_WAIT_MS 10000
#define LOOKUP_LATE_TEXT "the backplane (Redis) did not answer in time"

static const cfg *conf;
static hub *the_hub;

/* One lookup: the data of its api_wait. */
typedef struct lookup {
    char room[ROOM_NAME_MAX + 1];
} lookup;

void presence_api_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

static json_t *error_json(const char *text)
{
    return api_wait_error(text);
}

static json_t *presence_json(const char *room, const presence_list *l)
{
    json_t *o = json_pack("{s:s,s:I,s:I}", "room", room, "count", (json_int_t)l->users, "anonymous",
                          (json_int_t)l->anonymous);
    if (!o || !l->listed)
        return o;
    json_t *users = json_array();
    for (size_t i = 0; users && i < l->n; i++)
        json_array_append_new(users, json_pack("{s:s,s:I}", "user", l->v[i].user, "connections",
                                               (json_int_t)l->v[i].connections));
    if (!users || json_object_set_new(o, "users", users)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Any thread, no lock held: the hub's or the backplane's answer. */
static void presence_answered(void *arg, int rc, const presence_list *l)
{
    api_wait *w = arg;
    const lookup *p = api_wait_data(w);
    if (rc == -EIO)
        api_wait_answer_json(w, MHD_HTTP_SERVICE_UNAVAILABLE,
                             error_json("the backplane (Redis) is unreachable"));
    else if (rc)
        api_wait_answer_json(w, MHD_HTTP_INTERNAL_SERVER_ERROR, error_json("out of memory"));
    else
        api_wait_answer_json(w, MHD_HTTP_OK, presence_json(p->room, l));
}

enum MHD_Result api_presence(http_call *call)
{
    if (*call->state) /* resumed: the answer is in */
        return api_wait_reply(call, *call->state);
    api_wait *w = api_wait_start(call, sizeof(lookup), NULL, LOOKUP_WAIT_MS, LOOKUP_LATE_TEXT);
    if (!w)
        return MHD_NO;
    lookup *p = api_wait_data(w);
    snprintf(p->room, sizeof(p->room), "%s", call->room);
    hub_presence_get(the_hub, call->room, conf->presence.max_listed, presence_answered, w);
    return api_wait_reply(call, w);
}
