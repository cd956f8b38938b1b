/* SPDX-License-Identifier: MIT */
/*
 * test_backlog.c - unit tests for hub/backlog.c through paced send queues
 * (sendq_pace): a queue past half its limit holds publishers back while it
 * drains, stops holding once it has not shrunk for the stall time (counted
 * as stalled) while others kept up, holds again when it drains again, and leaves the backlog at
 * its mark or when cleared. Queues without sendq_pace take no part.
 * Publishes in flight to the backplane past their bound hold publishers too.
 * The end of a hold calls the release hook at once, and a publish parked
 * meanwhile goes without waiting for the timer's tick.
 */
#include "hub/backlog.h"
#include "hub/sendq.h"
#include "tests/unit/test.h"
#include "transports/carriers/publish_pace.h"

#include <time.h>

#define LIMIT 8
#define STALL_MS 1500 /* long enough that a loaded machine does not pass it by surprise */

static msg *msgs[LIMIT + 1];

static void make_msgs(void)
{
    for (uint64_t i = 1; i <= LIMIT; i++)
        msgs[i] = msg_create(i, "q", "0", 1, NULL, 0);
}

static void free_msgs(void)
{
    for (size_t i = 1; i <= LIMIT; i++)
        msg_unref(msgs[i]);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_mark_and_leave(void)
{
    make_msgs();
    backlog_set_stall_ms(STALL_MS);
    sendq q;
    sendq_init(&q, LIMIT);
    sendq_pace(&q);
    CHECK(q.mark == LIMIT / 2);
    for (int i = 1; i <= LIMIT / 2; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    CHECK(!backlog_holding()); /* at the mark: not behind */
    CHECK(backlog_behind() == 0);
    CHECK(sendq_push(&q, msgs[5]) == 0);
    CHECK(backlog_holding()); /* past it: publishers wait */
    CHECK(backlog_behind() == 1);
    sendq_pop(&q); /* back at the mark */
    CHECK(!backlog_holding());
    CHECK(backlog_behind() == 0);
    CHECK(sendq_push(&q, msgs[6]) == 0);
    CHECK(backlog_behind() == 1);
    sendq_clear(&q); /* a dropped or closed subscriber */
    CHECK(backlog_behind() == 0 && !backlog_holding());
    free_msgs();
}

static void test_stalled_then_draining(void)
{
    make_msgs();
    backlog_set_stall_ms(STALL_MS);
    uint64_t stalled0 = backlog_stalled_total();
    sendq q;
    sendq_init(&q, LIMIT);
    sendq_pace(&q);
    for (int i = 1; i <= LIMIT - 1; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    CHECK(backlog_holding());
    sleep_ms(STALL_MS + 300); /* nothing popped: its reader stopped */
    CHECK(!backlog_holding());
    CHECK(backlog_stalled_total() == stalled0 + 1);
    CHECK(backlog_behind() == 0);
    CHECK(!backlog_holding()); /* counted once */
    CHECK(backlog_stalled_total() == stalled0 + 1);
    sendq_pop(&q); /* it drains again, still past the mark: it holds again */
    CHECK(backlog_behind() == 1);
    CHECK(backlog_holding());
    while (q.count > LIMIT / 2)
        sendq_pop(&q);
    CHECK(!backlog_holding() && backlog_behind() == 0);
    sendq_clear(&q);
    free_msgs();
}

/* Two queues behind: one stops, the other goes on draining. The stopped
 * one is judged only once the other drained a whole stall time after it
 * stopped; two that stop at about the same time are not judged while
 * either is fresh. */
static void test_stalled_while_others_keep_up(void)
{
    make_msgs();
    backlog_set_stall_ms(STALL_MS);
    uint64_t stalled0 = backlog_stalled_total();
    sendq a, b;
    sendq_init(&a, LIMIT);
    sendq_pace(&a);
    sendq_init(&b, LIMIT);
    sendq_pace(&b);
    for (int i = 1; i <= LIMIT - 1; i++) {
        CHECK(sendq_push(&a, msgs[i]) == 0);
        CHECK(sendq_push(&b, msgs[i]) == 0);
    }
    CHECK(backlog_behind() == 2);
    sleep_ms(STALL_MS / 2);
    sendq_pop(&b); /* b drains a little, a does not */
    sleep_ms(STALL_MS / 2 + 300);
    /* a is stale, b is fresh but drained only half a stall time after a
     * stopped: nobody judged, publishers wait */
    CHECK(backlog_holding());
    CHECK(backlog_stalled_total() == stalled0 && backlog_behind() == 2);
    sleep_ms(STALL_MS / 2);
    sendq_pop(&b); /* b drains a whole stall time after a stopped */
    CHECK(backlog_holding());
    CHECK(backlog_stalled_total() == stalled0 + 1); /* a */
    CHECK(backlog_behind() == 1);
    sendq_clear(&a);
    sendq_clear(&b);
    CHECK(backlog_behind() == 0);
    free_msgs();
}

/* Several queues behind that all stop at once (the readers' host stalled,
 * or this process was starved): publishers keep waiting, and they are
 * judged together only after four times the stall time. One alone is
 * judged after the stall time (test_stalled_then_draining). */
static void test_stopped_together_judged_later(void)
{
    enum { STALL = 500 };
    make_msgs();
    backlog_set_stall_ms(STALL);
    uint64_t stalled0 = backlog_stalled_total();
    sendq a, b;
    sendq_init(&a, LIMIT);
    sendq_pace(&a);
    sendq_init(&b, LIMIT);
    sendq_pace(&b);
    for (int i = 1; i <= LIMIT - 1; i++) {
        CHECK(sendq_push(&a, msgs[i]) == 0);
        CHECK(sendq_push(&b, msgs[i]) == 0);
    }
    sleep_ms(STALL + 200); /* both stale: still holding, nobody judged */
    CHECK(backlog_holding());
    CHECK(backlog_stalled_total() == stalled0 && backlog_behind() == 2);
    sleep_ms(3 * STALL + 300); /* past four stall times */
    CHECK(!backlog_holding());
    CHECK(backlog_stalled_total() == stalled0 + 2 && backlog_behind() == 0);
    sendq_clear(&a);
    sendq_clear(&b);
    backlog_set_stall_ms(STALL_MS);
    free_msgs();
}

static void test_unpaced_queue_takes_no_part(void)
{
    make_msgs();
    sendq q;
    sendq_init(&q, LIMIT);
    for (int i = 1; i <= LIMIT; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    CHECK(!backlog_holding() && backlog_behind() == 0);
    sendq_clear(&q);
    free_msgs();
}

static void test_paced_counts(void)
{
    uint64_t h = backlog_paced_total(PACE_HTTP), w = backlog_paced_total(PACE_WEBSOCKET);
    backlog_count_paced(PACE_HTTP);
    backlog_count_paced(PACE_WEBSOCKET);
    backlog_count_paced(PACE_WEBSOCKET);
    CHECK(backlog_paced_total(PACE_HTTP) == h + 1);
    CHECK(backlog_paced_total(PACE_WEBSOCKET) == w + 2);
    CHECK_STR(pace_kind_name(PACE_HTTP), "http");
    CHECK_STR(pace_kind_name(PACE_WEBSOCKET), "websocket");
    CHECK_STR(pace_kind_name(PACE_SIGNALR_HTTP), "signalr_http");
    CHECK_STR(pace_kind_name(PACE_SERVER_API), "server_api");
}

/* Publishes in flight to the backplane hold publishers from the bound on,
 * with no queue behind; none do when no bound is set. */
static void test_in_flight_holds(void)
{
    CHECK(!backlog_holding());
    backlog_flight(3);
    CHECK(backlog_in_flight() == 3);
    CHECK(!backlog_holding()); /* no bound set */
    backlog_set_flight_max(4);
    CHECK(!backlog_holding());
    backlog_flight(1);
    CHECK(backlog_holding());
    backlog_flight(-1);
    CHECK(!backlog_holding());
    backlog_flight(-3);
    CHECK(backlog_in_flight() == 0);
    backlog_set_flight_max(0);
}

static int releases;
static void count_release(void)
{
    releases++;
}

/* Each way a hold ends here calls the release hook at once: the last behind
 * queue back at its mark, caught up with the backplane, in-flight publishes
 * below their bound. */
static void test_release_hook(void)
{
    make_msgs();
    backlog_set_release_hook(count_release);
    sendq q;
    sendq_init(&q, LIMIT);
    sendq_pace(&q);
    for (int i = 1; i <= LIMIT / 2 + 1; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    CHECK(backlog_holding() && releases == 0);
    sendq_pop(&q); /* back at the mark */
    CHECK(!backlog_holding() && releases == 1);
    sendq_clear(&q);
    backlog_set_inbound(INBOUND_HOLD_BYTES);
    CHECK(backlog_holding() && releases == 1);
    backlog_set_inbound(0);
    CHECK(!backlog_holding() && releases == 2);
    backlog_set_flight_max(2);
    backlog_flight(3);
    backlog_flight(-1); /* still at the bound */
    CHECK(backlog_holding() && releases == 2);
    backlog_flight(-1);
    CHECK(!backlog_holding() && releases == 3);
    backlog_flight(-1);
    CHECK(releases == 3);
    backlog_set_flight_max(0);
    backlog_set_release_hook(NULL);
    free_msgs();
}

static int went;
static void go(void *arg)
{
    (void)arg;
    went++;
}
static void refuse(void *arg)
{
    (void)arg;
    CHECK(!"refused");
}

/* A publish parked while a queue is behind goes as soon as the queue is
 * back at its mark: the timer's wait (publish_pace_sleep) is woken and lets
 * it go, no tick needed (before, it waited for the next tick: up to 100 ms
 * per paced publish). */
static void test_parked_goes_at_release(void)
{
    make_msgs();
    publish_pace_init();
    sendq q;
    sendq_init(&q, LIMIT);
    sendq_pace(&q);
    for (int i = 1; i <= LIMIT / 2 + 1; i++)
        CHECK(sendq_push(&q, msgs[i]) == 0);
    pace_entry e = {.deadline = INT64_MAX, .go = go, .refuse = refuse};
    CHECK(publish_pace_park(&e, PACE_HTTP));
    publish_pace_sleep(20); /* still held: stays parked */
    CHECK(went == 0 && publish_pace_parked() == 1);
    sendq_pop(&q);          /* the hold ends */
    publish_pace_sleep(20); /* the timer's wait: woken, lets it go */
    CHECK(went == 1 && publish_pace_parked() == 0);
    sendq_clear(&q);
    backlog_set_release_hook(NULL);
    free_msgs();
}

TEST_MAIN("backlog", TEST(test_mark_and_leave), TEST(test_stalled_then_draining),
          TEST(test_stalled_while_others_keep_up), TEST(test_stopped_together_judged_later),
          TEST(test_unpaced_queue_takes_no_part), TEST(test_paced_counts),
          TEST(test_in_flight_holds), TEST(test_release_hook), TEST(test_parked_goes_at_release))
