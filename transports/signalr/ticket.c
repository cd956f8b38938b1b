/* SPDX-License-Identifier: MIT */
/*
 * signalr/ticket.c - signs and verifies the connect proxy's verdict in a
 * clustered connection token (format in ticket.h). Pure: any thread.
 */
#include "transports/signalr/ticket.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define MAC_LEN 32
#define MAC_B64_LEN 43 /* base64url of 32 bytes, no padding */
#define CONTEXT "crier-connect-v1\n"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url (no padding) of in into out, which has room for 4 * n / 3 + 4. */
static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* base64url (no padding) of n chars into out (room for 3 * n / 4 + 1);
 * -1 when malformed, else the byte count. */
static long b64_decode(const char *in, size_t n, unsigned char *out)
{
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = b64_value(in[i]);
        if (d < 0)
            return -1;
        v = v << 6 | (unsigned)d;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(v >> 16);
            out[o++] = (unsigned char)(v >> 8);
            out[o++] = (unsigned char)v;
            v = 0;
        }
    }
    if (n % 4 == 2) {
        out[o++] = (unsigned char)(v >> 4);
    } else if (n % 4 == 3) {
        out[o++] = (unsigned char)(v >> 10);
        out[o++] = (unsigned char)(v >> 2);
    }
    return (long)o;
}

/* The MAC (base64url) of signed_part (len bytes) for hub into out. */
static bool mac_of(const char *secret, const char *hub, const char *signed_part, size_t len,
                   char out[MAC_B64_LEN + 1])
{
    size_t hub_len = strlen(hub), ctx_len = strlen(CONTEXT);
    size_t n = ctx_len + hub_len + 1 + len;
    unsigned char *data = malloc(n);
    if (!data)
        return false;
    memcpy(data, CONTEXT, ctx_len);
    memcpy(data + ctx_len, hub, hub_len);
    data[ctx_len + hub_len] = '\n';
    memcpy(data + ctx_len + hub_len + 1, signed_part, len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    bool ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), data, n, mac, &mac_len) &&
              mac_len == MAC_LEN;
    free(data);
    if (ok)
        b64_encode(mac, MAC_LEN, out);
    return ok;
}

static json_t *patterns_json(const access_patterns *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

char *sr_ticket_make(const char *secret, const char *hub, const char *base,
                     const access_principal *who, const char **error)
{
    json_t *o =
        json_pack("{s:o,s:o,s:o,s:I}", "u", who && who->user ? json_string(who->user) : json_null(),
                  "s", patterns_json(who ? &who->subscribe : &(access_patterns){0}), "p",
                  patterns_json(who ? &who->publish : &(access_patterns){0}), "e",
                  (json_int_t)(who ? who->expires_ms : 0));
    char *payload = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    *error = "out of memory";
    if (!payload)
        return NULL;
    size_t n = strlen(payload);
    if (n > SR_TICKET_PAYLOAD_MAX) {
        free(payload);
        *error = "the connect proxy's user and rooms are too large to travel in a connection "
                 "token (at most 1024 bytes of JSON with the Redis backplane)";
        return NULL;
    }
    size_t base_len = strlen(base);
    char *token = malloc(base_len + 1 + 4 * n / 3 + 4 + 1 + MAC_B64_LEN + 1);
    if (!token) {
        free(payload);
        return NULL;
    }
    memcpy(token, base, base_len);
    token[base_len] = '.';
    size_t len = base_len + 1 + b64_encode((unsigned char *)payload, n, token + base_len + 1);
    free(payload);
    token[len] = '.';
    if (!mac_of(secret, hub, token, len, token + len + 1)) {
        free(token);
        *error = "cannot sign the connection token";
        return NULL;
    }
    *error = NULL;
    return token;
}

bool sr_ticket_present(const char *token, size_t len)
{
    return token && len > SR_TICKET_BASE_LEN && token[SR_TICKET_BASE_LEN] == '.';
}

static bool read_list(access_patterns *l, json_t *a)
{
    if (!json_is_array(a))
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v) || !json_string_length(v) ||
            access_patterns_add(l, json_string_value(v)))
            return false;
    }
    return true;
}

/* The payload's JSON (n bytes) as a proxied principal, or NULL. */
static access_principal *principal_of(const char *text, size_t n)
{
    json_t *o = json_loadb(text, n, 0, NULL);
    json_t *u = json_object_get(o, "u"), *e = json_object_get(o, "e");
    access_principal *p = NULL;
    if (json_is_object(o) && (json_is_null(u) || json_is_string(u)) && json_is_integer(e) &&
        json_integer_value(e) >= 0)
        p = access_principal_new(json_string_value(u), (int64_t)json_integer_value(e), false,
                                 false);
    if (p && (!read_list(&p->subscribe, json_object_get(o, "s")) ||
              !read_list(&p->publish, json_object_get(o, "p")))) {
        access_unref(p);
        p = NULL;
    }
    if (p)
        p->proxied = true;
    json_decref(o);
    return p;
}

access_principal *sr_ticket_read(const char *secret, const char *hub, const char *token, size_t len,
                                 const char **error)
{
    *error = "the connection token carries no connect proxy verdict (negotiate again)";
    if (!sr_ticket_present(token, len))
        return NULL;
    *error = "the connection token is not valid (altered, or not signed by this cluster)";
    if (len < SR_TICKET_BASE_LEN + 2 + MAC_B64_LEN + 1 || token[len - MAC_B64_LEN - 1] != '.')
        return NULL;
    size_t signed_len = len - MAC_B64_LEN - 1;
    char mac[MAC_B64_LEN + 1];
    if (!mac_of(secret, hub, token, signed_len, mac) ||
        CRYPTO_memcmp(mac, token + signed_len + 1, MAC_B64_LEN))
        return NULL;
    const char *payload = token + SR_TICKET_BASE_LEN + 1;
    size_t n = signed_len - SR_TICKET_BASE_LEN - 1;
    unsigned char *text = malloc(3 * n / 4 + 1);
    long got = text ? b64_decode(payload, n, text) : -1;
    access_principal *p = got >= 0 ? principal_of((char *)text, (size_t)got) : NULL;
    free(text);
    if (p)
        *error = NULL;
    return p;
}
