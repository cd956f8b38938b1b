/* SPDX-License-Identifier: MIT */
/*
 * plain/common.c - the reply the plain HTTP protocols (plain/sse.c,
 * plain/poll.c) give a join the hub refused. Stateless; any MHD thread.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "transports/plain/common.h"

#include <errno.h>

#include "common/limits.h"

enum MHD_Result plain_reply_join_refused(http_call *call, int rc)
{
    if (rc == -ENOSPC || rc == -EMLINK) /* a limit: logged once per burst */
        return http_reply_refused(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, 0,
                                  limit_join_error(rc));
    return http_reply_error(call->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot join room");
}
