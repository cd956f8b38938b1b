/* SPDX-License-Identifier: MIT */
/*
 * presence_api.c - GET /rooms/{room}/presence: {"room", "users": [{"user",
 * "connections"}], "count", "anonymous"}, "users" left out past
 * presence.max_listed. With the memory backplane the hub answers at once;
 * with Redis the request is suspended until the backplane's thread answers
 * (the MHD thread never waits), at most LOOKUP_WAIT_MS (then 504).
 * Waiting lookups are listed (wait_lock) so that the timer (presence_api_tick)
 * and shutdown (presence_api_shutdown) can answer them: libmicrohttpd must
 * not be stopped with a request still suspended. wait_lock is taken with no
 * other lock held.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "gateway/presence_api.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/list.h"

#define LOOKUP_WAIT_MS 10000

static const cfg *conf;
static hub *the_hub;

/* One lookup: the request's, and (until answered) the hub's or backplane's. */
typedef struct lookup {
    atomic_int refs;
    struct MHD_Connection *conn;
    bool suspended; /* wait_lock */
    bool answered;  /* wait_lock */
    unsigned status;
    char *answer; /* JSON text; NULL: out of memory */
    int64_t deadline_ms;
    list_node link; /* in waiting while suspended */
    char room[ROOM_NAME_MAX + 1];
} lookup;

static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static list_node waiting = LIST_INIT(waiting);
static bool stopping;

void presence_api_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
}

static void lookup_unref(lookup *p)
{
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    free(p->answer);
    free(p);
}

/* wait_lock held: the answer (body taken), once; wakes the request. */
static void answer_locked(lookup *p, unsigned status, json_t *body)
{
    if (p->answered) {
        json_decref(body);
        return;
    }
    p->answered = true;
    p->status = status;
    p->answer = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (p->suspended) {
        p->suspended = false;
        list_remove(&p->link);
        MHD_resume_connection(p->conn);
    }
}

static json_t *error_json(const char *text)
{
    return json_pack("{s:s}", "error", text);
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
    lookup *p = arg;
    pthread_mutex_lock(&wait_lock);
    if (rc == -EIO)
        answer_locked(p, MHD_HTTP_SERVICE_UNAVAILABLE,
                      error_json("the backplane (Redis) is unreachable"));
    else if (rc)
        answer_locked(p, MHD_HTTP_INTERNAL_SERVER_ERROR, error_json("out of memory"));
    else
        answer_locked(p, MHD_HTTP_OK, presence_json(p->room, l));
    pthread_mutex_unlock(&wait_lock);
    lookup_unref(p);
}

/* MHD thread: replies when the answer is in, else waits for it. */
static enum MHD_Result reply_or_wait(http_call *call, lookup *p)
{
    pthread_mutex_lock(&wait_lock);
    if (!p->answered && stopping)
        answer_locked(p, MHD_HTTP_SERVICE_UNAVAILABLE, error_json("shutting down"));
    if (!p->answered) {
        p->suspended = true;
        p->deadline_ms = clock_now_ms() + LOOKUP_WAIT_MS;
        list_push_front(&waiting, &p->link);
        MHD_suspend_connection(call->conn);
        pthread_mutex_unlock(&wait_lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&wait_lock);
    if (!p->answer)
        return MHD_NO;
    return http_reply_json(call->conn, p->status, p->answer, strlen(p->answer));
}

enum MHD_Result api_presence(http_call *call)
{
    lookup *p = *call->state;
    if (p) /* resumed: the answer is in */
        return reply_or_wait(call, p);
    p = calloc(1, sizeof(*p));
    if (!p)
        return MHD_NO;
    atomic_init(&p->refs, 2); /* the request's, and the lookup's */
    *call->state = p;
    p->conn = call->conn;
    snprintf(p->room, sizeof(p->room), "%s", call->room);
    hub_presence_get(the_hub, call->room, conf->presence.max_listed, presence_answered, p);
    return reply_or_wait(call, p);
}

void api_presence_completed(void *state)
{
    lookup *p = state;
    pthread_mutex_lock(&wait_lock);
    if (p->suspended) { /* the connection died while waiting */
        p->suspended = false;
        list_remove(&p->link);
    }
    p->answered = true;
    pthread_mutex_unlock(&wait_lock);
    lookup_unref(p);
}

void presence_api_tick(int64_t now_ms)
{
    pthread_mutex_lock(&wait_lock);
    list_for_each_safe (n, next, &waiting) {
        lookup *p = list_entry(n, lookup, link);
        if (now_ms >= p->deadline_ms)
            answer_locked(p, MHD_HTTP_GATEWAY_TIMEOUT,
                          error_json("the backplane (Redis) did not answer in time"));
    }
    pthread_mutex_unlock(&wait_lock);
}

void presence_api_shutdown(void)
{
    pthread_mutex_lock(&wait_lock);
    stopping = true;
    while (!list_empty(&waiting))
        answer_locked(list_entry(waiting.next, lookup, link), MHD_HTTP_SERVICE_UNAVAILABLE,
                      error_json("shutting down"));
    pthread_mutex_unlock(&wait_lock);
}
