/* SPDX-License-Identifier: MIT */
/*
 * signalr.c - SignalR connections and the JSON hub protocol (signalr.h);
 * the transports that carry them are in signalr/transports.c.
 *
 * A connection is created by negotiate and found again by its token. It is
 * a hub member: it joins its hub's internal room ("~" + hub name, which no
 * plain client can name) at the handshake, and the rooms its client joins.
 * Records it receives (from a WebSocket message or a POST body) are parsed
 * here and turned into hub calls; what it must send (handshake reply,
 * completions, pings, close) is queued to its own sub with hub_send, in
 * order with room messages. Hub methods come from the configuration.
 *
 * Lifetime: the registry holds one reference, each transport attached to
 * the connection one more, and code working on it a temporary one. Closing
 * leaves every room and ends the transport after its queue drains; a closed
 * connection stays in the registry for signalr.disconnect_timeout_s (so a
 * late poll gets 204, a late resume 404) and is freed with the last ref.
 *
 * Lock order: registry_lock, then a connection's recv_lock, then the hub
 * lock, then its sub lock, then the backplane's queue lock (backplane ops
 * only queue). Nothing here is called with a transport's lock.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/signalr/signalr.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/json_text.h"
#include "common/limits.h"
#include "common/list.h"
#include "common/log.h"
#include "common/rate_limits.h"
#include "transports/signalr/mp.h"
#include "transports/signalr/private.h"

#define TAG "signalr"
#define BUCKETS 4096 /* registry hash buckets */
/* What the auth.rooms rules see as a hub's broadcast room: this and the
 * hub's name (README "Token expiry and SignalR"). */
#define SR_HUB_RULE_PREFIX "hub:"

static const cfg *conf;
static hub *the_hub;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static sr_conn *buckets[BUCKETS];
static list_node all_conns = LIST_INIT(all_conns); /* registry_lock: newest first */
static bool shutting_down;                         /* registry_lock */
static atomic_uint pending_conns; /* negotiated, no transport yet (sr_conn.pending_slot) */

void sr_init(const cfg *c, hub *h)
{
    conf = c;
    the_hub = h;
    sr_transports_init(c);
    sr_upstream_init(c, h);
    sr_fmt_record(); /* registers the SignalR formats with the hub before any thread runs */
}

const cfg_hub *sr_hub_at(const char *path)
{
    for (unsigned i = 0; conf && i < conf->nhubs; i++)
        if (!strcmp(conf->hubs[i].path, path))
            return &conf->hubs[i];
    return NULL;
}

/* ------------------------------------------------------------ registry */

/* c's transport started, or c goes: its negotiate slot is free again. */
static void pending_done(sr_conn *c)
{
    if (atomic_exchange(&c->pending_slot, false))
        atomic_fetch_sub(&pending_conns, 1);
}

unsigned sr_pending_connections(void)
{
    return atomic_load(&pending_conns);
}

void sr_conn_unref(sr_conn *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    pending_done(c);
    if (c->owned)
        sr_cluster_release(c->token); /* late requests elsewhere are told it is gone */
    hub_leave(the_hub, &c->s);
    sendq_clear(&c->unacked);
    free(c->lp_unconfirmed);
    sub_fini(&c->s);
    access_unref(c->who);
    free(c->rejoin);
    pthread_mutex_destroy(&c->recv_lock);
    free(c);
}

static uint32_t token_hash(const char *t)
{
    return str_hash(t) % BUCKETS;
}

/* 16 bytes in base64url, TOKEN_LEN characters. */
static void base64url_16(const unsigned char raw[16 + 2], char out[TOKEN_LEN + 1])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0, o = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        for (int k = 3; k >= 0 && o < TOKEN_LEN; k--)
            out[o++] = b64url[(v >> (6 * k)) & 63];
    }
    out[TOKEN_LEN] = '\0';
}

void sr_random_token(char out[TOKEN_LEN + 1])
{
    unsigned char raw[16 + 2] = {0};
    if (getrandom(raw, 16, 0) != 16)
        LOG_ERR(TAG, "getrandom failed; tokens are weaker"); /* never seen on Linux */
    base64url_16(raw, out);
}

void sr_conn_id_of_token(const char *token, char out[TOKEN_LEN + 1])
{
    static const char label[] = "crier connection id:";
    unsigned char md[EVP_MAX_MD_SIZE] = {0};
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
              EVP_DigestUpdate(ctx, label, sizeof(label) - 1) &&
              EVP_DigestUpdate(ctx, token, strlen(token)) && EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    if (!ok) { /* never seen: a random id still names the connection on this node */
        LOG_ERR(TAG, "SHA-256 failed; a connection id is random");
        sr_random_token(out);
        return;
    }
    unsigned char raw[16 + 2] = {0};
    memcpy(raw, md, 16);
    base64url_16(raw, out);
}

/* Creates a connection in the registry, with token when not NULL. Returns
 * it with a ref for the caller, or NULL (out of memory, or shutting down). */
static sr_conn *conn_new(const cfg_hub *hb, bool id_is_token, const char *token,
                         const access_principal *who)
{
    sr_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    sub_init(&c->s, SUB_WS, SR_FMT_RECORD, conf->limits.send_queue);
    c->s.target = hb->default_target;
    c->s.ends_itself = true; /* sr_tick sends the Close record, then ends it */
    c->s.multi_room = true;  /* its rooms are the client's joins, and the server API's */
    c->who = access_ref((access_principal *)who);
    c->expires_ms = who ? who->expires_ms : 0;
    snprintf(c->user, sizeof(c->user), "%s", access_user_label(who));
    c->hub = hb;
    sendq_init(&c->unacked, conf->limits.send_queue + 1);
    c->unacked_first = 1;
    atomic_init(&c->refs, 2); /* the registry's and the caller's */
    pthread_mutex_init(&c->recv_lock, NULL);
    sr_random_token(c->id);
    if (token) {
        snprintf(c->token, sizeof(c->token), "%s", token);
        /* The id was given at negotiate on some node, made from the token. */
        sr_conn_id_of_token(token, c->id);
    } else if (id_is_token) {
        memcpy(c->token, c->id, sizeof(c->token));
    } else {
        sr_random_token(c->token);
    }
    snprintf(c->all_room, sizeof(c->all_room), "~%s", hb->name);
    /* Its member is the user's and is named by the id the client knows
     * (connection.connectionId), for the server API. */
    if (sub_set_identity(&c->s, who ? who->user : NULL, c->id)) {
        sub_fini(&c->s);
        access_unref(c->who);
        pthread_mutex_destroy(&c->recv_lock);
        free(c);
        return NULL;
    }
    int64_t now = clock_now_ms();
    atomic_init(&c->last_recv_ms, now);
    pthread_mutex_lock(&registry_lock);
    if (shutting_down) {
        pthread_mutex_unlock(&registry_lock);
        sub_fini(&c->s);
        access_unref(c->who);
        pthread_mutex_destroy(&c->recv_lock);
        free(c);
        return NULL;
    }
    c->created_ms = now;
    c->touched_ms = now;
    c->owned = token && sr_clustered();
    uint32_t b = token_hash(c->token);
    c->bucket_next = buckets[b];
    buckets[b] = c;
    list_push_front(&all_conns, &c->link);
    pthread_mutex_unlock(&registry_lock);
    if (who && who->expires_ms > 0) /* its token's end is the connection's (sr_tick) */
        sub_set_deadline(&c->s, who->expires_ms, SUB_END_EXPIRED);
    LOG_DBG(TAG, "connection " SR_CONN_FMT " made", SR_CONN_ARGS(c));
    return c;
}

sr_conn *sr_conn_new(const cfg_hub *hb, bool id_is_token, const access_principal *who)
{
    return conn_new(hb, id_is_token, NULL, who);
}

sr_conn *sr_conn_new_named(const cfg_hub *hb, const char *token, const access_principal *who)
{
    return conn_new(hb, false, token, who);
}

sr_conn *sr_conn_negotiated(const cfg_hub *hb, bool id_is_token, const access_principal *who,
                            bool *full)
{
    *full = false;
    if (atomic_fetch_add(&pending_conns, 1) >= conf->signalr.max_pending_connections) {
        atomic_fetch_sub(&pending_conns, 1);
        *full = true;
        return NULL;
    }
    sr_conn *c = conn_new(hb, id_is_token, NULL, who);
    if (!c) {
        atomic_fetch_sub(&pending_conns, 1);
        return NULL;
    }
    atomic_store(&c->pending_slot, true);
    return c;
}

/* Finds a connection of hub by token; returns it with a new ref. */
sr_conn *sr_conn_find(const cfg_hub *hb, const char *token)
{
    if (!token)
        return NULL;
    pthread_mutex_lock(&registry_lock);
    sr_conn *c = buckets[token_hash(token)];
    while (c && (strcmp(c->token, token) || c->hub != hb))
        c = c->bucket_next;
    if (c)
        atomic_fetch_add(&c->refs, 1);
    pthread_mutex_unlock(&registry_lock);
    return c;
}

/* True when b's expiry is later than a's (0: never). */
static bool expires_later(int64_t a, int64_t b)
{
    return a && (!b || b > a);
}

unsigned sr_conn_admit(sr_conn *c, const access_principal *who, bool adopt, const char **error)
{
    unsigned status = 0;
    int64_t moved_to = -1; /* the new deadline, when a refreshed token moves it */
    pthread_mutex_lock(&c->s.lock);
    const access_principal *had = c->who;
    if (!had || !had->token) {
        /* made anonymously (or with an API key): nothing to match */
    } else if (!who || !who->token) {
        status = 401;
        *error = "this connection was made with a token: present a token for the same user";
    } else if ((had->user || who->user) &&
               (!had->user || !who->user || strcmp(had->user, who->user))) {
        status = 403;
        *error = "the token is for another user than this connection's";
    } else if (expires_later(c->expires_ms, who->expires_ms) && !c->s.end_reason) {
        c->expires_ms = moved_to = who->expires_ms; /* a refreshed token */
        if (adopt) {                                /* its rights from now on */
            access_unref(c->who);
            c->who = access_ref((access_principal *)who);
        }
    }
    pthread_mutex_unlock(&c->s.lock);
    if (moved_to >= 0) {
        sub_set_deadline(&c->s, moved_to, SUB_END_EXPIRED);
        LOG_DBG(TAG, "connection " SR_CONN_FMT ": token refreshed", SR_CONN_ARGS(c));
    }
    if (status)
        LOG_INFO(TAG, "connection " SR_CONN_FMT ": request refused (%u): %s", SR_CONN_ARGS(c),
                 status, *error);
    return status;
}

/* Registry lock held: unlinks c; the caller drops the registry's ref. */
static void registry_unlink(sr_conn *c)
{
    sr_conn **pp = &buckets[token_hash(c->token)];
    while (*pp && *pp != c)
        pp = &(*pp)->bucket_next;
    if (*pp)
        *pp = c->bucket_next;
    list_remove(&c->link);
}

/* ------------------------------------------------------------- sending */

/* Queues one record (JSON text without RS) for c alone. counted: part of
 * stateful reconnect's numbering (completions are; pings, close, acks and
 * the handshake reply are not). */
static void send_record_as(sr_conn *c, const char *json, size_t len, bool counted)
{
    msg *m =
        atomic_load(&c->msgpack) ? sr_mp_record_create(json, len) : sr_record_create(json, len);
    if (!m)
        return;
    m->uncounted = !counted;
    if (hub_send(the_hub, &c->s, m))
        LOG_WARN(TAG, "connection " SR_CONN_FMT " dropped: send queue full", SR_CONN_ARGS(c));
    msg_unref(m);
}

/* Queues the record built in b (freed here); one that could not be built
 * (out of memory) is dropped with a log line. */
static void send_built(sr_conn *c, buf *b, bool ok, bool counted)
{
    if (ok)
        send_record_as(c, b->data, b->len, counted);
    else
        LOG_WARN(TAG, "connection " SR_CONN_FMT ": out of memory for a record", SR_CONN_ARGS(c));
    buf_free(b);
}

static void send_record(sr_conn *c, const char *json, size_t len)
{
    send_record_as(c, json, len, false);
}

/* result: a JSON text, or NULL for null. */
static void send_completion(sr_conn *c, const char *invocation_id, const char *error,
                            const char *result)
{
    buf b = {0};
    bool ok = buf_append_str(&b, "{\"type\":3,\"invocationId\":") &&
              buf_json_string(&b, invocation_id, strlen(invocation_id), 0);
    if (error)
        ok =
            ok && buf_append_str(&b, ",\"error\":") && buf_json_string(&b, error, strlen(error), 0);
    else
        ok = ok && buf_append_str(&b, ",\"result\":") &&
             buf_append_str(&b, result && *result ? result : "null");
    send_built(c, &b, ok && buf_append(&b, "}", 1), true);
}

void sr_send_completion(sr_conn *c, const char *invocation_id, const char *error,
                        const char *result)
{
    send_completion(c, invocation_id, error, result);
}

static void send_ping(sr_conn *c)
{
    send_record(c, "{\"type\":6}", 10);
}

/* Closes c: leaves every room, sends a Close record (when error is not
 * NULL, or reconnect is asked), and ends its transport once that is sent.
 * Idempotent. */
/* The Close record's error at a drain (compared by address: not logged
 * once per connection). */
static const char SHUTTING_DOWN[] = "Server is shutting down.";

void sr_conn_close(sr_conn *c, const char *error, bool allow_reconnect)
{
    pthread_mutex_lock(&c->s.lock);
    bool was_closed = c->closed;
    c->closed = true;
    c->closed_ms = clock_now_ms();
    pthread_mutex_unlock(&c->s.lock);
    if (was_closed)
        return;
    hub_leave(the_hub, &c->s);
    if (error || allow_reconnect) {
        buf b = {0};
        bool ok = buf_append_str(&b, "{\"type\":7");
        if (error)
            ok = ok && buf_append_str(&b, ",\"error\":") &&
                 buf_json_string(&b, error, strlen(error), 0);
        if (allow_reconnect)
            ok = ok && buf_append_str(&b, ",\"allowReconnect\":true");
        send_built(c, &b, ok && buf_append(&b, "}", 1), false);
    }
    sub_end(&c->s);
    if (atomic_load(&c->handshaken))
        sr_upstream_event(c, "disconnect", NULL, error);
    if (error && error != SHUTTING_DOWN) /* the drain logs one count instead */
        LOG_INFO(TAG, "closed connection " SR_CONN_FMT ": %s", SR_CONN_ARGS(c), error);
}

/* ----------------------------------------------------- stateful reconnect */

void sr_conn_sent(sr_conn *c, msg *m)
{
    if (m->uncounted)
        return;
    bool too_many = false;
    pthread_mutex_lock(&c->s.lock);
    if (c->stateful) {
        c->sent_count++;
        sendq_push_over_limit(&c->unacked, m);
        too_many = c->unacked.count > c->s.q.limit;
    }
    pthread_mutex_unlock(&c->s.lock);
    if (too_many)
        sr_conn_close(c, "Too many records not acknowledged.", false);
}

bool sr_conn_detach(sr_conn *c)
{
    pthread_mutex_lock(&c->s.lock);
    bool keep = c->stateful && !c->closed;
    c->attached = false;
    c->detached_ms = clock_now_ms();
    pthread_mutex_unlock(&c->s.lock);
    return keep;
}

bool sr_conn_resume_locked(sr_conn *c)
{
    if (!c->stateful || c->closed || c->transport != TR_WS)
        return false;
    sub_attach(&c->s, NULL, NULL); /* the old socket drains nothing more */
    c->ws_gen++;
    /* Resent records keep their numbers: the count restarts below them.
     * They go in front of what is queued, newest first, so the oldest leads. */
    size_t n = c->unacked.count;
    for (size_t i = n; i-- > 0;)
        sendq_push_front(&c->s.q, sendq_at(&c->unacked, i));
    sendq_clear(&c->unacked);
    char rec[64];
    int len =
        snprintf(rec, sizeof(rec), "{\"type\":9,\"sequenceId\":%" PRIu64 "}", c->unacked_first);
    msg *seq = atomic_load(&c->msgpack) ? sr_mp_record_create(rec, (size_t)len)
                                        : sr_record_create(rec, (size_t)len);
    if (seq) {
        seq->uncounted = true;
        sendq_push_front(&c->s.q, seq);
        msg_unref(seq);
    }
    c->sent_count = c->unacked_first - 1;
    c->attached = true;
    c->attached_ms = clock_now_ms();
    atomic_store(&c->last_recv_ms, c->attached_ms);
    return true;
}

/* --------------------------------------------------------- hub protocol */

static const cfg_method *find_method(const cfg_hub *hb, const char *name)
{
    for (unsigned i = 0; i < hb->nmethods; i++)
        if (!strcasecmp(hb->methods[i].name, name))
            return &hb->methods[i];
    return NULL;
}

static bool action_takes_room(cfg_action a)
{
    return a == CFG_ACTION_ROOM || a == CFG_ACTION_JOIN || a == CFG_ACTION_LEAVE;
}

/* An invocation whose completion waits for the hub (a publish through the
 * backplane, a join whose room is fetched first). Holds a ref on c. */
typedef struct sr_pending {
    sr_conn *c;
    char *invocation_id; /* malloc'd; NULL: no completion is sent */
    char room[ROOM_NAME_MAX + 1];
} sr_pending;

/* Returned by run_method when the completion is sent later. */
static const char later[] = "";

static sr_pending *pending_new(sr_conn *c, const char *invocation_id, const char *room)
{
    sr_pending *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (invocation_id && !(p->invocation_id = strdup(invocation_id))) {
        free(p);
        return NULL;
    }
    atomic_fetch_add(&c->refs, 1);
    p->c = c;
    snprintf(p->room, sizeof(p->room), "%s", room ? room : "");
    return p;
}

static void pending_finish(sr_pending *p, const char *error, const char *result)
{
    if (p->invocation_id)
        send_completion(p->c, p->invocation_id, error, result);
    else if (error)
        LOG_DBG(TAG, "connection " SR_CONN_FMT ": %s", SR_CONN_ARGS(p->c), error);
    sr_conn_unref(p->c);
    free(p->invocation_id);
    free(p);
}

static void invocation_published(void *arg, const publish_result *r)
{
    const char *error = !r->rc             ? NULL
                        : r->rc == -EAGAIN ? "The backplane cannot take more now (unreachable, or "
                                             "not keeping up); the message was not sent."
                        : r->rc == -EIO    ? "The connection to the backplane was lost: the "
                                             "message may or may not have been sent."
                        : r->rc == -ENOSPC ? limit_join_error(r->rc)
                                           : "The message could not be published.";
    pending_finish(arg, error, NULL);
}

/* Publishes args (a JSON array) to room for the method's target; the
 * completion follows when the hub has it. */
static const char *publish_args(sr_conn *c, const char *invocation_id, const char *room,
                                json_t *args, const cfg_method *m, bool exclude_caller)
{
    char *data = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!data)
        return "Out of memory.";
    if (strlen(data) > conf->limits.max_message_bytes) {
        free(data);
        return "The message is larger than limits.max_message_bytes.";
    }
    sr_pending *p = pending_new(c, invocation_id, NULL);
    if (!p) {
        free(data);
        return "Out of memory.";
    }
    publish_opts opt = {.target = m->target, .exclude = exclude_caller ? &c->s : NULL};
    hub_publish_async(the_hub, room, data, strlen(data), &opt, invocation_published, p);
    free(data);
    return later;
}

/* The result of a join: where the room stands, so that a client can resume
 * from there even before it has had a message of the room. */
static void join_result(const char *room, const char *epoch, uint64_t last_id, char *result,
                        size_t cap)
{
    snprintf(result, cap, "{\"room\":\"%s\",\"epoch\":\"%s\",\"last_id\":%" PRIu64 "}", room, epoch,
             last_id);
}

static void joined(void *arg, int rc, const char *epoch, uint64_t last_id)
{
    sr_pending *p = arg;
    char result[ROOM_NAME_MAX + 96];
    if (!rc) {
        join_result(p->room, epoch, last_id, result, sizeof(result));
        sr_upstream_event(p->c, "join", p->room, NULL);
    }
    pending_finish(p, rc ? "Could not join the room." : NULL, rc ? NULL : result);
}

/* Joins room (live, or resuming after since in epoch); the completion,
 * with the join's result, follows once the join is in effect. */
static const char *join_room(sr_conn *c, const char *invocation_id, const char *room,
                             const hub_join_args *how, char *result, size_t cap)
{
    sr_pending *p = pending_new(c, invocation_id, room);
    if (!p)
        return "Out of memory.";
    hub_join_args a = *how;
    a.done = joined;
    a.done_arg = p;
    int rc = hub_join_ex(the_hub, room, &c->s, &a);
    if (!rc)
        return later;
    sr_conn_unref(p->c);
    free(p->invocation_id);
    free(p);
    if (rc == -ENOSPC || rc == -EMLINK) /* a limit: limits.max_rooms[_per_connection] */
        return limit_join_error(rc);
    if (rc != -EEXIST)
        return "Could not join the room.";
    room_info info; /* already a member: where the room stands now */
    if (!hub_room_info(the_hub, room, &info))
        join_result(room, info.epoch, info.last_id, result, cap);
    return NULL;
}

/* JoinRoom(room, since, epoch): join, first getting what the room kept
 * after since (the crier-id header of the last message seen), or a
 * CrierGap invocation when that is gone. JoinRoom(room, 0) and
 * JoinRoom(room, 0, null), with no epoch: join, first getting what the
 * room's history holds (a late joiner's last messages), after a CrierGap
 * with since 0 when history no longer reaches back to id 1. */
static const char *join_resuming(sr_conn *c, const char *invocation_id, const char *room,
                                 json_t *args, char *err, size_t err_cap, char *result, size_t cap)
{
    json_t *since = json_array_get(args, 1);
    json_t *epoch_arg = json_array_get(args, 2);
    const char *epoch = json_string_value(epoch_arg);
    bool no_epoch = !epoch_arg || json_is_null(epoch_arg);
    bool since_ok = json_is_integer(since) && json_integer_value(since) >= 0;
    if (!since_ok || (no_epoch && json_integer_value(since) != 0) ||
        (!no_epoch && (!epoch || !hub_epoch_is_valid(epoch)))) {
        snprintf(err, err_cap,
                 "To resume, join with (room, since, epoch): since a non-negative "
                 "integer, epoch the room's epoch; (room, 0) for what the room's history "
                 "holds.");
        return err;
    }
    hub_join_args a = {.since = (uint64_t)json_integer_value(since),
                       .epoch = no_epoch ? NULL : epoch,
                       .check_gap = true};
    return join_room(c, invocation_id, room, &a, result, cap);
}

/* recv_lock held: limits.rate.publish for an invocation of a sending
 * method. Past it, one with an id gets an error completion; one without is
 * dropped (counted and logged once per burst, as every refusal is): the
 * connection stays open, since closing would only make the official
 * client reconnect and go on. */
static bool publish_rate_refused(sr_conn *c, cfg_action a, const char *invocation_id)
{
    if (a != CFG_ACTION_BROADCAST && a != CFG_ACTION_OTHERS && a != CFG_ACTION_ROOM &&
        a != CFG_ACTION_UPSTREAM)
        return false;
    return rate_limit_publish(&c->publish_rate, clock_now_ms(), "SignalR connection", c->id,
                              invocation_id ? "error completion" : "invocation dropped") != 0;
}

/* May c's principal take right on rule_room (auth.rooms)? NULL when
 * allowed, else the error (in err), logged with what asked. */
static const char *room_refused(sr_conn *c, const char *what, const char *rule_room,
                                access_right right, char *err, size_t err_cap)
{
    if (!conf->auth.enabled)
        return NULL;
    pthread_mutex_lock(&c->s.lock);
    access_principal *who = access_ref(c->who);
    pthread_mutex_unlock(&c->s.lock);
    access_verdict v = access_room(conf, who, rule_room, right);
    access_unref(who);
    if (v == ACCESS_ALLOWED)
        return NULL;
    snprintf(err, err_cap, "not allowed: %s", access_reason(v, right));
    LOG_INFO(TAG, "connection " SR_CONN_FMT ": %s refused on room %s: %s", SR_CONN_ARGS(c), what,
             rule_room, err);
    return err;
}

/* May c's principal take what method m does on room (auth.rooms)? Join
 * needs the subscribe right on the room, a room send the publish right;
 * broadcast and others the publish right on the hub's own room, which the
 * rules see as "hub:" + the hub's name (SR_HUB_RULE_PREFIX; "hub:chat"): a
 * room name a rule can match (the hub's own room, "~chat", is none).
 * Leave needs nothing. NULL when allowed, else the error (in err) for the
 * completion, logged. */
static const char *method_refused(sr_conn *c, const cfg_method *m, const char *room, char *err,
                                  size_t err_cap)
{
    if (!conf->auth.enabled || m->action == CFG_ACTION_LEAVE || m->action == CFG_ACTION_UPSTREAM)
        return NULL; /* an upstream method's backend decides */
    access_right right = m->action == CFG_ACTION_JOIN ? ACCESS_SUBSCRIBE : ACCESS_PUBLISH;
    char hub_room[sizeof(SR_HUB_RULE_PREFIX) + CFG_NAME_MAX];
    snprintf(hub_room, sizeof(hub_room), SR_HUB_RULE_PREFIX "%s", c->hub->name);
    const char *rule_room =
        m->action == CFG_ACTION_BROADCAST || m->action == CFG_ACTION_OTHERS ? hub_room : room;
    return room_refused(c, m->name, rule_room, right, err, err_cap);
}

/* Runs a method; returns NULL or the error for its completion, whose
 * result (JSON text, "" for null) goes into result. */
static const char *run_method(sr_conn *c, const char *invocation_id, const cfg_method *m,
                              json_t *args, char *err, size_t err_cap, char *result,
                              size_t result_cap)
{
    size_t n = json_array_size(args);
    /* (room, since, epoch), or (room, 0) */
    bool resume_form = m->action == CFG_ACTION_JOIN && (n == 2 || n == 3);
    if (m->args >= 0 && n != (size_t)m->args && !resume_form) {
        snprintf(err, err_cap, "Method '%s' takes %d argument(s), got %zu.", m->name, m->args, n);
        return err;
    }
    const char *room = NULL;
    if (action_takes_room(m->action)) {
        room = json_string_value(json_array_get(args, 0));
        if (!room || !room_name_is_valid(room, strlen(room))) {
            snprintf(err, err_cap,
                     "The first argument of '%s' must be a room name: 1 to %d characters of "
                     "A-Z a-z 0-9 . _ - :",
                     m->name, ROOM_NAME_MAX);
            return err;
        }
    }
    const char *refused = method_refused(c, m, room, err, err_cap);
    if (refused)
        return refused;
    if (publish_rate_refused(c, m->action, invocation_id))
        return "rate limit: too many messages";
    switch (m->action) {
    case CFG_ACTION_BROADCAST:
    case CFG_ACTION_OTHERS:
        return publish_args(c, invocation_id, c->all_room, args, m, m->action == CFG_ACTION_OTHERS);
    case CFG_ACTION_ROOM: {
        json_t *rest = json_array();
        for (size_t i = 1; i < n; i++)
            json_array_append(rest, json_array_get(args, i));
        const char *e = publish_args(c, invocation_id, room, rest, m, false);
        json_decref(rest);
        return e;
    }
    case CFG_ACTION_JOIN:
        if (resume_form)
            return join_resuming(c, invocation_id, room, args, err, err_cap, result, result_cap);
        return join_room(c, invocation_id, room, &(hub_join_args){.from_now = true}, result,
                         result_cap);
    case CFG_ACTION_LEAVE:
        hub_leave_room(the_hub, room, &c->s);
        sr_upstream_event(c, "leave", room, NULL);
        return NULL;
    case CFG_ACTION_UPSTREAM: {
        const char *e = sr_upstream_invoke(c, invocation_id, m, args);
        return e ? e : later;
    }
    }
    return "Unknown action.";
}

/* The invocationId of rec, checked: NULL when absent (or *bad set: not a
 * string, or longer than SR_INVOCATION_ID_MAX, when it is not echoed). */
static const char *invocation_id_of(json_t *rec, const char **bad)
{
    json_t *inv = json_object_get(rec, "invocationId");
    if (!inv)
        return NULL;
    if (!json_is_string(inv))
        *bad = "Invalid invocation: 'invocationId' must be a string.";
    else if (json_string_length(inv) > SR_INVOCATION_ID_MAX)
        *bad = "Invalid invocation: 'invocationId' is longer than " SR_INVOCATION_ID_MAX_TEXT
               " bytes.";
    return *bad ? NULL : json_string_value(inv);
}

/* Type 1. Returns false with *why when the record is malformed (the
 * caller closes). */
static bool handle_invocation(sr_conn *c, json_t *rec, const char **why)
{
    const char *target = json_string_value(json_object_get(rec, "target"));
    json_t *args = json_object_get(rec, "arguments");
    const char *invocation_id = invocation_id_of(rec, why);
    if (*why)
        return false;
    if (!target || !json_is_array(args)) {
        *why = "Invalid invocation: 'target' and 'arguments' are required.";
        return false;
    }
    char err[400], result[ROOM_NAME_MAX + 96] = "";
    const char *error;
    const cfg_method *m = find_method(c->hub, target);
    if (!m) {
        char *quoted = json_text_clip(target, JSON_ECHO_MAX);
        snprintf(err, sizeof(err), "Unknown hub method '%s'.", quoted ? quoted : "");
        free(quoted);
        error = err;
    } else {
        error = run_method(c, invocation_id, m, args, err, sizeof(err), result, sizeof(result));
    }
    if (error == later)
        return true; /* its completion follows */
    if (invocation_id)
        send_completion(c, invocation_id, error, result);
    else if (error)
        LOG_DBG(TAG, "connection " SR_CONN_FMT ": %s", SR_CONN_ARGS(c), error);
    return true;
}

/* Sub lock free. c's transport. */
static sr_transport transport_of(sr_conn *c)
{
    pthread_mutex_lock(&c->s.lock);
    sr_transport t = c->transport;
    pthread_mutex_unlock(&c->s.lock);
    return t;
}

/* ------------------------------------------------------ rejoin (query) */

const char *sr_rejoin_of_request(const cfg_hub *hb, const char *value, size_t len, bool decode,
                                 sr_rejoin **out)
{
    *out = NULL;
    if (!hb->rejoin_query || !value)
        return NULL;
    return sr_rejoin_parse(value, len, decode, out);
}

void sr_conn_set_rejoin_locked(sr_conn *c, sr_rejoin *rj)
{
    free(c->rejoin);
    c->rejoin = rj;
}

/* A rejoin is in effect: the upstream's join event, as for JoinRoom. */
static void rejoined(void *arg, int rc, const char *epoch, uint64_t last_id)
{
    (void)epoch;
    (void)last_id;
    sr_pending *p = arg;
    if (!rc)
        sr_upstream_event(p->c, "join", p->room, NULL);
    pending_finish(p, rc ? "Could not rejoin a room of crier_rooms." : NULL, NULL);
}

/* recv_lock held, at the handshake: joins the rooms of c's crier_rooms,
 * each resumed after its cursor (a CrierGap first when history no longer
 * covers it), as JoinRoom(room, since, epoch) does. Returns NULL, or the
 * error (in err, or static) to close c with: a room c may not subscribe
 * to, or a limit. */
static const char *rejoin_rooms(sr_conn *c, char *err, size_t err_cap)
{
    pthread_mutex_lock(&c->s.lock);
    sr_rejoin *rj = c->rejoin;
    c->rejoin = NULL;
    pthread_mutex_unlock(&c->s.lock);
    const char *why = NULL;
    for (size_t i = 0; rj && i < rj->n && !why; i++) {
        const sr_rejoin_room *r = &rj->rooms[i];
        why = room_refused(c, "crier_rooms", r->room, ACCESS_SUBSCRIBE, err, err_cap);
        sr_pending *p = why ? NULL : pending_new(c, NULL, r->room);
        if (why)
            break;
        if (!p) {
            why = "Out of memory.";
            break;
        }
        bool has_epoch = r->epoch[0] != '\0';
        hub_join_args a = {.since = r->since,
                           .epoch = has_epoch ? r->epoch : NULL,
                           .check_gap = true,
                           .done = rejoined,
                           .done_arg = p};
        int rc = hub_join_ex(the_hub, r->room, &c->s, &a);
        if (rc) {
            sr_conn_unref(p->c);
            free(p);
        }
        if (rc == -ENOSPC || rc == -EMLINK)
            why = limit_join_error(rc);
        else if (rc && rc != -EEXIST)
            why = "Could not rejoin a room of crier_rooms.";
    }
    if (rj && !why)
        LOG_DBG(TAG, "connection " SR_CONN_FMT ": rejoined %zu room(s) of crier_rooms",
                SR_CONN_ARGS(c), rj->n);
    free(rj);
    return why;
}

/* The first record: {"protocol":"json","version":1}, or "messagepack". */
static void handle_handshake(sr_conn *c, const char *rec, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(rec, len, 0, &je);
    const char *protocol = json_string_value(json_object_get(j, "protocol"));
    json_t *version = json_object_get(j, "version");
    char err[300];
    bool version_2 = json_integer_value(version) == 2;
    bool mp = protocol && !strcmp(protocol, "messagepack");
    if (!protocol || !json_is_integer(version)) {
        snprintf(err, sizeof(err),
                 "Handshake was malformed: expected "
                 "{\"protocol\":\"json\",\"version\":1}.");
    } else if (strcmp(protocol, "json") && !mp) {
        char *quoted = json_text_clip(protocol, JSON_ECHO_MAX);
        snprintf(err, sizeof(err), "Protocol '%s' is not supported.", quoted ? quoted : "");
        free(quoted);
    } else if (json_integer_value(version) < 1 || json_integer_value(version) > 2) {
        snprintf(err, sizeof(err),
                 "Protocol '%s' version %" JSON_INTEGER_FORMAT " is not supported.", protocol,
                 json_integer_value(version));
    } else if (mp && transport_of(c) == TR_SSE) {
        snprintf(err, sizeof(err),
                 "Protocol 'messagepack' is binary and Server-Sent Events carry text only: "
                 "use WebSockets or long polling.");
    } else {
        err[0] = '\0';
    }
    json_decref(j);
    if (err[0]) {
        size_t n;
        char *reply = json_error_body(err, &n);
        if (reply)
            send_record(c, reply, n);
        free(reply);
        sr_conn_close(c, err, false);
        return;
    }
    pthread_mutex_lock(&c->s.lock);
    c->stateful = c->stateful_offered && c->transport == TR_WS && version_2;
    pthread_mutex_unlock(&c->s.lock);
    send_record(c, "{}", 2); /* the handshake's answer is JSON text in every protocol */
    if (mp) {                /* from here on, records are MessagePack both ways */
        pthread_mutex_lock(&c->s.lock);
        c->s.fmt = SR_FMT_MP; /* before the first join (sub.h) */
        pthread_mutex_unlock(&c->s.lock);
        atomic_store(&c->msgpack, true);
    }
    hub_join(the_hub, c->all_room, &c->s, 0, true);
    atomic_store(&c->handshaken, true);
    sr_upstream_event(c, "connect", NULL, NULL);
    char why[400];
    if (rejoin_rooms(c, why, sizeof(why)))
        sr_conn_close(c, why, false);
}

/* Stateful reconnect, receiving side. Returns false when the record is not
 * to be processed: before the client's Sequence on a resumed socket, or a
 * record resent that was already processed. */
static bool take_numbered(sr_conn *c, json_int_t type, json_t *rec, const char **why)
{
    if (type == 9) {
        json_t *seq = json_object_get(rec, "sequenceId");
        uint64_t highest = atomic_load(&c->recv_highest);
        if (!json_is_integer(seq) || json_integer_value(seq) < 1 ||
            (uint64_t)json_integer_value(seq) > highest + 1) {
            *why = "Invalid Sequence: beyond the records received.";
            return false;
        }
        c->recv_count = (uint64_t)json_integer_value(seq) - 1;
        c->awaiting_sequence = false;
        return false;
    }
    if (c->awaiting_sequence || type < 1 || type > 5)
        return !c->awaiting_sequence;
    if (++c->recv_count <= atomic_load(&c->recv_highest))
        return false; /* already had it before the socket dropped */
    atomic_store(&c->recv_highest, c->recv_count);
    return true;
}

/* Sub lock held: drops the acknowledged records, up to number n. */
static void take_ack_locked(sr_conn *c, uint64_t n)
{
    while (!sendq_is_empty(&c->unacked) && c->unacked_first <= n) {
        sendq_pop(&c->unacked);
        c->unacked_first++;
    }
}

/* One record after the handshake, as a JSON record object (NULL: it did
 * not parse); takes the ref. Returns false to close the connection. */
static bool handle_record_json(sr_conn *c, json_t *j, const char **why)
{
    json_t *type = json_object_get(j, "type");
    if (!json_is_object(j) || !json_is_integer(type)) {
        *why = j ? "Invalid message: no integer 'type'." : "Invalid message: malformed JSON.";
        json_decref(j);
        return false;
    }
    json_int_t t = json_integer_value(type);
    pthread_mutex_lock(&c->s.lock);
    bool stateful = c->stateful;
    if (stateful && t == 8 && json_is_integer(json_object_get(j, "sequenceId")))
        take_ack_locked(c, (uint64_t)json_integer_value(json_object_get(j, "sequenceId")));
    pthread_mutex_unlock(&c->s.lock);
    bool ok = true;
    if (!stateful || take_numbered(c, t, j, why)) {
        switch (t) {
        case 1:
            ok = handle_invocation(c, j, why);
            break;
        case 4: {
            const char *inv = invocation_id_of(j, why);
            ok = !*why;
            if (inv)
                send_completion(c, inv, "Streaming is not supported.", NULL);
            break;
        }
        case 7:
            sr_conn_close(c, NULL, false); /* the client is leaving */
            break;
        default: /* 2, 3, 5 (streams), 6 (ping), 8, 9, unknown: nothing more to do */
            break;
        }
    } else if (*why) {
        ok = false;
    }
    json_decref(j);
    return ok;
}

/* One JSON protocol record after the handshake. */
static bool handle_record(sr_conn *c, const char *rec, size_t len, const char **why)
{
    json_error_t je;
    return handle_record_json(c, json_loadb(rec, len, 0, &je), why);
}

/* recv_lock held: the MessagePack records of a unit (data + start), each
 * after its VarInt length, up to max_message_bytes each. Stops at the
 * first bad one (with *why) or when c is closed. */
static void receive_mp(sr_conn *c, const unsigned char *data, size_t len, const char **why)
{
    size_t off = 0;
    const unsigned char *rec;
    size_t rec_len;
    int rc;
    while (!*why && (rc = sr_mp_next_record(data, len, &off, conf->limits.max_message_bytes, &rec,
                                            &rec_len, why)) > 0) {
        pthread_mutex_lock(&c->s.lock);
        bool closed = c->closed;
        pthread_mutex_unlock(&c->s.lock);
        if (closed)
            return;
        json_t *j = sr_mp_record_parse(rec, rec_len, why);
        if (j)
            handle_record_json(c, j, why);
    }
}

void sr_conn_receive(sr_conn *c, const char *data, size_t len)
{
    pthread_mutex_lock(&c->recv_lock);
    atomic_store(&c->last_recv_ms, clock_now_ms());
    size_t start = 0;
    const char *why = NULL;
    while (start < len && !why) {
        if (atomic_load(&c->msgpack)) { /* the rest of the unit is binary */
            receive_mp(c, (const unsigned char *)data + start, len - start, &why);
            break;
        }
        pthread_mutex_lock(&c->s.lock);
        bool closed = c->closed;
        pthread_mutex_unlock(&c->s.lock);
        if (closed)
            break;
        const char *rs = memchr(data + start, SR_RS, len - start);
        if (!rs && !atomic_load(&c->handshaken)) {
            handle_handshake(c, "", 0); /* answers the handshake error and closes */
            break;
        }
        if (!rs) {
            why = "Invalid message: a record does not end with the record separator.";
            break;
        }
        size_t rlen = (size_t)(rs - (data + start));
        if (!atomic_load(&c->handshaken))
            handle_handshake(c, data + start, rlen);
        else if (rlen)
            handle_record(c, data + start, rlen, &why);
        start += rlen + 1;
    }
    if (why)
        sr_conn_close(c, why, false);
    pthread_mutex_unlock(&c->recv_lock);
}

/* ------------------------------------------------------------ attaching */

/* Sub lock held: binds the connection to its transport, once. */
bool sr_attach_locked(sr_conn *c, sr_transport t)
{
    if (c->closed || c->transport != TR_NONE)
        return false;
    static const sub_kind kinds[] = {[TR_WS] = SUB_WS, [TR_SSE] = SUB_SSE, [TR_LP] = SUB_LONGPOLL};
    c->transport = t;
    c->s.kind = kinds[t];
    c->s.fmt = t == TR_SSE ? SR_FMT_SSE : SR_FMT_RECORD;
    c->attached_ms = clock_now_ms();
    c->last_poll_ms = c->attached_ms;
    atomic_store(&c->last_recv_ms, c->attached_ms);
    c->attached = t != TR_LP;
    pending_done(c);
    return true;
}

bool sr_transport_enabled(sr_transport t)
{
    return (t == TR_WS && conf->transports.websocket) || (t == TR_SSE && conf->transports.sse) ||
           (t == TR_LP && conf->transports.long_polling);
}

/* ------------------------------------------------------------ lifecycle */

typedef enum {
    ACT_NONE,
    ACT_PING,
    ACT_ACK,
    ACT_CLOSE,
    ACT_END,        /* the server ended it (sub_end_with: a token expired): Close, may reconnect */
    ACT_DISCONNECT, /* the server API disconnected it: Close with its reason, no reconnect */
    ACT_PURGE,
    ACT_POLL_DUE
} tick_action;

/* A silent client (often a background tab whose timers are throttled) may
 * come back: tell it to reconnect. */
static const char silent_client[] =
    "Connection timed out: no message from the client within signalr.client_timeout_s.";

/* Registry lock held: what the timer does with c now. */
static tick_action due(sr_conn *c, int64_t now, const char **why)
{
    int64_t disconnect = (int64_t)conf->signalr.disconnect_timeout_s * MS_PER_S;
    pthread_mutex_lock(&c->s.lock);
    tick_action a = ACT_NONE;
    bool streaming = (c->transport == TR_WS || c->transport == TR_SSE) && c->attached;
    uint64_t received = atomic_load(&c->recv_highest);
    bool handshaken = atomic_load(&c->handshaken);
    int64_t silent = now - atomic_load(&c->last_recv_ms);
    if (c->held && c->held->remote && now >= c->held->deadline_ms) {
        a = ACT_POLL_DUE; /* a poll held for another node: its time is up */
    } else if (c->closed) {
        a = now - c->closed_ms > disconnect && !c->attached && !c->held ? ACT_PURGE : ACT_NONE;
    } else if (c->s.end_reason == SUB_END_DISCONNECTED) {
        a = ACT_DISCONNECT; /* end_text stays until the sub goes (a ref is held) */
        *why = c->s.end_text ? c->s.end_text : sub_end_reason_text(c->s.end_reason);
    } else if (c->s.end_reason) {
        a = ACT_END;
        *why = sub_end_reason_text(c->s.end_reason);
    } else if (c->transport == TR_NONE) {
        a = now - c->created_ms > disconnect ? ACT_CLOSE : ACT_NONE;
        *why = NULL; /* negotiated, never used */
    } else if (c->stateful && !c->attached) {
        a = now - c->detached_ms > disconnect ? ACT_CLOSE : ACT_NONE;
        *why = NULL; /* its socket dropped and it did not come back */
    } else if (c->transport == TR_LP) {
        a = !c->held && now - c->last_poll_ms > disconnect ? ACT_CLOSE : ACT_NONE;
        *why = NULL; /* the client stopped polling */
    } else if (streaming && !handshaken &&
               now - c->attached_ms > (int64_t)conf->signalr.handshake_timeout_s * MS_PER_S) {
        a = ACT_CLOSE;
        *why = "Handshake was not received in time.";
    } else if (streaming && silent > (int64_t)conf->signalr.client_timeout_s * MS_PER_S) {
        a = ACT_CLOSE;
        *why = silent_client;
    } else if (streaming && c->stateful && received > c->acked_to_client) {
        c->acked_to_client = received; /* the timer is the acks' clock: one a tick at most */
        a = ACT_ACK;
    } else if (streaming && handshaken && now >= c->next_ping_ms) {
        c->next_ping_ms = now + (int64_t)conf->limits.keepalive_s * MS_PER_S;
        a = ACT_PING;
    }
    pthread_mutex_unlock(&c->s.lock);
    return a;
}

typedef struct tick_item {
    sr_conn *c;
    tick_action a;
    const char *why;
} tick_item;

void sr_tick(int64_t now_ms)
{
    size_t n = 0, cap = 0;
    tick_item *items = NULL;
    pthread_mutex_lock(&registry_lock);
    list_for_each_safe (node, next, &all_conns) {
        sr_conn *c = list_entry(node, sr_conn, link);
        if (c->owned && now_ms - c->touched_ms >= SR_TOUCH_EVERY_MS) {
            c->touched_ms = now_ms;
            sr_cluster_touch(c->token); /* keeps this node's claim */
        }
        const char *why = NULL;
        tick_action a = due(c, now_ms, &why);
        if (a == ACT_NONE)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            tick_item *it = realloc(items, nc * sizeof(*it));
            if (!it)
                break;
            items = it;
            cap = nc;
        }
        if (a == ACT_PURGE)
            registry_unlink(c); /* its ref moves to the item */
        else
            atomic_fetch_add(&c->refs, 1);
        items[n++] = (tick_item){c, a, why};
    }
    pthread_mutex_unlock(&registry_lock);
    for (size_t i = 0; i < n; i++) {
        if (items[i].a == ACT_PING) {
            send_ping(items[i].c);
        } else if (items[i].a == ACT_ACK) {
            char rec[64];
            int len = snprintf(rec, sizeof(rec), "{\"type\":8,\"sequenceId\":%" PRIu64 "}",
                               atomic_load(&items[i].c->recv_highest));
            send_record(items[i].c, rec, (size_t)len);
        } else if (items[i].a == ACT_CLOSE)
            sr_conn_close(items[i].c, items[i].why, items[i].why == silent_client);
        else if (items[i].a == ACT_END) /* the client may come back (with a new token) */
            sr_conn_close(items[i].c, items[i].why, true);
        else if (items[i].a == ACT_DISCONNECT) /* the official client does not reconnect */
            sr_conn_close(items[i].c, items[i].why, false);
        else if (items[i].a == ACT_POLL_DUE)
            sr_remote_poll_expire(items[i].c, now_ms);
        sr_conn_unref(items[i].c);
    }
    free(items);
    sr_cluster_tick(now_ms);
}

void sr_shutdown(void)
{
    sr_cluster_shutdown();
    pthread_mutex_lock(&registry_lock);
    shutting_down = true;
    size_t n = 0;
    list_for_each_safe (node, next, &all_conns)
        n++;
    sr_conn **list = calloc(n ? n : 1, sizeof(*list));
    size_t k = 0;
    list_for_each_safe (node, next, &all_conns) {
        if (!list)
            break;
        sr_conn *c = list_entry(node, sr_conn, link);
        atomic_fetch_add(&c->refs, 1);
        list[k++] = c;
    }
    pthread_mutex_unlock(&registry_lock);
    for (size_t i = 0; i < k; i++) {
        sr_conn_close(list[i], SHUTTING_DOWN, true);
        sr_conn_unref(list[i]);
    }
    free(list);
    if (k)
        LOG_INFO(TAG, "closed %zu SignalR connection(s): server shutting down", k);
}

void sr_fini(void)
{
    pthread_mutex_lock(&registry_lock);
    list_node gone;
    list_move_all(&gone, &all_conns);
    memset(buckets, 0, sizeof(buckets));
    pthread_mutex_unlock(&registry_lock);
    list_for_each_safe (node, next, &gone)
        sr_conn_unref(list_entry(node, sr_conn, link)); /* the registry's ref */
}
