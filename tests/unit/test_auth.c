/* SPDX-License-Identifier: MIT */
/*
 * test_auth.c - unit tests for gateway/auth.c: tokens minted here with
 * libjwt (jwt_encode_str) and keys made here with OpenSSL (written to temp
 * files) are verified by auth_authenticate: HS256, RS256, ES256 accepted;
 * alg none, HS/RS confusion, algorithms not listed, wrong iss/aud, bad
 * signatures, expiry and nbf (with leeway), malformed tokens refused with
 * the reason; the rooms and sub claims; API keys (config and file, Bearer
 * and access_token); the Authorization header forms; auth_init's errors.
 */
#include "common/log.h"
#include "gateway/auth.h"
#include "gateway/config.h"
#include "tests/unit/test.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* "now" in the tests: 2023-11-14T22:13:20Z. */
#define NOW_S 1700000000LL
#define NOW_MS (NOW_S * 1000)

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"

/* ---- keys and files ------------------------------------------------------ */

typedef struct keypair {
    char pub_path[64];
    char *pub_pem;  /* SPKI PEM text */
    char *priv_pem; /* PKCS#8 PEM text (what jwt_set_alg signs with) */
} keypair;

static keypair rsa, ec, ec384;

/* Writes text to a new temporary file; fills path. */
static void write_temp(char path[64], const char *text)
{
    strcpy(path, "/tmp/crier-test-auth-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    size_t len = strlen(text);
    CHECK(write(fd, text, len) == (ssize_t)len);
    close(fd);
}

static char *bio_text(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static char *public_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k);
    return bio_text(b);
}

static char *private_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    return bio_text(b);
}

static void make_keypair(keypair *kp, EVP_PKEY *k)
{
    CHECK(k != NULL);
    kp->pub_pem = public_pem(k);
    kp->priv_pem = private_pem(k);
    write_temp(kp->pub_path, kp->pub_pem);
    EVP_PKEY_free(k);
}

static void make_keys(void)
{
    if (rsa.pub_pem)
        return;
    make_keypair(&rsa, EVP_RSA_gen(2048));
    make_keypair(&ec, EVP_EC_gen("P-256"));
    make_keypair(&ec384, EVP_EC_gen("P-384"));
}

/* ---- config --------------------------------------------------------------- */

static cfg conf; /* auth keeps a pointer to it */

/* Loads the JSON (single quotes for double) onto the defaults and runs
 * auth_init; returns auth_init's result, its message in err. */
__attribute__((format(printf, 2, 3))) static int setup_err(char err[CFG_ERR_MAX], const char *fmt,
                                                           ...)
{
    char json[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(json, sizeof(json), fmt, ap);
    va_end(ap);
    for (char *p = json; *p; p++)
        if (*p == '\'')
            *p = '"';
    cfg_defaults(&conf);
    err[0] = '\0';
    int rc = cfg_load_string(&conf, json, "test.json", err);
    if (rc != 0) {
        fprintf(stderr, "  config: %s\n", err);
        CHECK(!"the test config loads");
        return rc;
    }
    return auth_init(&conf, err);
}

/* setup_err that must succeed. */
#define setup(...)                                                                                 \
    do {                                                                                           \
        char e_[CFG_ERR_MAX];                                                                      \
        int rc_ = setup_err(e_, __VA_ARGS__);                                                      \
        if (rc_)                                                                                   \
            fprintf(stderr, "  auth_init: %s\n", e_);                                              \
        CHECK(rc_ == 0);                                                                           \
    } while (0)

/* ---- tokens --------------------------------------------------------------- */

/* A token signed by libjwt: alg with key (HMAC secret or private PEM). */
static char *mint(const char *alg, const void *key, size_t keylen, const char *claims)
{
    jwt_t *j = NULL;
    CHECK(jwt_new(&j) == 0);
    if (claims)
        CHECK(jwt_add_grants_json(j, claims) == 0);
    CHECK(jwt_set_alg(j, jwt_str_alg(alg), key, (int)keylen) == 0);
    char *t = jwt_encode_str(j);
    CHECK(t != NULL);
    jwt_free(j);
    return t;
}

static char *mint_hs(const char *alg, const char *claims)
{
    return mint(alg, SECRET, strlen(SECRET), claims);
}

static char *mint_pem(const char *alg, const keypair *kp, const char *claims)
{
    return mint(alg, kp->priv_pem, strlen(kp->priv_pem), claims);
}

static char *b64url(const char *s)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(s), o = 0;
    char *out = malloc(n * 4 / 3 + 4);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = abc[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
    return out;
}

/* "b64(header).b64(claims).sig", built by hand. */
static char *hand_token(const char *header, const char *claims, const char *sig)
{
    char *h = b64url(header), *c = b64url(claims);
    size_t n = strlen(h) + strlen(c) + strlen(sig) + 3;
    char *t = malloc(n);
    snprintf(t, n, "%s.%s.%s", h, c, sig);
    free(h);
    free(c);
    return t;
}

/* "Bearer <token>" in a static buffer. */
static const char *bearer(const char *token)
{
    static char h[20000];
    snprintf(h, sizeof(h), "Bearer %s", token);
    return h;
}

/* token must be accepted (as a Bearer token); returns the principal. */
static access_principal *accept_at(const char *token, int64_t now_ms)
{
    const char *error = "unset";
    access_principal *p = auth_authenticate(bearer(token), NULL, now_ms, &error);
    CHECK(p != NULL);
    CHECK(error == NULL);
    if (error)
        fprintf(stderr, "  refused: %s\n", error);
    return p;
}

static access_principal *accept(const char *token)
{
    return accept_at(token, NOW_MS);
}

/* token must be refused with exactly want. */
static void refuse_at(const char *token, int64_t now_ms, const char *want)
{
    const char *error = NULL;
    access_principal *p = auth_authenticate(bearer(token), NULL, now_ms, &error);
    CHECK(p == NULL);
    CHECK_STR(error, want);
    access_unref(p);
}

static void refuse(const char *token, const char *want)
{
    refuse_at(token, NOW_MS, want);
}

/* Mints claims with alg/key, checks the verdict (want NULL: accepted), frees. */
static void check_hs(const char *claims, const char *want)
{
    char *t = mint_hs("HS256", claims);
    if (want)
        refuse(t, want);
    else
        access_unref(accept(t));
    free(t);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_auth_off(void)
{
    log_set_level(LOG_LEVEL_ERROR); /* auth_init's warnings are expected here */
    setup("{}");
    const char *error = "unset";
    CHECK(auth_authenticate("Bearer whatever", "access_token=x", NOW_MS, &error) == NULL);
    CHECK(error == NULL);
    CHECK(auth_authenticate("Basic Zm9vOmJhcg==", NULL, NOW_MS, &error) == NULL);
    CHECK(error == NULL);
    CHECK(!auth_is_api_key("Bearer 0123456789abcdef"));
    auth_fini();
    /* Before auth_init too. */
    CHECK(auth_authenticate("Bearer x", NULL, NOW_MS, &error) == NULL && error == NULL);
}

static void test_hs256(void)
{
    setup("{'auth': {'jwt': {'hmac_secret': '%s'}}}", SECRET);
    char *t = mint_hs("HS256", "{\"sub\": \"alice\", \"exp\": 1700000600,"
                               " \"rooms\": {\"subscribe\": [\"chat.*\", \"user.alice\"],"
                               " \"publish\": [\"chat.*\"]}}");
    access_principal *p = accept(t);
    if (p) {
        CHECK_STR(p->user, "alice");
        CHECK(p->token && !p->api_key);
        CHECK(p->expires_ms == (1700000600LL + 5) * 1000);
        CHECK(p->subscribe.n == 2 && p->publish.n == 1);
        if (p->subscribe.n == 2) {
            CHECK_STR(p->subscribe.items[0], "chat.*");
            CHECK_STR(p->subscribe.items[1], "user.alice");
        }
        if (p->publish.n == 1)
            CHECK_STR(p->publish.items[0], "chat.*");
        CHECK_STR(access_user_label(p), "alice");
    }
    access_unref(p);
    /* The same token as ?access_token= */
    char q[4096];
    snprintf(q, sizeof(q), "since=3&access_token=%s&x=1", t);
    const char *error = "unset";
    p = auth_authenticate(NULL, q, NOW_MS, &error);
    CHECK(p != NULL && error == NULL);
    if (p)
        CHECK_STR(p->user, "alice");
    access_unref(p);
    free(t);

    /* No exp: never expires; no sub: no user; no rooms: no patterns. */
    t = mint_hs("HS256", "{}");
    p = accept(t);
    if (p) {
        CHECK(p->expires_ms == 0);
        CHECK(p->user == NULL);
        CHECK(p->subscribe.n == 0 && p->publish.n == 0);
        CHECK(p->token);
    }
    access_unref(p);
    free(t);
    auth_fini();
}

static void test_rs256_es256(void)
{
    make_keys();
    setup("{'auth': {'jwt': {'public_key_file': '%s'}}}", rsa.pub_path);
    char *t = mint_pem("RS256", &rsa, "{\"sub\": \"bob\"}");
    access_principal *p = accept(t);
    if (p)
        CHECK_STR(p->user, "bob");
    access_unref(p);
    free(t);
    /* RS384 is not in the default list (RS256, ES256). */
    t = mint_pem("RS384", &rsa, "{\"sub\": \"bob\"}");
    refuse(t, "token algorithm RS384 is not accepted");
    free(t);
    /* An ES256 token against the RSA key. */
    t = mint_pem("ES256", &ec, "{}");
    refuse(t, "token algorithm ES256 does not fit the configured public key");
    free(t);
    auth_fini();

    setup("{'auth': {'jwt': {'public_key_file': '%s'}}}", ec.pub_path);
    t = mint_pem("ES256", &ec, "{\"sub\": \"carol\"}");
    p = accept(t);
    if (p)
        CHECK_STR(p->user, "carol");
    access_unref(p);
    free(t);
    /* An RS256 token against the EC key; an ES256 token by another EC key. */
    t = mint_pem("RS256", &rsa, "{}");
    refuse(t, "token algorithm RS256 does not fit the configured public key");
    free(t);
    keypair other = {0};
    make_keypair(&other, EVP_EC_gen("P-256"));
    t = mint_pem("ES256", &other, "{}");
    refuse(t, "token signature does not verify");
    free(t);
    unlink(other.pub_path);
    free(other.pub_pem);
    free(other.priv_pem);
    auth_fini();

    /* ES384 needs a P-384 key; its signature on a P-256 key does not fit. */
    setup("{'auth': {'jwt': {'public_key_file': '%s', 'algorithms': ['ES256', 'ES384']}}}",
          ec384.pub_path);
    t = mint_pem("ES384", &ec384, "{\"sub\": \"dave\"}");
    access_unref(accept(t));
    free(t);
    t = mint_pem("ES256", &ec, "{}");
    refuse(t, "token algorithm ES256 does not fit the configured public key");
    free(t);
    auth_fini();
}

static void test_alg_none(void)
{
    setup("{'auth': {'jwt': {'hmac_secret': '%s', 'algorithms': ['HS256']}}}", SECRET);
    /* eyJhbGciOiJub25lIn0 = {"alg":"none"} */
    char *claims = b64url("{\"sub\":\"mallory\",\"rooms\":{\"publish\":[\"*\"]}}");
    char t[512];
    snprintf(t, sizeof(t), "eyJhbGciOiJub25lIn0.%s.", claims);
    refuse(t, "token algorithm none is not accepted");
    snprintf(t, sizeof(t), "eyJhbGciOiJub25lIn0.%s", claims);
    refuse(t, "token is malformed"); /* two segments */
    free(claims);
    char *h = hand_token("{\"alg\":\"None\",\"typ\":\"JWT\"}", "{\"sub\":\"m\"}", "");
    refuse(h, "token algorithm none is not accepted");
    free(h);
    h = hand_token("{\"alg\":\"none\"}", "{\"sub\":\"m\"}", "c2ln");
    refuse(h, "token algorithm none is not accepted");
    free(h);
    /* libjwt's own none token. */
    char *lt = mint("none", NULL, 0, "{\"sub\": \"m\"}");
    refuse(lt, "token algorithm none is not accepted");
    free(lt);
    auth_fini();
}

/* The HS/RS confusion: an HS256 token whose HMAC key is the RSA public key's
 * PEM text (which an attacker can read) must never verify. */
static void test_hs_rs_confusion(void)
{
    make_keys();
    char *t = mint("HS256", rsa.pub_pem, strlen(rsa.pub_pem), "{\"sub\": \"mallory\"}");
    setup("{'auth': {'jwt': {'public_key_file': '%s', 'algorithms': ['RS256']}}}", rsa.pub_path);
    refuse(t, "token algorithm HS256 is not accepted");
    auth_fini();
    /* With both listed, HS256 is checked with the secret, not the PEM. */
    setup("{'auth': {'jwt': {'hmac_secret': '%s', 'public_key_file': '%s',"
          " 'algorithms': ['HS256', 'RS256']}}}",
          SECRET, rsa.pub_path);
    refuse(t, "token signature does not verify");
    char *good = mint_hs("HS256", "{\"sub\": \"alice\"}");
    access_unref(accept(good));
    free(good);
    good = mint_pem("RS256", &rsa, "{\"sub\": \"alice\"}");
    access_unref(accept(good));
    free(good);
    auth_fini();
    /* The same with the default algorithms of a key file (RS256, ES256). */
    setup("{'auth': {'jwt': {'public_key_file': '%s'}}}", rsa.pub_path);
    refuse(t, "token algorithm HS256 is not accepted");
    auth_fini();
    free(t);
}

static void test_algorithms_listed(void)
{
    setup("{'auth': {'jwt': {'hmac_secret': '%s'}}}", SECRET);
    char *t = mint_hs("HS384", "{}");
    refuse(t, "token algorithm HS384 is not accepted");
    free(t);
    t = mint_hs("HS512", "{}");
    refuse(t, "token algorithm HS512 is not accepted");
    free(t);
    t = hand_token("{\"alg\":\"PS256\"}", "{}", "c2ln");
    refuse(t, "token algorithm is not supported");
    free(t);
    t = hand_token("{\"alg\":\"hs256\"}", "{}", "c2ln");
    refuse(t, "token algorithm is not supported"); /* JWS names are case-sensitive */
    free(t);
    auth_fini();
    setup("{'auth': {'jwt': {'hmac_secret': '%s', 'algorithms': ['HS512']}}}", SECRET);
    t = mint_hs("HS512", "{}");
    access_unref(accept(t));
    free(t);
    t = mint_hs("HS256", "{}");
    refuse(t, "token algorithm HS256 is not accepted");
    free(t);
    auth_fini();
}

static void test_issuer_audience(void)
{
    setup("{'auth': {'jwt': {'hmac_secret': '%s', 'issuer': 'https://id.example',"
          " 'audience': 'crier'}}}",
          SECRET);
    check_hs("{\"iss\": \"https://id.example\", \"aud\": \"crier\"}", NULL);
    check_hs("{\"iss\": \"https://id.example\", \"aud\": [\"other\", \"crier\"]}", NULL);
    check_hs("{\"iss\": \"https://evil.example\", \"aud\": \"crier\"}",
             "token issuer does not match");
    check_hs("{\"aud\": \"crier\"}", "token issuer does not match");
    check_hs("{\"iss\": 5, \"aud\": \"crier\"}", "token issuer does not match");
    check_hs("{\"iss\": \"https://id.example\", \"aud\": \"crier2\"}",
             "token audience does not match");
    check_hs("{\"iss\": \"https://id.example\", \"aud\": [\"other\"]}",
             "token audience does not match");
    check_hs("{\"iss\": \"https://id.example\", \"aud\": []}", "token audience does not match");
    check_hs("{\"iss\": \"https://id.example\"}", "token audience does not match");
    check_hs("{\"iss\": \"https://id.example\", \"aud\": {\"crier\": 1}}",
             "token audience does not match");
    auth_fini();
    /* Not configured: any iss and aud are taken. */
    setup("{'auth': {'jwt': {'hmac_secret': '%s'}}}", SECRET);
    check_hs("{\"iss\": \"anyone\", \"aud\": [\"x\"]}", NULL);
    auth_fini();
}

static void test_bad_signature(void)
{
    setup("{'auth': {'jwt': {'hmac_secret': '%s'}}}", SECRET);
    /* Another secret. */
    char *t = mint("HS256", "another secret entirely, 32 bytes", 33, "{\"sub\": \"alice\"}");
    refuse(t, "token signature does not verify");
    free(t);
    /* The claims changed after signing. */
    t = mint_hs("HS256", "{\"sub\": \"alice\"}");
    char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
    char *forged_claims = b64url("{\"sub\":\"admin\"}");
    char forged[1024];
    snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(dot1 - t), t, forged_claims, dot2);
    refuse(forged, "token signature does not verify");
    free(forged_claims);
    /* The signature cut, emptied, or a character changed. */
    size_t len = strlen(t);
    t[len - 2] = '\0';
    refuse(t, "token signature does not verify");
    dot2[1] = '\0';
    refuse(t, "token signature does not verify");
    free(t);
    t = mint_hs("HS256", "{\"sub\": \"alice\"}");
    dot2 = strrchr(t, '.');
    dot2[3] = dot2[3] == 'A' ? 'B' : 'A';
    refuse(t, "token signature does not verify");
    free(t);
    auth_fini();
}

static void test_expiry(void)
{
    char claims[256];
    setup("{'auth': {'jwt': {'hmac_secret': '%s'}}}", SECRET); /* leeway 5 s */
    snprintf(claims, sizeof(claims), "{\"exp\": %lld}", NOW_S - 10);
    check_hs(claims, "token expired");
    snprintf(claims, sizeof(claims), "{\"exp\": %lld}", NOW_S - 5);
    check_hs(claims, "token expired"); /* exp + leeway == now */
    snprintf(claims, sizeof(claims), "{\"exp\": %lld}", NOW_S - 4);
    check_hs(claims, NULL); /* within the leeway */
    /* expires_ms is exp + leeway. */
    snprintf(claims, sizeof(claims), "{\"exp\": %lld}", NOW_S + 60);
    char *t = mint_hs("HS256", claims);
    access_principal *p = accept(t);
    if (p)
        CHECK(p->expires_ms == (NOW_S + 65) * 1000);
    access_unref(p);
    /* The same token later: at exp + leeway it is expired. */
    refuse_at(t, (NOW_S + 65) * 1000, "token expired");
    access_unref(accept_at(t, (NOW_S + 65) * 1000 - 1));
    free(t);
    snprintf(claims, sizeof(claims), "{\"nbf\": %lld}", NOW_S + 10);
    check_hs(claims, "token not valid yet");
    snprintf(claims, sizeof(claims), "{\"nbf\": %lld}", NOW_S + 5);
    check_hs(claims, NULL); /* within the leeway */
    snprintf(claims, sizeof(claims), "{\"nbf\": %lld, \"exp\": %lld}", NOW_S - 100, NOW_S + 100);
    check_hs(claims, NULL);
    /* Fractional NumericDates; iat is not checked. */
    snprintf(claims, sizeof(claims), "{\"exp\": %lld.5, \"iat\": %lld}", NOW_S + 1, NOW_S + 999);
    check_hs(claims, NULL);
    check_hs("{\"exp\": \"tomorrow\"}", "token exp claim is not a number");
    check_hs("{\"exp\": null}", "token exp claim is not a number");
    check_hs("{\"nbf\": true}", "token nbf claim is not a number");
    check_hs("{\"exp\": -1}", "token expired");
    check_hs("{\"exp\": 1e300}", NULL); /* clamped to the year 9999 */
    auth_fini();

    setup("{'auth': {'jwt': {'hmac_secret': '%s', 'leeway_s': 0}}}", SECRET);
    snprintf(claims, sizeof(claims), "{\"exp\": %lld}", NOW_S);
    check_hs(claims, "token expired");
    snprintf(claims, sizeof(claims), "{\"exp\": %lld}", NOW_S + 1);
    check_hs(claims, NULL);
    snprintf(claims, sizeof(claims), "{\"nbf\": %lld}", NOW_S + 1);
    check_hs(claims, "token not valid yet");
    auth_fini();

    setup("{'auth': {'jwt': {'hmac_secret': '%s', 'leeway_s': 3600}}}", SECRET);
    snprintf(claims, sizeof(claims), "{\"exp\": %lld}", NOW_S - 3599);
    check_hs(claims, NULL);
    snprintf(claims, sizeof(claims), "{\"exp\": %lld}", NOW_S - 3600);
    check_hs(claims, "token expired");
    auth_fini();
}

static void test_rooms_and_sub(void)
{
    setup("{'auth': {'jwt': {'hmac_secret': '%s'}}}", SECRET);
    check_hs("{\"rooms\": {}}", NULL);
    check_hs("{\"rooms\": {\"subscribe\": []}}", NULL);
    check_hs("{\"rooms\": [\"chat.*\"]}", "token rooms claim is malformed");
    check_hs("{\"rooms\": \"chat.*\"}", "token rooms claim is malformed");
    check_hs("{\"rooms\": {\"subscribe\": \"chat.*\"}}", "token rooms claim is malformed");
    check_hs("{\"rooms\": {\"publish\": [\"a\", 5]}}", "token rooms claim is malformed");
    check_hs("{\"rooms\": {\"publish\": [\"\"]}}", "token rooms claim is malformed");
    check_hs("{\"rooms\": {\"subscribe\": [null]}}", "token rooms claim is malformed");
    /* At most 256 patterns a list; each shorter than CFG_ROOM_PATTERN_MAX. */
    static char claims[16384];
    size_t n = (size_t)snprintf(claims, sizeof(claims), "{\"rooms\": {\"subscribe\": [");
    for (int i = 0; i < 256; i++)
        n += (size_t)snprintf(claims + n, sizeof(claims) - n, "%s\"r%d\"", i ? "," : "", i);
    snprintf(claims + n, sizeof(claims) - n, "]}}");
    char *t = mint_hs("HS256", claims);
    access_principal *p = accept(t);
    if (p) {
        CHECK(p->subscribe.n == 256);
        CHECK_STR(p->subscribe.items[255], "r255");
    }
    access_unref(p);
    free(t);
    snprintf(claims + n, sizeof(claims) - n, ",\"one-more\"]}}");
    check_hs(claims, "token rooms claim is malformed");
    char pattern[CFG_ROOM_PATTERN_MAX + 1];
    memset(pattern, 'a', CFG_ROOM_PATTERN_MAX);
    pattern[CFG_ROOM_PATTERN_MAX] = '\0';
    snprintf(claims, sizeof(claims), "{\"rooms\": {\"publish\": [\"%s\"]}}", pattern);
    check_hs(claims, "token rooms claim is malformed");
    pattern[CFG_ROOM_PATTERN_MAX - 1] = '\0';
    snprintf(claims, sizeof(claims), "{\"rooms\": {\"publish\": [\"%s\"]}}", pattern);
    check_hs(claims, NULL);

    /* sub: a string of 1 .. 256 bytes without control characters. */
    char sub[300];
    memset(sub, 'u', 256);
    sub[256] = '\0';
    snprintf(claims, sizeof(claims), "{\"sub\": \"%s\"}", sub);
    check_hs(claims, NULL);
    sub[256] = 'u';
    sub[257] = '\0';
    snprintf(claims, sizeof(claims), "{\"sub\": \"%s\"}", sub);
    check_hs(claims, "token sub claim is too long");
    check_hs("{\"sub\": 42}", "token sub claim is malformed");
    check_hs("{\"sub\": \"\"}", "token sub claim is malformed");
    check_hs("{\"sub\": \"alice\\nINFO forged log line\"}", "token sub claim is malformed");
    /* JSON with a NUL in a string is not taken (libjwt could not sign it). */
    char *nul = hand_token("{\"alg\":\"HS256\"}", "{\"sub\":\"a\\u0000b\"}", "c2ln");
    refuse(nul, "token is malformed");
    free(nul);
    check_hs("{\"sub\": \"Zoë\"}", NULL);
    auth_fini();
}

static void test_malformed(void)
{
    setup("{'auth': {'jwt': {'hmac_secret': '%s'}}}", SECRET);
    char *good = mint_hs("HS256", "{\"sub\": \"alice\"}");
    char *dot1 = strchr(good, '.');
    char t[20000];
    /* Bad base64url in the header or the claims. */
    snprintf(t, sizeof(t), "e!%s", good + 2);
    refuse(t, "token is malformed");
    snprintf(t, sizeof(t), "%.*s.e+J%s", (int)(dot1 - good), good, dot1 + 4);
    refuse(t, "token is malformed");
    snprintf(t, sizeof(t), "%s=", good); /* padding in the signature */
    refuse(t, "token signature does not verify");
    /* Segments that are not JSON objects. */
    char *h = hand_token("not json", "{}", "c2ln");
    refuse(h, "token is malformed");
    free(h);
    h = hand_token("[\"HS256\"]", "{}", "c2ln");
    refuse(h, "token is malformed");
    free(h);
    h = hand_token("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{}", "c2ln");
    refuse(h, "token is malformed"); /* duplicate member */
    free(h);
    h = hand_token("{\"typ\":\"JWT\"}", "{}", "c2ln");
    refuse(h, "token is malformed"); /* no alg */
    free(h);
    h = hand_token("{\"alg\":5}", "{}", "c2ln");
    refuse(h, "token is malformed");
    free(h);
    h = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", "{}", "c2ln");
    refuse(h, "token is malformed");
    free(h);
    h = hand_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{}", "c2ln");
    refuse(h, "token header crit is not supported");
    free(h);
    h = hand_token("{\"alg\":\"HS256\"}", "not json", "c2ln");
    refuse(h, "token is malformed");
    free(h);
    h = hand_token("{\"alg\":\"HS256\"}", "[1]", "c2ln");
    refuse(h, "token is malformed");
    free(h);
    h = hand_token("{\"alg\":\"HS256\"}", "", "c2ln");
    refuse(h, "token is malformed");
    free(h);
    /* Two and four segments, empty segments. */
    snprintf(t, sizeof(t), "%.*s", (int)(strrchr(good, '.') - good), good);
    refuse(t, "token is malformed");
    snprintf(t, sizeof(t), "%s.c2ln", good);
    refuse(t, "token is malformed");
    refuse("..", "token is malformed");
    refuse("a..", "token is malformed");
    /* Too long: 8 KiB is the most read. */
    memset(t, 'A', 9000);
    memcpy(t + 100, ".", 1);
    memcpy(t + 200, ".", 1);
    t[9000] = '\0';
    refuse(t, "token is too long");
    /* A long but allowed token is parsed (and refused for what it is). */
    t[8192] = '\0';
    refuse(t, "token is malformed");
    free(good);
    auth_fini();
}

static void test_header_forms(void)
{
    setup("{'auth': {'jwt': {'hmac_secret': '%s'}}}", SECRET);
    char *t = mint_hs("HS256", "{\"sub\": \"alice\"}");
    char h[4096];
    const char *error = "unset";
    access_principal *p;
    /* Each form: what comes before the token and after it. */
    static const char *const ok_forms[][2] = {
        {"bearer ", ""}, {"BEARER ", ""}, {"Bearer   ", "  "}, {"  Bearer\t", ""}};
    for (size_t i = 0; i < sizeof(ok_forms) / sizeof(ok_forms[0]); i++) {
        snprintf(h, sizeof(h), "%s%s%s", ok_forms[i][0], t, ok_forms[i][1]);
        error = "unset";
        p = auth_authenticate(h, NULL, NOW_MS, &error);
        CHECK(p != NULL && error == NULL);
        access_unref(p);
    }
    static const char *const bad_forms[][3] = {
        {"Basic ", "t", ""},        {"Bearer", "", ""},  {"Bearer ", "", ""}, {"Bearer", "t", ""},
        {"Bearer ", "t", " extra"}, {"Token ", "t", ""}, {"", "", ""}};
    for (size_t i = 0; i < sizeof(bad_forms) / sizeof(bad_forms[0]); i++) {
        snprintf(h, sizeof(h), "%s%s%s", bad_forms[i][0], bad_forms[i][1][0] ? t : "",
                 bad_forms[i][2]);
        error = NULL;
        p = auth_authenticate(h, NULL, NOW_MS, &error);
        CHECK(p == NULL);
        CHECK_STR(error, "invalid Authorization header (expected: Bearer <token>)");
    }
    /* Nothing presented: anonymous, no error. */
    error = "unset";
    CHECK(auth_authenticate(NULL, NULL, NOW_MS, &error) == NULL && error == NULL);
    error = "unset";
    CHECK(auth_authenticate(NULL, "since=1&room=a", NOW_MS, &error) == NULL && error == NULL);
    error = "unset";
    CHECK(auth_authenticate(NULL, "access_token=", NOW_MS, &error) == NULL && error == NULL);
    error = "unset";
    CHECK(auth_authenticate(NULL, "access_token=&x=1", NOW_MS, &error) == NULL && error == NULL);
    /* The header wins over the query. */
    snprintf(h, sizeof(h), "access_token=%s", t);
    error = NULL;
    CHECK(auth_authenticate("Bearer nope.nope.nope", h, NOW_MS, &error) == NULL);
    CHECK_STR(error, "token is malformed");
    /* Percent-encoding in the query. */
    char enc[2048];
    size_t o = 0;
    for (const char *s = t; *s; s++)
        o += (size_t)snprintf(enc + o, sizeof(enc) - o, *s == '.' ? "%%2E" : "%c", *s);
    snprintf(h, sizeof(h), "access_token=%s", enc);
    error = "unset";
    p = auth_authenticate(NULL, h, NOW_MS, &error);
    CHECK(p != NULL && error == NULL);
    access_unref(p);
    static const char *const bad_queries[] = {"access_token=%zz", "access_token=abc%2",
                                              "access_token=a%00b.c.d", "access_token=%"};
    for (size_t i = 0; i < sizeof(bad_queries) / sizeof(bad_queries[0]); i++) {
        error = NULL;
        CHECK(auth_authenticate(NULL, bad_queries[i], NOW_MS, &error) == NULL);
        CHECK_STR(error, "invalid access_token parameter (bad percent-encoding)");
    }
    /* Too long in the query too (even before decoding). */
    static char big[40000];
    memcpy(big, "access_token=", 13);
    memset(big + 13, 'A', 30000);
    big[13 + 30000] = '\0';
    error = NULL;
    CHECK(auth_authenticate(NULL, big, NOW_MS, &error) == NULL);
    CHECK_STR(error, "token is too long");
    /* Something that is no token at all. */
    error = NULL;
    CHECK(auth_authenticate("Bearer not-a-token-at-all", NULL, NOW_MS, &error) == NULL);
    CHECK_STR(error, "unknown API key");
    free(t);
    auth_fini();
}

static void test_api_keys(void)
{
    char keys_path[64];
    write_temp(keys_path, "# crier API keys\n"
                          "\n"
                          "   file-key-0123456789   \n"
                          "# old-key-0123456789\n"
                          "file-key-with.two.dots-0123\r\n");
    setup("{'auth': {'api_keys': ['config-key-0123456789', 'k%%2Bplus+0123456789'],"
          " 'api_keys_file': '%s', 'jwt': {'hmac_secret': '%s'}}}",
          keys_path, SECRET);
    static const char *const keys[] = {"config-key-0123456789", "file-key-0123456789",
                                       "file-key-with.two.dots-0123"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *error = "unset";
        access_principal *p = auth_authenticate(bearer(keys[i]), NULL, NOW_MS, &error);
        CHECK(p != NULL && error == NULL);
        if (p) {
            CHECK(p->api_key && !p->token);
            CHECK(p->user == NULL);
            CHECK(p->expires_ms == 0);
            CHECK_STR(access_user_label(p), "api-key");
        }
        access_unref(p);
        CHECK(auth_is_api_key(bearer(keys[i])));
        char q[256];
        snprintf(q, sizeof(q), "access_token=%s", keys[i]);
        error = "unset";
        p = auth_authenticate(NULL, q, NOW_MS, &error);
        CHECK(p != NULL && p->api_key && error == NULL);
        access_unref(p);
    }
    /* A key with '%' and '+': percent-encoded in the query. */
    const char *error = "unset";
    access_principal *p =
        auth_authenticate(NULL, "access_token=k%252Bplus%2B0123456789", NOW_MS, &error);
    CHECK(p != NULL && p->api_key && error == NULL);
    access_unref(p);
    CHECK(auth_is_api_key("Bearer k%2Bplus+0123456789"));
    /* Commented out, a prefix, a longer one, another case: not keys. */
    static const char *const not_keys[] = {"old-key-0123456789", "config-key-012345678",
                                           "config-key-01234567890", "CONFIG-KEY-0123456789"};
    for (size_t i = 0; i < sizeof(not_keys) / sizeof(not_keys[0]); i++) {
        error = NULL;
        CHECK(auth_authenticate(bearer(not_keys[i]), NULL, NOW_MS, &error) == NULL);
        CHECK_STR(error, "unknown API key");
        CHECK(!auth_is_api_key(bearer(not_keys[i])));
    }
    CHECK(!auth_is_api_key(NULL));
    CHECK(!auth_is_api_key("config-key-0123456789"));
    CHECK(!auth_is_api_key("Basic config-key-0123456789"));
    auth_fini();
    CHECK(!auth_is_api_key("Bearer config-key-0123456789")); /* after auth_fini */

    /* Keys only, no auth.jwt: a token is refused for that. */
    setup("{'auth': {'api_keys': ['config-key-0123456789']}}");
    char *t = mint_hs("HS256", "{}");
    refuse(t, "tokens are not accepted: auth.jwt is not configured");
    free(t);
    refuse("config-key-0123456788", "unknown API key");
    auth_fini();

    /* The file's errors name it and the line; a key is never quoted. */
    char err[CFG_ERR_MAX];
    char bad_path[64];
    write_temp(bad_path, "good-key-0123456789\n# x\nshort-key\n");
    CHECK(setup_err(err, "{'auth': {'api_keys_file': '%s'}}", bad_path) == -1);
    CHECK(strstr(err, "auth.api_keys_file") != NULL);
    CHECK(strstr(err, bad_path) != NULL);
    CHECK(strstr(err, "line 3: an API key must be 16 to 511 visible ASCII characters") != NULL);
    CHECK(strstr(err, "short-key") == NULL);
    unlink(bad_path);
    write_temp(bad_path, "key with spaces 0123456789\n");
    CHECK(setup_err(err, "{'auth': {'api_keys_file': '%s'}}", bad_path) == -1);
    CHECK(strstr(err, "line 1: an API key must be") != NULL);
    unlink(bad_path);
    CHECK(setup_err(err, "{'auth': {'api_keys_file': '/nonexistent/crier-keys'}}") == -1);
    CHECK(strstr(err, "auth.api_keys_file '/nonexistent/crier-keys': cannot open it: No such "
                      "file or directory") != NULL);
    /* At most CFG_MAX_API_KEYS with the config's. */
    static char many[CFG_MAX_API_KEYS * 32];
    size_t n = 0;
    for (int i = 0; i < CFG_MAX_API_KEYS; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "file-key-0123456789-%02d\n", i);
    write_temp(bad_path, many);
    setup("{'auth': {'api_keys_file': '%s'}}", bad_path);
    CHECK(auth_is_api_key("Bearer file-key-0123456789-63"));
    auth_fini();
    CHECK(setup_err(err, "{'auth': {'api_keys_file': '%s', 'api_keys': ['config-key-0123456789']}}",
                    bad_path) == -1);
    CHECK(strstr(err, "line 64: too many API keys (at most 64 with auth.api_keys)") != NULL);
    unlink(bad_path);
    unlink(keys_path);
    auth_fini();
}

/* A self-signed certificate for key, as PEM text. */
static char *certificate_pem(EVP_PKEY *key)
{
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"crier", -1, -1, 0);
    X509_set_issuer_name(x, name);
    CHECK(X509_sign(x, key, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    X509_free(x);
    return bio_text(b);
}

static void test_public_key_file(void)
{
    make_keys();
    char err[CFG_ERR_MAX], path[64];
    CHECK(setup_err(err, "{'auth': {'jwt': {'public_key_file': '/nonexistent/key.pem'}}}") == -1);
    CHECK_STR(err, "auth.jwt.public_key_file '/nonexistent/key.pem': cannot read it: No such "
                   "file or directory");
    /* A private key, garbage, an empty file. */
    write_temp(path, rsa.priv_pem);
    CHECK(setup_err(err, "{'auth': {'jwt': {'public_key_file': '%s'}}}", path) == -1);
    CHECK(strstr(err, "holds a private key; give the public key (openssl pkey -in KEY -pubout") !=
          NULL);
    unlink(path);
    static const char bad_pem[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    static const char *const junk[] = {"hello\n", "", bad_pem};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        write_temp(path, junk[i]);
        CHECK(setup_err(err, "{'auth': {'jwt': {'public_key_file': '%s'}}}", path) == -1);
        CHECK(strstr(err, "expected a PEM public key (-----BEGIN PUBLIC KEY-----) or "
                          "certificate") != NULL);
        unlink(path);
    }
    /* A weak RSA key. */
    EVP_PKEY *weak = EVP_RSA_gen(1024);
    char *weak_pem = public_pem(weak);
    write_temp(path, weak_pem);
    CHECK(setup_err(err, "{'auth': {'jwt': {'public_key_file': '%s'}}}", path) == -1);
    CHECK(strstr(err, "an RSA key of 1024 bits is too weak (at least 2048)") != NULL);
    unlink(path);
    free(weak_pem);
    EVP_PKEY_free(weak);
    /* An EC key with only RS algorithms listed; a P-384 key with ES256 only. */
    CHECK(setup_err(err, "{'auth': {'jwt': {'public_key_file': '%s', 'algorithms': ['RS256']}}}",
                    ec.pub_path) == -1);
    CHECK(strstr(err, "auth.jwt.algorithms lists no algorithm this prime256v1 key verifies") !=
          NULL);
    CHECK(setup_err(err, "{'auth': {'jwt': {'public_key_file': '%s'}}}", ec384.pub_path) == -1);
    CHECK(strstr(err, "lists no algorithm this secp384r1 key verifies") != NULL);
    CHECK(setup_err(err, "{'auth': {'jwt': {'public_key_file': '%s', 'algorithms': ['ES256']}}}",
                    rsa.pub_path) == -1);
    CHECK(strstr(err, "lists no algorithm this RSA key verifies") != NULL);
    /* An Ed25519 key. */
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    char *ed_pem = public_pem(ed);
    write_temp(path, ed_pem);
    CHECK(setup_err(err, "{'auth': {'jwt': {'public_key_file': '%s'}}}", path) == -1);
    CHECK(strstr(err, "expected an RSA or EC (P-256, P-384, P-521) public key") != NULL);
    unlink(path);
    free(ed_pem);
    EVP_PKEY_free(ed);

    /* A certificate is taken for its public key. */
    BIO *b = BIO_new_mem_buf(rsa.priv_pem, -1);
    EVP_PKEY *priv = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    char *cert = certificate_pem(priv);
    EVP_PKEY_free(priv);
    write_temp(path, cert);
    setup("{'auth': {'jwt': {'public_key_file': '%s'}}}", path);
    char *t = mint_pem("RS256", &rsa, "{\"sub\": \"cert\"}");
    access_principal *p = accept(t);
    if (p)
        CHECK_STR(p->user, "cert");
    access_unref(p);
    free(t);
    auth_fini();
    unlink(path);
    free(cert);
}

static void cleanup_keys(void)
{
    keypair *all[] = {&rsa, &ec, &ec384};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (all[i]->pub_path[0])
            unlink(all[i]->pub_path);
        free(all[i]->pub_pem);
        free(all[i]->priv_pem);
        memset(all[i], 0, sizeof(*all[i]));
    }
}

TEST_MAIN("auth", TEST(test_auth_off), TEST(test_hs256), TEST(test_rs256_es256),
          TEST(test_alg_none), TEST(test_hs_rs_confusion), TEST(test_algorithms_listed),
          TEST(test_issuer_audience), TEST(test_bad_signature), TEST(test_expiry),
          TEST(test_rooms_and_sub), TEST(test_malformed), TEST(test_header_forms),
          TEST(test_api_keys), TEST(test_public_key_file), TEST(cleanup_keys))
