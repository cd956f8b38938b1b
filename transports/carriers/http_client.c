/* SPDX-License-Identifier: MIT */
/*
 * http_client.c - the curl thread (see http_client.h). Calls are handed
 * over through `queue` (qlock) and a curl_multi_wakeup; the thread owns the
 * multi handle, every easy handle and the `active` list, and calls each
 * call's done with no lock held. Easy handles are reset and reused, and the
 * multi handle's connection cache keeps connections to the backends alive.
 *
 * Locks: qlock (a leaf) guards queue, started, stopping. in_flight,
 * events_in and dropped are atomics.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/carriers/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/log.h"

#define TAG "upstream"
#define IDLE_HANDLES 64  /* easy handles kept for reuse */
#define MAX_CONNECTS 256 /* connections kept alive in the cache */
#define POLL_MS 1000

typedef struct hc_call {
    list_node link; /* queue (qlock), then active (curl thread) */
    char *url;
    char *body;
    size_t len;
    unsigned timeout_ms;
    bool event;
    hc_done_fn done;
    void *arg;
    CURL *easy;
    buf answer;
    bool too_large;
} hc_call;

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static list_node queue = LIST_INIT(queue); /* qlock */
static bool started, stopping;             /* qlock */
static atomic_bool stop_thread;
static atomic_uint in_flight, events_in;
static atomic_uint_fast64_t dropped;
static hc_options opts;
static CURLM *multi;
static pthread_t thread;
static struct curl_slist *headers;
/* curl thread */
static list_node active = LIST_INIT(active);
static CURL *idle[IDLE_HANDLES];
static size_t nidle;

unsigned hc_in_flight(void)
{
    return atomic_load(&in_flight);
}

uint64_t hc_events_dropped(void)
{
    return atomic_load(&dropped);
}

/* Any thread, no lock: the call's outcome, then it is freed. */
static void finish(hc_call *c, up_transfer t, long status)
{
    if (c->done)
        c->done(c->arg, t, status, c->answer.data ? c->answer.data : "", c->answer.len);
    if (c->event)
        atomic_fetch_sub(&events_in, 1);
    else
        atomic_fetch_sub(&in_flight, 1);
    buf_free(&c->answer);
    free(c->url);
    free(c->body);
    free(c);
}

static size_t on_data(char *ptr, size_t size, size_t n, void *userdata)
{
    hc_call *c = userdata;
    size_t len = size * n;
    if (c->answer.len + len > opts.max_answer_bytes) {
        c->too_large = true;
        return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    return buf_append(&c->answer, ptr, len) ? len : 0;
}

/* curl thread: starts c's transfer. False when it cannot (out of memory). */
static bool begin(hc_call *c)
{
    c->easy = nidle ? idle[--nidle] : curl_easy_init();
    if (!c->easy)
        return false;
    curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
    curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->len);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    if (curl_multi_add_handle(multi, c->easy) != CURLM_OK) {
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
        return false;
    }
    list_push_back(&active, &c->link);
    return true;
}

/* curl thread: c's transfer is over (or abandoned): its handle goes back. */
static void release_handle(hc_call *c)
{
    list_remove(&c->link);
    curl_multi_remove_handle(multi, c->easy);
    if (nidle < IDLE_HANDLES) {
        curl_easy_reset(c->easy);
        idle[nidle++] = c->easy;
    } else {
        curl_easy_cleanup(c->easy);
    }
    c->easy = NULL;
}

static void take_queue(void)
{
    list_node got;
    pthread_mutex_lock(&qlock);
    list_move_all(&got, &queue);
    pthread_mutex_unlock(&qlock);
    list_for_each_safe (n, next, &got) {
        hc_call *c = list_entry(n, hc_call, link);
        list_remove(n);
        if (!begin(c))
            finish(c, UP_SENT_UNAVAILABLE, 0);
    }
}

static void read_done(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        hc_call *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        CURLcode rc = m->data.result;
        long status = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        release_handle(c);
        up_transfer t = rc == CURLE_OK                   ? UP_SENT_OK
                        : rc == CURLE_OPERATION_TIMEDOUT ? UP_SENT_TIMEOUT
                        : c->too_large                   ? UP_SENT_TOO_LARGE
                                                         : UP_SENT_UNAVAILABLE;
        finish(c, t, status);
    }
}

static void *thread_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_thread)) {
        take_queue();
        int running = 0;
        curl_multi_perform(multi, &running);
        read_done();
        curl_multi_poll(multi, NULL, 0, POLL_MS, NULL);
    }
    list_for_each_safe (n, next, &active) { /* abandoned at shutdown */
        hc_call *c = list_entry(n, hc_call, link);
        release_handle(c);
        finish(c, UP_SENT_STOPPED, 0);
    }
    return NULL;
}

int hc_start(const hc_options *o)
{
    opts = *o;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    multi = curl_multi_init();
    headers = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h = headers ? curl_slist_append(headers, "Expect:") : NULL;
    if (h)
        headers = h;
    if (!multi || !h) {
        LOG_ERR(TAG, "cannot set up libcurl");
        return -1;
    }
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)MAX_CONNECTS);
    if (pthread_create(&thread, NULL, thread_main, NULL)) {
        LOG_ERR(TAG, "cannot start the upstream thread");
        return -1;
    }
    pthread_mutex_lock(&qlock);
    started = true;
    pthread_mutex_unlock(&qlock);
    return 0;
}

void hc_post(const char *url, char *body, size_t len, unsigned timeout_ms, bool event,
             hc_done_fn done, void *arg)
{
    up_transfer refused = UP_SENT_OK;
    if (event && atomic_fetch_add(&events_in, 1) >= opts.events_queue) {
        atomic_fetch_sub(&events_in, 1);
        atomic_fetch_add(&dropped, 1);
        free(body);
        return;
    }
    if (!event && atomic_fetch_add(&in_flight, 1) >= opts.max_in_flight)
        refused = UP_SENT_BUSY;
    hc_call *c = calloc(1, sizeof(*c));
    if (c) {
        c->url = strdup(url);
        c->body = body;
        c->len = len;
        c->timeout_ms = timeout_ms;
        c->event = event;
        c->done = done;
        c->arg = arg;
    }
    if (!c || !c->url || !body) {
        if (c)
            free(c->url);
        free(c);
        free(body);
        if (event) {
            atomic_fetch_sub(&events_in, 1);
            atomic_fetch_add(&dropped, 1);
        } else {
            atomic_fetch_sub(&in_flight, 1);
            if (done)
                done(arg, UP_SENT_UNAVAILABLE, 0, "", 0);
        }
        return;
    }
    if (refused) {
        finish(c, refused, 0);
        return;
    }
    pthread_mutex_lock(&qlock);
    bool open = started && !stopping;
    if (open) {
        list_push_back(&queue, &c->link);
        curl_multi_wakeup(multi); /* under qlock: hc_stop frees multi only after stopping is set */
    }
    pthread_mutex_unlock(&qlock);
    if (!open)
        finish(c, UP_SENT_STOPPED, 0);
}

void hc_stop(void)
{
    pthread_mutex_lock(&qlock);
    bool was = started && !stopping;
    stopping = true;
    pthread_mutex_unlock(&qlock);
    if (!was)
        return;
    atomic_store(&stop_thread, true);
    curl_multi_wakeup(multi);
    pthread_join(thread, NULL);
    list_node left;
    pthread_mutex_lock(&qlock);
    list_move_all(&left, &queue);
    pthread_mutex_unlock(&qlock);
    list_for_each_safe (n, next, &left) {
        list_remove(n);
        finish(list_entry(n, hc_call, link), UP_SENT_STOPPED, 0);
    }
    while (nidle)
        curl_easy_cleanup(idle[--nidle]);
    curl_multi_cleanup(multi);
    multi = NULL;
    curl_slist_free_all(headers);
    headers = NULL;
    curl_global_cleanup();
}
