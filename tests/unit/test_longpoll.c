/* SPDX-License-Identifier: MIT */
/*
 * test_longpoll.c - unit tests for the plain long poll's cursor and answer
 * (transports/plain/poll.c) with a real hub: the cursor of a from-now join
 * read after the hub already delivered, and the answer of a dropped poll,
 * which must never carry a last_id past a message the client did not get.
 */
#include "hub/hub.h"
#include "tests/unit/test.h"
#include "transports/plain/poll.h"

#include <stdlib.h>

static hub *new_hub(void)
{
    hub_options opt = {.history_size = 100, .history_ttl_ms = 60000};
    hub *h = hub_create(&opt);
    CHECK(h != NULL);
    return h;
}

static void pub_n(hub *h, const char *room, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t id = 0;
        CHECK(hub_publish(h, room, "[\"m\"]", 5, NULL, &id) == 0);
    }
}

/* The answer for s as a poll makes it, with the client's cursor. */
static char *answer(sub *s, uint64_t cursor, const char *cursor_epoch)
{
    size_t len = 0;
    pthread_mutex_lock(&s->lock);
    char *body = plain_poll_build_answer(s, cursor, cursor_epoch, "E", &len);
    pthread_mutex_unlock(&s->lock);
    CHECK(body != NULL);
    char *text = body ? strndup(body, len) : NULL; /* the answer has no NUL of its own */
    free(body);
    return text;
}

static bool has(const char *body, const char *part)
{
    bool ok = body && strstr(body, part);
    if (!ok)
        fprintf(stderr, "  %s lacks %s\n", body ? body : "(null)", part);
    return ok;
}

/* A publish lands between the join and the poll's read of its cursor; then
 * the queue overflows (the poll's connection was slow to answer). The
 * answer must start the client again before the message it never got. */
static void test_dropped_after_early_delivery(void)
{
    hub *h = new_hub();
    pub_n(h, "r", 3); /* ids 1..3 before the poll */
    sub s;
    sub_init(&s, SUB_LONGPOLL, MSG_FMT_JSON, 2);
    CHECK(hub_join(h, "r", &s, 0, true) == 0); /* from now: cursor 3 */
    pub_n(h, "r", 1);                          /* id 4, queued at once */
    pthread_mutex_lock(&s.lock);
    uint64_t cursor = plain_poll_join_cursor_locked(&s);
    pthread_mutex_unlock(&s.lock);
    CHECK(cursor == 3);
    pub_n(h, "r", 2); /* ids 5, 6: past the bound of 2, s is dropped */
    pthread_mutex_lock(&s.lock);
    CHECK(s.dropped);
    pthread_mutex_unlock(&s.lock);
    char *body = answer(&s, cursor, "");
    CHECK(has(body, "\"messages\":[]"));
    CHECK(has(body, "\"last_id\":3,")); /* not 4: message 4 was never answered */
    free(body);
    hub_leave(h, &s);
    sub_fini(&s);
    hub_destroy(h);
}

/* Nothing delivered yet: the cursor is the join's; a poll that gets two
 * messages answers them and the last one's id. */
static void test_cursor_and_messages(void)
{
    hub *h = new_hub();
    pub_n(h, "r", 5);
    sub s;
    sub_init(&s, SUB_LONGPOLL, MSG_FMT_JSON, 10);
    CHECK(hub_join(h, "r", &s, 0, true) == 0);
    pthread_mutex_lock(&s.lock);
    uint64_t cursor = plain_poll_join_cursor_locked(&s);
    pthread_mutex_unlock(&s.lock);
    CHECK(cursor == 5);
    char *body = answer(&s, cursor, "");
    CHECK(has(body, "\"messages\":[],\"last_id\":5,"));
    free(body);
    pub_n(h, "r", 2);
    body = answer(&s, cursor, "");
    CHECK(has(body, "\"id\":6"));
    CHECK(has(body, "\"id\":7"));
    CHECK(has(body, "\"last_id\":7,"));
    free(body);
    hub_leave(h, &s);
    sub_fini(&s);
    hub_destroy(h);
}

/* A resume that the hub drops keeps the client's cursor in the client's
 * epoch (not the room's, where the cursor would mean other messages): the
 * next poll resumes where this one started and learns of the gap again. */
static void test_dropped_resume_keeps_client_epoch(void)
{
    hub *h = new_hub();
    pub_n(h, "r", 2);
    sub s;
    sub_init(&s, SUB_LONGPOLL, MSG_FMT_JSON, 1);
    /* Another epoch: a gap signal, then ids 1, 2 (replays pass the bound). */
    CHECK(hub_resume(h, "r", &s, 1, "OLD") == 0);
    pub_n(h, "r", 1); /* the queue is over its bound already: dropped */
    pthread_mutex_lock(&s.lock);
    CHECK(s.dropped);
    pthread_mutex_unlock(&s.lock);
    char *body = answer(&s, 1, "OLD");
    CHECK(has(body, "\"last_id\":1,\"epoch\":\"OLD\""));
    free(body);
    hub_leave(h, &s);
    sub_fini(&s);
    hub_destroy(h);
}

TEST_MAIN("longpoll", TEST(test_dropped_after_early_delivery), TEST(test_cursor_and_messages),
          TEST(test_dropped_resume_keeps_client_epoch))
