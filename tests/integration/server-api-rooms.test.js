// The server API's paged reads (README "Server API"): GET
// /rooms/{room}/history (kept messages after a cursor, as a long poll
// carries them, with gap/more/last_id/epoch), GET /rooms (this node's rooms,
// sorted by name, paged with after=), their 400s for bad parameters, and
// who may call them with auth on (history: an API key or the subscribe
// right on the room; the room list: an API key). Runs on the memory
// backplane and, in the suite's second pass, on Redis (the history is then
// read from Redis).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertJsonError, poll, publish, request } from '../lib/http.js';
import { startCrier, stopClean } from '../lib/server.js';
import { startRedis } from '../lib/redis.js';
import { mintToken, nowS } from '../lib/token.js';
import { waitFor } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

const onRedis = process.env.CRIER_TEST_BACKPLANE === 'redis';
// The two-node suite brings its own Redis: it runs in the memory pass only.
const ownRedis = onRedis ? 'starts its own Redis: run in the memory pass' : false;
const HISTORY = 5;

const history = (base, room, query = '', headers = {}) =>
  request(`${base}/rooms/${room}/history${query}`, { headers });

const ids = (res) => res.json.messages.map((m) => m.id);

describe('GET /rooms/{room}/history', { timeout: 60_000 }, () => {
  let srv;
  let base;
  before(async () => {
    srv = await startCrier({
      history: { size: HISTORY, ttl_s: 300 },
      limits: { max_message_bytes: 300_000, poll_timeout_s: 1 },
    });
    base = srv.url;
  });
  after(() => srv && stopClean(srv));

  test('since, limit, more, gap, epoch and last_id after publishes', async () => {
    const room = 'hist.a';
    const published = [];
    for (let i = 1; i <= 7; i++) published.push(await publish(base, room, { n: i }));
    assert.deepEqual(published, [1, 2, 3, 4, 5, 6, 7]);
    const info = await request(`${base}/rooms/${room}`);
    assert.equal(info.status, 200, info.text);
    const epoch = info.json.epoch;

    // no since: from the oldest kept (3..7): 1 and 2 are lost
    let res = await history(base, room);
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/);
    assert.deepEqual(ids(res), [3, 4, 5, 6, 7]);
    assert.deepEqual(
      { room: res.json.room, epoch: res.json.epoch, last_id: res.json.last_id, gap: res.json.gap, more: res.json.more },
      { room, epoch, last_id: 7, gap: true, more: false },
    );
    assert.deepEqual(res.json.messages[0], { id: 3, epoch, room, data: { n: 3 } });

    // a page at a time: since=4&limit=2 -> 5, 6 and more; then from last_id
    res = await history(base, room, '?since=4&limit=2');
    assert.deepEqual([ids(res), res.json.gap, res.json.more, res.json.last_id], [[5, 6], false, true, 6]);
    res = await history(base, room, `?since=${res.json.last_id}&limit=2&epoch=${epoch}`);
    assert.deepEqual([ids(res), res.json.gap, res.json.more, res.json.last_id], [[7], false, false, 7]);

    // up to date: nothing, no gap, last_id stays
    res = await history(base, room, '?since=7');
    assert.deepEqual([ids(res), res.json.gap, res.json.more, res.json.last_id], [[], false, false, 7]);

    // since 2 reaches back to 3: no gap; since 1 does not
    res = await history(base, room, '?since=2&limit=1');
    assert.deepEqual([ids(res), res.json.gap, res.json.more], [[3], false, true]);
    res = await history(base, room, '?since=1&limit=1');
    assert.deepEqual([ids(res), res.json.gap], [[3], true]);

    // another epoch, or a cursor past the room's last id: a gap, from the oldest kept
    res = await history(base, room, '?since=6&epoch=NotThisOne');
    assert.deepEqual([ids(res), res.json.gap, res.json.epoch], [[3, 4, 5, 6, 7], true, epoch]);
    res = await history(base, room, '?since=99');
    assert.deepEqual([ids(res), res.json.gap], [[3, 4, 5, 6, 7], true]);

    // the same messages as a long poll resuming from the same cursor
    const p = await poll(base, room, 2);
    assert.equal(p.status, 200, JSON.stringify(p.json));
    res = await history(base, room, '?since=2');
    assert.deepEqual(res.json.messages, p.json.messages);

    // later publishes show at once
    assert.equal(await publish(base, room, 'eight'), 8);
    res = await history(base, room, '?since=7');
    assert.deepEqual(res.json.messages, [{ id: 8, epoch, room, data: 'eight' }]);
    assert.equal(res.json.last_id, 8);

    // HEAD: the headers only
    const head = await request(`${base}/rooms/${room}/history`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
  });

  test('a room that does not exist: 404', async () => {
    assertJsonError(await history(base, 'hist.never'), 404, 'history of an unknown room');
  });

  const bad = {
    'since=-1': 'since',
    'since=abc': 'since',
    'since=': 'since',
    'since=18446744073709551616': 'since',
    'limit=0': 'limit',
    'limit=1001': 'limit',
    'limit=x': 'limit',
    'epoch=a-b': 'epoch',
    'epoch=0123456789abcdef': 'epoch',
  };
  for (const [query, name] of Object.entries(bad)) {
    test(`?${query} -> 400 naming ${name}`, async () => {
      await publish(base, 'hist.bad', 1);
      const res = await history(base, 'hist.bad', `?${query}`);
      assertJsonError(res, 400, query);
      assert.match(res.json.error, new RegExp(`^${name} `), res.text);
    });
  }

  test('limit=1000 is taken; a bad room name is 400', async () => {
    await publish(base, 'hist.max', 1);
    const res = await history(base, 'hist.max', '?limit=1000');
    assert.equal(res.status, 200, res.text);
    assertJsonError(await history(base, 'a!b'), 400, 'bad room name');
  });

  test('a large page is cut near 1 MiB: more, and the next page goes on from last_id', async () => {
    const room = 'hist.big';
    const big = 'x'.repeat(250_000); // five of them pass 1 MiB
    for (let i = 1; i <= HISTORY; i++) await publish(base, room, `${i}${big}`);
    const seen = [];
    let since = 0;
    let pages = 0;
    for (;;) {
      const res = await history(base, room, `?since=${since}`);
      assert.equal(res.status, 200);
      assert.ok(res.text.length < 1.5 * 1024 * 1024, `answer of ${res.text.length} bytes`);
      assert.ok(res.json.messages.length >= 1);
      seen.push(...ids(res));
      since = res.json.last_id;
      pages++;
      if (!res.json.more) break;
      assert.ok(pages < 10);
    }
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    assert.ok(pages >= 2, `${pages} page(s)`);
  });
});

describe('GET /rooms', { timeout: 60_000 }, () => {
  let srv;
  let base;
  const sockets = [];
  before(async () => {
    srv = await startCrier({ history: { size: HISTORY, ttl_s: 300 } });
    base = srv.url;
  });
  after(async () => {
    for (const ws of sockets) ws.close();
    if (srv) await stopClean(srv);
  });

  test('rooms with members, sorted by name, paged with after=, as GET /rooms/{room} says', async () => {
    const names = ['list.d', 'list.a', 'list.c', 'list.b', 'list.e'];
    for (const name of names) sockets.push(await openWs(`${srv.wsUrl}/rooms/${name}/ws`));
    sockets.push(await openWs(`${srv.wsUrl}/rooms/list.a/ws`)); // two members in list.a
    for (const name of names) await publish(base, name, name);
    // the members' joins are in effect (on Redis, once the room is fetched)
    await waitFor(
      async () => {
        const r = await request(`${base}/rooms?limit=1000`);
        const listed = r.json?.rooms?.filter((x) => x.room.startsWith('list.'));
        return listed?.length === 5 && listed.every((x) => x.last_id === 1) && r;
      },
      { message: 'the five rooms listed' },
    );

    const walked = [];
    let after = '';
    for (let pages = 0; ; pages++) {
      const res = await request(`${base}/rooms?limit=2${after ? `&after=${after}` : ''}`);
      assert.equal(res.status, 200, res.text);
      assert.ok(res.json.rooms.length <= 2);
      walked.push(...res.json.rooms);
      if (res.json.next === null) break;
      assert.equal(res.json.next, res.json.rooms.at(-1).room);
      after = res.json.next;
      assert.ok(pages < 50);
    }
    const mine = walked.filter((x) => x.room.startsWith('list.'));
    assert.deepEqual(
      mine.map((x) => x.room),
      ['list.a', 'list.b', 'list.c', 'list.d', 'list.e'],
    );
    const sorted = walked.map((x) => x.room);
    assert.deepEqual(sorted, [...sorted].sort());
    for (const entry of mine) {
      const info = await request(`${base}/rooms/${entry.room}`);
      // With Redis GET /rooms/{room} adds the cluster's totals; the list does not,
      // and the listing adds what this node's history keeps of the room.
      const { cluster, ...single } = info.json;
      assert.ok(cluster === undefined || typeof cluster === 'object', `${entry.room}: cluster ${JSON.stringify(cluster)}`);
      const { history, ...same } = entry;
      assert.deepEqual(same, single, `${entry.room}: listed as GET /rooms/{room} answers`);
      assert.ok(Number.isInteger(history.messages) && Number.isInteger(history.bytes), `${entry.room}: history counts`);
      if (!onRedis) {
        assert.equal(history.messages, 1, `${entry.room}: its one message is kept`);
        assert.ok(history.bytes > 0, `${entry.room}: and counts bytes`);
      }
    }
    assert.equal(mine[0].subscribers.websocket, 2);
    assert.equal(mine[1].subscribers.websocket, 1);
  });

  test('a room with history and no member here: listed on memory, not on Redis', async () => {
    await publish(base, 'list.quiet', 1);
    const res = await request(`${base}/rooms?after=list.e`);
    assert.equal(res.status, 200);
    const names = res.json.rooms.map((x) => x.room);
    assert.equal(names.includes('list.quiet'), !onRedis, JSON.stringify(names));
  });

  test('after= past every name: empty; bad limit and after: 400', async () => {
    const res = await request(`${base}/rooms?after=~`);
    assert.equal(res.status, 400); // not a room name
    const end = await request(`${base}/rooms?after=zzzzzzzz`);
    assert.deepEqual(end.json, { rooms: [], next: null });
    for (const [query, name] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=-5', 'limit'],
      ['after=a%2Fb', 'after'],
      [`after=${'r'.repeat(129)}`, 'after'],
    ]) {
      const r = await request(`${base}/rooms?${query}`);
      assertJsonError(r, 400, query);
      assert.match(r.json.error, new RegExp(`^${name} `));
    }
    assertJsonError(await request(`${base}/rooms`, { method: 'POST' }), 405, 'POST /rooms');
  });
});

describe('server API access with auth on', { timeout: 60_000 }, () => {
  const SECRET = 'a-test-hmac-secret-of-some-length-0123456789';
  const API_KEY = 'rooms-api-key-5d1e';
  let srv;
  let base;
  const token = (claims = {}) =>
    mintToken({ secret: SECRET, claims: { sub: 'alice', exp: nowS() + 3600, ...claims } });
  const bearer = (t) => ({ Authorization: `Bearer ${t}` });
  before(async () => {
    srv = await startCrier({
      auth: {
        jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
        rooms: [
          { match: 'public.*', subscribe: 'public', publish: 'api_key' },
          { match: 'chat.*', subscribe: 'claim', publish: 'api_key' },
        ],
        api_keys: [API_KEY],
        protect_admin: true,
      },
    });
    base = srv.url;
    for (const room of ['public.a', 'chat.a']) {
      const res = await request(`${base}/rooms/${room}/messages`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...bearer(API_KEY) },
        body: '"hello"',
      });
      assert.equal(res.status, 201, res.text);
    }
  });
  after(() => srv && stopClean(srv));

  test('history: the subscribe right on the room, or an API key', async () => {
    const ok = async (room, headers, what) => {
      const res = await history(base, room, '', headers);
      assert.equal(res.status, 200, `${what}: ${res.text}`);
      assert.deepEqual(ids(res), [1]);
    };
    await ok('public.a', {}, 'anyone reads a public room');
    await ok('chat.a', bearer(API_KEY), 'an API key');
    await ok('chat.a', bearer(token({ rooms: { subscribe: ['chat.*'] } })), 'a token with the claim');
    let res = await history(base, 'chat.a');
    assertJsonError(res, 401, 'no credential');
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    assertJsonError(await history(base, 'chat.a', '', bearer(token())), 403, 'a token without the claim');
    assertJsonError(
      await history(base, 'chat.a', '', bearer(token({ rooms: { subscribe: ['chat.b'] } }))),
      403,
      'a claim for another room',
    );
    res = await history(base, 'public.a', '', bearer('not-a-key'));
    assertJsonError(res, 401, 'a bad credential');
    assertJsonError(
      await history(base, 'chat.a', '', bearer(token({ exp: nowS() - 60 }))),
      401,
      'an expired token',
    );
  });

  test('the room list: an API key only', async () => {
    let res = await request(`${base}/rooms`);
    assertJsonError(res, 401, 'no credential');
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    res = await request(`${base}/rooms`, { headers: bearer(token({ rooms: { subscribe: ['*'] } })) });
    assertJsonError(res, 403, 'a token');
    assertJsonError(await request(`${base}/rooms`, { headers: bearer('wrong-key') }), 401, 'a wrong key');
    res = await request(`${base}/rooms`, { headers: bearer(API_KEY) });
    assert.equal(res.status, 200, res.text);
    assert.ok(Array.isArray(res.json.rooms));
    assert.equal(res.json.next, null);
  });
});

describe('history and the room list on two nodes sharing one Redis', { timeout: 60_000, skip: ownRedis }, () => {
  let redis;
  let a;
  let b;
  const sockets = [];
  before(async () => {
    redis = await startRedis();
    const config = {
      history: { size: HISTORY, ttl_s: 300 },
      backplane: { type: 'redis', url: redis.url, key_prefix: 'api-rooms:' },
    };
    a = await startCrier(config);
    b = await startCrier(config);
  });
  after(async () => {
    for (const ws of sockets) ws.close();
    if (a) await stopClean(a);
    if (b) await stopClean(b);
    if (redis) await redis.stop();
  });

  test('a node with no member in the room reads what another published', async () => {
    for (let i = 1; i <= 3; i++) assert.equal(await publish(a.url, 'two.a', { i }), i);
    const fromA = await history(a.url, 'two.a');
    const fromB = await history(b.url, 'two.a');
    assert.equal(fromB.status, 200, fromB.text);
    assert.deepEqual(ids(fromB), [1, 2, 3]);
    assert.deepEqual(fromB.json, fromA.json);
    assert.equal(fromB.json.gap, false);
  });

  test("the room list is each node's: rooms with members there", async () => {
    sockets.push(await openWs(`${b.wsUrl}/rooms/two.b/ws`));
    await publish(a.url, 'two.b', 'x');
    const onB = await waitFor(async () => {
      const r = await request(`${b.url}/rooms`);
      const e = r.json?.rooms?.find((x) => x.room === 'two.b');
      return e?.last_id === 1 && e;
    }, { message: 'two.b listed on node b' });
    assert.equal(onB.subscribers.websocket, 1);
    const onA = await request(`${a.url}/rooms`);
    assert.ok(!onA.json.rooms.some((x) => x.room === 'two.b'), onA.text);
  });

  test('Redis gone: 503; back empty (a restart without persistence): 404', async () => {
    await redis.kill();
    await waitFor(async () => (await request(`${a.url}/healthz`)).json?.backplane?.connected === false, {
      message: 'node a sees Redis gone',
    });
    assertJsonError(await history(a.url, 'two.a'), 503, 'history while Redis is down');
    await redis.restart();
    await waitFor(async () => (await request(`${a.url}/healthz`)).json?.backplane?.connected === true, {
      timeout: 15_000,
      message: 'node a back on Redis',
    });
    assertJsonError(await history(a.url, 'two.a'), 404, 'history of a room Redis forgot');
  });
});
