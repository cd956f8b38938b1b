/* SPDX-License-Identifier: MIT */
/*
 * fuzz_auth.c - libFuzzer harness for auth_authenticate (gateway/auth.c):
 * what a client presents, as an Authorization header or a raw query, under
 * a config with an HMAC secret, an issuer and audience, a public EC key and
 * API keys. The first byte picks how the rest is presented:
 *   0  the whole Authorization header value
 *   1  the raw query string
 *   2  "Bearer " + the rest
 *   3  "access_token=" + the rest
 *   4  "HEADER\nCLAIMS": two JSON texts the harness encodes and signs with
 *      the secret (HS256 HMAC), so that any header and any claims reach the
 *      checks behind the signature
 * Whatever the bytes: no crash, no leak, no read outside the input; a
 * principal comes with no error, a refusal with a non-empty reason; a
 * token's principal has a user of at most 256 bytes without control
 * characters, and an expiry after now.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "common/log.h"
#include "gateway/auth.h"
#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret-0123456789abcdef0123456789"
#define NOW_MS 1700000000000LL

static void must(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "%s\n", what);
        abort();
    }
}

static cfg conf;

/* Once: the config, and an EC public key written to a temp file for auth_init. */
static void setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    log_set_level(LOG_LEVEL_ERROR);
    char path[] = "/tmp/crier-fuzz-auth-XXXXXX";
    int fd = mkstemp(path);
    must(fd >= 0, "mkstemp");
    EVP_PKEY *k = EVP_EC_gen("P-256");
    BIO *b = BIO_new_fd(fd, BIO_CLOSE);
    must(k && b && PEM_write_bio_PUBKEY(b, k), "writing the EC key");
    BIO_free(b);
    EVP_PKEY_free(k);
    char json[1024], err[CFG_ERR_MAX];
    snprintf(json, sizeof(json),
             "{\"auth\": {\"jwt\": {\"hmac_secret\": \"%s\", \"public_key_file\": \"%s\","
             " \"algorithms\": [\"HS256\", \"HS384\", \"ES256\"], \"issuer\": \"iss\","
             " \"audience\": \"aud\"}, \"api_keys\": [\"api-key-0123456789\"]}}",
             SECRET, path);
    cfg_defaults(&conf);
    must(cfg_load_string(&conf, json, "fuzz", err) == 0, err);
    must(auth_init(&conf, err) == 0, err);
    unlink(path);
}

static char *b64url(const unsigned char *s, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n * 4 / 3 + 4), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = abc[v >> 6 & 63];
        if (i + 2 < n)
            *o++ = abc[v & 63];
    }
    *o = '\0';
    return out;
}

/* "Bearer b64(header).b64(claims).HS256-signature" for "HEADER\nCLAIMS". */
static char *signed_header(const uint8_t *d, size_t n)
{
    const uint8_t *nl = memchr(d, '\n', n);
    size_t hn = nl ? (size_t)(nl - d) : n;
    char *h = b64url(d, hn), *c = nl ? b64url(nl + 1, n - hn - 1) : b64url(d, 0);
    size_t len = strlen(h) + strlen(c) + 1;
    char *input = malloc(len + 1);
    snprintf(input, len + 1, "%s.%s", h, c);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)input, len, mac,
         &mac_len);
    char *sig = b64url(mac, mac_len);
    size_t total = strlen("Bearer ") + len + 1 + strlen(sig) + 1;
    char *out = malloc(total);
    snprintf(out, total, "Bearer %s.%s", input, sig);
    free(h);
    free(c);
    free(input);
    free(sig);
    return out;
}

/* presented: a credential was certainly presented (an Authorization header). */
static void check(const access_principal *p, const char *error, bool presented)
{
    must(!(p && error), "a principal with an error");
    must(!presented || p || error, "a header neither taken nor refused");
    must(!error || *error, "an empty refusal");
    if (!p || !p->token)
        return;
    must(!p->api_key, "a token principal marked as an API key");
    if (p->user) {
        size_t len = strlen(p->user);
        must(len >= 1 && len <= 256, "a user id of a bad length");
        for (size_t i = 0; i < len; i++)
            must((unsigned char)p->user[i] >= 0x20 && p->user[i] != 0x7f,
                 "a control character in the user id");
    }
    must(p->expires_ms == 0 || p->expires_ms > NOW_MS, "an expired token accepted");
    must(p->subscribe.n <= 256 && p->publish.n <= 256, "too many room patterns");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 5;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    static const char *const prefix[] = {"", "", "Bearer ", "access_token=", ""};
    char *text;
    if (mode == 4) {
        text = signed_header(d, n);
    } else {
        size_t plen = strlen(prefix[mode]);
        text = malloc(plen + n + 1);
        memcpy(text, prefix[mode], plen);
        memcpy(text + plen, d, n);
        text[plen + n] = '\0';
    }
    bool query = mode == 1 || mode == 3;
    const char *error = "unset";
    access_principal *p =
        auth_authenticate(query ? NULL : text, query ? text : NULL, NOW_MS, &error);
    check(p, error, !query);
    if (!query)
        must(auth_is_api_key(text) == (p && p->api_key), "auth_is_api_key disagrees");
    access_unref(p);
    free(text);
    return 0;
}
