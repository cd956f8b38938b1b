/* SPDX-License-Identifier: MIT */
/*
 * fuzz_upstream_answer.c - libFuzzer harness for the upstream answer
 * readers (common/upstream.c): whatever a backend answers, reading it as a
 * hub method's answer and as the connect proxy's never crashes or leaks,
 * and the outcome is consistent: a result only when OK, an error text
 * whenever not OK, actions only with OK or the backend's own error, each
 * with the fields its kind needs (publish data is a JSON array text).
 * The first byte picks the HTTP status and the transfer ("A": 200, sent;
 * the seeds start with it).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/upstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_actions(const up_answer *a)
{
    for (size_t i = 0; i < a->nactions; i++) {
        const up_action *act = &a->actions[i];
        switch (act->kind) {
        case UP_ACT_PUBLISH_ROOM:
        case UP_ACT_PUBLISH_USER:
        case UP_ACT_PUBLISH_ALL: {
            if (!act->data || !act->name != (act->kind == UP_ACT_PUBLISH_ALL))
                abort();
            json_t *j = json_loads(act->data, 0, NULL);
            if (!json_is_array(j))
                abort();
            json_decref(j);
            break;
        }
        case UP_ACT_JOIN:
        case UP_ACT_LEAVE:
            if (!act->name)
                abort();
            break;
        case UP_ACT_DISCONNECT:
            if (!act->reason)
                abort();
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    long status = mode & 0x80 ? 200 + (mode & 0x7) * 50 : 200;
    up_transfer t =
        (mode & 0x70) == 0x70 ? (up_transfer)(mode & 0x7) % (UP_SENT_STOPPED + 1) : UP_SENT_OK;
    up_answer a;
    up_answer_read(&a, t, status, body, len);
    if (a.result == UP_R_OK && a.error)
        abort();
    if (a.result != UP_R_OK && (!a.error || !*a.error || a.value))
        abort();
    if (a.nactions && a.result != UP_R_OK && a.result != UP_R_ERROR)
        abort();
    if (a.value) {
        json_t *v = json_loads(a.value, JSON_DECODE_ANY, NULL);
        if (!v)
            abort();
        json_decref(v);
    }
    check_actions(&a);
    up_answer_free(&a);

    unsigned refused = 0;
    char *error = NULL;
    access_principal *p = up_connect_read(t, status, body, len, "http://b/", &refused, &error);
    if (!p == !error)
        abort();
    if (!p && refused != 401 && refused != 403 && refused != 502 && refused != 503 &&
        refused != 504)
        abort();
    free(error);
    access_unref(p);
    return 0;
}
