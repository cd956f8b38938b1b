/* SPDX-License-Identifier: MIT */
/*
 * signalr/transports.c - how SignalR connections ride the transports:
 * negotiate, the WebSocket session, the SSE stream, long polls, and the
 * POSTs and DELETE of the HTTP transports. The bytes are moved by ws.c,
 * sse.c and longpoll.c; the records are understood by signalr.c.
 *
 * Threading: WebSocket hooks run on the lws service thread (sr_ws_acceptable
 * also on the acceptor), the HTTP handlers on the MHD thread of the request's
 * daemon (any of the three: http.c), ws_claimed and sr_remote_poll on the
 * backplane's thread, sr_remote_poll_expire on the timer, and remote_wake
 * on a publisher's thread with the hub and sub locks held. A POST parked by
 * backpressure is let go (post_go) or refused on the timer (main at the
 * drain), which resumes it.
 * Connection state is read and changed under the connection's
 * sub lock only. See docs/concurrency.md.
 *
 * A long poll's answer that went through another node (a remote poll) is
 * not forgotten when it is sent: that node may die before it answers the
 * client, and a proxy (nginx) then retries the same GET on another node.
 * The official clients give each poll a new "_" argument (a proxy's retry
 * keeps it), so the records stay in c->lp_unconfirmed until the next poll:
 * one with the same key gets them again first; one with another key
 * confirms them (a long-polling client polls again only once it has its
 * answer). A poll without a key confirms them too.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/client_addr.h"
#include "common/clock.h"
#include "common/latency.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/ratelimit.h"
#include "transports/carriers/http_client.h"
#include "transports/carriers/publish_pace.h"
#include "transports/carriers/sse.h"
#include "transports/signalr/private.h"
#include "transports/signalr/ticket.h"

#define TAG "signalr"

static const cfg *conf;

/* Negotiates per client address (signalr.negotiate_rate_per_s and
 * negotiate_burst); the table remembers NEGOTIATE_ADDRS addresses at most. */
#define NEGOTIATE_ADDRS 8192
static ratelimit *negotiate_rate;

/* A WebSocket's connection token is read into this many bytes, NUL
 * included; a longer one counts as none (as it always has: the upgrade
 * then makes a connection, like skipNegotiation). */
#define SR_WS_TOKEN_CAP 64

/* A remote long poll for a connection that has none to hold. */
static const char no_poll_conn_json[] = "{\"error\":\"no such connection for long polling\"}";

void sr_transports_init(const cfg *c)
{
    conf = c;
    if (!negotiate_rate)
        negotiate_rate = ratelimit_create(NEGOTIATE_ADDRS, c->signalr.negotiate_rate_per_s,
                                          c->signalr.negotiate_burst);
}

/* The state of a request on {path}: which of the three it is, or one for
 * a connection another node holds (REQ_FWD: signalr/cluster.c). */
typedef enum { REQ_STREAM, REQ_POLL, REQ_POST, REQ_FWD, REQ_CONNECT } req_kind;
typedef struct sr_req {
    req_kind kind;
    void *inner; /* sse.c's or longpoll.c's state, or the POST body */
} sr_req;

typedef struct sr_post {
    sr_conn *c;      /* NULL when refused */
    unsigned status; /* the refusal: answered once the body is read */
    const char *error;
    http_body body;
    pace_request pace; /* parked by backpressure: suspended meanwhile */
} sr_post;

/* ---------------------------------------------- connect-proxy tickets */

/* Clustered with the connect proxy: negotiate signs the proxy's verdict
 * into the connection token (signalr/ticket.h), the node that makes the
 * connection takes its principal from there, and a node that does not
 * hold a connection refuses a token whose ticket does not verify. */
static bool ticketed(void)
{
    return sr_clustered() && conf->upstream.connect[0];
}

/* A token's base (its first TOKEN_LEN characters, the connection's key)
 * when it carries a ticket; else the token as it is. */
static const char *token_base(const char *token, char base[TOKEN_LEN + 1])
{
    if (!token || !ticketed() || !sr_ticket_present(token, strlen(token)))
        return token;
    memcpy(base, token, TOKEN_LEN);
    base[TOKEN_LEN] = '\0';
    return base;
}

/* The principal token's ticket carries for hb (one ref), or NULL with
 * *error; logged. */
static access_principal *ticket_principal(const cfg_hub *hb, const char *token, size_t len,
                                          const char **error)
{
    access_principal *p =
        sr_ticket_read(conf->upstream.connect_secret, hb->name, token, len, error);
    if (!p)
        LOG_INFO(TAG, "a request on %s refused (403): %s", hb->path, *error);
    return p;
}

static bool ticket_verifies(const cfg_hub *hb, const char *token, size_t len, const char **error)
{
    access_principal *p = ticket_principal(hb, token, len, error);
    access_unref(p);
    return p != NULL;
}

/* --------------------------------------------------------- WebSocket */

/* A WebSocket session: which socket of the connection it is. After a
 * stateful resume takes the connection over, the old socket's session is
 * stale: what it receives is ignored and its close changes nothing. */
typedef struct sr_ws {
    sr_conn *c; /* a ref */
    unsigned gen;
} sr_ws;

static bool is_current(const sr_ws *w)
{
    pthread_mutex_lock(&w->c->s.lock);
    bool current = w->gen == w->c->ws_gen;
    pthread_mutex_unlock(&w->c->s.lock);
    return current;
}

static int ws_receive(void *session, const char *data, size_t len, bool binary, const char **why)
{
    sr_ws *w = session;
    if (!is_current(w)) {
        *why = "replaced by a resumed connection";
        return WS_CLOSE_NORMAL;
    }
    /* Binary frames carry MessagePack records (and may carry the handshake
     * that asks for them); a JSON connection takes text only. */
    if (binary && atomic_load(&w->c->handshaken) && !atomic_load(&w->c->msgpack))
        sr_conn_close(w->c, "Invalid input for JSON hub protocol. Expected a string.", false);
    else
        sr_conn_receive(w->c, data, len);
    return 0; /* the transport ends once the Close record is out */
}

static int ws_oversize(void *session, const char **why)
{
    sr_ws *w = session;
    (void)why;
    if (is_current(w))
        sr_conn_close(w->c, "The message is larger than limits.max_message_bytes.", false);
    return 0;
}

/* A stateful connection outlives its socket for a while; others end. */
static void ws_closed(void *session)
{
    sr_ws *w = session;
    if (is_current(w) && !sr_conn_detach(w->c))
        sr_conn_close(w->c, NULL, false);
    sr_conn_unref(w->c);
    free(w);
}

static void ws_sent(void *session, msg *m)
{
    sr_ws *w = session;
    if (is_current(w))
        sr_conn_sent(w->c, m);
}

static const ws_session_ops sr_ws_ops = {ws_receive, ws_closed, ws_oversize, ws_sent, NULL};

/* The connection token id (id_len bytes) into token, NUL-terminated; false
 * when there is none, or it cannot be one (too long), as if absent. */
static bool ws_token(const char *id, size_t id_len, char token[SR_WS_TOKEN_CAP])
{
    if (id && ticketed() && sr_ticket_present(id, id_len))
        id_len = TOKEN_LEN; /* the base: the connection's key (signalr/ticket.h) */
    if (!id || id_len >= SR_WS_TOKEN_CAP)
        return false;
    memcpy(token, id, id_len);
    token[id_len] = '\0';
    return true;
}

bool sr_ws_acceptable(const cfg_hub *hb, const char *id, size_t id_len)
{
    char token[SR_WS_TOKEN_CAP];
    if (!conf->transports.websocket)
        return false;
    if (!ws_token(id, id_len, token))
        return true; /* skipNegotiation: the connection is made on upgrade */
    sr_conn *c = sr_conn_find(hb, token);
    const char *error = NULL;
    if (!c) /* made here, if nobody has it; a bad ticket goes to MHD: 403 there */
        return sr_clustered() && sr_token_is_valid(token) &&
               (!ticketed() || ticket_verifies(hb, id, id_len, &error));
    pthread_mutex_lock(&c->s.lock);
    bool ok = !c->closed && (c->transport == TR_NONE || (c->stateful && c->transport == TR_WS));
    pthread_mutex_unlock(&c->s.lock);
    sr_conn_unref(c);
    return ok;
}

bool sr_ws_needs_claim(const cfg_hub *hb, const char *id, size_t id_len)
{
    char token[SR_WS_TOKEN_CAP];
    if (!sr_clustered() || !ws_token(id, id_len, token) || !sr_token_is_valid(token))
        return false;
    sr_conn *c = sr_conn_find(hb, token);
    sr_conn_unref(c);
    return !c;
}

typedef struct ws_claim {
    void (*cb)(void *arg, sr_ws_claim_result r);
    void *arg;
} ws_claim;

/* Backplane thread (or the caller's): did the owner get the probe? */
static void ws_owner_probed(void *arg, long nodes)
{
    ws_claim *wc = arg;
    wc->cb(wc->arg, nodes > 0 ? SR_WS_ELSEWHERE : SR_WS_GONE);
    free(wc);
}

/* Backplane thread (or the caller's): who owns a WebSocket's token; another
 * node's is probed (is it alive?). */
static void ws_claim_answered(void *arg, int rc, const char *owner)
{
    ws_claim *wc = arg;
    if (!rc && *owner && strcmp(owner, sr_node_id())) {
        sr_cluster_probe(owner, ws_owner_probed, wc);
        return;
    }
    wc->cb(wc->arg, !rc && *owner ? SR_WS_TAKEN : SR_WS_GONE);
    free(wc);
}

void sr_ws_claim(const char *id, size_t id_len, void (*cb)(void *arg, sr_ws_claim_result r),
                 void *arg)
{
    char token[SR_WS_TOKEN_CAP];
    ws_claim *wc = malloc(sizeof(*wc));
    if (!wc || !ws_token(id, id_len, token)) {
        free(wc);
        cb(arg, SR_WS_GONE);
        return;
    }
    *wc = (ws_claim){cb, arg};
    sr_cluster_claim(token, ws_claim_answered, wc);
}

unsigned sr_ws_refusal(const cfg_hub *hb, const char *id, size_t id_len, const char **error)
{
    char token[SR_WS_TOKEN_CAP];
    if (ws_token(id, id_len, token) && ticketed() && sr_token_is_valid(token)) {
        sr_conn *c = sr_conn_find(hb, token);
        sr_conn_unref(c);
        if (!c && !ticket_verifies(hb, id, id_len, error))
            return MHD_HTTP_FORBIDDEN;
    }
    *error = "no such connection";
    return MHD_HTTP_NOT_FOUND;
}

unsigned sr_ws_admit(const cfg_hub *hb, const char *id, size_t id_len, const access_principal *who,
                     const char **error)
{
    char token[SR_WS_TOKEN_CAP];
    sr_conn *c = ws_token(id, id_len, token) ? sr_conn_find(hb, token) : NULL;
    unsigned status = c ? sr_conn_admit(c, who, true, error) : 0;
    sr_conn_unref(c);
    return status;
}

/* Backplane thread: who owns the token of a WebSocket made here. */
static void ws_claimed(void *arg, int rc, const char *owner)
{
    sr_conn *c = arg;
    if (rc == -ENOENT || (!rc && strcmp(owner, sr_node_id())))
        sr_conn_close(c, "This connection is held by another node.", false);
    else if (rc)
        LOG_WARN(TAG, "connection " SR_CONN_FMT ": cannot claim it in the backplane (unreachable)",
                 SR_CONN_ARGS(c));
    sr_conn_unref(c);
}

/* A connection for a WebSocket: found, or made here (skipNegotiation; or
 * clustered, where negotiate makes nothing: then claimed for this node). */
static sr_conn *ws_connection(const cfg_hub *hb, const char *id, size_t id_len,
                              access_principal *who)
{
    char token[SR_WS_TOKEN_CAP];
    if (!ws_token(id, id_len, token) && conf->upstream.connect[0]) {
        LOG_INFO(TAG, "a WebSocket without negotiate refused: upstream.connect must see every "
                      "new connection");
        return NULL;
    }
    if (!ws_token(id, id_len, token))
        return sr_conn_new(hb, false, who);
    sr_conn *c = sr_conn_find(hb, token);
    const char *error = NULL;
    if (c && sr_conn_admit(c, who, true, &error)) { /* logged: not its user */
        sr_conn_unref(c);
        return NULL;
    }
    if (c || !sr_clustered() || !sr_token_is_valid(token))
        return c;
    access_principal *proxied = ticketed() ? ticket_principal(hb, id, id_len, &error) : NULL;
    if (ticketed() && !proxied)
        return NULL;
    c = sr_conn_new_named(hb, token, proxied ? proxied : who); /* the proxy's verdict wins */
    access_unref(proxied);
    if (c) {
        pthread_mutex_lock(&c->s.lock);
        c->stateful_offered = true; /* negotiate (elsewhere) offered it if the client asks */
        pthread_mutex_unlock(&c->s.lock);
        atomic_fetch_add(&c->refs, 1);
        sr_cluster_claim(token, ws_claimed, c);
    }
    return c;
}

const char *sr_rejoin_error(const cfg_hub *hb, const char *value, size_t len, bool decode)
{
    sr_rejoin *rj = NULL;
    const char *why = sr_rejoin_of_request(hb, value, len, decode, &rj);
    free(rj);
    return why;
}

int sr_ws_open(const cfg_hub *hb, const char *id, size_t id_len, const char *query,
               access_principal *who, ws_session *out)
{
    size_t rooms_len = 0;
    const char *rooms = query_value(query, SR_REJOIN_PARAM, &rooms_len);
    sr_rejoin *rj = NULL;
    if (sr_rejoin_of_request(hb, rooms, rooms_len, true, &rj))
        return -1; /* the acceptor lets none through */
    sr_conn *c = ws_connection(hb, id, id_len, who);
    sr_ws *w = c ? calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        sr_conn_unref(c);
        free(rj);
        return -1;
    }
    pthread_mutex_lock(&c->s.lock);
    bool resumed = sr_conn_resume_locked(c);
    bool ok = resumed || sr_attach_locked(c, TR_WS);
    if (ok && !resumed) { /* a stateful resume keeps its rooms */
        sr_conn_set_rejoin_locked(c, rj);
        rj = NULL;
    }
    free(rj);
    w->c = c;
    w->gen = c->ws_gen;
    pthread_mutex_unlock(&c->s.lock);
    if (resumed) {
        pthread_mutex_lock(&c->recv_lock);
        c->awaiting_sequence = true;
        pthread_mutex_unlock(&c->recv_lock);
    }
    if (!ok || !sr_transport_enabled(TR_WS)) {
        sr_conn_unref(c);
        free(w);
        return -1;
    }
    *out = (ws_session){&c->s, &sr_ws_ops, w, 0, NULL}; /* the session keeps the ref */
    return 0;
}

/* ------------------------------------------------------ HTTP transports */

static const char *request_token(http_call *call)
{
    return MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "id");
}

static sr_req *new_req(http_call *call, req_kind kind)
{
    sr_req *rq = calloc(1, sizeof(*rq));
    if (rq) {
        rq->kind = kind;
        *call->state = rq;
    }
    return rq;
}

/* The call as sse.c or longpoll.c see it: their state lives in rq->inner. */
static http_call inner_call(http_call *call, sr_req *rq)
{
    http_call in = *call;
    in.state = &rq->inner;
    return in;
}

static void stream_ended(void *session)
{
    sr_conn *c = session;
    pthread_mutex_lock(&c->s.lock);
    c->attached = false;
    pthread_mutex_unlock(&c->s.lock);
    sr_conn_close(c, NULL, false); /* an SSE connection ends with its stream */
    sr_conn_unref(c);
}

/* The crier_rooms of the request that starts a transport (hub option
 * rejoin_query): NULL with *out (NULL: none), or the error for a 400. */
static const char *call_rejoin(http_call *call, sr_rejoin **out)
{
    const char *v = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, SR_REJOIN_PARAM);
    return sr_rejoin_of_request(call->arg, v, v ? strlen(v) : 0, false, out);
}

/* A bad crier_rooms on the request that would start c's transport: 400,
 * and c stays as it was. Takes the caller's ref on c. */
static enum MHD_Result refuse_rejoin(http_call *call, sr_conn *c, const char *why)
{
    LOG_INFO(TAG, "connection " SR_CONN_FMT ": transport refused (400): %s", SR_CONN_ARGS(c), why);
    sr_conn_unref(c);
    return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST, "%s", why);
}

/* GET with Accept: text/event-stream. Takes the caller's ref on c. */
static enum MHD_Result open_stream(http_call *call, sr_conn *c)
{
    sr_rejoin *rj = NULL;
    const char *bad = call_rejoin(call, &rj);
    if (bad)
        return refuse_rejoin(call, c, bad);
    pthread_mutex_lock(&c->s.lock);
    bool ok = sr_transport_enabled(TR_SSE) && sr_attach_locked(c, TR_SSE);
    if (ok) {
        sr_conn_set_rejoin_locked(c, rj);
        rj = NULL;
    }
    pthread_mutex_unlock(&c->s.lock);
    free(rj);
    if (!ok) {
        sr_conn_unref(c);
        return http_reply_error(call->conn, MHD_HTTP_NOT_FOUND,
                                "no such connection for Server-Sent Events");
    }
    sr_req *rq = new_req(call, REQ_STREAM);
    if (!rq) {
        stream_ended(c);
        return MHD_NO;
    }
    http_call in = inner_call(call, rq);
    return sse_stream(&in, &c->s, ":\r\n", stream_ended, c);
}

void sr_poll_key(http_call *call, char out[SR_POLL_KEY_MAX + 1])
{
    const char *k = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "_");
    size_t n = k ? strlen(k) : 0;
    bool ok = n && n <= SR_POLL_KEY_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'z') ||
             (k[i] >= 'A' && k[i] <= 'Z') || k[i] == '-' || k[i] == '_';
    snprintf(out, SR_POLL_KEY_MAX + 1, "%s", ok ? k : "");
}

static void unconfirmed_drop_locked(sr_conn *c)
{
    free(c->lp_unconfirmed);
    c->lp_unconfirmed = NULL;
    c->lp_unconfirmed_len = 0;
    c->lp_unconfirmed_key[0] = '\0';
}

/* Sub lock held: poll p (key: its "_", or "") begins: it confirms what the
 * last remote poll handed over, or is a retry of that poll (resend). */
static void poll_begin_locked(sr_conn *c, sr_poll *p, const char *key)
{
    snprintf(p->key, sizeof(p->key), "%s", key);
    if (c->lp_unconfirmed && key[0] && !strcmp(key, c->lp_unconfirmed_key))
        p->resend = true;
    else
        unconfirmed_drop_locked(c);
}

/* Sub lock held: a remote poll's answer (len bytes) is kept until
 * confirmed, when the poll has a key to tell its retry by. */
static void unconfirmed_keep_locked(sr_conn *c, const sr_poll *p, const char *body, size_t len)
{
    unconfirmed_drop_locked(c);
    if (!len || !p->key[0] || !(c->lp_unconfirmed = malloc(len)))
        return;
    memcpy(c->lp_unconfirmed, body, len);
    c->lp_unconfirmed_len = len;
    snprintf(c->lp_unconfirmed_key, sizeof(c->lp_unconfirmed_key), "%s", p->key);
}

/* Sub lock held. Moves every queued record into one poll answer, stopping
 * past LP_ANSWER_SOFT_MAX; the rest goes with the next poll. A retried
 * poll's answer begins with what its lost answer had. */
static char *take_records(sr_conn *c, sr_poll *p, size_t *len_out)
{
    buf out = {0};
    if (p->resend && c->lp_unconfirmed &&
        buf_append(&out, c->lp_unconfirmed, c->lp_unconfirmed_len)) {
        p->resend = false;
        unconfirmed_drop_locked(c);
    }
    int64_t now = 0; /* read once, at the answer's first room message */
    msg *m;
    while ((m = sendq_peek(&c->s.q)) != NULL) {
        msg_bytes b = msg_get(m, c->s.fmt, c->s.target); /* JSON or MessagePack records */
        if ((out.len && out.len + b.len > LP_ANSWER_SOFT_MAX) || !buf_append(&out, b.base, b.len))
            break;
        if (m->id)
            latency_observe((now ? now : (now = clock_now_ms())) - m->created_ms);
        sendq_pop(&c->s.q);
    }
    *len_out = out.len;
    return buf_take(&out);
}

static enum MHD_Result poll_answer(http_call *call, void *session, sub *s, lp_reason why)
{
    sr_poll *p = session;
    sr_conn *c = p->c;
    (void)why;
    pthread_mutex_lock(&s->lock);
    if (c->held == p)
        c->held = NULL;
    c->last_poll_ms = clock_now_ms();
    size_t len = 0;
    char *body = p->replaced ? NULL : take_records(c, p, &len);
    bool over = p->replaced || (!len && (c->closed || s->ending || s->dropped));
    pthread_mutex_unlock(&s->lock);
    if (over) {
        free(body);
        return http_reply_empty(call->conn, MHD_HTTP_NO_CONTENT);
    }
    return http_reply_take(call->conn, MHD_HTTP_OK, "application/octet-stream", body, len);
}

static void poll_ended(void *session)
{
    sr_poll *p = session;
    pthread_mutex_lock(&p->c->s.lock);
    if (p->c->held == p)
        p->c->held = NULL;
    p->c->last_poll_ms = clock_now_ms();
    pthread_mutex_unlock(&p->c->s.lock);
    sr_conn_unref(p->c);
    free(p);
}

static const lp_hold_ops poll_ops = {poll_answer, poll_ended};

/* Sub lock held: answers a remote poll (to the node that forwarded it)
 * with what is queued, or 204 when it was replaced or the connection is
 * over; then lets it go. Returns false (keeping it) when there is nothing
 * to say yet and force is false. */
static bool remote_answer_locked(sr_poll *p, bool force)
{
    sr_conn *c = p->c;
    size_t len = 0;
    char *body = p->replaced ? NULL : take_records(c, p, &len);
    bool over = p->replaced || (!len && (c->closed || c->s.ending || c->s.dropped));
    if (!len && !over && !force) {
        free(body);
        return false;
    }
    if (!over)
        unconfirmed_keep_locked(c, p, body, len);
    if (c->held == p)
        c->held = NULL;
    sub_attach(&c->s, NULL, NULL);
    c->last_poll_ms = clock_now_ms();
    sr_cluster_reply(p->from, p->req, over ? MHD_HTTP_NO_CONTENT : MHD_HTTP_OK, body, len);
    free(body);
    return true;
}

/* Sub lock held (the hub's wake): a remote poll has news, maybe. */
static void remote_wake(sub *s)
{
    sr_poll *p = s->owner;
    if (p && remote_answer_locked(p, false)) {
        atomic_fetch_sub(&p->c->refs, 1); /* the registry's ref remains */
        free(p);
    }
}

/* Sub lock held: the poll held now (here or for another node) gives way to
 * a newer one. */
static void replace_held_locked(sr_conn *c)
{
    sr_poll *old = c->held;
    if (!old)
        return;
    old->replaced = true;
    c->held = NULL;
    if (old->remote) {
        remote_answer_locked(old, true);
        atomic_fetch_sub(&c->refs, 1);
        free(old);
    } else {
        lp_release_locked(old->lp);
    }
}

void sr_remote_poll(sr_conn *c, const char *from, uint64_t req, const char *key)
{
    sr_poll *p = calloc(1, sizeof(*p));
    pthread_mutex_lock(&c->s.lock);
    /* A closed connection's last records (its Close message) go out too. */
    bool ok =
        p && c->transport == TR_LP && (!c->closed || !sendq_is_empty(&c->s.q) || c->lp_unconfirmed);
    if (!ok) {
        bool over = c->closed && sendq_is_empty(&c->s.q);
        pthread_mutex_unlock(&c->s.lock);
        if (over)
            sr_cluster_reply(from, req, MHD_HTTP_NO_CONTENT, NULL, 0);
        else
            sr_cluster_reply(from, req, MHD_HTTP_NOT_FOUND, no_poll_conn_json,
                             sizeof(no_poll_conn_json) - 1);
        free(p);
        sr_conn_unref(c);
        return;
    }
    replace_held_locked(c);
    poll_begin_locked(c, p, key);
    p->c = c; /* keeps the caller's ref */
    p->remote = true;
    snprintf(p->from, sizeof(p->from), "%s", from);
    p->req = req;
    p->deadline_ms = clock_now_ms() + (int64_t)conf->limits.poll_timeout_s * MS_PER_S;
    c->held = p;
    c->last_poll_ms = clock_now_ms();
    if (remote_answer_locked(p, false)) { /* something was queued already */
        pthread_mutex_unlock(&c->s.lock);
        free(p);
        sr_conn_unref(c);
        return;
    }
    sub_attach(&c->s, remote_wake, p);
    pthread_mutex_unlock(&c->s.lock);
}

void sr_remote_poll_expire(sr_conn *c, int64_t now_ms)
{
    pthread_mutex_lock(&c->s.lock);
    sr_poll *p = c->held;
    bool due = p && p->remote && now_ms >= p->deadline_ms;
    if (due) {
        remote_answer_locked(p, true);
        atomic_fetch_sub(&c->refs, 1);
        free(p);
    }
    pthread_mutex_unlock(&c->s.lock);
}

/* GET without Accept: text/event-stream: a long poll. Takes the caller's
 * ref on c. The first poll answers at once, empty: the client waits for it
 * before it sends the handshake. A newer poll replaces a held one: it
 * becomes c->held, with its hold (p->lp) made, in the same locked step
 * that releases the old one, so a poll is never held without its hold nor
 * replaced twice; two polls of one connection may run on two MHD threads. */
static enum MHD_Result open_poll(http_call *call, sr_conn *c)
{
    sr_rejoin *rj = NULL;
    pthread_mutex_lock(&c->s.lock);
    bool first = c->transport == TR_NONE;
    pthread_mutex_unlock(&c->s.lock);
    const char *bad = first ? call_rejoin(call, &rj) : NULL;
    if (bad)
        return refuse_rejoin(call, c, bad);
    pthread_mutex_lock(&c->s.lock);
    first = c->transport == TR_NONE;
    bool ok =
        first ? sr_transport_enabled(TR_LP) && sr_attach_locked(c, TR_LP) : c->transport == TR_LP;
    if (ok && first) {
        sr_conn_set_rejoin_locked(c, rj);
        rj = NULL;
    }
    c->last_poll_ms = clock_now_ms();
    pthread_mutex_unlock(&c->s.lock);
    free(rj);
    if (!ok) {
        sr_conn_unref(c);
        return http_reply_error(call->conn, MHD_HTTP_NOT_FOUND,
                                "no such connection for long polling");
    }
    if (first) {
        sr_conn_unref(c);
        return http_reply_empty(call->conn, MHD_HTTP_OK);
    }
    sr_req *rq = new_req(call, REQ_POLL);
    sr_poll *p = rq ? calloc(1, sizeof(*p)) : NULL;
    if (!p) {
        sr_conn_unref(c);
        return MHD_NO;
    }
    p->c = c; /* the poll keeps the caller's ref */
    char key[SR_POLL_KEY_MAX + 1];
    sr_poll_key(call, key);
    http_call in = inner_call(call, rq);
    lp_conn *lp =
        lp_prepare(&in, &c->s, (int64_t)conf->limits.poll_timeout_s * MS_PER_S, &poll_ops, p);
    if (!lp)
        return MHD_NO; /* poll_ended let p and its ref go */
    pthread_mutex_lock(&c->s.lock);
    replace_held_locked(c);
    poll_begin_locked(c, p, key);
    p->lp = lp;
    c->held = p;
    c->last_poll_ms = clock_now_ms();
    pthread_mutex_unlock(&c->s.lock);
    return lp_hold(&in, lp);
}

enum MHD_Result sr_refuse_paced(struct MHD_Connection *conn)
{
    return http_reply_refused(conn, MHD_HTTP_SERVICE_UNAVAILABLE, 1,
                              "subscribers are behind: the message was not sent within "
                              "limits.publish_wait_ms; try again later");
}

/* Timer thread: a POST parked by backpressure goes: its records to the
 * connection (the next check of the backlog sees them), then the request
 * is resumed and answers 200. */
static void post_go(void *arg)
{
    sr_post *p = arg;
    sr_conn_receive(p->c, p->body.b.data ? p->body.b.data : "", p->body.b.len);
}

/* POST: records from an SSE or long-polling client. MHD takes an answer
 * only before the body or after all of it, so a refusal waits for the end. */
static enum MHD_Result receive_post(http_call *call, sr_req *rq)
{
    sr_post *p = rq->inner;
    if (*call->upload_size && p->status) {
        *call->upload_size = 0; /* a body nobody reads: http.c bounds it */
        return MHD_YES;
    }
    if (*call->upload_size) {
        if (http_body_take(&p->body, call, conf->limits.max_message_bytes))
            return MHD_YES;
        if (p->body.too_big) /* answered 413; the connection ends too */
            sr_conn_close(p->c, "The message is larger than limits.max_message_bytes.", false);
        return MHD_NO;
    }
    if (p->status)
        return http_reply_error(call->conn, p->status, "%s", p->error);
    if (p->body.too_big) {
        sr_conn_close(p->c, "The message is larger than limits.max_message_bytes.", false);
        return http_reply_error(call->conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                "message is larger than limits.max_message_bytes");
    }
    /* Backpressure: while subscribers that read are behind, a client's sends
     * wait as room publishes do (carriers/publish_pace.h). */
    switch (publish_pace_request(&p->pace, call->conn, (int64_t)conf->limits.publish_wait_ms,
                                 PACE_SIGNALR_HTTP, post_go, p)) {
    case PACE_REQ_WAIT:
        return MHD_YES;
    case PACE_REQ_REFUSED:
        return sr_refuse_paced(call->conn);
    case PACE_REQ_WENT:
        return http_reply_empty(call->conn, MHD_HTTP_OK); /* post_go took the records */
    case PACE_REQ_NOW:
        break;
    }
    sr_conn_receive(p->c, p->body.b.data ? p->body.b.data : "", p->body.b.len);
    return http_reply_empty(call->conn, MHD_HTTP_OK);
}

/* The first call of a POST with its body. Takes the caller's ref on c. */
static enum MHD_Result open_post(http_call *call, sr_conn *c)
{
    sr_req *rq = new_req(call, REQ_POST);
    sr_post *p = rq ? calloc(1, sizeof(*p)) : NULL;
    if (!p) {
        sr_conn_unref(c);
        return MHD_NO;
    }
    rq->inner = p;
    sr_transport t = TR_NONE;
    bool closed = true;
    if (c) {
        pthread_mutex_lock(&c->s.lock);
        t = c->transport;
        closed = c->closed;
        pthread_mutex_unlock(&c->s.lock);
    }
    if (closed || t == TR_NONE) {
        p->status = MHD_HTTP_NOT_FOUND;
        p->error = "no such connection";
    } else if (t == TR_WS) {
        p->status = MHD_HTTP_METHOD_NOT_ALLOWED;
        p->error = "this connection sends over its WebSocket";
    }
    if (p->status)
        sr_conn_unref(c);
    else
        p->c = c;
    return receive_post(call, rq);
}

/* A POST refused before its body: answered once the body is read. */
static enum MHD_Result refuse_post(http_call *call, unsigned status, const char *error)
{
    sr_req *rq = new_req(call, REQ_POST);
    sr_post *p = rq ? calloc(1, sizeof(*p)) : NULL;
    if (!p)
        return MHD_NO;
    rq->inner = p;
    p->status = status;
    p->error = error;
    return receive_post(call, rq);
}

static enum MHD_Result close_by_delete(http_call *call, sr_conn *c)
{
    pthread_mutex_lock(&c->s.lock);
    bool lp = c->transport == TR_LP;
    pthread_mutex_unlock(&c->s.lock);
    if (lp)
        sr_conn_close(c, NULL, false);
    sr_conn_unref(c);
    return lp ? http_reply_empty(call->conn, MHD_HTTP_ACCEPTED)
              : http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                 "DELETE closes long-polling connections only");
}

/* Headers-only first call: a POST whose Content-Length is over the limit is
 * refused before its body is read, and its connection closed. */
static enum MHD_Result check_declared_size(http_call *call)
{
    const char *cl =
        MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t declared = 0;
    if (strcmp(call->method, "POST") || !cl || !parse_u64(cl, &declared) ||
        declared <= conf->limits.max_message_bytes)
        return MHD_YES;
    char base[TOKEN_LEN + 1];
    sr_conn *c = sr_conn_find(call->arg, token_base(request_token(call), base));
    if (c) {
        sr_conn_close(c, "The message is larger than limits.max_message_bytes.", false);
        sr_conn_unref(c);
    }
    return http_reply_error(call->conn, MHD_HTTP_CONTENT_TOO_LARGE,
                            "message is larger than limits.max_message_bytes");
}

static enum MHD_Result forwarded(http_call *call, sr_req *rq);

/* A request for a connection this node does not hold: another node may
 * (signalr/cluster.c). */
static enum MHD_Result forward(http_call *call, const cfg_hub *hb, const char *token)
{
    sr_req *rq = new_req(call, REQ_FWD);
    sr_fwd *f = rq ? sr_fwd_new(call, hb, token) : NULL;
    if (!f)
        return MHD_NO;
    rq->inner = f;
    return forwarded(call, rq);
}

/* Each later call of a forwarded request. When this node turned out to be
 * the one to carry the connection (its SSE stream or first long poll), the
 * connection is made here and served as any other. */
static enum MHD_Result forwarded(http_call *call, sr_req *rq)
{
    bool go_local = false;
    enum MHD_Result r = sr_fwd_step(call, rq->inner, &go_local);
    if (!go_local)
        return r;
    const cfg_hub *hb = call->arg;
    const char *full = request_token(call), *error = NULL;
    char base[TOKEN_LEN + 1];
    access_principal *proxied =
        full && ticketed() ? ticket_principal(hb, full, strlen(full), &error) : NULL;
    sr_conn *c = !ticketed() || proxied
                     ? sr_conn_new_named(hb, token_base(full, base), proxied ? proxied : call->who)
                     : NULL;
    access_unref(proxied);
    sr_fwd_free(rq->inner);
    free(rq);
    *call->state = NULL;
    if (error)
        return http_reply_error(call->conn, MHD_HTTP_FORBIDDEN, "%s", error);
    if (!c)
        return http_reply_error(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "cannot create a connection now");
    return http_wants_event_stream(call->conn) ? open_stream(call, c) : open_poll(call, c);
}

enum MHD_Result sr_request(http_call *call)
{
    if (call->first)
        return check_declared_size(call);
    sr_req *rq = *call->state;
    if (rq && rq->kind == REQ_FWD)
        return forwarded(call, rq);
    if (rq && rq->kind == REQ_POST)
        return receive_post(call, rq);
    if (rq && rq->kind == REQ_POLL) {
        http_call in = inner_call(call, rq);
        return lp_resume(&in);
    }
    if (rq)
        return MHD_YES; /* a stream: sse.c feeds it */
    if (*call->upload_size && strcmp(call->method, "POST")) {
        *call->upload_size = 0; /* a body nobody reads */
        return MHD_YES;
    }
    const cfg_hub *hb = call->arg;
    const char *full = request_token(call), *error = NULL;
    char base[TOKEN_LEN + 1];
    const char *token = token_base(full, base);
    sr_conn *c = token ? sr_conn_find(hb, token) : NULL;
    if (!c && sr_clustered() && sr_token_is_valid(token)) {
        if (ticketed() && !ticket_verifies(hb, full, strlen(full), &error))
            return !strcmp(call->method, "POST")
                       ? refuse_post(call, MHD_HTTP_FORBIDDEN, error)
                       : http_reply_error(call->conn, MHD_HTTP_FORBIDDEN, "%s", error);
        return forward(call, hb, token);
    }
    unsigned refused = c ? sr_conn_admit(c, call->who, true, &error) : 0;
    if (refused) {
        sr_conn_unref(c);
        if (!strcmp(call->method, "POST"))
            return refuse_post(call, refused, error);
        return http_reply_error(call->conn, refused, "%s", error);
    }
    if (!strcmp(call->method, "POST"))
        return open_post(call, c);
    if (!token)
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST, "missing ?id= connection token");
    if (!c)
        return http_reply_error(call->conn, MHD_HTTP_NOT_FOUND, "no such connection");
    if (!strcmp(call->method, "DELETE"))
        return close_by_delete(call, c);
    pthread_mutex_lock(&c->s.lock);
    bool over = c->closed && c->transport == TR_LP && sendq_is_empty(&c->s.q);
    pthread_mutex_unlock(&c->s.lock);
    if (over) {
        sr_conn_unref(c);
        return http_reply_empty(call->conn, MHD_HTTP_NO_CONTENT);
    }
    return http_wants_event_stream(call->conn) ? open_stream(call, c) : open_poll(call, c);
}

static void connect_completed(void *inner);

void sr_request_completed(void *state)
{
    sr_req *rq = state;
    if (rq->kind == REQ_FWD) {
        sr_fwd_free(rq->inner);
    } else if (rq->kind == REQ_CONNECT) {
        connect_completed(rq->inner);
    } else if (rq->kind == REQ_STREAM && rq->inner) {
        sse_completed(rq->inner);
    } else if (rq->kind == REQ_POLL && rq->inner) {
        lp_completed(rq->inner);
    } else if (rq->kind == REQ_POST && rq->inner) {
        sr_post *p = rq->inner;
        if (p->c)
            sr_conn_unref(p->c);
        buf_free(&p->body.b);
        free(p);
    }
    free(rq);
}

/* ------------------------------------------------------------ negotiate */

static enum MHD_Result negotiate_here(http_call *call, uint64_t version, bool offer_stateful,
                                      const access_principal *who);

/* The negotiate answer (protocol doc (b)) as malloc'd JSON text, listing
 * the transports this node offers in the order WebSockets,
 * ServerSentEvents, LongPolling. Version 0 has the token as its id. NULL
 * on ENOMEM. */
static char *negotiate_body(uint64_t version, const char *id, const char *token, bool stateful)
{
    json_t *list = json_array();
    if (conf->transports.websocket)
        json_array_append_new(list, json_pack("{s:s,s:[s,s]}", "transport", "WebSockets",
                                              "transferFormats", "Text", "Binary"));
    if (conf->transports.sse)
        json_array_append_new(list, json_pack("{s:s,s:[s]}", "transport", "ServerSentEvents",
                                              "transferFormats", "Text"));
    if (conf->transports.long_polling)
        json_array_append_new(list, json_pack("{s:s,s:[s,s]}", "transport", "LongPolling",
                                              "transferFormats", "Text", "Binary"));
    json_t *body = version >= 1
                       ? json_pack("{s:i,s:s,s:s,s:o}", "negotiateVersion", 1, "connectionId", id,
                                   "connectionToken", token, "availableTransports", list)
                       : json_pack("{s:s,s:o}", "connectionId", token, "availableTransports", list);
    if (body && stateful)
        json_object_set_new(body, "useStatefulReconnect", json_true());
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    return text;
}

/* Clustered: negotiate makes nothing (the node that first carries the
 * connection makes it), so it may land on any node. A stateful reconnect
 * resumes only when its new socket reaches the node holding the
 * connection; elsewhere it is refused and the client connects anew. */
static enum MHD_Result negotiate_clustered(http_call *call, uint64_t version, bool stateful,
                                           const access_principal *who)
{
    char token[TOKEN_LEN + 1], id[TOKEN_LEN + 1];
    sr_random_token(token);
    sr_conn_id_of_token(token, id);
    const cfg_hub *hb = call->arg;
    const char *error = NULL;
    char *signed_token =
        ticketed() ? sr_ticket_make(conf->upstream.connect_secret, hb->name, token, who, &error)
                   : NULL;
    if (ticketed() && !signed_token) {
        LOG_WARN(TAG, "a negotiate on %s refused (502): %s", hb->path, error);
        return http_reply_error(call->conn, MHD_HTTP_BAD_GATEWAY, "%s", error);
    }
    char *body = negotiate_body(version, id, signed_token ? signed_token : token, stateful);
    free(signed_token);
    if (!body)
        return MHD_NO;
    sr_req *rq = new_req(call, REQ_FWD);
    sr_fwd *f = rq ? sr_fwd_negotiate(call, call->arg, token, body) : NULL;
    free(body);
    if (!f)
        return MHD_NO;
    rq->inner = f;
    return forwarded(call, rq);
}

/* ------------------------------------------------------ connect proxy */

/* A negotiate waiting for upstream.connect: suspended until the curl
 * thread (or main, at shutdown) has the answer. connect_lock (a level-3
 * lock, like api.c's wait_lock; MHD's resume is taken under it) guards
 * suspended, answered and the answer. Two refs: the request's and the
 * call's. */
typedef struct sr_connect {
    atomic_int refs;
    struct MHD_Connection *conn;
    uint64_t version;
    bool stateful;
    bool suspended, answered;
    access_principal *who; /* accepted: the proxy's principal */
    unsigned status;       /* refused */
    char *error;
} sr_connect;

static pthread_mutex_t connect_lock = PTHREAD_MUTEX_INITIALIZER;

static void connect_unref(sr_connect *k)
{
    if (atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    access_unref(k->who);
    free(k->error);
    free(k);
}

static void connect_completed(void *inner)
{
    sr_connect *k = inner;
    pthread_mutex_lock(&connect_lock);
    k->suspended = false; /* MHD resumed it to end it */
    pthread_mutex_unlock(&connect_lock);
    connect_unref(k);
}

/* curl thread (or the caller's, refused at once): the proxy's verdict. */
static void connect_done(void *arg, up_transfer t, long status, const char *body, size_t len)
{
    sr_connect *k = arg;
    unsigned refused = 0;
    char *error = NULL;
    access_principal *who =
        up_connect_read(t, status, body, len, conf->upstream.connect, &refused, &error);
    pthread_mutex_lock(&connect_lock);
    k->who = who;
    k->status = refused;
    k->error = error;
    k->answered = true;
    if (k->suspended) {
        k->suspended = false;
        MHD_resume_connection(k->conn);
    }
    pthread_mutex_unlock(&connect_lock);
    connect_unref(k);
}

/* Adds one header or query argument to the JSON object cls. */
static enum MHD_Result add_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    if (key && value && json_object_size(cls) < 64)
        json_object_set_new(cls, key, json_string(value));
    return MHD_YES;
}

/* The body for upstream.connect: the hub, Cookie and Authorization, the query. */
static char *connect_body(http_call *call)
{
    json_t *headers = json_object(), *query = json_object();
    static const char *const wanted[] = {"Cookie", "Authorization"};
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        const char *v = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, wanted[i]);
        if (v)
            json_object_set_new(headers, wanted[i], json_string(v));
    }
    MHD_get_connection_values(call->conn, MHD_GET_ARGUMENT_KIND, add_value, query);
    char *h = json_dumps(headers, JSON_COMPACT), *q = json_dumps(query, JSON_COMPACT);
    json_decref(headers);
    json_decref(query);
    const cfg_hub *hb = call->arg;
    char *body = h && q ? up_connect_body(hb->name, h, q) : NULL;
    free(h);
    free(q);
    return body;
}

/* The verdict is in: the negotiate goes on with the proxy's principal, or
 * is refused with its status. */
static enum MHD_Result connect_answer(http_call *call, sr_connect *k)
{
    pthread_mutex_lock(&connect_lock);
    bool answered = k->answered;
    pthread_mutex_unlock(&connect_lock);
    if (!answered)
        return MHD_NO; /* not reached: resumed only once answered */
    if (!k->who)
        return http_reply_error(call->conn, k->status, "%s",
                                k->error ? k->error : "refused by the upstream");
    if (!sr_clustered())
        return negotiate_here(call, k->version, k->stateful, k->who);
    /* Clustered: the verdict travels in the token; the request's state
     * becomes the offer's (negotiate_clustered). */
    access_principal *who = access_ref(k->who);
    uint64_t version = k->version;
    bool stateful = k->stateful;
    sr_req *rq = *call->state;
    *call->state = NULL;
    connect_completed(k);
    free(rq);
    enum MHD_Result r = negotiate_clustered(call, version, stateful, who);
    access_unref(who);
    return r;
}

/* Asks upstream.connect about this negotiate; the request waits, suspended. */
static enum MHD_Result connect_ask(http_call *call, uint64_t version, bool stateful)
{
    char *body = connect_body(call);
    sr_req *rq = body ? new_req(call, REQ_CONNECT) : NULL;
    sr_connect *k = rq ? calloc(1, sizeof(*k)) : NULL;
    if (!k) {
        free(body);
        return MHD_NO;
    }
    rq->inner = k;
    atomic_init(&k->refs, 2);
    k->conn = call->conn;
    k->version = version;
    k->stateful = stateful;
    hc_post(conf->upstream.connect, body, strlen(body), conf->upstream.timeout_ms, false,
            connect_done, k);
    pthread_mutex_lock(&connect_lock);
    if (!k->answered) {
        k->suspended = true;
        MHD_suspend_connection(call->conn);
        pthread_mutex_unlock(&connect_lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&connect_lock);
    return connect_answer(call, k);
}

/* Past the client address's negotiate rate: 429 with Retry-After. */
static bool negotiate_rate_passed(http_call *call, enum MHD_Result *ret)
{
    char addr[CLIENT_ADDR_MAX];
    http_client_addr(call->conn, addr, sizeof(addr));
    int64_t wait_ms = negotiate_rate ? ratelimit_take(negotiate_rate, addr, clock_now_ms()) : 0;
    if (!wait_ms)
        return false;
    char what[256];
    snprintf(what, sizeof(what),
             "a SignalR negotiate refused (429): signalr.negotiate_rate_per_s (%u) and "
             "negotiate_burst (%u) passed by %.64s",
             conf->signalr.negotiate_rate_per_s, conf->signalr.negotiate_burst, addr);
    limit_refused(LIMIT_NEGOTIATE_RATE, what);
    *ret = http_reply_refused(
        call->conn, MHD_HTTP_TOO_MANY_REQUESTS, (unsigned)((wait_ms + 999) / 1000),
        "too many negotiate requests from this address "
        "(signalr.negotiate_rate_per_s); retry after the time Retry-After gives");
    return true;
}

/* Negotiate: a crier_rooms the hub takes must parse (400), and name rooms
 * the caller may subscribe to (401/403, as JoinRoom is refused; not with
 * upstream.connect, whose verdict makes the principal later). The request
 * that starts the transport is parsed again, and the handshake joins with
 * the connection's own rights. */
static bool rejoin_refused(http_call *call, enum MHD_Result *ret)
{
    sr_rejoin *rj = NULL;
    const char *why = call_rejoin(call, &rj);
    if (why) {
        LOG_INFO(TAG, "a SignalR negotiate refused (400): %s", why);
        *ret = http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST, "%s", why);
        return true;
    }
    access_verdict v = ACCESS_ALLOWED;
    size_t i = 0;
    bool check = conf->auth.enabled && !conf->upstream.connect[0];
    for (; rj && check && i < rj->n && v == ACCESS_ALLOWED; i++)
        v = access_room(conf, call->who, rj->rooms[i].room, ACCESS_SUBSCRIBE);
    if (v != ACCESS_ALLOWED) {
        unsigned status = v == ACCESS_NEEDS_TOKEN ? MHD_HTTP_UNAUTHORIZED : MHD_HTTP_FORBIDDEN;
        const char *reason = access_reason(v, ACCESS_SUBSCRIBE);
        LOG_INFO(TAG, "a SignalR negotiate refused (%u): crier_rooms names room %s: %s", status,
                 rj->rooms[i - 1].room, reason);
        *ret =
            status == MHD_HTTP_UNAUTHORIZED /* a challenge, as the guard's 401s */
                ? http_reply_error_with(call->conn, status, "WWW-Authenticate", "Bearer",
                                        "not allowed: crier_rooms names room %s: %s",
                                        rj->rooms[i - 1].room, reason)
                : http_reply_error(call->conn, status, "not allowed: crier_rooms names room %s: %s",
                                   rj->rooms[i - 1].room, reason);
    }
    free(rj);
    return v != ACCESS_ALLOWED;
}

enum MHD_Result sr_negotiate(http_call *call)
{
    sr_req *rq = *call->state;
    if (rq && rq->kind == REQ_CONNECT) /* the connect proxy answered */
        return connect_answer(call, rq->inner);
    if (rq) /* a clustered negotiate, resumed */
        return forwarded(call, rq);
    if (*call->upload_size) {
        *call->upload_size = 0; /* negotiate has no body to read */
        return MHD_YES;
    }
    const char *v =
        MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "negotiateVersion");
    uint64_t version = 0;
    if (v && !parse_u64(v, &version))
        return http_reply_error(call->conn, MHD_HTTP_BAD_REQUEST,
                                "negotiateVersion must be a non-negative integer");
    const char *stateful =
        MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "useStatefulReconnect");
    bool offer_stateful =
        version >= 1 && stateful && !strcmp(stateful, "true") && conf->transports.websocket;
    enum MHD_Result refused;
    if (negotiate_rate_passed(call, &refused) || rejoin_refused(call, &refused))
        return refused;
    if (conf->upstream.connect[0])
        return connect_ask(call, version, offer_stateful);
    if (sr_clustered())
        return negotiate_clustered(call, version, offer_stateful, call->who);
    return negotiate_here(call, version, offer_stateful, call->who);
}

/* Makes the connection for who and answers the negotiate. */
static enum MHD_Result negotiate_here(http_call *call, uint64_t version, bool offer_stateful,
                                      const access_principal *who)
{
    bool full = false;
    sr_conn *c = sr_conn_negotiated(call->arg, version == 0, who, &full);
    if (full) {
        char what[128];
        snprintf(what, sizeof(what),
                 "a SignalR negotiate refused (503): signalr.max_pending_connections (%u) reached",
                 conf->signalr.max_pending_connections);
        limit_refused(LIMIT_SIGNALR_PENDING, what);
        return http_reply_refused(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, 5,
                                  "too many SignalR connections negotiated and not started "
                                  "(signalr.max_pending_connections); try again later");
    }
    if (c && offer_stateful) {
        pthread_mutex_lock(&c->s.lock);
        c->stateful_offered = true;
        pthread_mutex_unlock(&c->s.lock);
    }
    if (!c)
        return http_reply_error(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "cannot create a connection now");
    char *body = negotiate_body(version, c->id, c->token, offer_stateful);
    sr_conn_unref(c);
    if (!body)
        return MHD_NO;
    return http_reply_take(call->conn, MHD_HTTP_OK, "application/json", body, strlen(body));
}
