/* SPDX-License-Identifier: MIT */
/*
 * signalr/private.h - what signalr.c (connections, hub protocol) shares with
 * signalr/transports.c (negotiate and the three transports). Not for other
 * files. Locking is described in signalr.c.
 *
 * Threads and locks: docs/concurrency.md
 */
#ifndef CRIER_SIGNALR_PRIVATE_H
#define CRIER_SIGNALR_PRIVATE_H

#include <jansson.h>
#include <stdatomic.h>

#include "common/access.h"
#include "common/list.h"
#include "common/token_bucket.h"
#include "common/upstream.h"
#include "transports/carriers/longpoll.h"
#include "transports/signalr/encode.h"
#include "transports/signalr/rejoin.h"
#include "transports/signalr/signalr.h"

#define TOKEN_LEN 22 /* 16 random bytes in base64url */
/* Longest invocationId echoed in a Completion; a longer one closes the
 * connection with an error (README, SignalR). */
#define SR_INVOCATION_ID_MAX 1024
#define SR_INVOCATION_ID_MAX_TEXT "1024"
#define SR_OWNER_TTL_MS 60000 /* a node's claim on a connection lapses unless touched */
#define SR_TOUCH_EVERY_MS 20000
#define SR_POLL_KEY_MAX 32   /* bytes of a long poll's "_" kept (longer: none) */
#define SR_USER_LABEL_MAX 80 /* bytes of a user id shown in log lines */
/* A connection's log name: "ID (user U)". */
#define SR_CONN_FMT "%s (user %s)"
#define SR_CONN_ARGS(c) (c)->id, (c)->user

typedef enum { TR_NONE, TR_WS, TR_SSE, TR_LP } sr_transport;

typedef struct sr_poll sr_poll;

struct sr_conn {
    sub s; /* first: its lock guards the fields marked "sub lock" */
    atomic_int refs;
    const cfg_hub *hub;
    char id[TOKEN_LEN + 1];
    char token[TOKEN_LEN + 1];
    char all_room[CFG_NAME_MAX + 2];
    /* Who made it (negotiate, or the request that first carried it): NULL
     * anonymous. A later request of a connection made with a token must
     * present a token for the same user (sr_conn_admit); one with a later
     * exp replaces it (and moves the deadline). Sub lock; a reader takes a
     * ref under it. */
    access_principal *who;
    char user[SR_USER_LABEL_MAX]; /* set at creation: who's user id, for logs */
    int64_t expires_ms;           /* sub lock: its deadline (the latest token's), 0 none */
    pthread_mutex_t recv_lock;    /* one batch of records at a time */
    atomic_bool handshaken;       /* changed under recv_lock */
    /* The MessagePack hub protocol (signalr/mp.h): records after the
     * handshake are binary both ways. Set under recv_lock at the handshake,
     * before the connection joins any room, and never changed after. */
    atomic_bool msgpack;
    token_bucket publish_rate; /* recv_lock: limits.rate.publish */
    sr_transport transport;    /* sub lock */
    bool attached;             /* sub lock: a WebSocket or SSE stream carries it */
    bool closed;               /* sub lock */
    sr_poll *held;             /* sub lock: the long poll waiting now */
    int64_t created_ms;        /* registry lock */
    int64_t attached_ms;       /* sub lock */
    int64_t closed_ms;         /* sub lock */
    int64_t last_poll_ms;      /* sub lock */
    int64_t next_ping_ms;      /* timer thread */
    _Atomic int64_t last_recv_ms;
    /* Stateful reconnect (WebSocket only): counted records are numbered from
     * 1 each way; what was sent stays in `unacked` until the client acks it,
     * and a dropped socket leaves the connection waiting for a resume. */
    bool stateful_offered;         /* sub lock: negotiate granted useStatefulReconnect */
    bool stateful;                 /* sub lock: handshake version 2 on a WebSocket */
    sendq unacked;                 /* sub lock: numbered unacked_first .. sent_count */
    uint64_t unacked_first;        /* sub lock */
    uint64_t sent_count;           /* sub lock */
    int64_t detached_ms;           /* sub lock: when the socket of a stateful one dropped */
    unsigned ws_gen;               /* sub lock: which WebSocket carries it now */
    bool awaiting_sequence;        /* recv_lock: resumed: ignore all until a Sequence */
    uint64_t recv_count;           /* recv_lock: number of the last counted record received */
    _Atomic uint64_t recv_highest; /* highest number processed */
    uint64_t acked_to_client;      /* timer thread */
    bool owned;                    /* clustered: this node claimed its token (released at free) */
    /* Long polling, clustered: the records the last remote poll handed to
     * the node that forwarded it, kept until a later poll confirms that
     * its answer arrived (signalr/transports.c). Sub lock. */
    char *lp_unconfirmed;
    size_t lp_unconfirmed_len;
    char lp_unconfirmed_key[SR_POLL_KEY_MAX + 1]; /* the poll's key */
    atomic_bool pending_slot; /* negotiated, no transport yet: counted in sr_pending_connections */
    int64_t touched_ms;       /* registry lock: when the claim was last renewed */
    sr_rejoin *rejoin;        /* sub lock: crier_rooms of the request that started its transport,
                                 joined at the handshake (hub option rejoin_query) */
    struct sr_conn *bucket_next; /* registry lock */
    list_node link;              /* registry lock: in all_conns */
};

/* One long poll on a connection: held here (lp), or for another node
 * (remote: answered through the backplane to `from`, request `req`). */
struct sr_poll {
    sr_conn *c;
    lp_conn *lp;   /* sub lock: set with c->held (open_poll), alive while held */
    bool replaced; /* sub lock: a newer poll took its place */
    bool remote;
    bool resend; /* sub lock: a proxy's retry of the poll whose answer was lost */
    char key[SR_POLL_KEY_MAX + 1];
    char from[BP_NODE_ID_LEN + 1];
    uint64_t req;
    int64_t deadline_ms;
};

/* Creates a connection in the registry; returns it with a ref for the
 * caller, or NULL (out of memory, or shutting down). id_is_token: the
 * version-0 negotiate, where the id is also the token. who: the principal
 * of the request that makes it (a ref is taken; NULL anonymous); its
 * token's expiry is the connection's deadline. */
sr_conn *sr_conn_new(const cfg_hub *hb, bool id_is_token, const access_principal *who);

/* sr_conn_new for negotiate: the connection holds one of the
 * signalr.max_pending_connections slots until its transport starts (or it
 * is freed). NULL with *full set when every slot is taken. */
sr_conn *sr_conn_negotiated(const cfg_hub *hb, bool id_is_token, const access_principal *who,
                            bool *full);

/* May a later request of c, presenting who (NULL anonymous), go on? 0 when
 * it may (a token with a later exp then moves c's deadline, and with adopt
 * becomes c's principal: its rights from then on); else the status, 401 (c
 * was made with a token and who has none) or 403 (a token for another
 * user), with *error. adopt is false for a principal rebuilt from a
 * forwarded request (user and exp only). No lock held. */
unsigned sr_conn_admit(sr_conn *c, const access_principal *who, bool adopt, const char **error);

/* Finds a connection of hb by token; returns it with a new ref, or NULL. */
sr_conn *sr_conn_find(const cfg_hub *hb, const char *token);

void sr_conn_unref(sr_conn *c);

/* Closes c: leaves every room, sends a Close record (when error is not
 * NULL, or reconnect is allowed), and ends its transport once that is sent.
 * Idempotent. */
void sr_conn_close(sr_conn *c, const char *error, bool allow_reconnect);

/* A delivery unit from the client (a WebSocket message, a POST body):
 * whole records, each ending with RS. */
void sr_conn_receive(sr_conn *c, const char *data, size_t len);

/* ws.c's sent hook: numbers a counted record handed to a stateful socket
 * and keeps it until acknowledged. */
void sr_conn_sent(sr_conn *c, msg *m);

/* Service thread: a stateful connection's socket dropped; it waits
 * signalr.disconnect_timeout_s for a resume. Returns false when c is not
 * stateful (the caller closes it). */
bool sr_conn_detach(sr_conn *c);

/* Sub lock held: a stateful connection takes a new socket, whether or not
 * crier has noticed that the old one died (the client often notices first):
 * the old socket is let go, and the Sequence record and the unacknowledged
 * records go out first on the new one. */
bool sr_conn_resume_locked(sr_conn *c);

/* The crier_rooms parameter of a request of hub hb that may start a
 * connection's transport (value: len bytes; decode: still percent-encoded;
 * NULL: absent): parsed into *out (NULL: none, or hb does not take it).
 * Returns NULL, or the error for a 400. */
const char *sr_rejoin_of_request(const cfg_hub *hb, const char *value, size_t len, bool decode,
                                 sr_rejoin **out);

/* Sub lock held: c rejoins rj's rooms at its handshake (takes rj). */
void sr_conn_set_rejoin_locked(sr_conn *c, sr_rejoin *rj);

/* Sub lock held: binds c to its transport, once. */
bool sr_attach_locked(sr_conn *c, sr_transport t);

bool sr_transport_enabled(sr_transport t);

/* 16 random bytes in base64url. */
void sr_random_token(char out[TOKEN_LEN + 1]);

/* Clustered: the connection id (public) of the connection whose token
 * (secret) is token, the same on every node: the first 16 bytes of
 * SHA-256("crier connection id:" + token) in base64url. Negotiate gives
 * it as connectionId, and the node that makes the connection names its
 * member by it (the server API's /connections/{id}). */
void sr_conn_id_of_token(const char *token, char out[TOKEN_LEN + 1]);

/* Creates a connection with a token chosen elsewhere (clustered: the first
 * node to carry it makes it); as sr_conn_new otherwise. */
sr_conn *sr_conn_new_named(const cfg_hub *hb, const char *token, const access_principal *who);

/* Queues a Completion record for invocation_id: error, or result (JSON
 * text; NULL: null). Any thread. */
void sr_send_completion(sr_conn *c, const char *invocation_id, const char *error,
                        const char *result);

/* --- signalr/upstream.c: methods answered by a backend, events ---------- */

void sr_upstream_init(const cfg *c, hub *h);

/* recv_lock held: POSTs the invocation of m (an upstream method) with args;
 * its completion follows from the curl thread. NULL, or the error for the
 * completion now. */
const char *sr_upstream_invoke(sr_conn *c, const char *invocation_id, const cfg_method *m,
                               json_t *args);

/* Any thread, no lock: tells upstream.events (when set) that c did event
 * ("connect", "disconnect", "join", "leave"; room for the last two). */
void sr_upstream_event(sr_conn *c, const char *event, const char *room, const char *reason);

/* A publish action to a user: every connection of it, on every node. Any thread. */
void sr_upstream_publish_user(const up_action *act);

/* signalr/transports.c */
void sr_transports_init(const cfg *c);

/* Backplane thread: a long poll forwarded by node `from` (key: the poll's
 * "_", or ""); takes the caller's ref on c. */
void sr_remote_poll(sr_conn *c, const char *from, uint64_t req, const char *key);

/* A long poll's key (its "_" query argument: the official clients' cache
 * buster, new for every poll and the same when a proxy retries one) into
 * out; "" when absent or not 1..SR_POLL_KEY_MAX of [0-9A-Za-z_-]. */
void sr_poll_key(http_call *call, char out[SR_POLL_KEY_MAX + 1]);

/* Timer thread: answers c's remote poll if its time is up. */
void sr_remote_poll_expire(sr_conn *c, int64_t now_ms);

/* --- signalr/cluster.c: connections across nodes ------------------------ */

typedef struct sr_fwd sr_fwd;

/* True with a shared backplane: negotiate makes nothing, a connection is
 * made where it is first carried, and requests elsewhere are forwarded. */
bool sr_clustered(void);
const char *sr_node_id(void);

/* 22 characters of base64url. */
bool sr_token_is_valid(const char *token);

/* MHD thread: a request for a token this node does not hold. */
sr_fwd *sr_fwd_new(http_call *call, const cfg_hub *hb, const char *token);

/* MHD thread: a clustered negotiate, whose answer waits until its token is
 * known to every node (offered in the backplane). */
sr_fwd *sr_fwd_negotiate(http_call *call, const cfg_hub *hb, const char *token, const char *answer);

/* MHD thread: each call of such a request. Sets *go_local when this node
 * turned out to own the token: the caller frees f and serves it here. A
 * POST waits for the fanout backlog (of every node) before it is forwarded,
 * as one taken here does. */
enum MHD_Result sr_fwd_step(http_call *call, sr_fwd *f, bool *go_local);

/* MHD thread: the answer to a send (POST) refused by backpressure
 * (carriers/publish_pace.h): 503 with Retry-After: 1. */
enum MHD_Result sr_refuse_paced(struct MHD_Connection *conn);

void sr_fwd_free(sr_fwd *f);

/* Claims token for this node (cb: who owns it). */
void sr_cluster_claim(const char *token, bp_owner_fn cb, void *arg);
void sr_cluster_touch(const char *token);
void sr_cluster_release(const char *token);

/* Is node alive? cb(arg, how many got a probe: 0 gone, -1 unreachable),
 * later or at once. */
void sr_cluster_probe(const char *node, bp_count_fn cb, void *arg);

/* Answers request req of node `to`. */
void sr_cluster_reply(const char *to, uint64_t req, unsigned status, const char *body, size_t len);

void sr_cluster_tick(int64_t now_ms);
void sr_cluster_shutdown(void);

#endif
