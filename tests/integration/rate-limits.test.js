// limits.rate (README "Rate limits"): token buckets on new connections and
// HTTP requests per client address, and on publishes per connection (per
// address for POST /rooms/{room}/messages). Past them: 429 with Retry-After
// and a JSON body, a plain WebSocket closed 1008 "rate limit", a SignalR
// invocation answered with an error completion; each refusal counted in
// /metrics (crier_rate_limited_total{kind}).
//
// Timing: every bucket here starts full, so the first `burst` events always
// pass; the tests then send several more at once and assert that at least
// one of those is refused (a slow machine may refill a token or two, never
// all of them), never an exact count tied to the clock.
//
// The client address is varied with the loopback source address (127.0.0.N),
// so that the test's own /metrics reads have a bucket of their own.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import WebSocket from 'ws';
import { startFor } from '../lib/server.js';
import { invoke, receiver, setup, signalR, T } from '../lib/signalr.js';
import { waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

const REQUEST_TIMEOUT_MS = 5000;

// One HTTP request from localAddress: {status, headers, text, json, reused}.
// agent: an http.Agent (keep-alive) or false (a new connection).
function get(srv, path, { localAddress = '127.0.0.2', method = 'GET', headers = {}, body, agent = false } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request(
        `${srv.url}${path}`,
        { method, headers, localAddress, agent, family: 4 },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => {
            let json;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode, headers: res.headers, text, json, reused: req.reusedSocket });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    }),
    REQUEST_TIMEOUT_MS,
    `${method} ${path} from ${localAddress}`,
  );
}

// crier_rate_limited_total{kind}, read from an address no test limits.
async function rateLimited(srv, kind) {
  const res = await get(srv, '/metrics', { localAddress: '127.0.0.250' });
  assert.equal(res.status, 200, `/metrics: ${res.status} ${res.text}`);
  const m = res.text.match(new RegExp(`^crier_rate_limited_total\\{kind="${kind}"\\} (\\d+)$`, 'm'));
  assert.ok(m, `/metrics has crier_rate_limited_total{kind="${kind}"}:\n${res.text}`);
  return Number(m[1]);
}

// A 429 with a whole number of seconds in Retry-After and {"error": error}.
function assertRefused(res, error, what) {
  const label = `${what}: ${res.status} ${JSON.stringify(res.headers)} ${res.text}`;
  assert.equal(res.status, 429, label);
  assert.match(res.headers['retry-after'] ?? '', /^[1-9]\d*$/, label);
  assert.match(res.headers['content-type'] ?? '', /^application\/json\b/, label);
  assert.deepEqual(res.json, { error }, label);
}

const stopAll = (...clients) => clients.forEach((c) => c?.close());

test('limits.rate.connect: the polls of one kept-alive connection count as one connection', async (t) => {
  // An answered poll's connection goes back to the acceptor for its next
  // request (the poll daemon keeps no pool between polls); that is not a
  // new connection, so the connect rate does not count it again.
  const srv = await startFor(t, { limits: { rate: { connect: { per_s: 1, burst: 1 } } } });
  for (let i = 1; i <= 5; i++) {
    const pub = await get(srv, '/rooms/kc/messages', {
      method: 'POST',
      localAddress: `127.0.0.${100 + i}`,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(i),
    });
    assert.equal(pub.status, 201, pub.text);
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  for (let since = 0; since < 5; since++) {
    const res = await get(srv, `/rooms/kc/poll?since=${since}`, { localAddress: '127.0.0.5', agent });
    assert.equal(res.status, 200, `poll since=${since}: ${res.status} ${res.text}`);
    assert.equal(res.json.last_id, 5, res.text);
    if (since > 0) assert.ok(res.reused, `poll since=${since} on the kept-alive connection`);
  }
});

test('limits.rate.connect: past the burst a new connection gets 429 + Retry-After before any upgrade; other addresses are not touched', async (t) => {
  const srv = await startFor(t, { limits: { rate: { connect: { per_s: 1, burst: 3 } } } });
  const error = 'rate limit: too many connections from this address';
  // Under the limit: the burst passes, each on a new connection.
  for (let i = 0; i < 3; i++) assert.equal((await get(srv, '/healthz')).status, 200, `connection ${i + 1}`);
  // Past it: several more at once, at least one refused. Without trust_proxy
  // the headers a proxy would set change nothing: the peer is the client.
  const more = await Promise.all(
    Array.from({ length: 6 }, (_, i) => get(srv, '/healthz', { headers: { 'X-Real-IP': `198.51.100.${i + 1}` } })),
  );
  const refused = more.filter((r) => r.status === 429);
  assert.ok(refused.length >= 1, `some of 6 more connections refused: ${more.map((r) => r.status)}`);
  for (const r of refused) assertRefused(r, error, 'connection past the burst');
  assert.ok(more.every((r) => r.status === 200 || r.status === 429), more.map((r) => r.status).join());

  // A WebSocket upgrade from that address is answered 429 before the upgrade.
  const ws = new WebSocket(`${srv.wsUrl}/rooms/r/ws`, { localAddress: '127.0.0.2', family: 4 });
  const status = await withTimeout(
    new Promise((resolve) => {
      ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
      ws.on('open', () => resolve('open'));
      ws.on('error', () => {});
    }),
    5000,
    'WebSocket upgrade past the connect rate',
  );
  ws.terminate();
  assert.equal(status, 429);

  // Another address has its own bucket.
  assert.equal((await get(srv, '/healthz', { localAddress: '127.0.0.3' })).status, 200);
  assert.ok((await rateLimited(srv, 'connect')) >= 2);
  assert.equal(await rateLimited(srv, 'request'), 0);
});

test('limits.rate.connect with trust_proxy: the address the proxy reports is the client', async (t) => {
  const srv = await startFor(t, { trust_proxy: true, limits: { rate: { connect: { per_s: 1, burst: 2 } } } });
  const from = (ip) => get(srv, '/healthz', { headers: { 'X-Forwarded-For': `10.9.9.9, ${ip}` } });
  assert.equal((await from('198.51.100.1')).status, 200);
  assert.equal((await from('198.51.100.1')).status, 200);
  const more = await Promise.all(Array.from({ length: 5 }, () => from('198.51.100.1')));
  assert.ok(more.some((r) => r.status === 429), more.map((r) => r.status).join());
  // The same peer, another client behind the proxy: not refused.
  assert.equal((await from('198.51.100.2')).status, 200);
  assert.equal((await from('198.51.100.2')).status, 200);
});

test('limits.rate.request: every request on a kept-alive connection counts; 429 + Retry-After, and the connection stays open', async (t) => {
  const srv = await startFor(t, { limits: { rate: { request: { per_s: 1, burst: 3 } } } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const results = [];
  for (let i = 0; i < 8; i++) results.push(await get(srv, '/healthz', { agent }));
  assert.deepEqual(results.slice(0, 3).map((r) => r.status), [200, 200, 200], 'the burst passes');
  const refused = results.slice(3).filter((r) => r.status === 429);
  assert.ok(refused.length >= 1, results.map((r) => r.status).join());
  for (const r of refused) assertRefused(r, 'rate limit: too many requests from this address', 'request');
  assert.ok(results.slice(1).every((r) => r.reused), 'all on one kept-alive connection');
  // Refused POSTs: their bodies are not published (the room's last id counts
  // the ones let through, if any).
  const posts = await Promise.all(
    Array.from({ length: 5 }, (_, n) =>
      get(srv, '/rooms/rl/messages', {
        agent,
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ n }),
      }),
    ),
  );
  const passed = posts.filter((r) => r.status === 201).length;
  assert.ok(posts.some((r) => r.status === 429), posts.map((r) => r.status).join());
  assert.ok(posts.every((r) => r.status === 201 || r.status === 429), posts.map((r) => r.status).join());
  const info = await get(srv, '/rooms/rl', { localAddress: '127.0.0.3' });
  if (passed === 0) assert.equal(info.status, 404, 'nothing was published');
  else assert.equal(info.json?.last_id, passed, `only the ${passed} let through were published: ${info.text}`);
  assert.ok((await rateLimited(srv, 'request')) >= 2);
  assert.equal(await rateLimited(srv, 'connect'), 0);
});

test('limits.rate.publish, plain WebSocket: the burst is delivered, then the publisher is closed 1008 "rate limit"', async (t) => {
  const srv = await startFor(t, { limits: { rate: { publish: { per_s: 1, burst: 5 } } } });
  const sub = await openWs(`${srv.wsUrl}/rooms/wsr/ws`);
  const pub = await openWs(`${srv.wsUrl}/rooms/wsr/ws`);
  t.after(() => stopAll(sub, pub));
  for (let i = 0; i < 5; i++) pub.ws.send(JSON.stringify({ n: i }));
  await sub.waitForMessages(5);
  assert.deepEqual(sub.messages.slice(0, 5).map((m) => m.n ?? m.data?.n), [0, 1, 2, 3, 4]);
  assert.equal(pub.closeInfo, null, 'under the limit: still open');
  for (let i = 5; i < 15; i++) pub.ws.send(JSON.stringify({ n: i }));
  const close = await pub.waitForClose();
  assert.deepEqual(close, { code: 1008, reason: 'rate limit' });
  assert.ok((await rateLimited(srv, 'publish')) >= 1);
  assert.equal(sub.closeInfo, null, 'the subscriber is not touched');
});

test('limits.rate.publish, HTTP: per client address, 429 + Retry-After past the burst', async (t) => {
  const srv = await startFor(t, { limits: { rate: { publish: { per_s: 1, burst: 3 } } } });
  const post = (localAddress, n) =>
    get(srv, '/rooms/hp/messages', {
      localAddress,
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ n }),
    });
  for (let i = 0; i < 3; i++) assert.equal((await post('127.0.0.2', i)).status, 201, `publish ${i + 1}`);
  const more = await Promise.all(Array.from({ length: 6 }, (_, i) => post('127.0.0.2', 10 + i)));
  const refused = more.filter((r) => r.status === 429);
  assert.ok(refused.length >= 1, more.map((r) => r.status).join());
  for (const r of refused) assertRefused(r, 'rate limit: too many messages from this address', 'publish');
  assert.equal((await post('127.0.0.3', 99)).status, 201, 'another address publishes');
  assert.ok((await rateLimited(srv, 'publish')) >= 1);
});

for (const [name, transport] of [
  ['WebSockets', T.WebSockets],
  ['LongPolling', T.LongPolling],
]) {
  test(`limits.rate.publish, SignalR over ${name} (official client): an error completion past the burst, the connection stays`, async (t) => {
    const ctx = await setup(t, { limits: { rate: { publish: { per_s: 1, burst: 3 } } } });
    const conn = await ctx.connect({ transport });
    const rx = receiver(conn);
    for (let i = 0; i < 3; i++) await invoke(conn, 'SendMessage', 'ann', `m${i}`);
    await rx.wait(3);
    const more = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => invoke(conn, 'SendMessage', 'ann', `x${i}`)));
    const rejected = more.filter((r) => r.status === 'rejected');
    assert.ok(rejected.length >= 1, JSON.stringify(more));
    for (const r of rejected) assert.match(r.reason.message, /rate limit: too many messages/);
    assert.equal(conn.state, signalR.HubConnectionState.Connected);
    // Not a publish: not limited.
    assert.equal((await invoke(conn, 'JoinRoom', 'calm')).room, 'calm');
    // Without an invocation id (send): dropped and counted, never closed.
    const before = await rateLimited(ctx.srv, 'publish');
    assert.ok(before >= 1);
    await Promise.all(Array.from({ length: 6 }, (_, i) => conn.send('SendMessage', 'ann', `s${i}`)));
    await waitFor(async () => (await rateLimited(ctx.srv, 'publish')) > before, {
      message: 'sends past the limit are counted',
    });
    assert.equal(conn.state, signalR.HubConnectionState.Connected);
  });
}

test('limits.rate absent: nothing is refused, nothing counted', async (t) => {
  const srv = await startFor(t, {});
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const statuses = await Promise.all(Array.from({ length: 30 }, () => get(srv, '/healthz')));
  for (let i = 0; i < 30; i++) statuses.push(await get(srv, '/healthz', { agent }));
  assert.ok(statuses.every((r) => r.status === 200), statuses.map((r) => r.status).join());
  const pub = await openWs(`${srv.wsUrl}/rooms/open/ws`);
  const sub = await openWs(`${srv.wsUrl}/rooms/open/ws`);
  t.after(() => stopAll(sub, pub));
  for (let i = 0; i < 50; i++) pub.ws.send(JSON.stringify({ n: i }));
  await sub.waitForMessages(50);
  assert.equal(pub.closeInfo, null);
  for (const kind of ['publish', 'connect', 'request']) assert.equal(await rateLimited(srv, kind), 0, kind);
});
