// Presence across nodes (README "Presence"): three crier nodes on one Redis.
// A user with connections on two nodes is one user with their sum of
// connections, read from any node; join and leave events are the cluster's
// (one join for a user however many nodes they are on, no leave while a
// connection remains anywhere), for plain WebSocket members and the
// official SignalR client alike; and after one node is killed (SIGKILL) its
// members are gone from the counts read on the others within the stated
// bound (15 s after the node's last refresh).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import EventSource from 'eventsource';

import { request } from '../lib/http.js';
import { startCrier } from '../lib/server.js';
import { signalR, T } from '../lib/signalr.js';
import { mintToken, nowS } from '../lib/token.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';
import { startCluster } from './helpers.js';

const SECRET = 'presence-cluster-secret-0123456789abcdef';
const API_KEY = 'presence-cluster-api-key-0123456789';
const CONFIG = {
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'], leeway_s: 0 },
    api_keys: [API_KEY],
    rooms: [
      { match: 'live.*', subscribe: 'token', publish: 'token', presence_events: true },
      { match: 'hub:chat', subscribe: 'token', publish: 'token' },
    ],
  },
};
const BOUND_MS = 15_000; // README: a dead node's members are gone within 15 s
const SLACK_MS = 10_000; // a loaded machine

const token = (user) => mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: user, exp: nowS() + 600 } });

async function presenceOn(node, room) {
  const res = await request(`${node.url}/rooms/${room}/presence`, { headers: { Authorization: `Bearer ${API_KEY}` } });
  assert.equal(res.status, 200, `${node.name}: presence ${res.status} ${res.text}`);
  return res.json;
}

const usersOf = (body) => Object.fromEntries((body.users ?? []).map((u) => [u.user, u.connections]));
const flatten = (values) => values.flatMap((v) => (Array.isArray(v) ? v : [v]));
const wsEvents = (c) => flatten(c.messages.filter((m) => m && m.presence !== undefined).map((m) => m.presence));
const count = (events, user, action) => events.filter((e) => e.user === user && e.action === action).length;

// Every node sees exactly want (user -> connections) in room.
async function allSee(nodes, room, want, timeout = 10_000) {
  for (const node of nodes) {
    await waitFor(
      async () => {
        const got = usersOf(await presenceOn(node, room));
        return JSON.stringify(got) === JSON.stringify(want) ? got : false;
      },
      { timeout, message: `${node.name} sees ${JSON.stringify(want)} in ${room}` },
    );
  }
}

test('presence over three nodes: sums, one join per user, and a killed node gone within the bound', { timeout: 120_000 }, async (t) => {
  const { redis, nodes, prefix } = await startCluster(t, 2, CONFIG);
  const [a, b] = nodes;
  // C is killed: not stopped cleanly
  const c = await startCrier({ ...CONFIG, backplane: { type: 'redis', url: redis.url, key_prefix: prefix } });
  c.name = 'C';
  t.after(() => c.proc.kill('SIGKILL'));
  const closers = [];
  t.after(() => closers.forEach((f) => f()));
  const ws = async (node, room, user) => {
    const conn = await openWs(`${node.wsUrl}/rooms/${room}/ws?access_token=${token(user)}`);
    closers.push(() => conn.close());
    return conn;
  };
  const room = 'live.cluster';
  const watcher = await ws(a, room, 'watcher');
  const aliceA = await ws(a, room, 'alice');
  const es = new EventSource(`${b.url}/rooms/${room}/events`, { headers: { Authorization: `Bearer ${token('alice')}` } });
  closers.push(() => es.close());
  await withTimeout(new Promise((resolve, reject) => ((es.onopen = resolve), (es.onerror = reject))), 5000, 'SSE on B');
  await ws(b, room, 'bob');
  await ws(c, room, 'carol');
  await ws(c, room, 'dave');
  await ws(a, room, 'dave');

  const want = { alice: 2, bob: 1, carol: 1, dave: 2, watcher: 1 };
  await allSee([a, b, c], room, want);
  assert.equal((await presenceOn(b, room)).count, 5);
  await watcher.until((w) => ['alice', 'bob', 'carol', 'dave'].every((u) => count(wsEvents(w), u, 'join') >= 1), 8000, 'joins of all');

  // alice leaves A but stays on B: no leave, one connection
  aliceA.close();
  await allSee([a, b], room, { ...want, alice: 1 });
  await sleep(3000); // past the grace: a leave would have come by now
  assert.equal(count(wsEvents(watcher), 'alice', 'join'), 1, `one join for alice on two nodes: ${JSON.stringify(wsEvents(watcher))}`);
  assert.equal(count(wsEvents(watcher), 'alice', 'leave'), 0, 'no leave while alice is on B');
  assert.equal(count(wsEvents(watcher), 'dave', 'join'), 1, 'one join for dave on two nodes');

  // the official SignalR client on B sees a user join on A
  const sr = new signalR.HubConnectionBuilder()
    .withUrl(`${b.url}/hubs/chat`, { transport: T.WebSockets, accessTokenFactory: () => token('sam') })
    .configureLogging(signalR.LogLevel.None)
    .build();
  const calls = [];
  sr.on('CrierPresence', (...args) => calls.push(args));
  closers.push(() => sr.stop().catch(() => {}));
  await withTimeout(sr.start(), 5000, 'SignalR start on B');
  await withTimeout(sr.invoke('JoinRoom', room), 5000, 'JoinRoom on B');
  await watcher.until((w) => count(wsEvents(w), 'sam', 'join') === 1, 8000, 'A sees sam (on B) join');
  await ws(a, room, 'erin');
  await waitFor(() => calls.some((args) => count(flatten([args[0]]), 'erin', 'join') === 1), {
    timeout: 8000,
    message: `SignalR on B: CrierPresence join of erin (on A): ${JSON.stringify(calls)}`,
  });
  const live = { alice: 1, bob: 1, carol: 1, dave: 2, erin: 1, sam: 1, watcher: 1 };
  await allSee([a, b], room, live);

  // C dies: carol (only on C) is gone, dave is down to his connection on A
  const t0 = Date.now();
  c.proc.kill('SIGKILL');
  await c.exited;
  const { carol, ...rest } = live;
  await allSee([a, b], room, { ...rest, dave: 1 }, BOUND_MS + SLACK_MS);
  const took = Date.now() - t0;
  t.diagnostic(`the killed node's members were gone after ${took} ms (bound ${BOUND_MS} ms)`);
  assert.equal((await presenceOn(a, room)).count, 6);
});

test('Redis down: the presence endpoint answers 503; a fresh Redis gets every node\'s counts again', { timeout: 60_000 }, async (t) => {
  const { redis, nodes } = await startCluster(t, 2, CONFIG);
  const [a, b] = nodes;
  const closers = [];
  t.after(() => closers.forEach((f) => f()));
  const ws = async (node, room, user) => {
    const conn = await openWs(`${node.wsUrl}/rooms/${room}/ws?access_token=${token(user)}`);
    closers.push(() => conn.close());
    return conn;
  };
  const room = 'live.restart';
  await ws(a, room, 'alice');
  await ws(b, room, 'alice');
  await ws(b, room, 'bob');
  await allSee([a, b], room, { alice: 2, bob: 1 });

  await redis.kill();
  await waitFor(async () => !(await (await fetch(`${a.url}/healthz`)).json()).backplane.connected, {
    message: 'A sees Redis down',
  });
  const down = await request(`${a.url}/rooms/${room}/presence`, { headers: { Authorization: `Bearer ${API_KEY}` } });
  assert.equal(down.status, 503, down.text);
  assert.match(down.json?.error ?? '', /unreachable/);

  await redis.restart(); // empty: the nodes write their counts again
  await allSee([a, b], room, { alice: 2, bob: 1 }, 15_000);
});
