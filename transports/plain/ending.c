/* SPDX-License-Identifier: MIT */
/*
 * plain/ending.c - the plain protocols' wire for a member the server ends
 * (plain/ending.h). Stateless; any thread.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/plain/ending.h"

void plain_end_at_expiry(sub *s, const access_principal *who)
{
    if (who && who->expires_ms > 0)
        sub_set_deadline(s, who->expires_ms, SUB_END_EXPIRED);
}

int plain_ws_end_code(void *session, sub_end_reason why, const char **text)
{
    (void)session;
    if (why != SUB_END_EXPIRED)
        return 0;
    *text = "token expired";
    return PLAIN_WS_CLOSE_TOKEN_EXPIRED;
}

const char *plain_sse_farewell(sub_end_reason why)
{
    if (why != SUB_END_EXPIRED)
        return NULL;
    return "event: error\ndata: {\"error\":\"token expired\"}\n\n";
}
