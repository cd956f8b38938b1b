/* SPDX-License-Identifier: MIT */
/*
 * fuzz_json_check.c - libFuzzer harness for json_check (hub/json_check.c),
 * which validates every published body: no crash, and the same verdict as
 * jansson (the reference parser) wherever the two are meant to agree.
 * jansson is stricter in a few documented places, which are skipped: it
 * refuses numbers that overflow (json_check keeps them as sent) and
 * unpaired surrogate escapes such as "\uDE00" (RFC 8259's grammar allows
 * them, and so does json_check: see test_json_check.c), and it nests
 * no deeper than its own limit; json_check refuses nesting past
 * JSON_CHECK_MAX_DEPTH, and a raw NUL byte after the value (jansson stops
 * reading there). Also payload_from_body (hub/payload.c), the body of
 * every publish: what it keeps is valid JSON, as a JSON body or as text.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/json_check.h"
#include "hub/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Deepest nesting of [ and { outside strings (an upper bound is enough). */
static int depth_of(const uint8_t *s, size_t n)
{
    int d = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (in_str) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                in_str = false;
        } else if (s[i] == '"') {
            in_str = true;
        } else if (s[i] == '[' || s[i] == '{') {
            if (++d > max)
                max = d;
        } else if (s[i] == ']' || s[i] == '}') {
            d--;
        }
    }
    return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_check_error err = {0};
    int rc = json_check((const char *)data, size, &err);
    if (rc) {
        if (!err.what || err.line < 1 || err.column < 1) {
            fprintf(stderr, "json_check: rejected without a position or reason\n");
            abort();
        }
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    bool jansson_ok = j != NULL;
    json_decref(j);
    if (!rc && !jansson_ok && !strstr(je.text, "too big") && !strstr(je.text, "overflow") &&
        !strstr(je.text, "invalid Unicode") && !strstr(je.text, "maximum parsing depth")) {
        fprintf(stderr, "json_check accepted what jansson refuses: %s\n", je.text);
        abort();
    }
    if (rc && jansson_ok && depth_of(data, size) <= JSON_CHECK_MAX_DEPTH &&
        !memchr(data, '\0', size)) {
        fprintf(stderr, "json_check refused valid JSON: %s at %d:%d\n", err.what, err.line,
                err.column);
        abort();
    }
    for (int is_json = 0; is_json < 2; is_json++) {
        payload p;
        char perr[200];
        if (payload_from_body(&p, (const char *)data, size, is_json, perr, sizeof(perr)))
            continue;
        if (json_check(p.data, p.len, &err)) {
            fprintf(stderr, "payload_from_body kept invalid JSON (is_json %d): %s\n", is_json,
                    err.what);
            abort();
        }
        payload_free(&p);
    }
    return 0;
}
