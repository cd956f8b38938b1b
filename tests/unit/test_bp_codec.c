/* SPDX-License-Identifier: MIT */
/*
 * test_bp_codec.c - unit tests for hub/bp_codec.c, the decoding of what the
 * Redis backplane reads: a room's channel message ("epoch id wall origin
 * exclude local target\n" then the data), a stream entry [id, [field,
 * value, …]], numbers as integers or text, the shape of fetch_lua's answer
 * {epoch, last id, entries}, the room of a channel name and the presence
 * events on a room's channel ("!p join USER"). Malformed
 * inputs are refused, never read past. Replies are built by hand, as
 * hiredis would hand them over.
 */
#include "hub/bp_codec.h"
#include "tests/unit/test.h"

#include <stdint.h>
#include <string.h>

static redisReply str_reply(const char *s)
{
    return (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)s, .len = strlen(s)};
}

static redisReply int_reply(long long v)
{
    return (redisReply){.type = REDIS_REPLY_INTEGER, .integer = v};
}

static redisReply array_reply(redisReply **e, size_t n)
{
    return (redisReply){.type = REDIS_REPLY_ARRAY, .element = e, .elements = n};
}

/* Parses text as a whole channel message. */
static bool parse(const char *text, char *epoch, bp_entry *e, char *origin, char *target)
{
    return bp_parse_message(text, strlen(text), epoch, e, origin, target);
}

static void test_message_well_formed(void)
{
    char epoch[MSG_EPOCH_MAX], origin[BP_NODE_ID_LEN + 1], target[BP_TARGET_MAX];
    bp_entry e;
    const char *m = "Ab3dE9xZ 42 1700000000123 NODEabcdefgh 7 1 ReceiveMessage\n{\"a\":1}";
    CHECK(parse(m, epoch, &e, origin, target));
    CHECK_STR(epoch, "Ab3dE9xZ");
    CHECK(e.id == 42);
    CHECK(e.wall_ms == 1700000000123LL);
    CHECK_STR(e.origin, "NODEabcdefgh");
    CHECK(e.exclude == 7);
    CHECK(e.local_done);
    CHECK_STR(e.target, "ReceiveMessage");
    CHECK(e.len == 7 && !memcmp(e.data, "{\"a\":1}", 7));

    /* "-" is no target; local 0; the data may hold newlines and be empty. */
    m = "e 1 0 n 0 0 -\nline1\nline2";
    CHECK(parse(m, epoch, &e, origin, target));
    CHECK(e.id == 1 && !e.local_done && e.exclude == 0);
    CHECK_STR(e.target, "");
    CHECK(e.len == 11 && !memcmp(e.data, "line1\nline2", 11));
    CHECK(parse("e 2 0 n 0 0 -\n", epoch, &e, origin, target) && e.len == 0);

    /* The largest numbers. */
    m = "e 18446744073709551615 -5 n 18446744073709551615 0 -\n1";
    CHECK(parse(m, epoch, &e, origin, target));
    CHECK(e.id == UINT64_MAX && e.exclude == UINT64_MAX && e.wall_ms == -5);
}

static void test_message_malformed(void)
{
    char epoch[MSG_EPOCH_MAX], origin[BP_NODE_ID_LEN + 1], target[BP_TARGET_MAX];
    bp_entry e;
    static const char *const bad[] = {
        "",                  /* nothing */
        "e 1 0 n 0 0 -",     /* no newline: no data */
        "e 1 0 n 0 0\n{}",   /* a field missing */
        "e x 0 n 0 0 -\n{}", /* id not a number */
        "e 1 w n 0 0 -\n{}", /* wall not a number */
        "e 1 0 n x 0 -\n{}", /* exclude not a number */
        "e 1 0 n 0 x -\n{}", /* local not a number */
        "\n{}",              /* an empty head */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool ok = parse(bad[i], epoch, &e, origin, target);
        if (ok)
            fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
        CHECK(!ok);
    }
    /* A head longer than any well-formed one is refused unread. */
    char longhead[400];
    memset(longhead, 'a', sizeof(longhead));
    longhead[300] = '\n';
    CHECK(!bp_parse_message(longhead, sizeof(longhead), epoch, &e, origin, target));
    /* A newline past len is not seen. */
    const char *m = "e 1 0 n 0 0 -\n{}";
    CHECK(!bp_parse_message(m, 8, epoch, &e, origin, target));
    /* Over-long fields stop at their buffers' sizes, then the rest fails. */
    CHECK(!parse("ABCDEFGHIJKLMNOPQRSTU 1 0 n 0 0 -\n{}", epoch, &e, origin, target));
    CHECK(strlen(epoch) < MSG_EPOCH_MAX);
}

static void test_entry(void)
{
    redisReply id = str_reply("5-1");
    redisReply k[6] = {str_reply("w"), str_reply("o"), str_reply("x"),
                       str_reply("l"), str_reply("t"), str_reply("d")};
    redisReply v[6] = {str_reply("1700"), str_reply("NODE"), str_reply("9"),
                       str_reply("1"),    str_reply("-"),    str_reply("{\"b\":2}")};
    redisReply *fv[12];
    for (int i = 0; i < 6; i++) {
        fv[2 * i] = &k[i];
        fv[2 * i + 1] = &v[i];
    }
    redisReply fields = array_reply(fv, 12);
    redisReply *pair[2] = {&id, &fields};
    redisReply entry = array_reply(pair, 2);
    bp_entry e;
    CHECK(bp_parse_entry(&entry, &e));
    CHECK(e.id == 5 && e.wall_ms == 1700 && e.exclude == 9 && e.local_done);
    CHECK_STR(e.origin, "NODE");
    CHECK_STR(e.target, "");
    CHECK(e.len == 7 && !memcmp(e.data, "{\"b\":2}", 7));

    /* Unknown fields and an odd trailing field are skipped. */
    redisReply unknown = str_reply("zz");
    redisReply *fv2[5] = {&unknown, &v[0], &k[5], &v[5], &k[0]};
    fields = array_reply(fv2, 5);
    CHECK(bp_parse_entry(&entry, &e) && e.id == 5 && e.wall_ms == 0 && e.len == 7);

    /* No data: refused. */
    fields = array_reply(fv, 10);
    CHECK(!bp_parse_entry(&entry, &e));
    fields = array_reply(fv, 12);
    /* Id 0 or not a number: refused. */
    id = str_reply("0-1");
    CHECK(!bp_parse_entry(&entry, &e));
    id = str_reply("x");
    CHECK(!bp_parse_entry(&entry, &e));
    id = str_reply("5-1");
    /* Wrong shapes. */
    redisReply i5 = int_reply(5);
    redisReply *bad_id[2] = {&i5, &fields};
    redisReply bad = array_reply(bad_id, 2);
    CHECK(!bp_parse_entry(&bad, &e));
    redisReply *bad_fields[2] = {&id, &id};
    bad = array_reply(bad_fields, 2);
    CHECK(!bp_parse_entry(&bad, &e));
    bad = array_reply(pair, 1);
    CHECK(!bp_parse_entry(&bad, &e));
    CHECK(!bp_parse_entry(&id, &e));
}

static void test_u64(void)
{
    uint64_t v = 1;
    redisReply r = int_reply(0);
    CHECK(bp_parse_u64(&r, &v) && v == 0);
    r = int_reply(123);
    CHECK(bp_parse_u64(&r, &v) && v == 123);
    r = int_reply(-1);
    CHECK(!bp_parse_u64(&r, &v));
    r = str_reply("18446744073709551615");
    CHECK(bp_parse_u64(&r, &v) && v == UINT64_MAX);
    r = str_reply("18446744073709551616"); /* out of range */
    CHECK(!bp_parse_u64(&r, &v));
    r = str_reply("");
    CHECK(!bp_parse_u64(&r, &v));
    r = str_reply("abc");
    CHECK(!bp_parse_u64(&r, &v));
    r = (redisReply){.type = REDIS_REPLY_NIL};
    CHECK(!bp_parse_u64(&r, &v));
    r = (redisReply){.type = REDIS_REPLY_ERROR, .str = (char *)"ERR", .len = 3};
    CHECK(!bp_parse_u64(&r, &v));
}

static void test_fetch_reply_shapes(void)
{
    uint64_t last = 0;
    redisReply epoch = str_reply("Ab3dE9xZ"), n = int_reply(17), n_text = str_reply("18");
    redisReply entries = array_reply(NULL, 0);
    redisReply *ok[3] = {&epoch, &n, &entries};
    redisReply r = array_reply(ok, 3);
    CHECK(bp_fetch_reply_ok(&r, &last) && last == 17);
    redisReply *ok_text[3] = {&epoch, &n_text, &entries};
    r = array_reply(ok_text, 3);
    CHECK(bp_fetch_reply_ok(&r, &last) && last == 18);

    r = array_reply(ok, 2); /* too short */
    CHECK(!bp_fetch_reply_ok(&r, &last));
    redisReply *no_epoch[3] = {&n, &n, &entries};
    r = array_reply(no_epoch, 3);
    CHECK(!bp_fetch_reply_ok(&r, &last));
    redisReply *bad_n[3] = {&epoch, &epoch, &entries};
    r = array_reply(bad_n, 3);
    CHECK(!bp_fetch_reply_ok(&r, &last));
    redisReply *bad_list[3] = {&epoch, &n, &n};
    r = array_reply(bad_list, 3);
    CHECK(!bp_fetch_reply_ok(&r, &last));
    r = (redisReply){.type = REDIS_REPLY_ERROR, .str = (char *)"NOSCRIPT", .len = 8};
    CHECK(!bp_fetch_reply_ok(&r, &last));
}

static void test_room_of_channel(void)
{
    CHECK_STR(bp_room_of_channel("crier:", "crier:c:lobby"), "lobby");
    CHECK_STR(bp_room_of_channel("", "c:a:b"), "a:b");
    CHECK(bp_room_of_channel("crier:", "crier:n:NODE") == NULL);
    CHECK(bp_room_of_channel("crier:", "other:c:lobby") == NULL);
    CHECK(bp_room_of_channel("crier:", "crier:") == NULL);
    CHECK_STR(bp_room_of_channel("p", "pc:"), ""); /* an empty room: the caller's to refuse */
}

/* Parses text (len bytes) as a presence event; the user copied into out. */
static bp_presence_kind presence(const char *text, size_t len, bool *join, char *out, size_t cap)
{
    const char *user = NULL;
    size_t n = 0;
    bp_presence_kind k = bp_parse_presence(text, len, join, &user, &n);
    out[0] = '\0';
    if (k == BP_PRESENCE_EVENT) {
        CHECK(user >= text && user + n == text + len); /* points into the message, to its end */
        CHECK(n > 0 && n < cap);
        memcpy(out, user, n);
        out[n] = '\0';
    }
    return k;
}

static void test_presence_event(void)
{
    bool join = false;
    char user[64];
    CHECK(presence("!p join alice", 13, &join, user, sizeof(user)) == BP_PRESENCE_EVENT);
    CHECK(join);
    CHECK_STR(user, "alice");
    CHECK(presence("!p leave bob smith", 18, &join, user, sizeof(user)) == BP_PRESENCE_EVENT);
    CHECK(!join);
    CHECK_STR(user, "bob smith"); /* the rest of the message, spaces and all */
    CHECK(presence("!p join  x", 10, &join, user, sizeof(user)) == BP_PRESENCE_EVENT);
    CHECK_STR(user, " x");
    /* not presence: a room message (it starts with its epoch), or too short */
    CHECK(presence("Zq3xT0bA 1 2 N - 0 -\n\"hi\"", 26, &join, user, sizeof(user)) ==
          BP_PRESENCE_NONE);
    CHECK(presence("", 0, &join, user, sizeof(user)) == BP_PRESENCE_NONE);
    CHECK(presence("!p", 2, &join, user, sizeof(user)) == BP_PRESENCE_NONE);
    CHECK(presence("!q join a", 9, &join, user, sizeof(user)) == BP_PRESENCE_NONE);
    /* the prefix, then neither a join nor a leave of someone */
    CHECK(presence("!p ", 3, &join, user, sizeof(user)) == BP_PRESENCE_MALFORMED);
    CHECK(presence("!p join ", 8, &join, user, sizeof(user)) == BP_PRESENCE_MALFORMED);
    CHECK(presence("!p leave ", 9, &join, user, sizeof(user)) == BP_PRESENCE_MALFORMED);
    CHECK(presence("!p join", 7, &join, user, sizeof(user)) == BP_PRESENCE_MALFORMED);
    CHECK(presence("!p kick alice", 13, &join, user, sizeof(user)) == BP_PRESENCE_MALFORMED);
    CHECK(presence("!p JOIN alice", 13, &join, user, sizeof(user)) == BP_PRESENCE_MALFORMED);
    /* a NUL in the user would cut it to another user's name */
    CHECK(presence("!p join ali\0ce", 14, &join, user, sizeof(user)) == BP_PRESENCE_MALFORMED);
    CHECK(presence("!p leave \0", 10, &join, user, sizeof(user)) == BP_PRESENCE_MALFORMED);
    /* the length is what counts: bytes past it are not read */
    CHECK(presence("!p join alice", 9, &join, user, sizeof(user)) == BP_PRESENCE_EVENT);
    CHECK_STR(user, "a");
    /* who is present, for one node (redis_presence.c's sync) */
    static const char sync[] = "!p sync NODE1\n[\"a\",\"b c\"]";
    CHECK(presence(sync, sizeof(sync) - 1, &join, user, sizeof(user)) == BP_PRESENCE_SYNC);
    const char *node, *users;
    size_t node_len, users_len;
    CHECK(bp_parse_presence_sync(sync, sizeof(sync) - 1, &node, &node_len, &users, &users_len));
    CHECK(node_len == 5 && !memcmp(node, "NODE1", 5));
    CHECK(users_len == 11 && !memcmp(users, "[\"a\",\"b c\"]", 11));
    CHECK(bp_parse_presence_sync("!p sync NODE1\n*", 15, &node, &node_len, &users, &users_len));
    CHECK(users_len == 1 && users[0] == '*');
    CHECK(!bp_parse_presence_sync("!p sync NODE1", 13, &node, &node_len, &users, &users_len));
    CHECK(!bp_parse_presence_sync("!p sync \n[]", 11, &node, &node_len, &users, &users_len));
    CHECK(!bp_parse_presence_sync("!p join x", 9, &node, &node_len, &users, &users_len));
}

int main(void)
{
    static const test_case tests[] = {
        TEST(test_message_well_formed),
        TEST(test_message_malformed),
        TEST(test_entry),
        TEST(test_u64),
        TEST(test_fetch_reply_shapes),
        TEST(test_room_of_channel),
        TEST(test_presence_event),
    };
    return test_run("bp_codec", tests, sizeof(tests) / sizeof(tests[0]));
}
