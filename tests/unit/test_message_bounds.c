/* SPDX-License-Identifier: MIT */
/*
 * test_message_bounds.c - hub/message.c and the SignalR encoder it runs
 * (transports/signalr/encode.c) never read a message's envelope as a C
 * string: it is not NUL-terminated. Run with ASan's strict string checks,
 * under which a str* function given the envelope reports a
 * heap-buffer-overflow (found by fuzz_redis: room_of's strstr read past the
 * envelope when encoding a SignalR record). A file of its own, so that the
 * stricter checks apply to this test only.
 */
#include "hub/message.h"
#include "transports/signalr/encode.h"
#include "tests/unit/test.h"
#include "tests/unit/msg_check.h"

#include <stdlib.h>

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "strict_string_checks=1";
}

/* The SignalR record of a room message names its room in its headers. */
static void test_signalr_record_room_header(void)
{
    msg *m = msg_create_in(1, "lobby", "EPOCH1", "\"hi\"", 4, NULL, 0);
    CHECK(m != NULL);
    CHECK(msg_encode(m, SR_FMT_RECORD, "Receive") == 0);
    CHECK(bytes_eq(msg_get(m, SR_FMT_RECORD, "Receive"),
                   "{\"type\":1,\"target\":\"Receive\",\"arguments\":[\"hi\"],\"headers\":{"
                   "\"crier-id\":\"1\",\"crier-epoch\":\"EPOCH1\",\"crier-room\":\"lobby\"}}\x1e"));
    CHECK(msg_encode(m, SR_FMT_SSE, "Receive") == 0);
    CHECK(msg_get(m, SR_FMT_SSE, "Receive").len > 0);
    msg_unref(m);
}

/* A gap signal's record names the room from its info. */
static void test_signalr_gap_room_header(void)
{
    static const char info[] = "{\"room\":\"r\",\"epoch\":\"E\",\"reason\":\"expired\","
                               "\"since\":1,\"resumed_from\":5}";
    msg *g = msg_create_gap(info, sizeof(info) - 1);
    CHECK(g != NULL);
    g->id = 4;
    CHECK(msg_encode(g, SR_FMT_RECORD, "Receive") == 0);
    msg_bytes b = msg_get(g, SR_FMT_RECORD, "Receive");
    CHECK(b.len > 0 && memmem(b.base, b.len, "\"crier-room\":\"r\"", 16) != NULL);
    msg_unref(g);
}

TEST_MAIN("message_bounds", TEST(test_signalr_record_room_header),
          TEST(test_signalr_gap_room_header))
