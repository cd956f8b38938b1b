/* SPDX-License-Identifier: MIT */
/*
 * payload.c - validation and normalisation of published bodies (payload.h).
 */
#include "hub/payload.h"

#include "hub/json_check.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int payload_from_body(payload *p, const char *body, size_t len, bool is_json, char *err,
                      size_t err_cap)
{
    *p = (payload){0};
    if (is_json) {
        json_check_error je;
        if (json_check(body, len, &je)) {
            snprintf(err, err_cap, "malformed JSON at line %d, column %d: %s", je.line, je.column,
                     je.what);
            return -EINVAL;
        }
        while (len && is_json_space(*body)) {
            body++;
            len--;
        }
        while (len && is_json_space(body[len - 1]))
            len--;
        p->data = body;
        p->len = len;
        return 0;
    }
    json_t *s = json_stringn(body, len);
    if (!s) {
        snprintf(err, err_cap, "body is not valid UTF-8");
        return -EILSEQ;
    }
    p->owned = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(s);
    if (!p->owned) {
        snprintf(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    p->data = p->owned;
    p->len = strlen(p->owned);
    return 0;
}

void payload_free(payload *p)
{
    free(p->owned);
    *p = (payload){0};
}

bool payload_is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n))
        return false;
    char c = ct[n];
    return c == '\0' || c == ';' || c == ' ';
}
