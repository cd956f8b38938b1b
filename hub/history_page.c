/* SPDX-License-Identifier: MIT */
/*
 * history_page.c - reading a room's kept history a page at a time (GET
 * /rooms/{room}/history): where a page starts and whether something is
 * lost before it (the same rule as a resume's gap, resume.c), from this
 * hub's history (a room of its own) or from the backplane's (a shared
 * room: its history lives there, and this node may hold none of it).
 *
 * Threading: hub_history_async takes the hub lock for a room of its own
 * and copies references to the messages out; a shared room's page comes
 * back on the backplane's thread (history_answered), which takes no hub
 * lock: the messages are made from the backplane's entries.
 *
 * Threads and locks: docs/concurrency.md
 */
#include "hub/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

uint64_t history_page_start(uint64_t since, const char *epoch, const char *room_epoch,
                            uint64_t last_id, uint64_t first_kept, bool *gap)
{
    /* as find_gap in resume.c: since 0 has seen nothing, in whatever epoch */
    if ((since && epoch && *epoch && strcmp(epoch, room_epoch)) || since > last_id) {
        *gap = true; /* another numbering: everything kept is new to the client */
        return 0;
    }
    *gap = since < last_id && since + 1 < first_kept; /* older than what is kept */
    return since;
}

void history_page_clear(history_page *p)
{
    for (size_t i = 0; i < p->n; i++)
        msg_unref(p->msgs[i]);
    free(p->msgs);
    p->msgs = NULL;
    p->n = 0;
}

/* Hub lock held: the page of r's own history that q asks for. */
static int local_page(hub *h, room *r, const history_query *q, history_page *out)
{
    size_t before = r->hist.bytes;
    history_expire(&r->hist, clock_now_ms()); /* nothing past its time, even between ticks */
    room_hist_dropped(h, r, before);
    uint64_t first = history_first_id(&r->hist);
    uint64_t start = history_page_start(q->since, q->epoch, r->epoch, r->last_id,
                                        first ? first : r->last_id + 1, &out->gap);
    size_t from;
    size_t n = history_since(&r->hist, start, &from);
    out->more = n > q->limit;
    if (n > q->limit)
        n = q->limit;
    out->msgs = n ? malloc(n * sizeof(*out->msgs)) : NULL;
    if (n && !out->msgs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        out->msgs[i] = msg_ref(history_at(&r->hist, from + i));
    out->n = n;
    snprintf(out->epoch, sizeof(out->epoch), "%s", r->epoch);
    out->last_id = r->last_id;
    return 0;
}

/* A shared room's page on its way from the backplane. */
typedef struct pending_page {
    char room[ROOM_NAME_MAX + 1];
    uint64_t since;
    char epoch[MSG_EPOCH_MAX];
    size_t limit;
    history_fn cb;
    void *arg;
} pending_page;

/* Makes the page from the backplane's answer (count: up to limit + 1). */
static void page_from_entries(const pending_page *pp, history_page *out, const char *epoch,
                              uint64_t last_id, uint64_t first_kept, const bp_entry *e,
                              size_t count)
{
    snprintf(out->epoch, sizeof(out->epoch), "%s", epoch);
    out->last_id = last_id;
    history_page_start(pp->since, pp->epoch, epoch, last_id, first_kept, &out->gap);
    out->more = count > pp->limit;
    size_t n = count > pp->limit ? pp->limit : count;
    out->msgs = n ? malloc(n * sizeof(*out->msgs)) : NULL;
    if (n && !out->msgs) {
        out->rc = -ENOMEM;
        return;
    }
    int64_t now = clock_now_ms(), wall = clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        int64_t age = e[i].wall_ms < wall ? wall - e[i].wall_ms : 0;
        msg *m = msg_create_in(e[i].id, pp->room, epoch, e[i].data, e[i].len,
                               e[i].target && *e[i].target ? e[i].target : NULL, now - age);
        if (!m) {
            out->rc = -ENOMEM;
            return;
        }
        out->msgs[out->n++] = m;
    }
}

/* The backplane's thread (or the caller's, out of memory): the answer. */
static void history_answered(void *arg, int rc, const char *epoch, uint64_t last_id,
                             uint64_t first_kept, const bp_entry *entries, size_t n)
{
    pending_page *pp = arg;
    history_page page = {.rc = rc};
    if (!rc)
        page_from_entries(pp, &page, epoch, last_id, first_kept, entries, n);
    if (page.rc)
        history_page_clear(&page);
    pp->cb(pp->arg, &page);
    history_page_clear(&page);
    free(pp);
}

int hub_history_async(hub *h, const char *name, const history_query *q, history_page *out,
                      history_fn cb, void *arg)
{
    *out = (history_page){0};
    pthread_mutex_lock(&h->lock);
    backplane *bp = hub_is_shared(h, name) ? h->bp : NULL;
    room *r = bp ? NULL : room_find(h, name);
    int rc = bp ? -EINPROGRESS : r ? local_page(h, r, q, out) : -ENOENT;
    hub_unlock(h);
    if (rc != -EINPROGRESS) {
        out->rc = rc;
        if (rc)
            history_page_clear(out);
        return rc;
    }
    pending_page *pp = malloc(sizeof(*pp));
    if (!pp) {
        out->rc = -ENOMEM;
        return -ENOMEM;
    }
    *pp = (pending_page){.since = q->since, .limit = q->limit, .cb = cb, .arg = arg};
    snprintf(pp->room, sizeof(pp->room), "%s", name);
    snprintf(pp->epoch, sizeof(pp->epoch), "%s", q->epoch ? q->epoch : "");
    bp->ops->history(bp, name, q->since, pp->epoch, q->limit + 1, history_answered, pp);
    return -EINPROGRESS;
}
