/* SPDX-License-Identifier: MIT */
/*
 * plain/ending.c - the plain protocols' wire for a member the server ends
 * (plain/ending.h). Stateless; any thread.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/plain/ending.h"

#include <string.h>

#include "common/json_text.h"

void plain_end_at_expiry(sub *s, const access_principal *who)
{
    if (who && who->expires_ms > 0)
        sub_set_deadline(s, who->expires_ms, SUB_END_EXPIRED);
}

int plain_ws_end_code(const sub *s, sub_end_reason why, const char **text)
{
    if (why == SUB_END_DISCONNECTED) {
        /* Set once before `ending`, which the carrier saw: read without the lock. */
        *text = s->end_text ? s->end_text : sub_end_reason_text(why);
        return PLAIN_WS_CLOSE_DISCONNECTED;
    }
    if (why != SUB_END_EXPIRED)
        return 0;
    *text = "token expired";
    return PLAIN_WS_CLOSE_TOKEN_EXPIRED;
}

const char *plain_sse_farewell(const sub *s, buf *scratch)
{
    if (s->end_reason == SUB_END_EXPIRED)
        return "event: error\ndata: {\"error\":\"token expired\"}\n\n";
    if (s->end_reason != SUB_END_DISCONNECTED)
        return NULL;
    const char *why = s->end_text ? s->end_text : sub_end_reason_text(s->end_reason);
    scratch->len = 0;
    bool ok = buf_append_str(scratch, "event: error\ndata: {\"error\":") &&
              buf_json_string(scratch, why, strlen(why), 0) && buf_append_str(scratch, "}\n\n") &&
              buf_append(scratch, "", 1);
    return ok ? scratch->data : NULL;
}
