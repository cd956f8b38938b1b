// Presence events published while a node subscribes to a room's channel
// (README "Presence over Redis"): the node's first member in a room has it
// subscribe; a join published before Redis has that subscription, by this
// node or another, would be lost to its members. Node B reaches Redis
// through a proxy that holds B's new SUBSCRIBEs (B's other commands go on):
// B's first member joins, then a second user on B and a user on A join,
// and only then is B's subscription let through. B's members get one join
// for each of them (and for B's own first user), none for a user present
// before, and later events once: nothing missed, nothing twice.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startCrier, stopClean } from '../lib/server.js';
import { mintToken, nowS } from '../lib/token.js';
import { sleep } from '../lib/util.js';
import { openWs } from '../lib/ws.js';
import { startCluster, startRedisHoldingProxy } from './helpers.js';

const SECRET = 'presence-catchup-secret-0123456789abcdef';
const CONFIG = {
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'], leeway_s: 0 },
    rooms: [{ match: 'live.*', subscribe: 'token', publish: 'token', presence_events: true }],
  },
};
const ROOM = 'live.catchup';
const token = (user) => mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: user, exp: nowS() + 600 } });
const flatten = (values) => values.flatMap((v) => (Array.isArray(v) ? v : [v]));
const events = (c) => flatten(c.messages.filter((m) => m && m.presence !== undefined).map((m) => m.presence));
const joins = (c, user) => events(c).filter((e) => e.user === user && e.action === 'join').length;

test('the first member on a node sees the joins published while the node subscribed (its own node\'s and another\'s), once', { timeout: 60_000 }, async (t) => {
  const { redis, nodes, prefix } = await startCluster(t, 1, CONFIG);
  const [a] = nodes;
  const proxy = await startRedisHoldingProxy(t, redis.port);
  const b = await startCrier({ ...CONFIG, backplane: { type: 'redis', url: proxy.url, key_prefix: prefix } });
  b.name = 'B';
  t.after(() => stopClean(b));
  const closers = [];
  t.after(() => closers.forEach((f) => f()));
  const ws = async (node, user) => {
    const c = await openWs(`${node.wsUrl}/rooms/${ROOM}/ws?access_token=${token(user)}`);
    closers.push(() => c.close());
    return c;
  };

  const watcher = await ws(a, 'watcher'); // present before: no event for it on B
  await watcher.until((c) => joins(c, 'watcher') === 1, 8000, 'A: watcher joined');

  proxy.holdSubscribes();
  const first = await ws(b, 'first');
  // B reads who is present elsewhere before it reports first (one
  // connection, in order): A seeing first's join means B has read it
  await watcher.until((c) => joins(c, 'first') === 1, 8000, 'A: first joined');
  const local = await ws(b, 'local');
  const other = await ws(a, 'other');
  // every join was published (A sees them) while B was not subscribed yet
  await watcher.until((c) => ['first', 'local', 'other'].every((u) => joins(c, u) === 1), 8000, 'A: the three joins');
  await sleep(200);
  proxy.releaseSubscribes();

  for (const [name, c] of [['first', first], ['local', local]]) {
    await c.until((x) => ['local', 'other'].every((u) => joins(x, u) >= 1), 8000, `${name} on B: the joins published while B subscribed (${JSON.stringify(events(c))})`);
  }
  const late = await ws(a, 'late');
  closers.push(() => late.close());
  await first.until((c) => joins(c, 'late') >= 1, 8000, 'first on B: a later join');
  await sleep(500); // anything twice would show
  for (const [name, c] of [['first', first], ['local', local]]) {
    for (const u of ['local', 'other', 'late'])
      assert.equal(joins(c, u), 1, `${name} on B: one join of ${u}: ${JSON.stringify(events(c))}`);
    // (local joined after first, within the catching up: it may be told of first too)
    assert.equal(joins(first, 'first'), 1, 'first on B: its own join, once');
    assert.ok(joins(c, 'first') <= 1, `${name} on B: first at most once`);
    assert.equal(joins(c, 'watcher'), 0, `${name} on B: no join of a user present before: ${JSON.stringify(events(c))}`);
    assert.equal(events(c).filter((e) => e.action === 'leave').length, 0, `${name}: no leave`);
  }
  void other;
});
