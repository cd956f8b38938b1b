/* SPDX-License-Identifier: MIT */
/*
 * raw_reply.c - JSON error answers written straight to a socket (raw_reply.h).
 */
#include "gateway/raw_reply.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/http_status.h"

static const char *reason_phrase(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 401:
        return "Unauthorized";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

void raw_reply_error(int fd, unsigned status, const char *extra_header, const char *error)
{
    http_count_status(status);
    json_t *body = json_pack("{s:s}", "error", error);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return;
    size_t tl = strlen(text);
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Cache-Control: no-store\r\n%s%sContent-Length: %zu\r\n\r\n",
                     status, reason_phrase(status), extra_header ? extra_header : "",
                     extra_header ? "\r\n" : "", tl);
    buf out = {0};
    if (n > 0 && (size_t)n < sizeof(head) && buf_append(&out, head, (size_t)n) &&
        buf_append(&out, text, tl))
        (void)!send(fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    buf_free(&out);
    free(text);
}
