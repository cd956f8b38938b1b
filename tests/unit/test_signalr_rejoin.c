/* SPDX-License-Identifier: MIT */
/*
 * test_signalr_rejoin.c - unit tests for transports/signalr/rejoin.c: the
 * crier_rooms parameter (ROOM:EPOCH:ID entries split from the right, ROOM::0,
 * percent-decoding, and every refusal).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"
#include "transports/signalr/rejoin.h"

static sr_rejoin *parse(const char *text, bool decode)
{
    sr_rejoin *rj = NULL;
    const char *why = sr_rejoin_parse(text, strlen(text), decode, &rj);
    CHECK(!why || !rj);
    return rj;
}

static const char *error_of(const char *text, bool decode)
{
    sr_rejoin *rj = NULL;
    const char *why = sr_rejoin_parse(text, strlen(text), decode, &rj);
    CHECK(!rj);
    free(rj);
    return why ? why : "";
}

static void test_parses(void)
{
    sr_rejoin *rj = parse("lobby:Zq3xT0bA:41,team.red:news:x::0,a:Ep:18446744073709551615", false);
    CHECK(rj && rj->n == 3);
    if (rj && rj->n == 3) {
        CHECK_STR(rj->rooms[0].room, "lobby");
        CHECK_STR(rj->rooms[0].epoch, "Zq3xT0bA");
        CHECK(rj->rooms[0].since == 41);
        CHECK_STR(rj->rooms[1].room, "team.red:news:x"); /* a room name may hold ':' */
        CHECK_STR(rj->rooms[1].epoch, "");
        CHECK(rj->rooms[1].since == 0);
        CHECK(rj->rooms[2].since == UINT64_MAX);
    }
    free(rj);
    rj = parse("a%3AEp0ch%3A7%2cb%3a%3A0", true);
    CHECK(rj && rj->n == 2 && !strcmp(rj->rooms[0].room, "a") && rj->rooms[0].since == 7 &&
          !strcmp(rj->rooms[1].room, "b"));
    free(rj);
    CHECK(parse("", false) == NULL); /* empty: no rooms, no error */
    CHECK(!strcmp(error_of("", false), ""));
}

static void test_refuses(void)
{
    CHECK(strstr(error_of("lobby", false), "ROOM:EPOCH:ID"));
    CHECK(strstr(error_of("lobby:5", false), "ROOM:EPOCH:ID"));
    CHECK(strstr(error_of(":Ep:5", false), "room name"));
    CHECK(strstr(error_of("lo bby:Ep:5", false), "room name"));
    CHECK(strstr(error_of("lobby:E-p:5", false), "epoch"));
    CHECK(strstr(error_of("lobby:Ep0123456789abcdef:5", false), "epoch"));
    CHECK(strstr(error_of("lobby:Ep:-1", false), "non-negative integer"));
    CHECK(strstr(error_of("lobby:Ep:", false), "non-negative integer"));
    CHECK(strstr(error_of("lobby::5", false), "needs the room's epoch"));
    CHECK(strstr(error_of("a::0,a::0", false), "named twice"));
    CHECK(strstr(error_of("a::0,,b::0", false), "ROOM:EPOCH:ID"));
    CHECK(strstr(error_of("a%3", true), "percent-encoded"));
    CHECK(strstr(error_of("a%00::0", true), "percent-encoded")); /* no NUL */
    char many[64 * 8 + 16] = "";
    for (int i = 0; i <= SR_REJOIN_MAX_ROOMS; i++)
        strcat(many, i ? ",r::0" : "r::0"); /* 65 entries (the count comes first) */
    CHECK(strstr(error_of(many, false), "too many rooms"));
    char *big = malloc(SR_REJOIN_MAX_BYTES + 2);
    if (big) {
        memset(big, 'a', SR_REJOIN_MAX_BYTES + 1);
        big[SR_REJOIN_MAX_BYTES + 1] = '\0';
        CHECK(strstr(error_of(big, false), "too long"));
        free(big);
    }
}

TEST_MAIN("signalr_rejoin", TEST(test_parses), TEST(test_refuses))
