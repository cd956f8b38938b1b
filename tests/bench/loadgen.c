/* SPDX-License-Identifier: MIT */
/*
 * loadgen - the load generator of crier's benchmarks. It speaks plain
 * WebSocket, SSE, long polling and HTTP publishing, so it drives crier and
 * nginx's nchan module alike and the two can be compared figure for figure.
 *
 * One process, one thread, one epoll set, libc only. It opens up to ~19000
 * subscribers of one kind against one URL:
 *   ws    RFC 6455: Upgrade handshake (Sec-WebSocket-Accept checked), server
 *         frames parsed (7/16/64-bit lengths, fragments), pings answered
 *         with masked pongs, close frames answered;
 *   sse   GET with Accept: text/event-stream; chunked or plain body; events
 *         end at a blank line; events with data: lines count, comments and
 *         id:/event: lines are ignored;
 *   poll  repeated long-poll GETs, crier style (?since=N, the answer is
 *         {"messages":[...],"last_id":N} and the next poll asks since=last_id)
 *         or nchan style (If-Modified-Since / If-None-Match taken from the
 *         previous answer's Last-Modified / Etag, one message per answer);
 *   sio   Socket.IO 4 (Engine.IO v4) over a WebSocket, for the Socket.IO peer
 *         (tests/bench/socketio-server.mjs): the server's open packet `0{..}`
 *         is answered with the namespace connect `40`, the subscriber counts
 *         as connected at the server's `40{..}`, pings `2` get pongs `3`,
 *         events `42["msg",{..}]` are messages; `1`/`41` end it. The room is
 *         in the URL (?room=R): the server joins the socket on connection;
 * and/or one publisher that POSTs application/json messages of --size bytes
 * at --rate messages/s, or as fast as answered (--rate 0, at most --pipeline
 * requests in flight on one keep-alive connection). Every payload is
 *   {"t":<CLOCK_MONOTONIC ns>,"s":<sequence>,"pad":"xxx..."}
 * and subscribers look for "t": in what they receive, so publish->deliver
 * latency is measured from the payload itself (10 us histogram buckets up
 * to 1 s, 1 ms beyond).
 *
 * A run: open the subscribers (--ramp per second, spread over the source
 * addresses 127.0.0.1..127.0.0.N), wait until all are connected or the
 * connect deadline, optionally hold them idle (--idle), publish --count
 * messages (or publish for --pub-secs), then wait until every subscriber
 * has every message or --drain-timeout. The publisher also measures each
 * POST's answer time (sent to answered; 1024 in flight at most).
 * --stall-one makes the first subscriber stop reading once connected (a
 * small receive buffer, never read again): the one reader a server should
 * drop; it is left out of the delivery accounting.
 * --duration caps the whole run; SIGINT/SIGTERM end it early. Targets must
 * be loopback (127.0.0.0/8). The run ends with exactly one JSON line on
 * stdout; diagnostics go to stderr.
 *
 * Build: cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o loadgen loadgen.c
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define HEAD_MAX (16 * 1024)      /* largest response head accepted */
#define POLL_BODY_MAX (32u << 20) /* largest long-poll answer accepted */
#define OUT_MAX (4u << 20)        /* largest unsent output per connection */
/* Latency histograms: 10 us buckets up to 1 s, then 1 ms buckets up to
 * 600 s; anything later lands in the last bucket (the max stays exact). */
#define HIST_FINE_NS 10000LL
#define HIST_FINE 100000
#define HIST_COARSE_NS 1000000LL
#define HIST_BUCKETS (HIST_FINE + 599000)
#define RETRY_DELAY_NS 100000000LL /* 100 ms before a failed long poll retries */
#define MAX_ERROR_KINDS 32

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t rng_state;

static uint32_t rng32(void)
{
    /* xorshift64*: plenty for WebSocket keys and masks */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

/* Growable byte buffer with a per-use cap. */
struct buf {
    char *p;
    size_t len, cap;
};

static int buf_put(struct buf *b, const void *d, size_t n, size_t max)
{
    if (b->len + n > max)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Drops the first n bytes; gives big idle buffers back to keep 19000
 * mostly idle connections small. */
static void buf_drop(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        if (b->cap > 4096)
            buf_free(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* Parses the decimal digits at p (after optional blanks, a ':' and blanks
 * when colon is set). Returns the number, or -1 when there is none. */
static int64_t parse_num(const char *p, const char *end, bool colon)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (colon) {
        if (p >= end || *p != ':')
            return -1;
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9' && v < INT64_MAX / 10)
        v = v * 10 + (*p++ - '0');
    return v;
}

/* Finds the JSON key `key` (quotes included) followed by ':' and a number
 * in [p, end). Returns the number (-1 if absent) and where the key began. */
static int64_t json_key_num(const char *p, const char *end, const char *key, const char **at)
{
    size_t kl = strlen(key);
    while (p < end) {
        const char *k = memmem(p, (size_t)(end - p), key, kl);
        if (!k)
            break;
        int64_t v = parse_num(k + kl, end, true);
        if (v >= 0) {
            if (at)
                *at = k;
            return v;
        }
        p = k + kl;
    }
    if (at)
        *at = NULL;
    return -1;
}

/* ------------------------------------------------------------------------ */
/* SHA-1 and base64, for the WebSocket handshake only                        */
/* ------------------------------------------------------------------------ */

static uint32_t rol32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const uint8_t *p = data;
    size_t n = len;
    for (; n >= 64; p += 64, n -= 64)
        sha1_block(h, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, n);
    tail[n] = 0x80;
    size_t tl = n + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - (size_t)i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tl == 128)
        sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* Writes the base64 of in[0..n) and a NUL to out (4*ceil(n/3)+1 bytes). */
static void base64(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

enum role { R_WS, R_SSE, R_POLL, R_SIO, R_PUB };
enum poll_style { PS_CRIER, PS_NCHAN };

struct url {
    struct sockaddr_in addr;
    char hostport[80]; /* for the Host header */
    char path[2048];   /* path and query */
};

static struct opts {
    int kind;       /* R_WS, R_SSE, R_POLL or R_SIO */
    struct url sub; /* --url */
    bool has_sub;
    long subs;        /* --subs */
    int src_ips;      /* --src-ips */
    double ramp;      /* --ramp, connections/s, 0 = no ramp */
    long max_pending; /* --max-pending handshakes at once */
    struct url pub;   /* --pub */
    bool has_pub;
    long size;      /* --size */
    double rate;    /* --rate, 0 = as fast as answered */
    long count;     /* --count */
    long pipeline;  /* --pipeline */
    int poll_style; /* --poll-style */
    double connect_timeout, drain_timeout, idle, duration;
    long expect; /* --expect: messages per subscriber, subscriber-only runs */
    const char *ready_file;
    size_t max_msg; /* --max-msg */
    bool progress;
    double batch_ms; /* --batch-ms: pause between epoll rounds */
    double pub_secs; /* --pub-secs: publish for this long, then stop (0: --count) */
    bool stall_one;  /* --stall-one: subscriber 0 stops reading once connected */
    const char *url_text, *pub_text;
} opt = {
    .kind = R_WS,
    .subs = 0,
    .src_ips = 4,
    .max_pending = 256,
    .size = 100,
    .count = 0,
    .pipeline = 1,
    .poll_style = PS_CRIER,
    .connect_timeout = 30,
    .drain_timeout = 10,
    .duration = 300,
    .expect = -1,
    .max_msg = 1 << 20,
};

static void usage(FILE *f)
{
    fputs(
        "usage: loadgen [options]\n"
        "Drives crier or nginx nchan with subscribers and/or a publisher on loopback;\n"
        "prints one JSON line of results on stdout.\n"
        "\n"
        "subscribers:\n"
        "  --kind ws|sse|poll|sio  subscriber protocol (default ws; sio: Socket.IO 4 over\n"
        "                          WebSocket, the room in the URL's query)\n"
        "  --url URL               subscriber URL, http://127.x.x.x:PORT/path?query\n"
        "  --subs N                number of subscribers (default 0)\n"
        "  --poll-style crier|nchan  long-poll cursor: ?since=last_id (crier, default)\n"
        "                          or If-Modified-Since/If-None-Match (nchan)\n"
        "  --src-ips N             spread sockets over 127.0.0.1..127.0.0.N (default 4)\n"
        "  --ramp R                open at most R connections per second (default 0: no limit)\n"
        "  --max-pending N         handshakes in progress at once (default 256)\n"
        "  --connect-timeout S     deadline for all subscribers to connect (default 30)\n"
        "  --expect N              messages each subscriber should get, when the publisher\n"
        "                          runs in another process; the run ends when all have them\n"
        "  --ready-file PATH       written once the subscribers are connected\n"
        "  --idle S                hold the subscribers S seconds without publishing\n"
        "  --stall-one             the first subscriber stops reading once connected (4 KiB\n"
        "                          receive buffer, never read): left out of the accounting,\n"
        "                          reported as \"stalled\"\n"
        "publisher:\n"
        "  --pub URL               publish URL (POST), http://127.x.x.x:PORT/path\n"
        "  --count N               messages to publish\n"
        "  --size B                payload size in bytes (default 100, at least 48)\n"
        "  --rate R                messages per second (default 0: as fast as answered)\n"
        "  --pipeline N            POSTs in flight on the keep-alive connection (default 1)\n"
        "  --pub-secs S            stop publishing S seconds after the first POST (the\n"
        "                          count is then what was sent; --count stays the cap)\n"
        "run:\n"
        "  --drain-timeout S       after publishing, wait at most S for deliveries (default 10);\n"
        "                          with --expect: end after S without any delivery\n"
        "  --duration S            hard cap on the whole run (default 300)\n"
        "  --max-msg B             largest message/frame accepted (default 1048576)\n"
        "  --batch-ms MS           pause MS milliseconds after every epoll round that had\n"
        "                          events, so that reads come in batches as a browser's\n"
        "                          do, not one wake-up per frame (default 0; the pause\n"
        "                          also delays a publisher in the same process)\n"
        "  --progress              one progress line per second on stderr\n"
        "  --help                  this text\n"
        "\n"
        "Exit status: 0 when every subscriber connected and got every message and every\n"
        "POST was answered 2xx; 1 otherwise; 2 on bad usage.\n"
        "The payload is {\"t\":<CLOCK_MONOTONIC ns>,\"s\":<seq>,\"pad\":\"x..\"}; latency is\n"
        "receive time minus t, from whatever frame, event or answer carries it.\n",
        f);
}

/* Parses http://HOST[:PORT]/path, HOST being 127.x.y.z or localhost. */
static void parse_url(const char *s, struct url *u)
{
    const char *p = s;
    if (strncmp(p, "http://", 7) != 0)
        die("%s: only http:// URLs are supported", s);
    p += 7;
    size_t hl = strcspn(p, ":/");
    char host[64];
    if (hl == 0 || hl >= sizeof(host))
        die("%s: bad host", s);
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    long port = 80;
    if (*p == ':') {
        char *e;
        port = strtol(p + 1, &e, 10);
        if (e == p + 1 || port < 1 || port > 65535)
            die("%s: bad port", s);
        p = e;
    }
    memset(&u->addr, 0, sizeof(u->addr));
    u->addr.sin_family = AF_INET;
    u->addr.sin_port = htons((uint16_t)port);
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    if (inet_pton(AF_INET, ip, &u->addr.sin_addr) != 1)
        die("%s: the host must be an IPv4 address or localhost", s);
    if ((ntohl(u->addr.sin_addr.s_addr) >> 24) != 127)
        die("%s: only loopback targets (127.0.0.0/8) are allowed", s);
    snprintf(u->hostport, sizeof(u->hostport), "%s:%ld", host, port);
    if (*p == '\0')
        p = "/";
    if (*p != '/' || strlen(p) >= sizeof(u->path))
        die("%s: bad path", s);
    strcpy(u->path, p);
}

static double arg_num(const char *name, const char *v, double lo, double hi)
{
    char *e;
    double d = strtod(v, &e);
    if (e == v || *e || !(d >= lo && d <= hi))
        die("--%s: expected a number from %g to %g, got '%s'", name, lo, hi, v);
    return d;
}

static void parse_opts(int argc, char **argv)
{
    static const struct option lo[] = {
        {"kind", 1, 0, 'k'},
        {"url", 1, 0, 'u'},
        {"subs", 1, 0, 'n'},
        {"src-ips", 1, 0, 'i'},
        {"ramp", 1, 0, 'r'},
        {"max-pending", 1, 0, 'P'},
        {"pub", 1, 0, 'p'},
        {"size", 1, 0, 's'},
        {"rate", 1, 0, 'R'},
        {"count", 1, 0, 'c'},
        {"pipeline", 1, 0, 'l'},
        {"poll-style", 1, 0, 'y'},
        {"connect-timeout", 1, 0, 'C'},
        {"drain-timeout", 1, 0, 'D'},
        {"idle", 1, 0, 'I'},
        {"duration", 1, 0, 'd'},
        {"expect", 1, 0, 'e'},
        {"ready-file", 1, 0, 'f'},
        {"max-msg", 1, 0, 'm'},
        {"progress", 0, 0, 'g'},
        {"batch-ms", 1, 0, 'b'},
        {"pub-secs", 1, 0, 'T'},
        {"stall-one", 0, 0, 'Z'},
        {"help", 0, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        const char *name = "";
        for (const struct option *o = lo; o->name; o++)
            if (o->val == ch)
                name = o->name;
        switch (ch) {
        case 'k':
            if (!strcmp(optarg, "ws"))
                opt.kind = R_WS;
            else if (!strcmp(optarg, "sse"))
                opt.kind = R_SSE;
            else if (!strcmp(optarg, "poll"))
                opt.kind = R_POLL;
            else if (!strcmp(optarg, "sio"))
                opt.kind = R_SIO;
            else
                die("--kind: expected ws, sse, poll or sio, got '%s'", optarg);
            break;
        case 'u':
            opt.url_text = optarg;
            parse_url(optarg, &opt.sub);
            opt.has_sub = true;
            break;
        case 'n':
            opt.subs = (long)arg_num(name, optarg, 0, 1000000);
            break;
        case 'i':
            opt.src_ips = (int)arg_num(name, optarg, 1, 254);
            break;
        case 'r':
            opt.ramp = arg_num(name, optarg, 0, 1e9);
            break;
        case 'P':
            opt.max_pending = (long)arg_num(name, optarg, 1, 1000000);
            break;
        case 'p':
            opt.pub_text = optarg;
            parse_url(optarg, &opt.pub);
            opt.has_pub = true;
            break;
        case 's':
            opt.size = (long)arg_num(name, optarg, 48, 16 << 20);
            break;
        case 'R':
            opt.rate = arg_num(name, optarg, 0, 1e9);
            break;
        case 'c':
            opt.count = (long)arg_num(name, optarg, 0, 1e9);
            break;
        case 'l':
            opt.pipeline = (long)arg_num(name, optarg, 1, 1024);
            break;
        case 'y':
            if (!strcmp(optarg, "crier"))
                opt.poll_style = PS_CRIER;
            else if (!strcmp(optarg, "nchan"))
                opt.poll_style = PS_NCHAN;
            else
                die("--poll-style: expected crier or nchan, got '%s'", optarg);
            break;
        case 'C':
            opt.connect_timeout = arg_num(name, optarg, 0, 86400);
            break;
        case 'D':
            opt.drain_timeout = arg_num(name, optarg, 0, 86400);
            break;
        case 'I':
            opt.idle = arg_num(name, optarg, 0, 86400);
            break;
        case 'd':
            opt.duration = arg_num(name, optarg, 0.1, 86400);
            break;
        case 'e':
            opt.expect = (long)arg_num(name, optarg, 0, 1e9);
            break;
        case 'f':
            opt.ready_file = optarg;
            break;
        case 'm':
            opt.max_msg = (size_t)arg_num(name, optarg, 1024, 1 << 30);
            break;
        case 'g':
            opt.progress = true;
            break;
        case 'b':
            opt.batch_ms = arg_num(name, optarg, 0, 10000);
            break;
        case 'T':
            opt.pub_secs = arg_num(name, optarg, 0, 86400);
            break;
        case 'Z':
            opt.stall_one = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    if (opt.subs > 0 && !opt.has_sub)
        die("--subs needs --url");
    if (opt.has_pub && opt.count == 0 && opt.idle == 0)
        die("--pub needs --count");
    if (opt.subs == 0 && !opt.has_pub)
        die("nothing to do: give --subs and --url, and/or --pub and --count (see --help)");
    if ((size_t)opt.size * 2 + 4096 > opt.max_msg)
        opt.max_msg = (size_t)opt.size * 2 + 4096;
}

/* ------------------------------------------------------------------------ */
/* Connections and global state                                              */
/* ------------------------------------------------------------------------ */

enum state { S_OFF, S_CONNECTING, S_HEAD, S_BODY, S_STREAM };
enum body_mode { BM_NONE, BM_LENGTH, BM_CHUNKED, BM_CLOSE };
enum chunk_state { CK_SIZE, CK_DATA, CK_DATA_END, CK_TRAILER };

struct conn {
    int fd;
    uint32_t gen; /* bumped at every close: stale epoll events are skipped */
    uint32_t idx;
    uint8_t role, state, body_mode, ck_state;
    bool ever_connected, complete, dead, close_after; /* close_after: Connection: close */
    bool ev_data;                                     /* SSE: the current event has data: lines */
    bool stalled;                                     /* --stall-one's subscriber: never read */
    int status;
    int64_t body_left;     /* Content-Length left, or bytes left in the chunk */
    struct buf in;         /* raw bytes received but not yet parsed */
    struct buf out;        /* bytes not yet written */
    struct buf msg;        /* SSE partial line, long-poll body, WS fragments */
    int64_t ev_t, ev_s;    /* timestamp/sequence of the SSE event in progress */
    int64_t got, last_seq; /* messages received (unique), highest sequence seen */
    int64_t since;         /* crier long poll cursor */
    char *etag, *lastmod;  /* nchan long poll cursor */
    char ws_key[25];
};

struct hist {
    uint32_t *b; /* HIST_BUCKETS counters */
    uint64_t n;
    int64_t max; /* ns */
};

enum phase { PH_CONNECT, PH_IDLE, PH_PUBLISH, PH_DRAIN, PH_LISTEN, PH_DONE };

static struct {
    int ep;
    struct conn *subs; /* opt.subs of them */
    struct conn pubc;  /* the publisher's connection */
    enum phase phase;
    int64_t t0, t_ready, t_pub_start, t_pub_end, t_first_deliv, t_last_deliv, t_end;
    /* subscribers */
    long opened, pending, connected, failed, complete, dead_incomplete;
    int64_t expect_per_sub; /* -1 until known */
    uint64_t delivered, dups, gaps, other_events, errors;
    /* publisher */
    int64_t issued, answered, pub_ok, pub_errs;
    long inflight, pub_failures_in_row;
    int64_t pub_retry_at;
    /* long-poll retries: a FIFO of subscriber indexes, each due 100 ms later */
    uint32_t *retry_q;
    int64_t *retry_at;
    size_t retry_head, retry_len;
    /* poll URL split around the since= value */
    char poll_prefix[2100], poll_suffix[2048];
    /* latency: publish->delivery, and the publisher's POST->answer */
    struct hist lat, answer;
    int64_t sent_at[1024]; /* POST send times, by sequence % 1024 (--pipeline <= 1024) */
    long stalled;          /* --stall-one: subscribers never read (0 or 1) */
    /* error kinds */
    char err_kind[MAX_ERROR_KINDS][64];
    uint64_t err_count[MAX_ERROR_KINDS];
    char rbuf[256 * 1024];
} g;

static volatile sig_atomic_t stop_signal;

/* Counts an error under its kind (the first MAX_ERROR_KINDS kinds are kept
 * apart, later ones are only counted in the total). */
static void count_error(const char *why)
{
    g.errors++;
    for (int i = 0; i < MAX_ERROR_KINDS; i++) {
        if (!g.err_kind[i][0] || !strcmp(g.err_kind[i], why)) {
            snprintf(g.err_kind[i], sizeof(g.err_kind[i]), "%s", why);
            g.err_count[i]++;
            return;
        }
    }
}

/* The same with the HTTP status in the kind, e.g. "ws: handshake status 503". */
static void count_status_error(const char *what, int status)
{
    char why[64];
    snprintf(why, sizeof(why), "%s %d", what, status);
    count_error(why);
}

static uint64_t conn_tag(const struct conn *c)
{
    return (uint64_t)c->idx << 32 | c->gen;
}

static void ep_set(struct conn *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.u64 = conn_tag(c)};
    if (epoll_ctl(g.ep, op, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* Closes the socket and forgets everything about the current exchange. */
static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->gen++;
    c->state = S_OFF;
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->msg);
}

/* Opens a non-blocking socket from 127.0.0.<src+1> to addr. */
static int conn_open(struct conn *c, const struct sockaddr_in *addr, int src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (opt.stall_one && c->role != R_PUB && c->idx == 0) {
        int small = 4096; /* the one that stops reading fills up soon */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
    if (src >= 0) {
        /* the port is picked at connect(), per destination: no port exhaustion
         * across source addresses */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)src);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    c->fd = fd;
    c->state = S_CONNECTING;
    c->in.len = c->out.len = c->msg.len = 0;
    ep_set(c, EPOLLOUT, EPOLL_CTL_ADD);
    return 0;
}

/* Queues or writes bytes. Returns -1 when the connection broke (the caller
 * then fails it). */
static int conn_write(struct conn *c, const void *d, size_t n)
{
    if (c->state == S_CONNECTING || c->out.len)
        return buf_put(&c->out, d, n, OUT_MAX);
    ssize_t w = send(c->fd, d, n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        w = 0;
    }
    if ((size_t)w < n) {
        if (buf_put(&c->out, (const char *)d + w, n - (size_t)w, OUT_MAX) < 0)
            return -1;
        ep_set(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    }
    return 0;
}

/* Writes what is queued. Returns -1 when the connection broke. */
static int conn_flush(struct conn *c)
{
    while (c->out.len) {
        ssize_t w = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        buf_drop(&c->out, (size_t)w);
    }
    ep_set(c, c->out.len ? EPOLLIN | EPOLLOUT : EPOLLIN, EPOLL_CTL_MOD);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Delivery accounting and latency                                           */
/* ------------------------------------------------------------------------ */

static void mark_complete(struct conn *c)
{
    if (!c->complete) {
        c->complete = true;
        g.complete++;
    }
}

static void hist_add(struct hist *h, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    if (ns > h->max)
        h->max = ns;
    int64_t b = ns < HIST_FINE * HIST_FINE_NS
                    ? ns / HIST_FINE_NS
                    : HIST_FINE + (ns - HIST_FINE * HIST_FINE_NS) / HIST_COARSE_NS;
    h->b[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
    h->n++;
}

/* One message carrying timestamp t and sequence s reached subscriber c. */
static void deliver(struct conn *c, int64_t t, int64_t s)
{
    int64_t now = now_ns();
    if (t < 0) {
        g.other_events++; /* not one of ours: a greeting, a keep-alive, ... */
        return;
    }
    if (s >= 0) {
        if (s <= c->last_seq) {
            g.dups++;
            return;
        }
        if (s != c->last_seq + 1)
            g.gaps++;
        c->last_seq = s;
    }
    c->got++;
    g.delivered++;
    if (!g.t_first_deliv)
        g.t_first_deliv = now;
    g.t_last_deliv = now;
    hist_add(&g.lat, now - t);
    if (g.expect_per_sub >= 0 && c->got >= g.expect_per_sub)
        mark_complete(c);
}

/* Reads "t" and "s" from one payload (or from anything holding one). */
static void scan_payload(const char *p, size_t n, int64_t *t, int64_t *s)
{
    const char *at;
    *t = json_key_num(p, p + n, "\"t\"", &at);
    *s = at ? json_key_num(at, p + n, "\"s\"", NULL) : -1;
}

/* Once the number of messages per subscriber is known, counts who has them. */
static void set_expectation(int64_t n)
{
    g.expect_per_sub = n;
    g.complete = g.dead_incomplete = 0;
    for (long i = 0; i < opt.subs; i++) {
        struct conn *c = &g.subs[i];
        c->complete = false;
        if (!c->ever_connected || c->stalled)
            continue;
        if (c->got >= n)
            mark_complete(c);
        else if (c->dead)
            g.dead_incomplete++;
    }
}

/* ------------------------------------------------------------------------ */
/* Subscriber lifecycle                                                      */
/* ------------------------------------------------------------------------ */

static void sub_start(struct conn *c);

static void mark_connected(struct conn *c)
{
    if (!c->ever_connected) {
        c->ever_connected = true;
        g.connected++;
        g.pending--;
    }
}

static void retry_later(struct conn *c)
{
    size_t i = (g.retry_head + g.retry_len) % (size_t)opt.subs;
    g.retry_q[i] = c->idx;
    g.retry_at[i] = now_ns() + RETRY_DELAY_NS;
    g.retry_len++;
}

/* The subscriber's connection failed or ended. WebSocket and SSE
 * subscribers are then dead for the rest of the run (a loss is a loss);
 * long pollers that were connected once try again 100 ms later. */
static void sub_fail(struct conn *c, const char *why)
{
    count_error(why);
    conn_close(c);
    if (!c->ever_connected) {
        g.failed++;
        g.pending--;
        c->dead = true;
        return;
    }
    if (c->role == R_POLL && g.phase != PH_DONE) {
        retry_later(c);
        return;
    }
    c->dead = true;
    if (g.expect_per_sub >= 0 && !c->complete)
        g.dead_incomplete++;
}

/* Sends the request that opens this subscriber's exchange. */
static int sub_send_request(struct conn *c)
{
    char req[4096 + 2 * 2048];
    int n = 0;
    switch (c->role) {
    case R_WS:
    case R_SIO: {
        uint8_t key[16];
        for (int i = 0; i < 16; i += 4) {
            uint32_t r = rng32();
            memcpy(key + i, &r, 4);
        }
        base64(key, 16, c->ws_key);
        n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     opt.sub.path, opt.sub.hostport, c->ws_key);
        break;
    }
    case R_SSE:
        n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\n\r\n",
                     opt.sub.path, opt.sub.hostport);
        break;
    case R_POLL:
        if (opt.poll_style == PS_CRIER)
            n = snprintf(req, sizeof(req), "GET %s%" PRId64 "%s HTTP/1.1\r\nHost: %s\r\n\r\n",
                         g.poll_prefix, c->since, g.poll_suffix, opt.sub.hostport);
        else if (c->etag || c->lastmod)
            n = snprintf(req, sizeof(req),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nIf-Modified-Since: %s\r\n"
                         "If-None-Match: %s\r\n\r\n",
                         opt.sub.path, opt.sub.hostport, c->lastmod ? c->lastmod : "",
                         c->etag ? c->etag : "");
        else
            n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", opt.sub.path,
                         opt.sub.hostport);
        break;
    default:
        return -1;
    }
    if (n <= 0 || (size_t)n >= sizeof(req))
        return -1;
    c->state = S_HEAD;
    return conn_write(c, req, (size_t)n);
}

static void sub_start(struct conn *c)
{
    int src = (int)(c->idx % (uint32_t)opt.src_ips);
    if (conn_open(c, &opt.sub.addr, src) < 0) {
        const char *why = errno == EADDRNOTAVAIL ? "connect: no free local port (EADDRNOTAVAIL)"
                          : errno == EMFILE      ? "socket: too many open files"
                                                 : "connect failed";
        sub_fail(c, why);
    }
}

/* ------------------------------------------------------------------------ */
/* HTTP responses: head and body framing (shared by every kind)              */
/* ------------------------------------------------------------------------ */

static char *dup_value(const char *v, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        die("out of memory");
    memcpy(s, v, n);
    s[n] = '\0';
    return s;
}

static bool ws_accept_ok(const struct conn *c, const char *v, size_t n)
{
    char in[64], want[32];
    uint8_t dig[20];
    int k = snprintf(in, sizeof(in), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->ws_key);
    sha1(in, (size_t)k, dig);
    base64(dig, 20, want);
    return n == strlen(want) && !memcmp(v, want, n);
}

/* Parses a complete response head; sets status, framing and what the
 * long poller needs. Returns false on a malformed head. */
static bool parse_head_fields(struct conn *c, const char *h, const char *end, bool *ws_ok)
{
    if (end - h < 12 || memcmp(h, "HTTP/1.", 7) != 0)
        return false;
    c->status = (int)parse_num(h + 8, end, false);
    if (c->status < 100 || c->status > 999)
        return false;
    bool http10 = h[7] == '0', chunked = false;
    int64_t clen = -1;
    c->close_after = http10;
    *ws_ok = false;
    const char *line = memchr(h, '\n', (size_t)(end - h));
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t nl = (size_t)(colon - line);
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vl = (size_t)(ve - v);
#define IS(name) (nl == sizeof(name) - 1 && !strncasecmp(line, name, nl))
            if (IS("content-length"))
                clen = parse_num(v, ve, false);
            else if (IS("transfer-encoding"))
                chunked = memmem(v, vl, "chunked", 7) != NULL;
            else if (IS("connection"))
                c->close_after = vl >= 5 && !strncasecmp(v, "close", 5)          ? true
                                 : vl >= 10 && !strncasecmp(v, "keep-alive", 10) ? false
                                                                                 : c->close_after;
            else if (IS("sec-websocket-accept") && (c->role == R_WS || c->role == R_SIO))
                *ws_ok = ws_accept_ok(c, v, vl);
            else if (IS("etag") && c->role == R_POLL && c->status == 200) {
                free(c->etag);
                c->etag = dup_value(v, vl);
            } else if (IS("last-modified") && c->role == R_POLL && c->status == 200) {
                free(c->lastmod);
                c->lastmod = dup_value(v, vl);
            }
#undef IS
        }
        line = eol;
    }
    if (c->status < 200 || c->status == 204 || c->status == 304)
        c->body_mode = BM_NONE;
    else if (chunked) {
        c->body_mode = BM_CHUNKED;
        c->ck_state = CK_SIZE;
    } else if (clen >= 0) {
        c->body_mode = clen ? BM_LENGTH : BM_NONE;
        c->body_left = clen;
    } else {
        c->body_mode = BM_CLOSE;
    }
    return true;
}

/* One step of body decoding. Returns the bytes consumed (0: more input
 * needed), the body bytes found among them in *out and *outlen, and *done once
 * the body is over; -1 on malformed chunked framing. */
static ssize_t body_step(struct conn *c, const char *d, size_t n, const char **out, size_t *outlen,
                         bool *done)
{
    *out = NULL;
    *outlen = 0;
    *done = false;
    const char *nl;
    switch (c->body_mode) {
    case BM_CLOSE:
        *out = d;
        *outlen = n;
        return (ssize_t)n;
    case BM_LENGTH: {
        size_t k = n < (uint64_t)c->body_left ? n : (size_t)c->body_left;
        *out = d;
        *outlen = k;
        c->body_left -= (int64_t)k;
        *done = c->body_left == 0;
        return (ssize_t)k;
    }
    case BM_CHUNKED:
        break;
    default:
        *done = true;
        return 0;
    }
    switch (c->ck_state) {
    case CK_SIZE: {
        nl = memchr(d, '\n', n);
        if (!nl)
            return n > 1024 ? -1 : 0;
        int64_t size = 0;
        const char *p = d;
        int digits = 0;
        for (; p < nl; p++, digits++) {
            int v = *p >= '0' && *p <= '9'   ? *p - '0'
                    : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                    : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                             : -1;
            if (v < 0)
                break;
            if (size > (INT64_MAX >> 4))
                return -1;
            size = size * 16 + v;
        }
        if (!digits)
            return -1;
        c->body_left = size;
        c->ck_state = size ? CK_DATA : CK_TRAILER;
        return nl - d + 1;
    }
    case CK_DATA: {
        size_t k = n < (uint64_t)c->body_left ? n : (size_t)c->body_left;
        *out = d;
        *outlen = k;
        c->body_left -= (int64_t)k;
        if (!c->body_left)
            c->ck_state = CK_DATA_END;
        return (ssize_t)k;
    }
    case CK_DATA_END:
        nl = memchr(d, '\n', n);
        if (!nl)
            return n > 2 ? -1 : 0;
        c->ck_state = CK_SIZE;
        return nl - d + 1;
    case CK_TRAILER:
        nl = memchr(d, '\n', n);
        if (!nl)
            return n > 4096 ? -1 : 0;
        if (nl == d || (nl == d + 1 && d[0] == '\r'))
            *done = true;
        return nl - d + 1;
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* WebSocket                                                                 */
/* ------------------------------------------------------------------------ */

/* Sends a masked control frame, or a short text frame (Socket.IO), with a
 * payload of at most 125 bytes. */
static int ws_send_control(struct conn *c, int opcode, const char *p, size_t n)
{
    uint8_t f[6 + 125];
    uint32_t mask = rng32();
    uint8_t m[4];
    memcpy(m, &mask, 4);
    if (n > 125)
        n = 125;
    f[0] = (uint8_t)(0x80 | opcode);
    f[1] = (uint8_t)(0x80 | n);
    memcpy(f + 2, m, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = (uint8_t)p[i] ^ m[i & 3];
    return conn_write(c, f, 6 + n);
}

/* One Engine.IO v4 packet (a whole WebSocket text message) from the
 * Socket.IO server. Returns -1 when the connection was closed. */
static int sio_packet(struct conn *c, const char *p, size_t n)
{
    int64_t t, s;
    if (n == 0) {
        g.other_events++;
        return 0;
    }
    switch (p[0]) {
    case '0': /* open: connect to the default namespace */
        if (ws_send_control(c, 0x1, "40", 2) < 0) {
            sub_fail(c, "sio: send failed");
            return -1;
        }
        return 0;
    case '2': /* ping: pong */
        if (ws_send_control(c, 0x1, "3", 1) < 0) {
            sub_fail(c, "sio: send failed");
            return -1;
        }
        return 0;
    case '1':
        sub_fail(c, "sio: closed by server");
        return -1;
    case '4': /* a Socket.IO packet */
        if (n >= 2 && p[1] == '0') {
            mark_connected(c);
            return 0;
        }
        if (n >= 2 && p[1] == '2') {
            scan_payload(p + 2, n - 2, &t, &s);
            deliver(c, t, s);
            return 0;
        }
        if (n >= 2 && (p[1] == '1' || p[1] == '4')) {
            sub_fail(c, p[1] == '1' ? "sio: disconnected by server" : "sio: connect refused");
            return -1;
        }
        break;
    default:
        break;
    }
    g.other_events++;
    return 0;
}

/* A whole WebSocket data message. Returns -1 when the connection closed. */
static int ws_message(struct conn *c, const char *p, size_t n)
{
    if (c->role == R_SIO)
        return sio_packet(c, p, n);
    int64_t t, s;
    scan_payload(p, n, &t, &s);
    deliver(c, t, s);
    return 0;
}

/* Parses one frame at d. Returns its size, 0 when incomplete, -1 when the
 * connection was closed. */
static ssize_t ws_frame(struct conn *c, char *d, size_t n)
{
    const uint8_t *u = (const uint8_t *)d;
    if (n < 2)
        return 0;
    bool fin = u[0] & 0x80, masked = u[1] & 0x80;
    int op = u[0] & 0x0f;
    uint64_t len = u[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)u[2] << 8 | u[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | u[2 + i];
        h = 10;
    }
    if (len > opt.max_msg) {
        sub_fail(c, "ws: frame larger than --max-msg");
        return -1;
    }
    size_t mh = h + (masked ? 4 : 0);
    if (n < mh + len)
        return 0;
    char *p = d + mh;
    if (masked) { /* servers must not mask; unmask anyway, but note it */
        count_error("ws: masked frame from server");
        for (size_t i = 0; i < len; i++)
            p[i] ^= d[h + (i & 3)];
    }
    switch (op) {
    case 0x1:                   /* text */
    case 0x2:                   /* binary */
    case 0x0:                   /* continuation */
        if (fin && op != 0x0) { /* the common case: a whole message */
            if (ws_message(c, p, len) < 0)
                return -1;
            break;
        }
        /* a fragmented message is gathered and read once complete */
        if (op != 0x0)
            buf_drop(&c->msg, c->msg.len);
        if (buf_put(&c->msg, p, len, opt.max_msg) < 0) {
            sub_fail(c, "ws: message larger than --max-msg");
            return -1;
        }
        if (fin) {
            int r = ws_message(c, c->msg.p, c->msg.len);
            if (r < 0)
                return -1;
            buf_drop(&c->msg, c->msg.len);
        }
        break;
    case 0x8: /* close: answer it and hang up */
        ws_send_control(c, 0x8, p, len >= 2 ? 2 : 0);
        sub_fail(c, "ws: closed by server");
        return -1;
    case 0x9: /* ping */
        if (ws_send_control(c, 0xA, p, len) < 0) {
            sub_fail(c, "ws: send failed");
            return -1;
        }
        break;
    case 0xA: /* pong */
        break;
    default:
        sub_fail(c, "ws: bad opcode");
        return -1;
    }
    return (ssize_t)(mh + len);
}

/* ------------------------------------------------------------------------ */
/* Server-Sent Events                                                        */
/* ------------------------------------------------------------------------ */

static void sse_line(struct conn *c, const char *l, size_t n)
{
    if (n && l[n - 1] == '\r')
        n--;
    if (n == 0) { /* blank line: the event is complete */
        if (c->ev_data)
            deliver(c, c->ev_t, c->ev_s);
        c->ev_data = false;
        c->ev_t = c->ev_s = -1;
        return;
    }
    if (n >= 5 && !memcmp(l, "data:", 5)) {
        c->ev_data = true;
        if (c->ev_t < 0)
            scan_payload(l + 5, n - 5, &c->ev_t, &c->ev_s);
    }
    /* comments (':'), id:, event:, retry: are of no interest here */
}

/* Splits decoded body bytes into lines. Returns -1 if a line is too long. */
static int sse_feed(struct conn *c, const char *d, size_t n)
{
    while (n) {
        const char *nl = memchr(d, '\n', n);
        if (!nl)
            return buf_put(&c->msg, d, n, opt.max_msg);
        size_t k = (size_t)(nl - d);
        if (c->msg.len) {
            if (buf_put(&c->msg, d, k, opt.max_msg) < 0)
                return -1;
            sse_line(c, c->msg.p, c->msg.len);
            buf_drop(&c->msg, c->msg.len);
        } else {
            sse_line(c, d, k);
        }
        d += k + 1;
        n -= k + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Long polling                                                              */
/* ------------------------------------------------------------------------ */

/* Splits the URL around since=N so that each poll can carry the cursor. */
static void poll_prepare(void)
{
    const char *path = opt.sub.path;
    const char *q = strchr(path, '?');
    const char *s = NULL;
    for (const char *p = q; p && (p = strstr(p, "since=")); p += 6)
        if (p[-1] == '?' || p[-1] == '&') {
            s = p;
            break;
        }
    if (s) {
        s += 6;
        int64_t v = parse_num(s, s + strlen(s), false);
        size_t pl = (size_t)(s - path);
        memcpy(g.poll_prefix, path, pl);
        g.poll_prefix[pl] = '\0';
        while (*s >= '0' && *s <= '9')
            s++;
        strcpy(g.poll_suffix, s);
        for (long i = 0; i < opt.subs; i++)
            g.subs[i].since = v > 0 ? v : 0;
    } else {
        snprintf(g.poll_prefix, sizeof(g.poll_prefix), "%s%ssince=", path, q ? "&" : "?");
        g.poll_suffix[0] = '\0';
    }
}

/* Counts the messages in one long-poll answer and moves the cursor. */
static void poll_answer(struct conn *c)
{
    const char *p = c->msg.p, *end = c->msg.p + c->msg.len;
    int found = 0;
    while (p && p < end) {
        const char *at;
        int64_t t = json_key_num(p, end, "\"t\"", &at);
        if (!at)
            break;
        const char *next_t;
        const char *after = at + 3;
        json_key_num(after, end, "\"t\"", &next_t);
        int64_t s = json_key_num(after, next_t ? next_t : end, "\"s\"", NULL);
        deliver(c, t, s);
        found++;
        p = after;
    }
    if (opt.poll_style == PS_CRIER) {
        int64_t last = json_key_num(c->msg.p, end, "\"last_id\"", NULL);
        if (last >= 0)
            c->since = last;
    } else if (!found && c->msg.len) {
        deliver(c, -1, -1); /* a message that is not ours */
    }
}

/* A long-poll response is complete: record it and poll again. Returns -1
 * when the connection was replaced (or closed). */
static int poll_done(struct conn *c)
{
    if (c->status == 200)
        poll_answer(c);
    else if (c->status != 204 && c->status != 304 && c->status != 408)
        count_status_error("poll: status", c->status);
    buf_drop(&c->msg, c->msg.len);
    bool bad = c->status >= 400 && c->status != 408;
    if (g.phase == PH_DONE)
        return 0;
    if (bad) { /* do not hammer a server that refuses */
        conn_close(c);
        retry_later(c);
        return -1;
    }
    if (c->close_after || c->body_mode == BM_CLOSE) {
        conn_close(c);
        sub_start(c);
        return -1;
    }
    if (sub_send_request(c) < 0) {
        sub_fail(c, "poll: send failed");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Publisher                                                                 */
/* ------------------------------------------------------------------------ */

static void pub_lost(const char *why)
{
    struct conn *c = &g.pubc;
    count_error(why);
    conn_close(c);
    g.pub_errs += g.inflight;
    g.answered += g.inflight;
    g.inflight = 0;
    if (++g.pub_failures_in_row > 50) {
        fprintf(stderr, "loadgen: publisher gives up after 50 failures in a row\n");
        g.pub_errs += opt.count - g.answered;
        g.answered = g.issued = opt.count;
    }
    g.pub_retry_at = now_ns() + RETRY_DELAY_NS;
}

/* Builds {"t":..,"s":..,"pad":"xxx"} of exactly opt.size bytes into p. */
static size_t make_payload(char *p, int64_t seq)
{
    int n = snprintf(p, (size_t)opt.size + 1, "{\"t\":%" PRId64 ",\"s\":%" PRId64 ",\"pad\":\"",
                     now_ns(), seq);
    long pad = opt.size - n - 2;
    if (pad < 0)
        pad = 0;
    memset(p + n, 'x', (size_t)pad);
    memcpy(p + n + pad, "\"}", 2);
    return (size_t)(n + pad + 2);
}

static int pub_send_one(void)
{
    static char *req;
    char head[sizeof(opt.pub.path) + sizeof(opt.pub.hostport) + 256];
    if (!req) {
        req = malloc(sizeof(head) + (size_t)opt.size + 1);
        if (!req)
            die("out of memory");
    }
    int64_t seq = ++g.issued;
    g.sent_at[seq % 1024] = now_ns();
    /* head first, with a Content-Length we know in advance */
    int hl = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %ld\r\n\r\n",
                      opt.pub.path, opt.pub.hostport, opt.size);
    if (hl <= 0 || (size_t)hl >= sizeof(head))
        die("publish request head too long");
    memcpy(req, head, (size_t)hl);
    size_t bl = make_payload(req + hl, seq);
    g.inflight++;
    return conn_write(&g.pubc, req, (size_t)hl + bl);
}

/* Issues the POSTs that are due. */
static void pub_tick(int64_t now)
{
    struct conn *c = &g.pubc;
    if (g.issued >= opt.count)
        return;
    if (!g.t_pub_start)
        g.t_pub_start = now;
    if (opt.pub_secs > 0 && now - g.t_pub_start >= (int64_t)(opt.pub_secs * 1e9)) {
        opt.count = g.issued; /* time is up: what was sent is the count */
        return;
    }
    int64_t due = opt.count;
    if (opt.rate > 0) {
        due = (int64_t)((double)(now - g.t_pub_start) * 1e-9 * opt.rate) + 1;
        if (due > opt.count)
            due = opt.count;
    }
    if (g.issued >= due || g.inflight >= opt.pipeline)
        return;
    if (c->fd < 0) {
        if (now < g.pub_retry_at)
            return;
        if (conn_open(c, &opt.pub.addr, -1) < 0) {
            pub_lost("pub: connect failed");
            return;
        }
    }
    while (g.issued < due && g.inflight < opt.pipeline) {
        if (pub_send_one() < 0) {
            pub_lost("pub: send failed");
            return;
        }
    }
}

/* A publish response is complete. Returns -1 when the connection closed. */
static int pub_done(struct conn *c)
{
    bool ok = c->status >= 200 && c->status < 300;
    c->state = S_HEAD;
    if (g.inflight <= 0) {
        count_error("pub: answer to no request"); /* e.g. a 503 sent on accept */
    } else {
        g.inflight--;
        g.answered++; /* answers come in request order: this one is request #answered */
        hist_add(&g.answer, now_ns() - g.sent_at[g.answered % 1024]);
        if (ok) {
            g.pub_ok++;
            g.pub_failures_in_row = 0;
        } else {
            g.pub_errs++;
            count_status_error("pub: status", c->status);
        }
    }
    if (c->close_after || c->body_mode == BM_CLOSE) {
        conn_close(c);
        g.pub_errs += g.inflight; /* pipelined requests die with it */
        g.answered += g.inflight;
        g.inflight = 0;
        if (!ok) /* a refusing server gets a pause, not a reconnect storm */
            g.pub_retry_at = now_ns() + RETRY_DELAY_NS;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Input dispatch                                                            */
/* ------------------------------------------------------------------------ */

static void conn_fail(struct conn *c, const char *why)
{
    if (c->role == R_PUB)
        pub_lost(why);
    else
        sub_fail(c, why);
}

/* The response head is in: check it and move on to the body or stream. */
static int head_done(struct conn *c, bool ws_ok)
{
    switch (c->role) {
    case R_WS:
    case R_SIO:
        if (c->status != 101) {
            char why[64];
            snprintf(why, sizeof(why), "ws: handshake status %d", c->status);
            sub_fail(c, why);
            return -1;
        }
        if (!ws_ok) {
            sub_fail(c, "ws: bad Sec-WebSocket-Accept");
            return -1;
        }
        c->state = S_STREAM;
        c->ev_t = c->ev_s = -1;
        if (c->role == R_WS) /* Socket.IO: at the server's "40" */
            mark_connected(c);
        return 0;
    case R_SSE:
        if (c->status != 200) {
            char why[64];
            snprintf(why, sizeof(why), "sse: status %d", c->status);
            sub_fail(c, why);
            return -1;
        }
        if (c->body_mode == BM_NONE || c->body_mode == BM_LENGTH) {
            sub_fail(c, "sse: response is not a stream");
            return -1;
        }
        c->state = S_STREAM;
        c->ev_t = c->ev_s = -1;
        c->ev_data = false;
        mark_connected(c);
        return 0;
    case R_POLL:
        c->state = S_BODY;
        if (c->body_mode == BM_NONE)
            return poll_done(c);
        return 0;
    default:
        c->state = S_BODY;
        if (c->body_mode == BM_NONE)
            return pub_done(c);
        return 0;
    }
}

static ssize_t parse_head(struct conn *c, char *d, size_t n)
{
    const char *end = memmem(d, n, "\r\n\r\n", 4);
    if (!end) {
        if (n > HEAD_MAX) {
            conn_fail(c, "http: response head too large");
            return -1;
        }
        return 0;
    }
    end += 4;
    bool ws_ok;
    if (!parse_head_fields(c, d, end, &ws_ok)) {
        conn_fail(c, "http: malformed response head");
        return -1;
    }
    if (head_done(c, ws_ok) < 0)
        return -1;
    return end - d;
}

/* Body bytes of the current response. Returns -1 if the connection closed. */
static int body_data(struct conn *c, const char *d, size_t n)
{
    switch (c->role) {
    case R_SSE:
        if (sse_feed(c, d, n) < 0) {
            sub_fail(c, "sse: line longer than --max-msg");
            return -1;
        }
        return 0;
    case R_POLL:
        if (buf_put(&c->msg, d, n, POLL_BODY_MAX) < 0) {
            sub_fail(c, "poll: answer too large");
            return -1;
        }
        return 0;
    default:
        return 0; /* the publisher ignores response bodies */
    }
}

static int body_done(struct conn *c)
{
    switch (c->role) {
    case R_SSE:
        sub_fail(c, "sse: stream ended by server");
        return -1;
    case R_POLL:
        return poll_done(c);
    default:
        return pub_done(c);
    }
}

static ssize_t parse_body(struct conn *c, char *d, size_t n)
{
    const char *out;
    size_t outlen;
    bool done;
    ssize_t r = body_step(c, d, n, &out, &outlen, &done);
    if (r < 0) {
        conn_fail(c, "http: bad chunked encoding");
        return -1;
    }
    if (outlen && body_data(c, out, outlen) < 0)
        return -1;
    if (done && body_done(c) < 0)
        return -1;
    return r;
}

/* Parses as much of d as possible. Returns the bytes consumed, or -1 when
 * the connection was closed or replaced (the rest is then meaningless). */
static ssize_t parse(struct conn *c, char *d, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r;
        uint8_t st = c->state;
        if (st == S_HEAD)
            r = parse_head(c, d + off, n - off);
        else if (st == S_STREAM && (c->role == R_WS || c->role == R_SIO))
            r = ws_frame(c, d + off, n - off);
        else if (st == S_STREAM || st == S_BODY)
            r = parse_body(c, d + off, n - off);
        else
            return (ssize_t)n;
        if (r < 0)
            return -1;
        if (r == 0 && c->state == st)
            break;
        off += (size_t)r;
    }
    return (ssize_t)off;
}

/* New bytes from the socket: parse straight from the read buffer when
 * nothing is pending, else append and parse the connection's buffer. */
static int feed(struct conn *c, char *d, size_t n)
{
    size_t cap = opt.max_msg + HEAD_MAX;
    if (c->in.len == 0) {
        ssize_t used = parse(c, d, n);
        if (used < 0)
            return -1;
        if ((size_t)used < n && buf_put(&c->in, d + used, n - (size_t)used, cap) < 0) {
            conn_fail(c, "input buffer overflow");
            return -1;
        }
        return 0;
    }
    if (buf_put(&c->in, d, n, cap) < 0) {
        conn_fail(c, "input buffer overflow");
        return -1;
    }
    ssize_t used = parse(c, c->in.p, c->in.len);
    if (used < 0)
        return -1;
    buf_drop(&c->in, (size_t)used);
    return 0;
}

/* The peer closed the connection. */
static void on_eof(struct conn *c)
{
    if (c->state == S_BODY && c->body_mode == BM_CLOSE) {
        c->close_after = true;
        if (c->role == R_POLL)
            poll_done(c);
        else
            pub_done(c);
        return;
    }
    if (c->role == R_PUB) {
        if (g.inflight == 0 && c->in.len == 0) { /* idle keep-alive closed */
            conn_close(c);
            return;
        }
        pub_lost("pub: connection closed by server");
        return;
    }
    if (c->role == R_POLL && c->state == S_HEAD && c->in.len == 0) {
        count_error("poll: connection closed before an answer");
        conn_close(c);
        if (g.phase != PH_DONE)
            retry_later(c);
        return;
    }
    sub_fail(c, c->role == R_WS    ? "ws: connection closed by server"
                : c->role == R_SIO ? "sio: connection closed by server"
                : c->role == R_SSE ? "sse: connection closed by server"
                                   : "poll: connection closed mid-answer");
}

static void on_readable(struct conn *c)
{
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(c->fd, g.rbuf, sizeof(g.rbuf), 0);
        if (n > 0) {
            if (feed(c, g.rbuf, (size_t)n) < 0)
                return;
            if ((size_t)n < sizeof(g.rbuf))
                return; /* most likely drained; level-triggered epoll says if not */
            continue;
        }
        if (n == 0) {
            on_eof(c);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_fail(c, errno == ECONNRESET ? "connection reset by server" : "recv failed");
        return;
    }
}

static void on_connected(struct conn *c)
{
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
        conn_fail(c, err == ECONNREFUSED ? "connect: refused" : "connect failed");
        return;
    }
    if (c->role == R_PUB) {
        c->state = S_HEAD;
        if (conn_flush(c) < 0)
            pub_lost("pub: send failed");
        return;
    }
    ep_set(c, EPOLLIN, EPOLL_CTL_MOD);
    if (c->role == R_POLL)
        mark_connected(c); /* a long poll is "connected" once asked */
    if (sub_send_request(c) < 0)
        sub_fail(c, "send failed");
}

static void on_event(uint64_t tag, uint32_t events)
{
    uint32_t idx = (uint32_t)(tag >> 32);
    struct conn *c = idx == (uint32_t)opt.subs ? &g.pubc : &g.subs[idx];
    if (c->gen != (uint32_t)tag || c->fd < 0 || c->stalled)
        return; /* an event for a socket closed earlier in this batch, or never read */
    uint32_t gen = c->gen;
    if (c->state == S_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(c);
    if (c->gen == gen && c->fd >= 0 && (events & EPOLLOUT) && conn_flush(c) < 0)
        conn_fail(c, "send failed");
}

/* ------------------------------------------------------------------------ */
/* The run: phases, timers, report                                           */
/* ------------------------------------------------------------------------ */

static void open_subscribers(int64_t now)
{
    long target = opt.subs;
    if (opt.ramp > 0) {
        double t = (double)(now - g.t0) * 1e-9 * opt.ramp + 1;
        if (t < (double)target)
            target = (long)t;
    }
    while (g.opened < target && g.pending < opt.max_pending) {
        struct conn *c = &g.subs[g.opened++];
        g.pending++;
        sub_start(c);
    }
}

static void run_retries(int64_t now)
{
    while (g.retry_len && g.retry_at[g.retry_head] <= now) {
        struct conn *c = &g.subs[g.retry_q[g.retry_head]];
        g.retry_head = (g.retry_head + 1) % (size_t)opt.subs;
        g.retry_len--;
        if (c->fd < 0 && !c->dead)
            sub_start(c);
    }
}

/* Gives up on whoever is not connected at the connect deadline. */
/* --stall-one: the first connected subscriber is never read again. */
static void stall_first(void)
{
    for (long i = 0; i < opt.subs; i++) {
        struct conn *c = &g.subs[i];
        if (c->fd < 0 || !c->ever_connected || c->dead || c->role == R_POLL)
            continue;
        ep_set(c, 0, EPOLL_CTL_MOD);
        c->stalled = true;
        g.stalled = 1;
        return;
    }
}

static void end_connect_phase(int64_t now)
{
    for (long i = 0; i < opt.subs; i++) {
        struct conn *c = &g.subs[i];
        if (i >= g.opened) {
            count_error("connect: not started before the deadline");
            g.failed++;
            c->dead = true;
        } else if (!c->ever_connected && !c->dead) {
            sub_fail(c, "connect: not connected before the deadline");
        }
    }
    g.opened = opt.subs;
    g.pending = 0;
    g.t_ready = now;
    if (opt.stall_one)
        stall_first();
    if (opt.ready_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", opt.ready_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "connected %ld failed %ld\n", g.connected, g.failed);
            fclose(f);
            rename(tmp, opt.ready_file);
        }
    }
}

static bool all_accounted(void)
{
    return g.complete + g.dead_incomplete + g.failed + g.stalled >= opt.subs;
}

/* Moves the run along; returns the time of the next deadline. */
static int64_t advance(int64_t now)
{
    int64_t next = now + 100000000LL;
    if (now - g.t0 >= (int64_t)(opt.duration * 1e9) || stop_signal) {
        g.phase = PH_DONE;
        return now;
    }
    switch (g.phase) {
    case PH_CONNECT:
        open_subscribers(now);
        if (g.opened >= opt.subs && g.pending == 0) {
            end_connect_phase(now);
        } else if (now - g.t0 >= (int64_t)(opt.connect_timeout * 1e9)) {
            end_connect_phase(now);
        } else {
            if (opt.ramp > 0 && g.opened < opt.subs)
                next = now + (int64_t)(1e9 / opt.ramp) + 1;
            break;
        }
        if (opt.idle > 0)
            g.phase = PH_IDLE;
        else if (opt.has_pub)
            g.phase = PH_PUBLISH;
        else {
            g.phase = PH_LISTEN;
            if (opt.expect >= 0)
                set_expectation(opt.expect);
        }
        return now;
    case PH_IDLE:
        if (now - g.t_ready >= (int64_t)(opt.idle * 1e9)) {
            g.phase = opt.has_pub && opt.count > 0 ? PH_PUBLISH : PH_DONE;
            return now;
        }
        next = g.t_ready + (int64_t)(opt.idle * 1e9);
        break;
    case PH_PUBLISH:
        pub_tick(now);
        if (g.answered >= opt.count) {
            g.t_pub_end = now;
            g.phase = opt.subs > 0 ? PH_DRAIN : PH_DONE;
            if (opt.subs > 0)
                set_expectation(g.pub_ok);
            return now;
        }
        if (opt.rate > 0 && g.inflight < opt.pipeline)
            next = g.t_pub_start + (int64_t)((double)g.issued * 1e9 / opt.rate);
        if (opt.pub_secs > 0 && g.t_pub_start) {
            int64_t stop = g.t_pub_start + (int64_t)(opt.pub_secs * 1e9);
            if (stop < next)
                next = stop > now ? stop : now;
        }
        if (g.pubc.fd < 0 && g.pub_retry_at > now)
            next = g.pub_retry_at;
        break;
    case PH_DRAIN:
        if (all_accounted() || now - g.t_pub_end >= (int64_t)(opt.drain_timeout * 1e9)) {
            g.phase = PH_DONE;
            return now;
        }
        next = g.t_pub_end + (int64_t)(opt.drain_timeout * 1e9);
        break;
    case PH_LISTEN:
        if (opt.expect >= 0) {
            int64_t quiet = (int64_t)(opt.drain_timeout * 1e9);
            if (all_accounted() || (g.t_last_deliv && now - g.t_last_deliv >= quiet)) {
                g.phase = PH_DONE;
                return now;
            }
        }
        break;
    case PH_DONE:
        return now;
    }
    if (g.retry_len && g.retry_at[g.retry_head] < next)
        next = g.retry_at[g.retry_head];
    int64_t cap = g.t0 + (int64_t)(opt.duration * 1e9);
    return next < cap ? next : cap;
}

static double hist_pct(const struct hist *h, double q)
{
    if (!h->n)
        return 0;
    double want = q * (double)h->n;
    uint64_t rank = (uint64_t)want, acc = 0;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        acc += h->b[i];
        if (acc >= rank) { /* the bucket's upper edge, but never beyond the max */
            double ms = i < HIST_FINE ? (double)(i + 1) * HIST_FINE_NS / 1e6
                                      : (double)(HIST_FINE * HIST_FINE_NS +
                                                 (int64_t)(i + 1 - HIST_FINE) * HIST_COARSE_NS) /
                                            1e6;
            double mx = (double)h->max / 1e6;
            return ms < mx ? ms : mx;
        }
    }
    return (double)h->max / 1e6;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
    fputc('"', f);
}

static void report(void)
{
    static const char *kinds[] = {"ws", "sse", "poll", "sio"};
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (g.expect_per_sub < 0)
        set_expectation(opt.expect >= 0 ? opt.expect : g.pub_ok);
    int64_t from = g.t_pub_start ? g.t_pub_start : g.t_first_deliv;
    double window = g.t_last_deliv > from && from ? (double)(g.t_last_deliv - from) / 1e9 : 0;
    double pub_s =
        g.t_pub_start ? (double)((g.t_pub_end ? g.t_pub_end : g.t_end) - g.t_pub_start) / 1e9 : 0;
    FILE *f = stdout;
    fputs("{\"kind\":", f);
    json_str(f, opt.subs > 0 ? kinds[opt.kind] : "pub");
    fprintf(f,
            ",\"subs\":%ld,\"connected\":%ld,\"failed\":%ld,\"sent\":%" PRId64
            ",\"delivered\":%" PRIu64 ",\"expected\":%" PRId64 ",\"deliveries_per_s\":%.0f",
            opt.subs, g.connected, g.failed, g.pub_ok, g.delivered,
            g.expect_per_sub * (int64_t)(g.connected - g.stalled),
            window > 0 ? (double)g.delivered / window : 0);
    fprintf(f, ",\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
            hist_pct(&g.lat, 0.5), hist_pct(&g.lat, 0.9), hist_pct(&g.lat, 0.99),
            (double)g.lat.max / 1e6);
    if (opt.has_pub)
        fprintf(f, ",\"answer_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
                hist_pct(&g.answer, 0.5), hist_pct(&g.answer, 0.99), (double)g.answer.max / 1e6);
    /* CLOCK_MONOTONIC ns: comparable across processes on this machine */
    fprintf(f,
            ",\"t_first_deliv_ns\":%" PRId64 ",\"t_last_deliv_ns\":%" PRId64
            ",\"t_pub_start_ns\":%" PRId64 ",\"t_pub_end_ns\":%" PRId64 ",\"stalled\":%ld",
            g.t_first_deliv, g.t_last_deliv, g.t_pub_start, g.t_pub_end, g.stalled);
    fprintf(f, ",\"duration_s\":%.3f,\"errors\":%" PRIu64 ",\"loadgen_cpu_s\":%.3f",
            (double)(g.t_end - g.t0) / 1e9, g.errors, cpu);
    fprintf(f,
            ",\"complete\":%ld,\"dups\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"other_events\":%" PRIu64,
            g.complete, g.dups, g.gaps, g.other_events);
    fprintf(f,
            ",\"pub_errors\":%" PRId64
            ",\"pub_s\":%.3f,\"pub_per_s\":%.0f,\"delivery_window_s\":%.3f",
            g.pub_errs, pub_s, pub_s > 0 ? (double)g.pub_ok / pub_s : 0, window);
    fputs(",\"error_kinds\":{", f);
    for (int i = 0; i < MAX_ERROR_KINDS && g.err_kind[i][0]; i++) {
        fputs(i ? "," : "", f);
        json_str(f, g.err_kind[i]);
        fprintf(f, ":%" PRIu64, g.err_count[i]);
    }
    fputs("}", f);
    if (opt.subs > 0) {
        fputs(",\"url\":", f);
        json_str(f, opt.url_text);
    }
    if (opt.has_pub) {
        fputs(",\"pub\":", f);
        json_str(f, opt.pub_text);
    }
    fputs("}\n", f);
    fflush(f);
}

static void progress(int64_t now)
{
    static int64_t last;
    if (!opt.progress || now - last < 1000000000LL)
        return;
    last = now;
    static const char *names[] = {"connect", "idle", "publish", "drain", "listen", "done"};
    fprintf(stderr,
            "loadgen: %6.1fs %-7s connected %ld failed %ld sent %" PRId64 " delivered %" PRIu64
            " errors %" PRIu64 "\n",
            (double)(now - g.t0) / 1e9, names[g.phase], g.connected, g.failed, g.pub_ok,
            g.delivered, g.errors);
}

static void on_signal(int sig)
{
    (void)sig;
    stop_signal = 1;
}

static void setup(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)opt.subs + 32 > rl.rlim_cur)
        die("--subs %ld needs more open files than this process may have (%llu); "
            "run several loadgen processes",
            opt.subs, (unsigned long long)rl.rlim_cur);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rng_state = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (g.ep < 0)
        die("epoll_create1: %s", strerror(errno));
    g.lat.b = calloc(HIST_BUCKETS, sizeof(*g.lat.b));
    g.answer.b = opt.has_pub ? calloc(HIST_BUCKETS, sizeof(*g.answer.b)) : g.lat.b;
    g.subs = calloc((size_t)opt.subs + 1, sizeof(*g.subs));
    g.retry_q = calloc((size_t)opt.subs + 1, sizeof(*g.retry_q));
    g.retry_at = calloc((size_t)opt.subs + 1, sizeof(*g.retry_at));
    if (!g.lat.b || !g.answer.b || !g.subs || !g.retry_q || !g.retry_at)
        die("out of memory");
    for (long i = 0; i < opt.subs; i++) {
        struct conn *c = &g.subs[i];
        c->fd = -1;
        c->idx = (uint32_t)i;
        c->role = (uint8_t)opt.kind;
        c->last_seq = 0;
        c->ev_t = c->ev_s = -1;
    }
    g.pubc.fd = -1;
    g.pubc.idx = (uint32_t)opt.subs;
    g.pubc.role = R_PUB;
    g.expect_per_sub = -1;
    if (opt.kind == R_POLL && opt.subs > 0)
        poll_prepare();
}

int main(int argc, char **argv)
{
    parse_opts(argc, argv);
    setup();
    g.t0 = now_ns();
    g.phase = PH_CONNECT;
    /* batched reads: one round takes every ready socket, up to 64k */
    int max_evs = opt.batch_ms > 0 && opt.subs + 1 > 512
                      ? (int)(opt.subs < 65535 ? opt.subs + 1 : 65536)
                      : 512;
    struct epoll_event *evs = calloc((size_t)max_evs, sizeof(*evs));
    if (!evs)
        die("out of memory");
    for (;;) {
        int64_t now = now_ns();
        int64_t next = advance(now);
        for (int k = 0; k < 8 && g.phase != PH_DONE && next <= now; k++)
            next = advance(now); /* a phase change acts at once */
        if (g.phase == PH_DONE)
            break;
        run_retries(now);
        progress(now);
        int wait_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
        if (wait_ms > 100)
            wait_ms = 100;
        int n = epoll_wait(g.ep, evs, max_evs, wait_ms);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.u64, evs[i].events);
        if (n > 0 && opt.batch_ms > 0 && g.phase != PH_CONNECT) {
            int64_t ns = (int64_t)(opt.batch_ms * 1e6);
            struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
            nanosleep(&ts, NULL);
        }
    }
    free(evs);
    g.t_end = now_ns();
    if (!g.t_pub_end && g.t_pub_start)
        g.t_pub_end = g.t_end;
    report();
    bool ok = g.failed == 0 && g.pub_errs == 0 && g.complete >= g.connected - g.stalled &&
              (!opt.has_pub || g.answered >= opt.count);
    return ok ? 0 : 1;
}
