// The server API's users and connections across nodes (README "Server
// API"): two crier nodes on one Redis, nginx in front (deploy/nginx.conf,
// round robin). alice has a SignalR connection on each node and a plain
// WebSocket on B; bob one on A. A message to alice, sent through nginx (so
// either node takes the request), reaches all three and nobody else; a
// connection on B is reached through A; a server-side join made through A
// applies on B; a disconnect through A ends the connections on B with the
// reason; an unknown user is 404 on every node.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';

import { T, TRANSPORT_CLASS, assertQuiet, receiver, signalR } from '../lib/signalr.js';
import { mintToken, nowS } from '../lib/token.js';
import { waitFor, withTimeout } from '../lib/util.js';
import { signalrCtx, startCluster, startNginx } from './helpers.js';

const SECRET = 'users-cluster-secret-0123456789abcdef';
const API_KEY = 'users-cluster-api-key-0123456789';
const CONFIG = {
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
    api_keys: [API_KEY],
    rooms: [{ match: '*', subscribe: 'token', publish: 'token' }],
  },
};

const token = (user) => mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: user, exp: nowS() + 600 } });

async function api(base, method, p, body) {
  const headers = { Authorization: `Bearer ${API_KEY}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${base}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

// An official client for user on base, started.
async function official(t, base, user, transport = T.WebSockets) {
  const ctx = signalrCtx(t, base);
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(ctx.hubUrl(), { transport, accessTokenFactory: () => token(user) })
    .withAutomaticReconnect([0, 0])
    .configureLogging(signalR.LogLevel.None)
    .build();
  conn.label = `${user} ${TRANSPORT_CLASS[transport]} on ${base}`;
  conn.closed = new Promise((resolve) => conn.onclose((err) => resolve(err ?? null)));
  conn.reconnecting = 0;
  conn.onreconnecting(() => conn.reconnecting++);
  ctx.track({ close: () => withTimeout(conn.stop(), 5000, `${conn.label}: stop()`) });
  await withTimeout(conn.start(), 10_000, `${conn.label}: start()`);
  return conn;
}

function plainWs(url) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const c = { ws, id: null, messages: [] };
      c.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
      ws.on('upgrade', (r) => (c.id = r.headers['x-crier-connection-id']));
      ws.on('message', (d) => c.messages.push(JSON.parse(d.toString())));
      ws.on('open', () => resolve(c));
      ws.on('error', reject);
    }),
    5000,
    `WS ${url}`,
  );
}

test('users and connections across two nodes behind nginx', { timeout: 90_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2, CONFIG);
  const [a, b] = nodes;
  const nginx = await startNginx(t, [a.port, b.port]);

  const onA = await official(t, a.url, 'alice');
  const onB = await official(t, b.url, 'alice', T.LongPolling);
  const bob = await official(t, a.url, 'bob');
  const ws = await plainWs(`${b.wsUrl}/rooms/lobby/ws?access_token=${token('alice')}`);
  t.after(() => ws.ws.terminate());
  const rx = { onA: receiver(onA), onB: receiver(onB), bob: receiver(bob) };

  // A message to alice through nginx, a few times (both nodes take some).
  for (let i = 0; i < 4; i++) {
    const res = await api(nginx, 'POST', '/users/alice/messages', ['to alice', i]);
    assert.equal(res.status, 202, res.text);
    assert.deepEqual(res.json, { user: 'alice', connections: 3, delivered: 3 }, `send ${i}`);
  }
  const want = [0, 1, 2, 3].map((i) => ['to alice', i]);
  assert.deepEqual(await rx.onA.wait(4, 10_000), want);
  assert.deepEqual(await rx.onB.wait(4, 10_000), want);
  await waitFor(() => ws.messages.length === 4, { message: 'plain WS on B: 4 messages', timeout: 10_000 });
  assert.deepEqual(ws.messages.map((m) => m.data), want);
  await assertQuiet([rx.bob], 300);

  // One connection on B, reached through A.
  let res = await api(a.url, 'POST', `/connections/${onB.connectionId}/messages`, ['just B']);
  assert.deepEqual([res.status, res.json], [202, { connection: onB.connectionId, connections: 1, delivered: 1 }], res.text);
  assert.deepEqual((await rx.onB.wait(5, 10_000))[4], ['just B']);
  res = await api(a.url, 'POST', `/connections/${ws.id}/messages`, { n: 1 });
  assert.equal(res.status, 202, res.text);
  await waitFor(() => ws.messages.length === 5, { message: 'plain WS on B: by id', timeout: 10_000 });
  assert.equal(rx.onA.calls.length, 4);

  // Unknown user and connection: 404 on every node.
  for (const node of [a, b]) {
    assert.equal((await api(node.url, 'POST', '/users/nobody/messages', 1)).status, 404);
    assert.equal((await api(node.url, 'DELETE', '/connections/NoSuchConnection')).status, 404);
  }

  // A server-side join through A applies on B; a room publish on B reaches all.
  res = await api(a.url, 'PUT', '/rooms/team/members/alice');
  assert.deepEqual([res.status, res.json], [200, { user: 'alice', room: 'team', connections: 3, joined: 3, refused: 0, skipped: 0 }], res.text);
  res = await api(b.url, 'POST', '/rooms/team/messages', ['team news']);
  assert.equal(res.status, 201, res.text);
  assert.deepEqual((await rx.onA.wait(5, 10_000))[4], ['team news']);
  assert.deepEqual((await rx.onB.wait(6, 10_000))[5], ['team news']);
  await waitFor(() => ws.messages.length === 6, { message: 'plain WS on B: the room message', timeout: 10_000 });
  assert.equal(ws.messages[5].room, 'team');
  res = await api(a.url, 'DELETE', '/rooms/team/members/alice');
  assert.equal(res.json.left, 3, res.text);

  // A disconnect through A ends the connections on B with the reason.
  res = await api(a.url, 'DELETE', '/users/alice/connections', { reason: 'cluster kick' });
  assert.deepEqual([res.status, res.json], [200, { user: 'alice', connections: 3, disconnected: 3 }], res.text);
  for (const c of [onA, onB]) {
    const err = await withTimeout(c.closed, 10_000, `${c.label}: onclose`);
    assert.match(String(err?.message), /cluster kick/, c.label);
    assert.equal(c.reconnecting, 0, `${c.label} reconnected`);
  }
  assert.deepEqual(await withTimeout(ws.closed, 10_000, 'plain WS close'), { code: 4002, reason: 'cluster kick' });
  await waitFor(async () => (await api(nginx, 'POST', '/users/alice/messages', 1)).status === 404, {
    message: 'alice gone on every node',
    timeout: 10_000,
  });
  assert.equal(bob.state, signalR.HubConnectionState.Connected);
});
