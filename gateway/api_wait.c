/* SPDX-License-Identifier: MIT */
/*
 * api_wait.c - API requests answered later from another thread (api_wait.h):
 * the answer (first wins), the suspended requests' list (wait_lock), their
 * deadlines (api_wait_tick, timer thread) and shutdown (api_wait_shutdown,
 * main thread). A request is resumed from the thread that answers it.
 * wait_lock is taken with no other lock held.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "gateway/api_wait.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/list.h"

/* Fields below conn are guarded by wait_lock once the request is sent. */
struct api_wait {
    atomic_int refs; /* the request's, and the answer's once sent */
    void (*data_free)(void *data);
    struct MHD_Connection *conn;
    int64_t wait_ms;
    const char *late_text; /* the 504's; NULL: no deadline */
    bool sent;             /* MHD thread */
    bool suspended;        /* the request waits for the answer */
    bool answered;
    unsigned status;
    unsigned retry_after_s; /* 0: no Retry-After header */
    char *answer;           /* JSON text, malloc'd; NULL: out of memory */
    int64_t deadline_ms;
    list_node link; /* in waiting while suspended */
    alignas(max_align_t) unsigned char data[];
};

static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static list_node waiting = LIST_INIT(waiting); /* wait_lock: newest first */
static bool stopping;                          /* wait_lock: answer at once from now on */

static void unref(api_wait *w)
{
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    if (w->data_free)
        w->data_free(w->data);
    free(w->answer);
    free(w);
}

/* wait_lock held: sets the answer (text taken) once and wakes the request. */
static void answer_locked(api_wait *w, unsigned status, char *text)
{
    if (w->answered) {
        free(text);
        return;
    }
    w->answered = true;
    w->status = status;
    w->answer = text; /* before the resumed request runs: it takes wait_lock */
    if (w->suspended) {
        w->suspended = false;
        list_remove(&w->link);
        MHD_resume_connection(w->conn);
    }
}

json_t *api_wait_error(const char *text)
{
    return json_pack("{s:s}", "error", text);
}

/* wait_lock held: answer_locked with {"error": text}. */
static void answer_error_locked(api_wait *w, unsigned status, const char *text)
{
    if (w->answered)
        return;
    json_t *body = api_wait_error(text);
    answer_locked(w, status, body ? json_dumps(body, JSON_COMPACT) : NULL);
    json_decref(body);
}

api_wait *api_wait_new(http_call *call, size_t data_size, void (*data_free)(void *data))
{
    api_wait *w = calloc(1, sizeof(*w) + data_size);
    if (!w)
        return NULL;
    atomic_init(&w->refs, 1);
    w->data_free = data_free;
    w->conn = call->conn;
    *call->state = w;
    return w;
}

void *api_wait_data(api_wait *w)
{
    return w->data;
}

bool api_wait_sent(const api_wait *w)
{
    return w->sent;
}

void api_wait_send(api_wait *w, int64_t wait_ms, const char *late_text)
{
    w->sent = true;
    w->wait_ms = wait_ms;
    w->late_text = late_text;
    atomic_fetch_add(&w->refs, 1); /* the answer's */
}

api_wait *api_wait_start(http_call *call, size_t data_size, void (*data_free)(void *data),
                         int64_t wait_ms, const char *late_text)
{
    api_wait *w = api_wait_new(call, data_size, data_free);
    if (w)
        api_wait_send(w, wait_ms, late_text);
    return w;
}

void api_wait_answer(api_wait *w, unsigned status, char *text)
{
    pthread_mutex_lock(&wait_lock);
    answer_locked(w, status, text);
    pthread_mutex_unlock(&wait_lock);
    unref(w);
}

void api_wait_answer_retry(api_wait *w, unsigned status, const char *error, unsigned retry_after_s)
{
    json_t *body = api_wait_error(error);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    pthread_mutex_lock(&wait_lock);
    if (!w->answered)
        w->retry_after_s = retry_after_s;
    answer_locked(w, status, text);
    pthread_mutex_unlock(&wait_lock);
    unref(w);
}

bool api_wait_is_answered(api_wait *w)
{
    pthread_mutex_lock(&wait_lock);
    bool answered = w->answered;
    pthread_mutex_unlock(&wait_lock);
    return answered;
}

void api_wait_answer_json(api_wait *w, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    api_wait_answer(w, status, text);
}

void api_wait_cancel(api_wait *w)
{
    unref(w);
}

enum MHD_Result api_wait_reply(http_call *call, api_wait *w)
{
    pthread_mutex_lock(&wait_lock);
    if (!w->answered && stopping)
        answer_error_locked(w, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
    if (!w->answered) {
        w->suspended = true;
        w->deadline_ms = clock_now_ms() + w->wait_ms;
        list_push_front(&waiting, &w->link);
        MHD_suspend_connection(call->conn);
        pthread_mutex_unlock(&wait_lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&wait_lock);
    if (!w->answer)
        return MHD_NO; /* out of memory: close */
    if (!w->retry_after_s)
        return http_reply_json(call->conn, w->status, w->answer, strlen(w->answer));
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(w->answer), w->answer, MHD_RESPMEM_MUST_COPY);
    char v[16];
    snprintf(v, sizeof(v), "%u", w->retry_after_s);
    if (r)
        MHD_add_response_header(r, "Retry-After", v);
    return http_queue_uncached(call->conn, w->status, r, "application/json");
}

void api_wait_completed(void *state)
{
    api_wait *w = state;
    pthread_mutex_lock(&wait_lock);
    if (w->suspended) { /* the connection died while waiting (MHD resumes it to end it) */
        w->suspended = false;
        list_remove(&w->link);
    }
    w->answered = true; /* nobody to answer any more */
    pthread_mutex_unlock(&wait_lock);
    unref(w);
}

void api_wait_tick(int64_t now_ms)
{
    pthread_mutex_lock(&wait_lock);
    list_for_each_safe (n, next, &waiting) {
        api_wait *w = list_entry(n, api_wait, link);
        if (w->late_text && now_ms >= w->deadline_ms)
            answer_error_locked(w, MHD_HTTP_GATEWAY_TIMEOUT, w->late_text);
    }
    pthread_mutex_unlock(&wait_lock);
}

void api_wait_shutdown(void)
{
    pthread_mutex_lock(&wait_lock);
    stopping = true;
    while (!list_empty(&waiting))
        answer_error_locked(list_entry(waiting.next, api_wait, link), MHD_HTTP_SERVICE_UNAVAILABLE,
                            "shutting down");
    pthread_mutex_unlock(&wait_lock);
}
