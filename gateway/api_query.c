/* SPDX-License-Identifier: MIT */
/*
 * api_query.c - the paged read endpoints' query parameters (api_query.h).
 * Pure; any thread. Echoed values are cut short (ECHO_MAX) and escaped by
 * whoever puts err into JSON (http_reply_error builds it with jansson).
 */
#include "gateway/api_query.h"

#include <stdio.h>
#include <string.h>

#include "common/parse.h"

#define ECHO_MAX 64 /* bytes of a bad value quoted back */
#define LIMIT_RULE "limit must be an integer from 1 to 1000"

_Static_assert(API_PAGE_MAX == 1000, "LIMIT_RULE names it");

/* limit= into *out (API_PAGE_DEFAULT when absent). */
static bool parse_limit(const char *text, size_t *out, char *err, size_t cap)
{
    uint64_t v = API_PAGE_DEFAULT;
    if (text && (!parse_u64(text, &v) || v < 1 || v > API_PAGE_MAX)) {
        snprintf(err, cap, LIMIT_RULE ", got '%.*s'", ECHO_MAX, text);
        return false;
    }
    *out = (size_t)v;
    return true;
}

bool api_history_params_parse(const char *since, const char *limit, const char *epoch,
                              api_history_params *out, char *err, size_t cap)
{
    *out = (api_history_params){0};
    if (since && !parse_u64(since, &out->since)) {
        snprintf(err, cap, "since must be a non-negative integer, got '%.*s'", ECHO_MAX, since);
        return false;
    }
    if (!parse_limit(limit, &out->limit, err, cap))
        return false;
    if (epoch && !hub_epoch_is_valid(epoch)) {
        snprintf(err, cap, "epoch must be 1 to 15 letters or digits, got '%.*s'", ECHO_MAX, epoch);
        return false;
    }
    if (epoch)
        snprintf(out->epoch, sizeof(out->epoch), "%s", epoch);
    return true;
}

bool api_rooms_params_parse(const char *limit, const char *after, api_rooms_params *out, char *err,
                            size_t cap)
{
    *out = (api_rooms_params){0};
    if (!parse_limit(limit, &out->limit, err, cap))
        return false;
    if (after && *after && !room_name_is_valid(after, strlen(after))) {
        snprintf(err, cap,
                 "after must be a room name (1 to 128 of A-Z a-z 0-9 . _ - :), got '%.*s'",
                 ECHO_MAX, after);
        return false;
    }
    if (after)
        snprintf(out->after, sizeof(out->after), "%s", after);
    return true;
}
