// Presence across three nodes behind nginx (README "Presence", "Presence
// over Redis"; deploy/nginx.conf, round robin): every client goes through
// nginx, so nobody chooses its node. Official @microsoft/signalr clients
// (tokens by accessTokenFactory, JoinRoom) and plain WebSocket and SSE
// clients join one room; the counts read through nginx (whichever node
// answers) are the sum over the nodes, a plain WebSocket watcher and a
// SignalR watcher see one join per user and a leave once a user's last
// connection is gone. Then a node holding members but neither watcher is
// killed (SIGKILL): the counts read through nginx are right again within
// the stated bound (15 s), no leave is sent for the dead node's members,
// and join/leave events go on for users that come and go afterwards.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startRedis } from '../lib/redis.js';
import { startCrier, stopClean } from '../lib/server.js';
import { signalR, T } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { mintToken, nowS } from '../lib/token.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';
import { startNginx } from './helpers.js';

const SECRET = 'presence-nginx-secret-0123456789abcdef';
const API_KEY = 'presence-nginx-api-key-0123456789';
const CONFIG = {
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
    api_keys: [API_KEY],
    rooms: [
      { match: 'live.*', subscribe: 'token', publish: 'token', presence_events: true },
      { match: 'hub:chat', subscribe: 'token', publish: 'token' },
    ],
  },
};
const ROOM = 'live.nginx';
const BOUND_MS = 15_000; // README: a dead node's members are gone within 15 s
const SLACK_MS = 10_000; // a loaded machine
const GRACE_MS = 2_000; // README: a user's leave comes 2 s after their last connection

const token = (user) => mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: user, exp: nowS() + 600 } });
const auth = { Authorization: `Bearer ${API_KEY}` };

async function getJson(url) {
  const res = await fetch(url, { headers: auth, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const usersOf = (body) => Object.fromEntries((body.users ?? []).map((u) => [u.user, u.connections]));
const sorted = (o) => JSON.stringify(Object.fromEntries(Object.entries(o).sort()));
const flatten = (values) => values.flatMap((v) => (Array.isArray(v) ? v : [v]));
const count = (events, user, action) => events.filter((e) => e.user === user && e.action === action).length;

// This node's members of ROOM (GET /rooms/{room}: with Redis, the node's own).
async function localMembers(node) {
  if (node.killed) return 0;
  const res = await fetch(`${node.url}/rooms/${ROOM}`, { headers: auth, signal: AbortSignal.timeout(5000) });
  if (res.status === 404) return 0;
  const s = (await res.json()).subscribers;
  return s.websocket + s.sse + s.long_polling;
}

test('presence through nginx over three nodes: counts, events, and a killed node gone within the bound', { timeout: 150_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    const node = await startCrier({ ...CONFIG, backplane: { type: 'redis', url: redis.url, key_prefix: `pn${process.pid}:` } });
    node.name = 'ABC'[i];
    t.after(() => (node.killed ? undefined : stopClean(node)));
    nodes.push(node);
  }
  const nginx = await startNginx(
    t,
    nodes.map((n) => n.port),
  );
  const closers = [];
  t.after(() => Promise.all(closers.map((f) => Promise.resolve(f()).catch(() => {}))));
  const presence = async () => usersOf(await getJson(`${nginx}/rooms/${ROOM}/presence`));
  // Right through nginx: one read equal to want, then `reads` more in a row
  // (round robin: every node answers some of them).
  const seeThroughNginx = async (want, timeout) => {
    await waitFor(async () => sorted(await presence()) === sorted(want), {
      timeout,
      interval: 200,
      message: `presence through nginx = ${sorted(want)}`,
    });
    for (let i = 0; i < 6; i++) assert.equal(sorted(await presence()), sorted(want), `read ${i} through nginx`);
  };
  // Which node holds the one member that joined since `before` (per node).
  const whereIsNew = async (before) => {
    let at = -1;
    await waitFor(
      async () => {
        const now = await Promise.all(nodes.map(localMembers));
        at = now.findIndex((n, i) => n === before[i] + 1);
        return at >= 0 && now.reduce((a, b) => a + b) === before.reduce((a, b) => a + b) + 1;
      },
      { message: 'the new member is on one node' },
    );
    return at;
  };

  // Clients, all through nginx. Each: {user, node, gone()}.
  const clients = [];
  const plainWs = async (user) => {
    const c = await openWs(`${nginx.replace('http:', 'ws:')}/rooms/${ROOM}/ws?access_token=${token(user)}`);
    closers.push(() => c.close());
    return { user, conn: c, close: () => c.close(), gone: () => c.closeInfo !== null };
  };
  const plainSse = async (user) => {
    const s = await sseHttp(`${nginx}/rooms/${ROOM}/events`, { headers: { Authorization: `Bearer ${token(user)}` } });
    assert.equal(s.status, 200);
    closers.push(() => s.close());
    return { user, conn: s, close: () => s.close(), gone: () => s.ended };
  };
  const official = async (user, transport) => {
    const conn = new signalR.HubConnectionBuilder()
      .withUrl(`${nginx}/hubs/chat`, { transport, accessTokenFactory: () => token(user) })
      .configureLogging(signalR.LogLevel.None)
      .build(); // no automatic reconnect: a client of the killed node stays gone
    const calls = [];
    conn.on('CrierPresence', (e) => calls.push(e));
    let closed = false;
    conn.onclose(() => (closed = true));
    closers.push(() => conn.stop());
    await withTimeout(conn.start(), 10_000, `${user}: SignalR start through nginx`);
    await withTimeout(conn.invoke('JoinRoom', ROOM), 10_000, `${user}: JoinRoom`);
    return { user, conn, calls, close: () => conn.stop(), gone: () => closed };
  };
  // Opens a member with open() and records the node it landed on.
  const add = async (open) => {
    const before = await Promise.all(nodes.map(localMembers));
    const c = await open();
    c.node = await whereIsNew(before);
    clients.push(c);
    return c;
  };
  const want = () => {
    const w = {};
    for (const c of clients) if (!c.closed) w[c.user] = (w[c.user] ?? 0) + 1;
    return w;
  };

  // The watchers: a plain WebSocket and an official SignalR client.
  const watcher = await add(() => plainWs('watcher'));
  const sam = await add(() => official('sam', T.WebSockets));
  const wsEvents = () => flatten(watcher.conn.messages.filter((m) => m && m.presence !== undefined).map((m) => m.presence));
  const srEvents = () => flatten(sam.calls);
  const bothSee = async (user, action, n, timeout = 10_000) => {
    await waitFor(() => count(wsEvents(), user, action) >= n, { timeout, message: `the WebSocket watcher sees ${action} of ${user}: ${JSON.stringify(wsEvents())}` });
    await waitFor(() => count(srEvents(), user, action) >= n, { timeout, message: `the SignalR watcher sees ${action} of ${user}: ${JSON.stringify(srEvents())}` });
  };

  // Members: alice twice (plain WebSocket, SignalR over SSE), bob (SignalR
  // WebSocket), carol (plain SSE), dave and frank (plain WebSocket), then
  // more (below).
  await add(() => plainWs('alice'));
  await add(() => official('alice', T.ServerSentEvents));
  await add(() => official('bob', T.WebSockets));
  await add(() => plainSse('carol'));
  await add(() => plainWs('dave'));
  const frank = await add(() => plainWs('frank'));
  // The node to kill: one neither watcher is on. Open more members until
  // it holds a SignalR client, a plain one, and one of alice's (who has
  // another connection elsewhere).
  const v = [0, 1, 2].find((i) => i !== watcher.node && i !== sam.node);
  const onV = (pred) => clients.some((c) => c.node === v && !c.closed && pred(c));
  const until = async (done, open, what) => {
    for (let i = 0; !done(); i++) {
      assert.ok(i < 12, `${what}: ${clients.map((c) => `${c.user}@${c.node}`)}`);
      await add(() => open(i));
    }
  };
  await until(() => onV((c) => c.calls), (i) => official(`sr${i}`, i % 2 ? T.ServerSentEvents : T.WebSockets), `no SignalR client on ${nodes[v].name}`);
  await until(() => onV((c) => !c.calls), (i) => plainWs(`plain${i}`), `no plain client on ${nodes[v].name}`);
  // alice: a plain WebSocket to close now, and after that still a
  // connection on the node to kill and one on another
  const alices = () => clients.filter((c) => c.user === 'alice');
  const aliceSpare = () =>
    alices().find((c) => c.conn.ws && alices().some((d) => d !== c && d.node === v) && alices().some((d) => d !== c && d.node !== v));
  await until(aliceSpare, () => plainWs('alice'), `alice not spread over ${nodes[v].name} and another node`);
  t.diagnostic(`members: ${clients.map((c) => `${c.user}@${nodes[c.node].name}`).join(' ')}`);

  await seeThroughNginx(want(), 15_000);
  assert.equal((await getJson(`${nginx}/rooms/${ROOM}/presence`)).count, Object.keys(want()).length);
  // (each watcher's own join may have gone out before it was a member)
  for (const u of Object.keys(want()).filter((u) => u !== 'watcher' && u !== 'sam')) await bothSee(u, 'join', 1);
  await waitFor(() => count(wsEvents(), 'sam', 'join') === 1, { message: 'the WebSocket watcher sees sam join' });

  // alice closes one of her connections, frank his only one: a leave for
  // frank (after the grace), none for alice.
  const aliceWs = aliceSpare();
  for (const c of [aliceWs, frank]) {
    c.closed = true;
    c.close();
  }
  await seeThroughNginx(want(), 15_000);
  await bothSee('frank', 'leave', 1, GRACE_MS + 10_000);
  await sleep(500);
  for (const ev of [wsEvents(), srEvents()]) {
    assert.equal(count(ev, 'alice', 'join'), 1, `one join for alice: ${JSON.stringify(ev)}`);
    assert.equal(count(ev, 'alice', 'leave'), 0, `no leave for alice while she has a connection: ${JSON.stringify(ev)}`);
  }

  // Kill the node that holds members but neither watcher.
  const victim = nodes[v];
  const onVictim = clients.filter((c) => c.node === v && !c.closed);
  t.diagnostic(`killing ${victim.name}, which holds ${onVictim.map((c) => c.user).join(', ')}`);
  const leavesBefore = [wsEvents().filter((e) => e.action === 'leave').length, srEvents().filter((e) => e.action === 'leave').length];
  const t0 = Date.now();
  victim.killed = true;
  victim.proc.kill('SIGKILL');
  await victim.exited;
  // nginx closes their client sides: those clients are gone
  await waitFor(() => onVictim.every((c) => c.gone()), { timeout: 15_000, message: 'the killed node\'s clients see their connection end' });
  for (const c of onVictim) c.closed = true;
  assert.ok(!watcher.gone() && !sam.gone(), 'the watchers are on surviving nodes');
  assert.ok(onVictim.length >= 3 && want().alice >= 1, 'the killed node held members; alice is still on another');
  await seeThroughNginx(want(), BOUND_MS + SLACK_MS);
  t.diagnostic(`the killed node's members were gone after ${Date.now() - t0} ms (bound ${BOUND_MS} ms)`);
  // README: no leave is sent for a dead node's members
  await sleep(GRACE_MS + 1000);
  assert.deepEqual(
    [wsEvents().filter((e) => e.action === 'leave').length, srEvents().filter((e) => e.action === 'leave').length],
    leavesBefore,
    `no leave for the killed node's members: ${JSON.stringify(wsEvents())}`,
  );

  // Life goes on: a user who comes and goes now is seen by both watchers.
  const gina = await add(() => plainWs('gina'));
  await bothSee('gina', 'join', 1);
  await seeThroughNginx(want(), 15_000);
  gina.closed = true;
  gina.close();
  await bothSee('gina', 'leave', 1, GRACE_MS + 10_000);
  await seeThroughNginx(want(), 15_000);
});
