/* SPDX-License-Identifier: MIT */
/*
 * signalr/cluster.c - SignalR connections across nodes, with a shared
 * backplane and no sticky sessions (see signalr/private.h).
 *
 * A connection lives on one node: the one that first carried it (its SSE
 * stream, its first long poll, its WebSocket), which claims its token in
 * the backplane. Negotiate creates nothing, so it may land anywhere. A
 * request for a token this node does not hold (a POST, a DELETE, a later
 * long poll) asks the backplane who owns it and is forwarded to that node
 * through the backplane; the owner answers back the same way, and this
 * node answers the request. A long poll forwarded so is held by the owner
 * as a remote poll (signalr/transports.c).
 *
 * A dead owner is found at once: every message to the owner is a counted
 * PUBLISH, and 0 receivers (the node is gone, or cut off from Redis) ends
 * the request 404 "no such connection", as ASP.NET answers an unknown
 * connection, so the client starts a new one rather than waiting. An owner
 * that dies while it holds a request (a long poll) is found by the probes
 * the timer sends every PROBE_EVERY_MS to each node that requests wait for
 * (one counted PUBLISH per node, not per request).
 *
 * Node messages are one header line and a body:
 *   "send|close|poll REQ FROM HUBPATH TOKEN WHO EXP KEY\n" body (to the owner)
 *   "reply REQ STATUS\n" body                                    (back to FROM)
 *   "probe\n"                          (is the owner alive? ignored by it)
 * WHO and EXP say who the request proved to be: the node that received it
 * authenticated it (the gateway did), and the owner checks that it is the
 * connection's user (sr_conn_admit): WHO is "-" (anonymous, or an API key)
 * or "t" and the token's user id in hex ("t" alone: a token without sub);
 * EXP the token's expiry (principal expires_ms, 0 none), which a refreshed
 * token moves the connection's deadline to; KEY a poll's "_" ("-" none:
 * signalr/transports.c, what a poll confirms). The token's room rights stay
 * on the node that received it: a forwarded request carries records and
 * polls, not rights (the owner keeps the connection's principal).
 *
 * Threading: handlers run on the MHD thread of the request's daemon (any of
 * the three: http.c), backplane callbacks and node
 * messages on the backplane's thread, sr_cluster_tick on the timer. A
 * forwarded request is found by its number, under fwd_lock, which also
 * guards every field marked so; status and answer are written under it
 * before done, and read by the request's MHD thread once it saw done.
 * `started` is the MHD thread's own. fwd_lock is let go before the
 * backplane is asked (claim and offer may answer at once).
 *
 * Threads and locks: docs/concurrency.md
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json_text.h"
#include "common/list.h"
#include "common/log.h"
#include "transports/carriers/publish_pace.h"
#include "transports/signalr/private.h"

#define TAG "signalr"
#define FWD_BUCKETS 1024
#define NODE_HEAD_MAX 1024 /* bytes: the first line of a message from another node */
#define FWD_USER_MAX 256   /* bytes of a user id a forwarded request carries (longer: 403) */
#define FWD_WHO_MAX (2 * FWD_USER_MAX + 2) /* "t" and the user id in hex, NUL */
#define FORWARD_WAIT_MS 10000 /* a forwarded send or close; polls: poll timeout + this */
#define PROBE_EVERY_MS 1000   /* the owners of waiting requests are probed this often */
#define PROBE_NODES_MAX 16    /* owners probed in one round (the rest: the next rounds) */

static const cfg *conf;
static backplane *bp;

typedef enum { FWD_STREAM, FWD_POLL, FWD_POST, FWD_DELETE, FWD_NEGOTIATE } fwd_kind;

struct sr_fwd {
    uint64_t id;
    fwd_kind kind;
    const cfg_hub *hub;
    char token[TOKEN_LEN + 1];
    struct MHD_Connection *conn;
    char who[FWD_WHO_MAX];              /* the request's principal, as the node message says it */
    char poll_key[SR_POLL_KEY_MAX + 1]; /* a poll's "_" (signalr/transports.c), or "" */
    char owner[BP_NODE_ID_LEN + 1];     /* fwd_lock: the node it went to */
    int64_t expires_ms;
    http_body body;    /* a POST's, read before it is forwarded */
    pace_request pace; /* a POST's wait for the fanout backlog, before it is forwarded */
    bool started;      /* fwd_lock: asked the backplane */
    bool suspended;    /* fwd_lock */
    bool done;         /* fwd_lock: answered (status, answer) or local */
    bool local;        /* fwd_lock: this node owns it: the request goes on here */
    unsigned status;
    char *answer; /* malloc'd, answer_len bytes */
    size_t answer_len;
    char *negotiated; /* FWD_NEGOTIATE: the answer once the token is offered */
    int64_t deadline;
    struct sr_fwd *bucket_next; /* fwd_lock, while not done */
    list_node link;             /* fwd_lock: in fwd_all while not done */
};

static pthread_mutex_t fwd_lock = PTHREAD_MUTEX_INITIALIZER;
static sr_fwd *fwd_buckets[FWD_BUCKETS];
static list_node fwd_all = LIST_INIT(fwd_all); /* fwd_lock: newest first */
static uint64_t fwd_next_id = 1;               /* fwd_lock */
static bool fwd_stopping;                      /* fwd_lock */

bool sr_clustered(void)
{
    return bp != NULL;
}

const char *sr_node_id(void)
{
    return bp ? bp->node_id : "";
}

bool sr_token_is_valid(const char *t)
{
    if (!t || strlen(t) != TOKEN_LEN)
        return false;
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') ||
              *t == '-' || *t == '_'))
            return false;
    return true;
}

/* ----------------------------------------------------- forwarded requests */

/* fwd_lock held. */
static void fwd_link(sr_fwd *f)
{
    f->id = fwd_next_id++;
    uint32_t k = (uint32_t)(f->id % FWD_BUCKETS);
    f->bucket_next = fwd_buckets[k];
    fwd_buckets[k] = f;
    list_push_front(&fwd_all, &f->link);
}

/* fwd_lock held. Idempotent. */
static void fwd_unlink(sr_fwd *f)
{
    sr_fwd **pp = &fwd_buckets[f->id % FWD_BUCKETS];
    while (*pp && *pp != f)
        pp = &(*pp)->bucket_next;
    if (!*pp)
        return;
    *pp = f->bucket_next;
    f->bucket_next = NULL;
    list_remove(&f->link);
}

static sr_fwd *fwd_find(uint64_t id)
{
    for (sr_fwd *f = fwd_buckets[id % FWD_BUCKETS]; f; f = f->bucket_next)
        if (f->id == id)
            return f;
    return NULL;
}

/* fwd_lock held: the request has its answer (or goes on locally): it is
 * resumed, and found by number no more. */
static void fwd_finish(sr_fwd *f, unsigned status, const char *body, size_t len)
{
    if (f->done)
        return;
    f->done = true;
    f->status = status;
    if (len && (f->answer = malloc(len)) != NULL) {
        memcpy(f->answer, body, len);
        f->answer_len = len;
    }
    fwd_unlink(f);
    if (f->suspended) {
        f->suspended = false;
        MHD_resume_connection(f->conn);
    }
}

static void fwd_finish_error(sr_fwd *f, unsigned status, const char *error)
{
    size_t n = 0;
    char *body = json_error_body(error, &n);
    fwd_finish(f, body ? status : MHD_HTTP_INTERNAL_SERVER_ERROR, body, n);
    free(body);
}

static const char *op_name(fwd_kind k)
{
    return k == FWD_POST ? "send" : k == FWD_DELETE ? "close" : "poll";
}

/* fwd_lock held: the request as a node message to its owner (*out), or
 * false (out of memory: answered 503). */
static bool fwd_message(sr_fwd *f, buf *out)
{
    char head[NODE_HEAD_MAX];
    int n = snprintf(head, sizeof(head), "%s %" PRIu64 " %s %s %s %s %" PRId64 " %s\n",
                     op_name(f->kind), f->id, bp->node_id, f->hub->path, f->token, f->who,
                     f->expires_ms, f->poll_key[0] ? f->poll_key : "-");
    bool ok =
        n > 0 && (size_t)n < sizeof(head) && buf_append(out, head, (size_t)n) &&
        (f->kind != FWD_POST || !f->body.b.len || buf_append(out, f->body.b.data, f->body.b.len));
    if (!ok)
        fwd_finish_error(f, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    return ok;
}

/* Backplane thread (or the caller's, out of memory): how many nodes got a
 * forwarded request, or the probe of a stream's owner. None: the owner is
 * gone (killed, or cut off from Redis), and the request is answered at once
 * as ASP.NET answers one for an unknown connection (404), which makes the
 * client start a new connection; a live owner of a stream: 409. */
static void on_delivered(void *arg, long nodes)
{
    pthread_mutex_lock(&fwd_lock);
    sr_fwd *f = fwd_find((uint64_t)(uintptr_t)arg);
    if (f && nodes == 0) {
        LOG_INFO(TAG, "a request for a connection of node %s answered 404: that node is gone",
                 f->owner);
        fwd_finish_error(f, MHD_HTTP_NOT_FOUND, "no such connection");
    } else if (f && nodes < 0) {
        fwd_finish_error(f, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "the backplane (Redis) is unreachable: cannot reach the connection");
    } else if (f && f->kind == FWD_STREAM) {
        fwd_finish_error(f, MHD_HTTP_CONFLICT,
                         "this connection is carried by another stream already");
    }
    pthread_mutex_unlock(&fwd_lock);
}

/* No lock held: sends out (a request, or a probe) to owner, counted. */
static void fwd_deliver(uint64_t id, const char *owner, const buf *out)
{
    if (bp->ops->node_send_counted)
        bp->ops->node_send_counted(bp, owner, out->data, out->len, on_delivered,
                                   (void *)(uintptr_t)id);
    else
        bp->ops->node_send(bp, owner, out->data, out->len);
}

/* Backplane thread: who owns the token. arg: the request's number. A
 * request for another node goes there (a stream's: a probe, is it alive),
 * counted, with fwd_lock let go (the count may come at once). */
static void on_owner(void *arg, int rc, const char *owner)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    buf out = {0};
    bool deliver = false;
    pthread_mutex_lock(&fwd_lock);
    sr_fwd *f = fwd_find(id);
    if (!f) {
        /* answered meanwhile (timeout, shutdown) */
    } else if (rc == -ENOENT) { /* closed: what a late request on its own node gets */
        if (f->kind == FWD_POLL)
            fwd_finish(f, MHD_HTTP_NO_CONTENT, NULL, 0);
        else
            fwd_finish_error(f, MHD_HTTP_NOT_FOUND, "no such connection");
    } else if (rc) {
        fwd_finish_error(f, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "the backplane (Redis) is unreachable: cannot find the connection");
    } else if (!*owner) {
        fwd_finish_error(f, MHD_HTTP_NOT_FOUND, "no such connection");
    } else if (!strcmp(owner, bp->node_id)) {
        f->local = true; /* ours: the request goes on here */
        fwd_finish(f, 0, NULL, 0);
    } else {
        snprintf(f->owner, sizeof(f->owner), "%s", owner);
        if (f->kind == FWD_STREAM) { /* a probe: the owner ignores it */
            deliver = buf_append(&out, "probe\n", 6);
            if (!deliver)
                fwd_finish_error(f, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        } else {
            deliver = fwd_message(f, &out);
        }
    }
    pthread_mutex_unlock(&fwd_lock);
    if (deliver)
        fwd_deliver(id, owner, &out);
    buf_free(&out);
}

/* Backplane thread: a negotiated token is known to every node now. */
static void on_offered(void *arg, int rc, const char *owner)
{
    (void)owner;
    pthread_mutex_lock(&fwd_lock);
    sr_fwd *f = fwd_find((uint64_t)(uintptr_t)arg);
    if (f && rc)
        fwd_finish_error(f, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "the backplane (Redis) is unreachable: cannot negotiate now");
    else if (f)
        fwd_finish(f, MHD_HTTP_OK, f->negotiated, strlen(f->negotiated));
    pthread_mutex_unlock(&fwd_lock);
}

/* MHD thread: asks the backplane who owns the token, and suspends the
 * request until the answer (or the owner's) arrives. */
static enum MHD_Result fwd_start(http_call *call, sr_fwd *f)
{
    bool take = f->kind == FWD_STREAM || f->kind == FWD_POLL; /* may make it here */
    pthread_mutex_lock(&fwd_lock);
    if (fwd_stopping) {
        pthread_mutex_unlock(&fwd_lock);
        return http_reply_error(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
    }
    fwd_link(f);
    f->started = true;
    f->deadline = clock_now_ms() + FORWARD_WAIT_MS +
                  (f->kind == FWD_POLL ? (int64_t)conf->limits.poll_timeout_s * MS_PER_S : 0);
    f->suspended = true;
    MHD_suspend_connection(call->conn);
    uint64_t id = f->id;
    pthread_mutex_unlock(&fwd_lock);
    if (f->kind == FWD_NEGOTIATE)
        bp->ops->offer(bp, f->token, (int64_t)conf->signalr.disconnect_timeout_s * MS_PER_S,
                       on_offered, (void *)(uintptr_t)id);
    else
        bp->ops->claim(bp, f->token, take, SR_OWNER_TTL_MS, on_owner, (void *)(uintptr_t)id);
    return MHD_YES;
}

sr_fwd *sr_fwd_negotiate(http_call *call, const cfg_hub *hb, const char *token, const char *answer)
{
    sr_fwd *f = calloc(1, sizeof(*f));
    if (!f || !(f->negotiated = strdup(answer))) {
        free(f);
        return NULL;
    }
    f->kind = FWD_NEGOTIATE;
    f->hub = hb;
    f->conn = call->conn;
    snprintf(f->token, sizeof(f->token), "%s", token);
    return f;
}

/* The principal as a node message says it (WHO): "-", or "t" + hex user. */
static void who_encode(const access_principal *who, char out[FWD_WHO_MAX])
{
    static const char hex[] = "0123456789abcdef";
    if (!who || !who->token) {
        snprintf(out, FWD_WHO_MAX, "-");
        return;
    }
    size_t o = 0;
    out[o++] = 't';
    const char *u = who->user ? who->user : "";
    size_t n = strlen(u);
    if (n > FWD_USER_MAX) { /* no such user can match: the owner refuses it */
        u = "\x01";
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        out[o++] = hex[(unsigned char)u[i] >> 4];
        out[o++] = hex[(unsigned char)u[i] & 15];
    }
    out[o] = '\0';
}

/* The principal a node message names (user and exp only: a token's, with
 * no rights), or NULL for "-" (or on ENOMEM, or a malformed WHO: then it
 * counts as anonymous). */
static access_principal *who_decode(const char *w, int64_t expires_ms)
{
    if (w[0] != 't')
        return NULL;
    size_t n = strlen(w + 1);
    if (n % 2 || n / 2 > FWD_USER_MAX)
        return NULL;
    char user[FWD_USER_MAX + 1];
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(w + 1 + 2 * i, "%2x", &v) != 1)
            return NULL;
        user[i] = (char)v;
    }
    user[n / 2] = '\0';
    return access_principal_new(n ? user : NULL, expires_ms, true, false);
}

sr_fwd *sr_fwd_new(http_call *call, const cfg_hub *hb, const char *token)
{
    sr_fwd *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    who_encode(call->who, f->who);
    f->expires_ms = call->who ? call->who->expires_ms : 0;
    bool stream = http_wants_event_stream(call->conn);
    f->kind = !strcmp(call->method, "POST")     ? FWD_POST
              : !strcmp(call->method, "DELETE") ? FWD_DELETE
              : stream                          ? FWD_STREAM
                                                : FWD_POLL;
    f->hub = hb;
    f->conn = call->conn;
    snprintf(f->token, sizeof(f->token), "%s", token);
    if (f->kind == FWD_POLL)
        sr_poll_key(call, f->poll_key);
    return f;
}

enum MHD_Result sr_fwd_step(http_call *call, sr_fwd *f, bool *go_local)
{
    *go_local = false;
    if (!f->started) {
        if (f->kind == FWD_POST && *call->upload_size)
            return http_body_take(&f->body, call, conf->limits.max_message_bytes) ? MHD_YES
                                                                                  : MHD_NO;
        if (f->body.too_big)
            return http_reply_error(call->conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                    "message is larger than limits.max_message_bytes");
        pace_req_state paced =
            f->kind == FWD_POST
                ? publish_pace_request(&f->pace, call->conn, (int64_t)conf->limits.publish_wait_ms,
                                       PACE_SIGNALR_HTTP, NULL, NULL)
                : PACE_REQ_NOW;
        if (paced == PACE_REQ_WAIT)
            return MHD_YES;
        if (paced == PACE_REQ_REFUSED)
            return sr_refuse_paced(call->conn);
        return fwd_start(call, f);
    }
    pthread_mutex_lock(&fwd_lock);
    bool done = f->done, local = f->local;
    pthread_mutex_unlock(&fwd_lock);
    if (!done)
        return MHD_YES; /* not resumed by us */
    if (local) {
        *go_local = true;
        return MHD_YES;
    }
    if (f->status == MHD_HTTP_NO_CONTENT || (!f->answer_len && f->status != MHD_HTTP_OK))
        return http_reply_empty(call->conn, f->status);
    bool json = f->answer_len && f->answer[0] == '{' &&
                (f->status != MHD_HTTP_OK || f->kind == FWD_NEGOTIATE);
    char *body = f->answer;
    f->answer = NULL;
    return http_reply_take(call->conn, f->status,
                           json ? "application/json" : "application/octet-stream", body,
                           f->answer_len);
}

void sr_fwd_free(sr_fwd *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&fwd_lock);
    fwd_unlink(f);
    pthread_mutex_unlock(&fwd_lock);
    buf_free(&f->body.b);
    free(f->answer);
    free(f->negotiated);
    free(f);
}

/* ------------------------------------------------------------ the owner */

/* Answers a forwarded request (any thread). */
void sr_cluster_reply(const char *to, uint64_t req, unsigned status, const char *body, size_t len)
{
    buf out = {0};
    char head[64];
    int n = snprintf(head, sizeof(head), "reply %" PRIu64 " %u\n", req, status);
    if (buf_append(&out, head, (size_t)n) && (!len || buf_append(&out, body, len)))
        bp->ops->node_send(bp, to, out.data, out.len);
    buf_free(&out);
}

static void reply_error(const char *to, uint64_t req, unsigned status, const char *error)
{
    size_t n = 0;
    char *body = json_error_body(error, &n);
    sr_cluster_reply(to, req, body ? status : MHD_HTTP_INTERNAL_SERVER_ERROR, body, n);
    free(body);
}

/* A send (POST body) for a connection held here. */
static void owner_send(sr_conn *c, const char *from, uint64_t req, const char *body, size_t len)
{
    pthread_mutex_lock(&c->s.lock);
    sr_transport t = c->transport;
    bool closed = c->closed;
    pthread_mutex_unlock(&c->s.lock);
    if (closed || t == TR_NONE)
        return reply_error(from, req, MHD_HTTP_NOT_FOUND, "no such connection");
    if (t == TR_WS)
        return reply_error(from, req, MHD_HTTP_METHOD_NOT_ALLOWED,
                           "this connection sends over its WebSocket");
    sr_conn_receive(c, body, len);
    sr_cluster_reply(from, req, MHD_HTTP_OK, NULL, 0);
}

static void owner_close(sr_conn *c, const char *from, uint64_t req)
{
    pthread_mutex_lock(&c->s.lock);
    bool lp = c->transport == TR_LP;
    pthread_mutex_unlock(&c->s.lock);
    if (!lp)
        return reply_error(from, req, MHD_HTTP_BAD_REQUEST,
                           "DELETE closes long-polling connections only");
    sr_conn_close(c, NULL, false);
    sr_cluster_reply(from, req, MHD_HTTP_ACCEPTED, NULL, 0);
}

/* Backplane thread: a message from another node. */
static void on_node_message(void *arg, const char *data, size_t len)
{
    (void)arg;
    const char *nl = memchr(data, '\n', len);
    if (!nl || nl - data >= NODE_HEAD_MAX)
        return;
    char head[NODE_HEAD_MAX], op[8] = "", from[BP_NODE_ID_LEN + 1] = "", path[CFG_PATH_MAX] = "",
                              token[TOKEN_LEN + 2] = "", who[FWD_WHO_MAX + 1] = "",
                              key[SR_POLL_KEY_MAX + 2] = "";
    long long expires_ms = 0;
    memcpy(head, data, (size_t)(nl - data));
    head[nl - data] = '\0';
    const char *body = nl + 1;
    size_t body_len = len - (size_t)(nl + 1 - data);
    unsigned long long req = 0;
    unsigned status = 0;
    if (sscanf(head, "reply %llu %u", &req, &status) == 2) {
        pthread_mutex_lock(&fwd_lock);
        sr_fwd *f = fwd_find(req);
        if (f)
            fwd_finish(f, status, body, body_len);
        pthread_mutex_unlock(&fwd_lock);
        return;
    }
    /* KEY (a poll's) came later: a node without it sends 7 fields. */
    int fields = sscanf(head, "%7s %llu %12s %127s %23s %514s %lld %33s", op, &req, from, path,
                        token, who, &expires_ms, key);
    if (fields < 7)
        return;
    if (fields < 8 || !strcmp(key, "-") || strlen(key) > SR_POLL_KEY_MAX)
        key[0] = '\0';
    const cfg_hub *hb = sr_hub_at(path);
    sr_conn *c = hb && sr_token_is_valid(token) ? sr_conn_find(hb, token) : NULL;
    if (!c) {
        if (!strcmp(op, "poll"))
            sr_cluster_reply(from, req, MHD_HTTP_NO_CONTENT, NULL, 0);
        else
            reply_error(from, req, MHD_HTTP_NOT_FOUND, "no such connection");
        return;
    }
    access_principal *p = who_decode(who, (int64_t)expires_ms);
    const char *error = NULL;
    unsigned refused = sr_conn_admit(c, p, false, &error);
    access_unref(p);
    if (refused) {
        reply_error(from, req, refused, error);
        sr_conn_unref(c);
        return;
    }
    if (!strcmp(op, "send"))
        owner_send(c, from, req, body, body_len);
    else if (!strcmp(op, "close"))
        owner_close(c, from, req);
    else if (!strcmp(op, "poll"))
        sr_remote_poll(c, from, req, key); /* takes the ref */
    if (strcmp(op, "poll"))
        sr_conn_unref(c);
}

/* --------------------------------------------------------------- set-up */

void sr_cluster_init(const cfg *c, backplane *b)
{
    conf = c;
    bp = b;
    if (bp)
        bp->ops->on_node_message(bp, on_node_message, NULL);
}

void sr_cluster_claim(const char *token, bp_owner_fn cb, void *arg)
{
    bp->ops->claim(bp, token, true, SR_OWNER_TTL_MS, cb, arg);
}

void sr_cluster_touch(const char *token)
{
    if (bp)
        bp->ops->touch(bp, token, SR_OWNER_TTL_MS);
}

void sr_cluster_probe(const char *node, bp_count_fn cb, void *arg)
{
    if (bp->ops->node_send_counted)
        bp->ops->node_send_counted(bp, node, "probe\n", 6, cb, arg);
    else
        cb(arg, 1); /* cannot tell: taken as alive */
}

void sr_cluster_release(const char *token)
{
    if (bp)
        bp->ops->release(bp, token, (int64_t)conf->signalr.disconnect_timeout_s * MS_PER_S);
}

/* Backplane thread (or the caller's): a probe of a node requests wait for;
 * none got it: each of them is answered 404. arg: the node id, malloc'd. */
static void on_probed(void *arg, long nodes)
{
    char *node = arg;
    if (nodes == 0) {
        pthread_mutex_lock(&fwd_lock);
        unsigned n = 0;
        list_for_each_safe (it, next, &fwd_all) {
            sr_fwd *f = list_entry(it, sr_fwd, link);
            if (!strcmp(f->owner, node)) {
                fwd_finish_error(f, MHD_HTTP_NOT_FOUND, "no such connection");
                n++;
            }
        }
        pthread_mutex_unlock(&fwd_lock);
        if (n)
            LOG_INFO(TAG, "node %s is gone: %u request(s) waiting for it answered 404", node, n);
    }
    free(node);
}

/* Timer thread: probes the nodes that requests wait for (at most
 * PROBE_NODES_MAX a round, each once). */
static void probe_owners(int64_t now_ms)
{
    static int64_t next_ms; /* timer thread */
    if (now_ms < next_ms)
        return;
    next_ms = now_ms + PROBE_EVERY_MS;
    char owners[PROBE_NODES_MAX][BP_NODE_ID_LEN + 1];
    size_t n = 0;
    pthread_mutex_lock(&fwd_lock);
    list_for_each_safe (it, next, &fwd_all) {
        sr_fwd *f = list_entry(it, sr_fwd, link);
        bool seen = !f->owner[0];
        for (size_t i = 0; i < n && !seen; i++)
            seen = !strcmp(owners[i], f->owner);
        if (!seen && n < PROBE_NODES_MAX)
            memcpy(owners[n++], f->owner, sizeof(owners[0]));
    }
    pthread_mutex_unlock(&fwd_lock);
    for (size_t i = 0; i < n; i++) {
        char *node = strdup(owners[i]);
        if (node)
            sr_cluster_probe(node, on_probed, node);
    }
}

void sr_cluster_tick(int64_t now_ms)
{
    if (bp)
        probe_owners(now_ms);
    pthread_mutex_lock(&fwd_lock);
    list_for_each_safe (n, next, &fwd_all) {
        sr_fwd *f = list_entry(n, sr_fwd, link);
        if (now_ms >= f->deadline)
            fwd_finish_error(f, MHD_HTTP_GATEWAY_TIMEOUT,
                             "the node holding this connection did not answer in time");
    }
    pthread_mutex_unlock(&fwd_lock);
}

void sr_cluster_shutdown(void)
{
    pthread_mutex_lock(&fwd_lock);
    fwd_stopping = true;
    while (!list_empty(&fwd_all))
        fwd_finish_error(list_entry(fwd_all.next, sr_fwd, link), MHD_HTTP_SERVICE_UNAVAILABLE,
                         "shutting down");
    pthread_mutex_unlock(&fwd_lock);
}
