/* SPDX-License-Identifier: MIT */
/*
 * api_query.h - the query parameters of the paged read endpoints: GET
 * /rooms/{room}/history (since, limit, epoch) and GET /rooms (limit,
 * after), checked into values or into a 400's error text naming the
 * parameter. Pure: no I/O; any thread.
 */
#ifndef CRIER_API_QUERY_H
#define CRIER_API_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/hub.h"

#define API_PAGE_DEFAULT 100 /* limit= when absent */
#define API_PAGE_MAX 1000    /* the largest limit= taken */

typedef struct api_history_params {
    uint64_t since;            /* 0: from the oldest kept */
    char epoch[MSG_EPOCH_MAX]; /* "": any */
    size_t limit;
} api_history_params;

typedef struct api_rooms_params {
    char after[ROOM_NAME_MAX + 1]; /* "": from the first */
    size_t limit;
} api_rooms_params;

/* Each value is the (percent-decoded) parameter, or NULL when absent.
 * True with *out filled; false with err (cap bytes) saying which parameter
 * is wrong and what it takes. */
bool api_history_params_parse(const char *since, const char *limit, const char *epoch,
                              api_history_params *out, char *err, size_t cap);
bool api_rooms_params_parse(const char *limit, const char *after, api_rooms_params *out, char *err,
                            size_t cap);

#endif
