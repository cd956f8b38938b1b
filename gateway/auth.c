/* SPDX-License-Identifier: MIT */
/*
 * auth.c - turns what a client presents into a principal (common/access.h):
 * a JSON Web Token verified with libjwt, or a server API key. Owns the keys
 * auth_init loads (the public key of auth.jwt.public_key_file, the keys of
 * auth.api_keys_file).
 *
 * libjwt 1.10's jwt_decode verifies with whatever key it is handed, for
 * whatever "alg" the token names (and HMACs with an empty key when handed
 * none), so the token's header is read here first: "alg" must be one of
 * auth.jwt.algorithms ("none" never), and picks the key by its family
 * (HS* the hmac_secret, RS* and ES* the public key, whose type and curve must
 * fit). Only then does jwt_decode check the signature; the claims (exp,
 * nbf, iss, aud, sub, rooms) are checked here against the config.
 *
 * Threading: auth_init and auth_fini run on the main thread before the
 * server's threads start and after they stop, auth_reload on the main thread
 * at a SIGHUP. The keys (auth_keys) are immutable once current and
 * reference counted: auth_authenticate and auth_is_api_key, on any thread,
 * take a reference under keys_lock (level 6 in docs/concurrency.md: nothing
 * is called under it) and verify with the keys they got, while a reload
 * swaps in new ones; the last user frees the old.
 */
#include "gateway/auth.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/live.h"
#include "common/log.h"
#include "common/parse.h"

#define TAG "auth"

/* The longest token or API key taken (a larger one is refused, not read). */
#define TOKEN_MAX 8192
/* The longest sub kept as the user id. */
#define SUB_MAX 256
/* The most patterns a token's rooms.subscribe or rooms.publish may lik-> */
#define ROOM_PATTERNS_MAX 256
/* The largest public key file, and API key file, read. */
#define KEY_FILE_MAX (64 * 1024)
#define KEYS_FILE_MAX (1024 * 1024)
/* An API key: at least this many characters (as auth.api_keys, config.c). */
#define API_KEY_MIN 16
/* HS* secrets shorter than this get a warning (RFC 7518 3.2: a key as long
 * as the hash). */
#define HMAC_SECRET_MIN 32

/* What a token's "alg" may be, and the key it needs. */
typedef struct alg_info {
    const char *name;         /* as in the JWS header */
    unsigned bit;             /* CFG_JWT_* */
    jwt_alg_t jwt;            /* libjwt's */
    int key_type;             /* 0: the HMAC secret; EVP_PKEY_RSA or EVP_PKEY_EC */
    const char *curve;        /* EC: the group the public key must be on */
    const char *not_accepted; /* the refusal when auth.jwt.algorithms does not list it */
    const char *key_mismatch; /* the refusal when the public key is of another type */
} alg_info;

/* clang-format off */
#define ALG(n, type, curve) \
    {#n, CFG_JWT_##n, JWT_ALG_##n, type, curve, "token algorithm " #n " is not accepted", \
     "token algorithm " #n " does not fit the configured public key"}
/* clang-format on */

static const alg_info algs[] = {
    ALG(HS256, 0, NULL),
    ALG(HS384, 0, NULL),
    ALG(HS512, 0, NULL),
    ALG(RS256, EVP_PKEY_RSA, NULL),
    ALG(RS384, EVP_PKEY_RSA, NULL),
    ALG(RS512, EVP_PKEY_RSA, NULL),
    ALG(ES256, EVP_PKEY_EC, "prime256v1"),
    ALG(ES384, EVP_PKEY_EC, "secp384r1"),
    ALG(ES512, EVP_PKEY_EC, "secp521r1"),
};
#define ALG_COUNT (sizeof(algs) / sizeof(algs[0]))

/* Refusals (static texts: callers put them in 401 bodies and logs). */
static const char ERR_HEADER[] = "invalid Authorization header (expected: Bearer <token>)";
static const char ERR_QUERY[] = "invalid access_token parameter (bad percent-encoding)";
static const char ERR_TOO_LONG[] = "token is too long";
static const char ERR_MALFORMED[] = "token is malformed";
static const char ERR_NONE[] = "token algorithm none is not accepted";
static const char ERR_ALG_UNKNOWN[] = "token algorithm is not supported";
static const char ERR_CRIT[] = "token header crit is not supported";
static const char ERR_TYP[] = "token typ is not supported (only JWT)";
static const char ERR_SIGNATURE[] = "token signature does not verify";
static const char ERR_EXPIRED[] = "token expired";
static const char ERR_NOT_YET[] = "token not valid yet";
static const char ERR_ISSUER[] = "token issuer does not match";
static const char ERR_AUDIENCE[] = "token audience does not match";
static const char ERR_EXP_TYPE[] = "token exp claim is not a number";
static const char ERR_NBF_TYPE[] = "token nbf claim is not a number";
static const char ERR_SUB[] = "token sub claim is malformed";
static const char ERR_SUB_LONG[] = "token sub claim is too long";
static const char ERR_ROOMS[] = "token rooms claim is malformed";
static const char ERR_UNKNOWN_KEY[] = "unknown API key";
static const char ERR_NO_JWT[] = "tokens are not accepted: auth.jwt is not configured";
static const char ERR_NOMEM[] = "token could not be checked (out of memory)";

/* What auth_init (or auth_reload) loaded: immutable once current, and
 * reference counted, so that a reload can swap in another while requests
 * on other threads still verify with this one. */
typedef struct auth_keys {
    atomic_uint refs; /* the current pointer holds one */
    const cfg *c;     /* the config these keys go with */
    const cfg *live;  /* c's reference (common/live.h) to release, or NULL */
    char *pem;        /* the public key, PEM "PUBLIC KEY" (as libjwt reads it); NULL: none */
    int pem_len;
    int key_type;                                     /* EVP_PKEY_RSA or EVP_PKEY_EC */
    char curve[32];                                   /* EC: the group's name */
    char file_keys[CFG_MAX_API_KEYS][CFG_SECRET_MAX]; /* auth.api_keys_file */
    unsigned nfile_keys;
} auth_keys;

static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER; /* guards cur */
static auth_keys *cur;                                        /* keys_lock; NULL before auth_init */

__attribute__((format(printf, 2, 3))) static int fail(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CFG_ERR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- keys --------------------------------------------------------------- */

/* Opens path, a regular file of at most max bytes; NULL with *why set. */
static FILE *open_small_file(const char *path, size_t max, const char **why)
{
    FILE *fp = fopen(path, "r");
    struct stat sb;
    if (!fp) {
        *why = strerror(errno);
        return NULL;
    }
    if (fstat(fileno(fp), &sb) != 0)
        *why = strerror(errno);
    else if (S_ISDIR(sb.st_mode))
        *why = "it is a directory";
    else if (!S_ISREG(sb.st_mode))
        *why = "not a regular file";
    else if ((size_t)sb.st_size > max)
        *why = "file too large";
    else
        return fp;
    fclose(fp);
    return NULL;
}

/* Reads all of path (at most max bytes) into a new NUL-terminated buffer. */
static char *read_file(const char *path, size_t max, size_t *len, const char **why)
{
    FILE *fp = open_small_file(path, max, why);
    if (!fp)
        return NULL;
    char *text = malloc(max + 1);
    size_t n = text ? fread(text, 1, max + 1, fp) : 0;
    bool bad = !text || ferror(fp) || n > max;
    *why = !text ? "out of memory" : ferror(fp) ? "read error" : "file too large";
    fclose(fp);
    if (bad) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

/* The public key in text: a PEM PUBLIC KEY, or the key of a PEM certificate. */
static EVP_PKEY *parse_public_key(const char *text, size_t len)
{
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    if (bio && !key) {
        BIO_free(bio);
        bio = BIO_new_mem_buf(text, (int)len);
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        if (x) {
            key = X509_get_pubkey(x);
            X509_free(x);
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    return key;
}

/* Keeps key as PEM PUBLIC KEY text in st (what jwt_decode reads). */
static int keep_pem(auth_keys *k, EVP_PKEY *key)
{
    BIO *out = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = out && PEM_write_bio_PUBKEY(out, key) ? BIO_get_mem_data(out, &data) : 0;
    if (n > 0 && (k->pem = malloc((size_t)n + 1))) {
        memcpy(k->pem, data, (size_t)n);
        k->pem[n] = '\0';
        k->pem_len = (int)n;
    }
    BIO_free(out);
    return k->pem ? 0 : -1;
}

/* Checks key's type (RSA of 2048 bits or more, or EC on P-256, P-384,
 * P-521) and that auth.jwt.algorithms lists an algorithm it verifies. */
static int check_public_key(auth_keys *k, const cfg *c, EVP_PKEY *key, const char *path, char *err)
{
    k->key_type = EVP_PKEY_get_base_id(key);
    if (k->key_type == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(key) < 2048)
            return fail(err,
                        "auth.jwt.public_key_file '%s': an RSA key of %d bits is too weak "
                        "(at least 2048)",
                        path, EVP_PKEY_get_bits(key));
    } else if (k->key_type == EVP_PKEY_EC) {
        size_t n = 0;
        if (!EVP_PKEY_get_group_name(key, k->curve, sizeof(k->curve), &n))
            k->curve[0] = '\0';
    } else {
        return fail(err,
                    "auth.jwt.public_key_file '%s': expected an RSA or EC (P-256, P-384, P-521) "
                    "public key",
                    path);
    }
    for (size_t i = 0; i < ALG_COUNT; i++) {
        const alg_info *a = &algs[i];
        if ((c->auth.jwt.algorithms & a->bit) && a->key_type == k->key_type &&
            (!a->curve || strcmp(a->curve, k->curve) == 0))
            return 0;
    }
    return fail(err,
                "auth.jwt.public_key_file '%s': auth.jwt.algorithms lists no algorithm this %s "
                "key verifies (RSA: RS256, RS384, RS512; EC: ES256 on P-256, ES384 on P-384, "
                "ES512 on P-521)",
                path,
                k->key_type == EVP_PKEY_RSA ? "RSA"
                : k->curve[0]               ? k->curve
                                            : "EC");
}

static int load_public_key(auth_keys *k, const cfg *c, char *err)
{
    const char *path = c->auth.jwt.public_key_file, *why = NULL;
    size_t len = 0;
    char *text = read_file(path, KEY_FILE_MAX, &len, &why);
    if (!text)
        return fail(err, "auth.jwt.public_key_file '%s': cannot read it: %s", path, why);
    EVP_PKEY *key = parse_public_key(text, len);
    bool private_key = strstr(text, "PRIVATE KEY-----") != NULL;
    OPENSSL_cleanse(text, len);
    free(text);
    if (!key)
        return fail(err, "auth.jwt.public_key_file '%s': %s", path,
                    private_key ? "holds a private key; give the public key "
                                  "(openssl pkey -in KEY -pubout -out public.pem)"
                                : "expected a PEM public key (-----BEGIN PUBLIC KEY-----) or "
                                  "certificate");
    int rc = check_public_key(k, c, key, path, err);
    if (rc == 0 && keep_pem(k, key) != 0)
        rc = fail(err, "auth.jwt.public_key_file '%s': out of memory", path);
    EVP_PKEY_free(key);
    return rc;
}

/* An API key's characters: visible ASCII, no spaces. */
static bool key_chars_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= ' ' || s[i] >= 0x7f)
            return false;
    }
    return true;
}

/* auth.api_keys_file: one key a line; blank lines and '#' comments skipped,
 * spaces around a key ignored. */
static int load_api_keys_file(auth_keys *k, const cfg *c, char *err)
{
    const char *path = c->auth.api_keys_file, *why = NULL;
    FILE *fp = open_small_file(path, KEYS_FILE_MAX, &why);
    if (!fp)
        return fail(err, "auth.api_keys_file '%s': cannot read it: %s", path, why);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        char *s = line, *e = line + n;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        size_t len = (size_t)(e - s);
        if (len == 0 || *s == '#')
            continue;
        if (len < API_KEY_MIN || len >= CFG_SECRET_MAX || !key_chars_ok(s, len))
            rc = fail(err,
                      "auth.api_keys_file '%s' line %u: an API key must be %d to %d visible "
                      "ASCII characters (no spaces)",
                      path, lineno, API_KEY_MIN, CFG_SECRET_MAX - 1);
        else if (c->auth.napi_keys + k->nfile_keys >= CFG_MAX_API_KEYS)
            rc = fail(err,
                      "auth.api_keys_file '%s' line %u: too many API keys (at most %d with "
                      "auth.api_keys)",
                      path, lineno, CFG_MAX_API_KEYS);
        else {
            memcpy(k->file_keys[k->nfile_keys], s, len);
            k->file_keys[k->nfile_keys++][len] = '\0';
        }
    }
    if (rc == 0 && ferror(fp))
        rc = fail(err, "auth.api_keys_file '%s': read error", path);
    if (line)
        OPENSSL_cleanse(line, cap);
    free(line);
    fclose(fp);
    return rc;
}

static void log_auth_on(const auth_keys *k, const cfg *c)
{
    char algs_text[128] = "";
    size_t used = 0;
    for (size_t i = 0; i < ALG_COUNT && c->auth.jwt_enabled; i++) {
        if (c->auth.jwt.algorithms & algs[i].bit)
            used += (size_t)snprintf(algs_text + used, sizeof(algs_text) - used, "%s%s",
                                     used ? " " : "", algs[i].name);
    }
    LOG_INFO(TAG,
             "auth is on: tokens %s%s%s, %u room rules (other rooms need a claim), %u API keys, "
             "admin endpoints %s",
             c->auth.jwt_enabled ? "(" : "off", algs_text, c->auth.jwt_enabled ? ")" : "",
             c->auth.nrooms, c->auth.napi_keys + k->nfile_keys,
             c->auth.protect_admin ? "need an API key" : "open");
}

static void keys_free(auth_keys *k)
{
    if (!k)
        return;
    if (k->pem) {
        OPENSSL_cleanse(k->pem, (size_t)k->pem_len);
        free(k->pem);
    }
    OPENSSL_cleanse(k->file_keys, sizeof(k->file_keys));
    live_release(k->live);
    free(k);
}

static void keys_unref(auth_keys *k)
{
    if (k && atomic_fetch_sub(&k->refs, 1) == 1)
        keys_free(k);
}

/* The current keys with a reference taken (NULL before auth_init). */
static auth_keys *keys_acquire(void)
{
    pthread_mutex_lock(&keys_lock);
    auth_keys *k = cur;
    if (k)
        atomic_fetch_add(&k->refs, 1);
    pthread_mutex_unlock(&keys_lock);
    return k;
}

/* Makes k current; the old keys go when their last user is done. */
static void keys_swap(auth_keys *k)
{
    pthread_mutex_lock(&keys_lock);
    auth_keys *old = cur;
    cur = k;
    pthread_mutex_unlock(&keys_lock);
    keys_unref(old);
}

/* Loads the keys c names into a new auth_keys (NULL with err set). */
static auth_keys *keys_load(const cfg *c, char err[CFG_ERR_MAX])
{
    auth_keys *k = calloc(1, sizeof(*k));
    if (!k) {
        fail(err, "auth: out of memory");
        return NULL;
    }
    atomic_init(&k->refs, 1);
    k->c = c;
    if (c->auth.enabled && ((c->auth.jwt.public_key_file[0] && load_public_key(k, c, err) != 0) ||
                            (c->auth.api_keys_file[0] && load_api_keys_file(k, c, err) != 0))) {
        keys_free(k);
        return NULL;
    }
    return k;
}

static void warn_short_secret(const cfg *c)
{
    size_t secret_len = strlen(c->auth.jwt.hmac_secret);
    if (secret_len && secret_len < HMAC_SECRET_MIN)
        LOG_WARN(TAG,
                 "auth.jwt.hmac_secret has %zu bytes: anyone holding one token can try to guess "
                 "it offline; use at least %d random bytes (openssl rand -base64 48)",
                 secret_len, HMAC_SECRET_MIN);
}

int auth_init(const cfg *c, char err[CFG_ERR_MAX])
{
    auth_fini();
    auth_keys *k = keys_load(c, err);
    if (!k)
        return -1;
    if (!c->auth.enabled) {
        LOG_WARN(TAG, "auth is off: anyone who reaches the port may subscribe and publish to any "
                      "room; see README Access control");
    } else {
        warn_short_secret(c);
        log_auth_on(k, c);
    }
    keys_swap(k);
    return 0;
}

int auth_check(const cfg *c, char err[CFG_ERR_MAX])
{
    auth_keys *k = keys_load(c, err);
    int rc = k ? 0 : -1;
    keys_free(k);
    return rc;
}

int auth_reload(const cfg *live, char err[CFG_ERR_MAX])
{
    auth_keys *k = keys_load(live, err);
    if (!k) {
        live_release(live);
        return -1;
    }
    k->live = live;
    if (live->auth.enabled) {
        warn_short_secret(live);
        log_auth_on(k, live);
    }
    keys_swap(k);
    return 0;
}

void auth_fini(void)
{
    keys_swap(NULL);
}

/* ---- API keys ------------------------------------------------------------ */

/* True when the len bytes at s are one of the API keys. Every key of the
 * same length is compared in full, in constant time. */
static bool is_api_key(const auth_keys *k, const char *s, size_t len)
{
    const cfg *c = k->c;
    if (!c || len == 0)
        return false;
    bool found = false;
    for (unsigned i = 0; i < c->auth.napi_keys + k->nfile_keys; i++) {
        const char *key =
            i < c->auth.napi_keys ? c->auth.api_keys[i] : k->file_keys[i - c->auth.napi_keys];
        if (strlen(key) == len)
            found |= CRYPTO_memcmp(key, s, len) == 0;
    }
    return found;
}

/* ---- where the credential comes from ------------------------------------ */

/* The credential of "Bearer X" (scheme in any case) as a span of h, or
 * ERR_HEADER. */
static const char *parse_bearer(const char *h, const char **tok, size_t *len)
{
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return ERR_HEADER;
    h += 7;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strcspn(h, " \t");
    const char *rest = h + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (n == 0 || *rest)
        return ERR_HEADER;
    *tok = h;
    *len = n;
    return NULL;
}

/* Percent-decodes the n bytes at s ('+' is a space, as in forms) into out
 * (room for n + 1). NULL, or the refusal. */
static const char *percent_decode(const char *s, size_t n, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? parse_hex_digit(s[i + 1]) : -1;
            int lo = hi >= 0 ? parse_hex_digit(s[i + 2]) : -1;
            if (lo < 0)
                return ERR_QUERY;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    *out_len = o;
    return NULL;
}

/* "Basic ..." is the HTTP authentication of a proxy in front of crier (nginx
 * auth_basic passes the header on): not crier's, so not refused. */
static bool is_basic(const char *h)
{
    while (*h == ' ' || *h == '\t')
        h++;
    return strncasecmp(h, "Basic", 5) == 0 && (h[5] == ' ' || h[5] == '\t' || h[5] == '\0');
}

/* The credential presented (a new string in *out, NULL when none): the
 * Authorization header's (unless Basic), else the query's access_token.
 * NULL, or the refusal. */
static const char *credential(const char *authorization, const char *query, char **out, size_t *len)
{
    *out = NULL;
    if (authorization && !is_basic(authorization)) {
        const char *tok;
        const char *why = parse_bearer(authorization, &tok, len);
        if (why)
            return why;
        if (*len > TOKEN_MAX)
            return ERR_TOO_LONG;
        if (!(*out = strndup(tok, *len)))
            return ERR_NOMEM;
        return NULL;
    }
    size_t n = 0;
    const char *v = query_value(query, "access_token", &n);
    if (!v || n == 0)
        return NULL; /* "access_token=" empty: nothing presented */
    if (n > 3 * (size_t)TOKEN_MAX)
        return ERR_TOO_LONG;
    if (!(*out = malloc(n + 1)))
        return ERR_NOMEM;
    const char *why = percent_decode(v, n, *out, len);
    if (!why && *len > TOKEN_MAX)
        why = ERR_TOO_LONG;
    if (!why && (*len == 0 || strlen(*out) != *len))
        why = ERR_QUERY;
    if (why) {
        free(*out);
        *out = NULL;
    }
    return why;
}

/* ---- tokens ------------------------------------------------------------- */

static int b64url_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

/* True when the n bytes at s are unpadded base64url text. */
static bool b64url_ok(const char *s, size_t n)
{
    if (n % 4 == 1)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (b64url_value(s[i]) < 0)
            return false;
    }
    return true;
}

/* Decodes the unpadded base64url text s[0..n) (checked by b64url_ok) into
 * a new buffer; *out_len bytes. NULL on ENOMEM. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *out_len)
{
    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6) | (uint32_t)b64url_value(s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *out_len = o;
    return out;
}

/* The JSON object a base64url segment encodes, or NULL. */
static json_t *segment_object(const char *s, size_t n)
{
    if (n == 0 || !b64url_ok(s, n))
        return NULL;
    size_t len;
    unsigned char *text = b64url_decode(s, n, &len);
    json_t *obj = text ? json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(text);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* The header's alg, checked against auth.jwt.algorithms and the keys
 * loaded; *a set. NULL, or the refusal. */
static const char *check_header(const auth_keys *k, json_t *header, const alg_info **a)
{
    const cfg *c = k->c;
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (!alg)
        return ERR_MALFORMED;
    if (strcasecmp(alg, "none") == 0)
        return ERR_NONE;
    size_t i = 0;
    while (i < ALG_COUNT && strcmp(alg, algs[i].name) != 0)
        i++;
    if (i == ALG_COUNT)
        return ERR_ALG_UNKNOWN;
    *a = &algs[i];
    if (!(c->auth.jwt.algorithms & algs[i].bit))
        return algs[i].not_accepted;
    json_t *typ = json_object_get(header, "typ");
    if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        return ERR_TYP; /* libjwt 1.10 takes no other (not even RFC 9068's "at+jwt") */
    if (json_object_get(header, "crit"))
        return ERR_CRIT; /* RFC 7515 4.1.11: extensions we do not know must refuse it */
    if (algs[i].key_type == 0)
        return c->auth.jwt.hmac_secret[0] ? NULL : algs[i].not_accepted;
    if (!k->pem)
        return algs[i].not_accepted;
    if (algs[i].key_type != k->key_type || (algs[i].curve && strcmp(algs[i].curve, k->curve)))
        return algs[i].key_mismatch;
    return NULL;
}

/* A NumericDate claim (seconds, maybe fractional) as ms since the epoch,
 * clamped to years 1970 .. 9999. False when present but not a number. */
static bool claim_time_ms(json_t *claims, const char *name, bool *present, int64_t *ms)
{
    json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (!v)
        return true;
    if (!json_is_number(v))
        return false;
    double s = json_number_value(v);
    if (isnan(s))
        return false;
    const double max_s = 253402300799.0; /* 9999-12-31T23:59:59Z */
    s = s < 0 ? 0 : s > max_s ? max_s : s;
    *ms = (int64_t)(s * 1000.0);
    return true;
}

/* aud (a string or an array of strings) names want. */
static bool audience_matches(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return true;
    }
    return false;
}

/* sub: a string of 1 .. SUB_MAX bytes without control characters (it is
 * logged). NULL, or the refusal. */
static const char *check_sub(json_t *sub)
{
    if (!sub)
        return NULL;
    if (!json_is_string(sub))
        return ERR_SUB;
    const char *s = json_string_value(sub);
    size_t len = json_string_length(sub);
    if (len > SUB_MAX)
        return ERR_SUB_LONG;
    if (len == 0 || strlen(s) != len)
        return ERR_SUB;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return ERR_SUB;
    }
    return NULL;
}

/* rooms.subscribe or rooms.publish (v, NULL: none) into lik-> */
static const char *add_patterns(access_patterns *list, json_t *v)
{
    if (!v)
        return NULL;
    if (!json_is_array(v) || json_array_size(v) > ROOM_PATTERNS_MAX)
        return ERR_ROOMS;
    size_t i;
    json_t *p;
    json_array_foreach(v, i, p)
    {
        if (!json_is_string(p) || json_string_length(p) == 0 ||
            json_string_length(p) >= CFG_ROOM_PATTERN_MAX ||
            strlen(json_string_value(p)) != json_string_length(p))
            return ERR_ROOMS;
        if (access_patterns_add(list, json_string_value(p)) != 0)
            return ERR_NOMEM;
    }
    return NULL;
}

/* The claims of a verified token into a new principal (*out). NULL, or the
 * refusal. */
static const char *check_claims(const auth_keys *k, json_t *claims, int64_t now_ms,
                                access_principal **out)
{
    const cfg *c = k->c;
    int64_t leeway_ms = (int64_t)c->auth.jwt.leeway_s * 1000;
    bool has_exp, has_nbf;
    int64_t exp_ms = 0, nbf_ms = 0;
    if (!claim_time_ms(claims, "exp", &has_exp, &exp_ms))
        return ERR_EXP_TYPE;
    if (!claim_time_ms(claims, "nbf", &has_nbf, &nbf_ms))
        return ERR_NBF_TYPE;
    if (has_exp && now_ms >= exp_ms + leeway_ms)
        return ERR_EXPIRED;
    if (has_nbf && now_ms + leeway_ms < nbf_ms)
        return ERR_NOT_YET;
    if (c->auth.jwt.issuer[0]) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (!iss || strcmp(iss, c->auth.jwt.issuer) != 0)
            return ERR_ISSUER;
    }
    if (c->auth.jwt.audience[0] &&
        !audience_matches(json_object_get(claims, "aud"), c->auth.jwt.audience))
        return ERR_AUDIENCE;
    json_t *sub = json_object_get(claims, "sub");
    const char *why = check_sub(sub);
    if (why)
        return why;
    json_t *rooms = json_object_get(claims, "rooms");
    if (rooms && !json_is_object(rooms))
        return ERR_ROOMS;

    /* No exp: the token never expires (expires_ms 0), README "Access control". */
    access_principal *p =
        access_principal_new(json_string_value(sub), has_exp ? exp_ms + leeway_ms : 0, true, false);
    if (!p)
        return ERR_NOMEM;
    p->claims = json_dumps(claims, JSON_COMPACT); /* NULL on ENOMEM: upstream sees null */
    if (!(why = add_patterns(&p->subscribe, json_object_get(rooms, "subscribe"))))
        why = add_patterns(&p->publish, json_object_get(rooms, "publish"));
    if (why) {
        access_unref(p);
        return why;
    }
    *out = p;
    return NULL;
}

/* The claims of tok as libjwt verified them, as a jansson object, or NULL. */
static json_t *verified_claims(jwt_t *j)
{
    char *text = jwt_get_grants_json(j, NULL);
    json_t *claims = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (claims && !json_is_object(claims)) {
        json_decref(claims);
        claims = NULL;
    }
    return claims;
}

/* Verifies the compact JWT tok (len bytes, NUL-terminated). NULL with *out
 * set, or the refusal. */
static const char *verify_token(const auth_keys *k, const char *tok, size_t len, int64_t now_ms,
                                access_principal **out)
{
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
        return ERR_MALFORMED; /* not three segments */
    json_t *header = segment_object(tok, (size_t)(d1 - tok));
    if (!header)
        return ERR_MALFORMED;
    const alg_info *a = NULL;
    const char *why = check_header(k, header, &a);
    json_decref(header);
    if (why)
        return why;
    json_t *payload = segment_object(d1 + 1, (size_t)(d2 - d1 - 1));
    json_decref(payload);
    if (!payload)
        return ERR_MALFORMED;
    size_t sig_len = len - (size_t)(d2 + 1 - tok);
    if (sig_len == 0 || !b64url_ok(d2 + 1, sig_len))
        return ERR_SIGNATURE;

    /* Only now, with the key this alg needs (never NULL: libjwt would HMAC
     * with an empty key). */
    const unsigned char *key;
    int key_len;
    if (a->key_type == 0) {
        key = (const unsigned char *)k->c->auth.jwt.hmac_secret;
        key_len = (int)strlen(k->c->auth.jwt.hmac_secret);
    } else {
        key = (const unsigned char *)k->pem;
        key_len = k->pem_len;
    }
    jwt_t *j = NULL;
    int rc = jwt_decode(&j, tok, key, key_len);
    if (rc != 0 || !j)
        return rc == ENOMEM ? ERR_NOMEM : ERR_SIGNATURE;
    if (jwt_get_alg(j) != a->jwt) {
        jwt_free(j);
        return ERR_SIGNATURE;
    }
    json_t *claims = verified_claims(j);
    jwt_free(j);
    if (!claims)
        return ERR_MALFORMED;
    why = check_claims(k, claims, now_ms, out);
    json_decref(claims);
    return why;
}

/* A JWT has dots between its segments; an API key (usually) none. */
static bool looks_like_jwt(const char *s)
{
    return strchr(s, '.') != NULL;
}

access_principal *auth_authenticate(const char *authorization, const char *query, int64_t now_ms,
                                    const char **error)
{
    *error = NULL;
    auth_keys *k = keys_acquire();
    const cfg *c = k ? k->c : NULL;
    if (!c || !c->auth.enabled) {
        keys_unref(k);
        return NULL; /* auth off: whatever is presented is ignored */
    }
    char *cred = NULL;
    size_t len = 0;
    const char *why = credential(authorization, query, &cred, &len);
    if (why || !cred) {
        keys_unref(k);
        *error = why;
        return NULL;
    }
    access_principal *p = NULL;
    if (is_api_key(k, cred, len)) {
        p = access_principal_new(NULL, 0, false, true);
        why = p ? NULL : ERR_NOMEM;
    } else if (!looks_like_jwt(cred)) {
        why = ERR_UNKNOWN_KEY;
    } else if (!c->auth.jwt_enabled) {
        why = ERR_NO_JWT;
    } else {
        why = verify_token(k, cred, len, now_ms, &p);
    }
    OPENSSL_cleanse(cred, len);
    free(cred);
    keys_unref(k);
    *error = why;
    return why ? NULL : p;
}

bool auth_is_api_key(const char *authorization)
{
    const char *tok;
    size_t len;
    if (!authorization || parse_bearer(authorization, &tok, &len))
        return false;
    auth_keys *k = keys_acquire();
    bool yes = k && is_api_key(k, tok, len);
    keys_unref(k);
    return yes;
}
