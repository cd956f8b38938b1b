/* SPDX-License-Identifier: MIT */
/*
 * test_history_page.c - unit tests for the paged reads of the server API:
 * history_page_start (where a page starts and when it reports a gap, as a
 * resume does), hub_history_async on a hub of its own and through a
 * backplane (a scripted one that answers at once), hub_list_rooms (sorted
 * by name, paged with a cursor, internal rooms left out) and the query
 * parameters of gateway/api_query.c (defaults, bounds, errors that name
 * the parameter).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api_query.h"
#include "hub/hub.h"
#include "tests/unit/test.h"

static void test_page_start(void)
{
    bool gap = false;
    /* room "E", ids 1..10, 6..10 kept */
    CHECK(history_page_start(0, NULL, "E", 10, 6, &gap) == 0 && gap); /* 1..5 lost */
    CHECK(history_page_start(4, NULL, "E", 10, 6, &gap) == 4 && gap);
    CHECK(history_page_start(5, NULL, "E", 10, 6, &gap) == 5 && !gap); /* reaches back to 6 */
    CHECK(history_page_start(8, "E", "E", 10, 6, &gap) == 8 && !gap);
    CHECK(history_page_start(10, NULL, "E", 10, 6, &gap) == 10 && !gap); /* up to date */
    CHECK(history_page_start(11, NULL, "E", 10, 6, &gap) == 0 && gap);   /* another numbering */
    CHECK(history_page_start(8, "F", "E", 10, 6, &gap) == 0 && gap);     /* another epoch */
    CHECK(history_page_start(0, "F", "E", 10, 6, &gap) == 0 && gap);     /* 0: only expiry */
    CHECK(history_page_start(8, "", "E", 10, 6, &gap) == 8 && !gap);     /* "": any epoch */
    /* all kept: nothing lost from 0 */
    CHECK(history_page_start(0, NULL, "E", 10, 1, &gap) == 0 && !gap);
    /* nothing kept (first_kept = last + 1): lost unless up to date */
    CHECK(history_page_start(3, NULL, "E", 10, 11, &gap) == 3 && gap);
    CHECK(history_page_start(10, NULL, "E", 10, 11, &gap) == 10 && !gap);
    /* an empty room */
    CHECK(history_page_start(0, NULL, "E", 0, 1, &gap) == 0 && !gap);
}

static hub *memory_hub(size_t history_size)
{
    hub_options o = {.history_size = history_size, .history_ttl_ms = 60000};
    return hub_create(&o);
}

static void publish_n(hub *h, const char *room, int n)
{
    for (int i = 1; i <= n; i++) {
        char data[16];
        int len = snprintf(data, sizeof(data), "%d", i);
        uint64_t id;
        CHECK(hub_publish(h, room, data, (size_t)len, NULL, &id) == 0);
    }
}

/* The page's ids are first..first+n-1. */
static bool ids_are(const history_page *p, uint64_t first, size_t n)
{
    if (p->n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p->msgs[i]->id != first + i)
            return false;
    return true;
}

static void no_cb(void *arg, history_page *page)
{
    (void)arg;
    (void)page;
    CHECK(!"a hub of its own answers at once");
}

static int page(hub *h, const char *room, uint64_t since, const char *epoch, size_t limit,
                history_page *out)
{
    history_query q = {.since = since, .epoch = epoch, .limit = limit};
    return hub_history_async(h, room, &q, out, no_cb, NULL);
}

static void test_local_pages(void)
{
    hub *h = memory_hub(5);
    publish_n(h, "chat", 7); /* 3..7 kept */
    history_page p;
    CHECK(page(h, "chat", 0, NULL, 100, &p) == 0);
    CHECK(ids_are(&p, 3, 5) && p.gap && !p.more && p.last_id == 7 && strlen(p.epoch) == 8);
    msg_bytes b = msg_get(p.msgs[0], MSG_FMT_JSON, NULL);
    CHECK(b.len && memmem(b.base, b.len, "\"data\":3", 8)); /* the long poll's envelope */
    char epoch[MSG_EPOCH_MAX];
    snprintf(epoch, sizeof(epoch), "%s", p.epoch);
    history_page_clear(&p);

    CHECK(page(h, "chat", 3, epoch, 2, &p) == 0);
    CHECK(ids_are(&p, 4, 2) && !p.gap && p.more);
    history_page_clear(&p);
    CHECK(page(h, "chat", 5, NULL, 2, &p) == 0);
    CHECK(ids_are(&p, 6, 2) && !p.gap && !p.more);
    history_page_clear(&p);
    CHECK(page(h, "chat", 7, NULL, 2, &p) == 0);
    CHECK(p.n == 0 && !p.gap && !p.more && p.last_id == 7);
    history_page_clear(&p);
    CHECK(page(h, "chat", 5, "Other1", 1, &p) == 0); /* another epoch: from the oldest */
    CHECK(ids_are(&p, 3, 1) && p.gap && p.more);
    history_page_clear(&p);
    CHECK(page(h, "chat", 99, NULL, 10, &p) == 0);
    CHECK(ids_are(&p, 3, 5) && p.gap);
    history_page_clear(&p);
    CHECK(page(h, "nope", 0, NULL, 10, &p) == -ENOENT && p.rc == -ENOENT && p.n == 0);
    hub_destroy(h);
}

/* --- a backplane that answers history from a script */

static bp_entry script[8];
static size_t script_n;
static uint64_t asked_since;
static size_t asked_count;
static char asked_epoch[MSG_EPOCH_MAX];
static int answer_rc;

static void s_want(backplane *bp, const char *room, bool want)
{
    (void)bp, (void)room, (void)want;
}

static void s_fetch(backplane *bp, const char *room, const char *epoch, uint64_t after)
{
    (void)bp, (void)room, (void)epoch, (void)after;
}

static void s_history(backplane *bp, const char *room, uint64_t since, const char *epoch,
                      size_t count, bp_history_fn cb, void *arg)
{
    (void)bp, (void)room;
    asked_since = since;
    asked_count = count;
    snprintf(asked_epoch, sizeof(asked_epoch), "%s", epoch);
    /* room "R" numbered up to 20, 15..20 kept; the script holds the entries after since */
    size_t n = script_n < count ? script_n : count;
    cb(arg, answer_rc, answer_rc ? "" : "Rep0ch", 20, 15, script, n);
}

static const backplane_ops scripted = {.want_room = s_want, .fetch = s_fetch, .history = s_history};

static history_page got;
static int answers;

static void keep_page(void *arg, history_page *p)
{
    (void)arg;
    answers++;
    got = *p;
    *p = (history_page){0}; /* taken */
}

static void test_shared_pages(void)
{
    hub *h = memory_hub(5);
    backplane bp = {.ops = &scripted};
    hub_set_backplane(h, &bp);
    for (size_t i = 0; i < 4; i++)
        script[i] = (bp_entry){.id = 16 + i, .wall_ms = 0, .target = "", .data = "[1]", .len = 3};
    script_n = 4;
    history_query q = {.since = 15, .epoch = NULL, .limit = 3};
    history_page out;
    CHECK(hub_history_async(h, "R", &q, &out, keep_page, NULL) == -EINPROGRESS);
    CHECK(answers == 1 && asked_since == 15 && asked_count == 4 && !asked_epoch[0]);
    CHECK(got.rc == 0 && ids_are(&got, 16, 3) && got.more && !got.gap && got.last_id == 20);
    CHECK(!strcmp(got.epoch, "Rep0ch") && !strcmp(got.msgs[0]->epoch, "Rep0ch"));
    history_page_clear(&got);

    q = (history_query){.since = 2, .epoch = "Rep0ch", .limit = 10}; /* 3..14 lost */
    CHECK(hub_history_async(h, "R", &q, &out, keep_page, NULL) == -EINPROGRESS);
    CHECK(answers == 2 && !strcmp(asked_epoch, "Rep0ch"));
    CHECK(got.rc == 0 && got.gap && !got.more && got.n == 4);
    history_page_clear(&got);

    answer_rc = -EIO;
    CHECK(hub_history_async(h, "R", &q, &out, keep_page, NULL) == -EINPROGRESS);
    CHECK(answers == 3 && got.rc == -EIO && got.n == 0 && !got.msgs);
    answer_rc = 0;
    hub_set_backplane(h, NULL);
    hub_destroy(h);
}

static void test_room_list(void)
{
    hub *h = memory_hub(5);
    static const char *const names[] = {"m", "b", "zz", "a", "c.1", "A", "~~own", "c"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        publish_n(h, names[i], (int)i + 1);
    static const char *const sorted[] = {"A", "a", "b", "c", "c.1", "m", "zz"};
    room_entry e[3];
    char after[ROOM_NAME_MAX + 1] = "";
    size_t seen = 0;
    bool more = true;
    for (int pages = 0; more && pages < 10; pages++) {
        size_t n = hub_list_rooms(h, after, e, 3, &more);
        CHECK(n == (seen + 3 <= 7 ? 3 : 7 - seen));
        for (size_t i = 0; i < n && seen < 7; i++, seen++)
            CHECK_STR(e[i].name, sorted[seen]);
        if (n)
            snprintf(after, sizeof(after), "%s", e[n - 1].name);
    }
    CHECK(seen == 7 && !more);
    CHECK(hub_list_rooms(h, "zz", e, 3, &more) == 0 && !more);
    CHECK(hub_list_rooms(h, "", e, 1, &more) == 1 && more && !strcmp(e[0].name, "A"));
    CHECK(e[0].last_id == 6 && strlen(e[0].epoch) == 8); /* "A" got 6 messages */
    room_info info;
    CHECK(hub_room_info(h, "A", &info) == 0 && !strcmp(info.epoch, e[0].epoch));
    hub_destroy(h);
}

static void test_history_params(void)
{
    api_history_params p;
    char err[256];
    CHECK(api_history_params_parse(NULL, NULL, NULL, &p, err, sizeof(err)));
    CHECK(p.since == 0 && p.limit == API_PAGE_DEFAULT && !p.epoch[0]);
    CHECK(api_history_params_parse("18446744073709551615", "1000", "Ab9", &p, err, sizeof(err)));
    CHECK(p.since == UINT64_MAX && p.limit == 1000 && !strcmp(p.epoch, "Ab9"));
    static const struct {
        const char *since, *limit, *epoch, *names;
    } bad[] = {
        {"-1", NULL, NULL, "since"},
        {"1x", NULL, NULL, "since"},
        {"", NULL, NULL, "since"},
        {"18446744073709551616", NULL, NULL, "since"},
        {NULL, "0", NULL, "limit"},
        {NULL, "1001", NULL, "limit"},
        {NULL, "", NULL, "limit"},
        {NULL, " 5", NULL, "limit"},
        {NULL, NULL, "", "epoch"},
        {NULL, NULL, "a-b", "epoch"},
        {NULL, NULL, "0123456789abcdef", "epoch"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(!api_history_params_parse(bad[i].since, bad[i].limit, bad[i].epoch, &p, err,
                                        sizeof(err)));
        CHECK(!strncmp(err, bad[i].names, strlen(bad[i].names)));
    }
    char longv[600];
    memset(longv, '9', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    CHECK(!api_history_params_parse(longv, NULL, NULL, &p, err, sizeof(err)));
    CHECK(strlen(err) < 160); /* the value is quoted cut short */
}

static void test_rooms_params(void)
{
    api_rooms_params p;
    char err[256];
    CHECK(api_rooms_params_parse(NULL, NULL, &p, err, sizeof(err)));
    CHECK(p.limit == API_PAGE_DEFAULT && !p.after[0]);
    CHECK(api_rooms_params_parse("1", "", &p, err, sizeof(err)) && p.limit == 1 && !p.after[0]);
    CHECK(api_rooms_params_parse("7", "chat.a:b-c_d", &p, err, sizeof(err)));
    CHECK(p.limit == 7 && !strcmp(p.after, "chat.a:b-c_d"));
    CHECK(!api_rooms_params_parse("0", NULL, &p, err, sizeof(err)) && !strncmp(err, "limit", 5));
    CHECK(!api_rooms_params_parse(NULL, "a/b", &p, err, sizeof(err)) && !strncmp(err, "after", 5));
    char longname[ROOM_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK(!api_rooms_params_parse(NULL, longname, &p, err, sizeof(err)));
    longname[ROOM_NAME_MAX] = '\0';
    CHECK(api_rooms_params_parse(NULL, longname, &p, err, sizeof(err)));
}

TEST_MAIN("history_page", TEST(test_page_start), TEST(test_local_pages), TEST(test_shared_pages),
          TEST(test_room_list), TEST(test_history_params), TEST(test_rooms_params))
