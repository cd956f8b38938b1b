/* SPDX-License-Identifier: MIT */
/* Unit tests for transports/signalr/ticket.c: the connect proxy's verdict
 * signed into a clustered connection token. */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"
#include "transports/signalr/ticket.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define BASE "AAAAAAAAAAAAAAAAAAAAAA"

static access_principal *proxied(const char *user)
{
    access_principal *p = access_principal_new(user, 1767225600000, false, false);
    access_patterns_add(&p->subscribe, "chat.*");
    access_patterns_add(&p->publish, "chat.lobby");
    p->proxied = true;
    return p;
}

static void test_round_trip(void)
{
    access_principal *p = proxied("ann");
    const char *error = NULL;
    char *t = sr_ticket_make(SECRET, "chat", BASE, p, &error);
    CHECK(t && !error);
    CHECK(!strncmp(t, BASE ".", 23));
    CHECK(sr_ticket_present(t, strlen(t)));
    access_principal *q = sr_ticket_read(SECRET, "chat", t, strlen(t), &error);
    CHECK(q && !error);
    if (q) {
        CHECK_STR(q->user, "ann");
        CHECK(q->proxied && !q->token && q->expires_ms == 1767225600000);
        CHECK(q->subscribe.n == 1 && !strcmp(q->subscribe.items[0], "chat.*"));
        CHECK(q->publish.n == 1 && !strcmp(q->publish.items[0], "chat.lobby"));
    }
    access_unref(q);
    for (const char *c = t; *c; c++) /* URL-safe as it is */
        CHECK((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.');
    free(t);
    access_unref(p);
}

static void test_anonymous(void)
{
    const char *error = NULL;
    char *t = sr_ticket_make(SECRET, "chat", BASE, NULL, &error);
    access_principal *q = t ? sr_ticket_read(SECRET, "chat", t, strlen(t), &error) : NULL;
    CHECK(q && !q->user && q->proxied && !q->subscribe.n && !q->publish.n);
    access_unref(q);
    free(t);
}

/* Any byte changed, another secret, another hub, a cut token: refused. */
static void test_refusals(void)
{
    access_principal *p = proxied("ann");
    const char *error = NULL;
    char *t = sr_ticket_make(SECRET, "chat", BASE, p, &error);
    size_t n = strlen(t);
    CHECK(!sr_ticket_read("another secret, long enough 123456", "chat", t, n, &error));
    CHECK(error && strstr(error, "not valid"));
    CHECK(!sr_ticket_read(SECRET, "other", t, n, &error));
    CHECK(!sr_ticket_read(SECRET, "chat", t, n - 1, &error));
    CHECK(!sr_ticket_read(SECRET, "chat", BASE, 22, &error));
    CHECK(error && strstr(error, "no connect proxy verdict"));
    for (size_t i = 0; i < n; i++) {
        char *u = strdup(t);
        u[i] = u[i] == 'A' ? 'B' : 'A';
        access_principal *q = sr_ticket_read(SECRET, "chat", u, n, &error);
        CHECK(!q);
        access_unref(q);
        free(u);
    }
    free(t);
    access_unref(p);
}

static void test_too_large(void)
{
    access_principal *p = access_principal_new("ann", 0, false, false);
    for (int i = 0; i < 40; i++)
        access_patterns_add(&p->subscribe, "a-rather-long-room-pattern-name.*");
    const char *error = NULL;
    CHECK(!sr_ticket_make(SECRET, "chat", BASE, p, &error));
    CHECK(error && strstr(error, "too large"));
    access_unref(p);
}

TEST_MAIN("signalr_ticket", TEST(test_round_trip), TEST(test_anonymous), TEST(test_refusals),
          TEST(test_too_large))
