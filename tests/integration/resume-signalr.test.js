// No lost messages across reconnects, for the official SignalR client: a
// @microsoft/signalr client built with withStatefulReconnect() on the
// WebSocket transport reaches crier through a TCP proxy in this file, which
// resets both sockets of its connection (RST, no FIN, no close frame) 5 times
// at random moments while a publisher streams 5000 messages to the room it
// joined. The client resumes each time through the protocol's stateful
// reconnect (same connection token, a Sequence record, what was not yet
// acknowledged sent again): it ends with every message exactly once, in
// order, still Connected, and never went through a full reconnect
// (onreconnecting never fires, although automatic reconnect is enabled so
// that a failed resume would show). With the JSON and the MessagePack hub
// protocol.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { request } from '../lib/http.js';
import { startCrier, stopClean } from '../lib/server.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { publishSteady } from '../lib/publish.js';

const N = 5000;
const PERIOD_MS = 1.5; // one publish every 1.5 ms: 5000 in about 7.5 s
const CUTS = 5;
const ROOM = 'r';
const CONFIG = { history: { size: 6000 }, limits: { send_queue: 8192 } };

// ------------------------------------------------------------------ proxy

// A TCP proxy on a free loopback port, forwarding to 127.0.0.1:targetPort.
// Each connection through it is a pair {client, upstream, head (the first
// bytes the client sent), up, down (bytes so far), downAt (when the server
// first answered), resp (its first bytes)}. cut() resets both sockets of
// every connection at once.
async function startProxy(targetPort) {
  const pairs = new Set();
  const all = []; // every connection ever
  const orphans = new Set(); // crier's side of connections dropClients() left open
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, head: '', up: 0, down: 0, downAt: 0, resp: '' };
    pairs.add(pair);
    all.push(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('data', (d) => {
      if (pair.head.length < 2000) pair.head += d.toString('latin1', 0, Math.min(d.length, 2000));
      pair.up += d.length;
    });
    upstream.on('data', (d) => {
      if (!pair.down) pair.downAt = Date.now();
      if (pair.resp.length < 600) pair.resp += d.toString('latin1', 0, Math.min(d.length, 600));
      pair.down += d.length;
    });
    const done = () => {
      pairs.delete(pair);
      client.destroy();
      if (!pair.orphaned) upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', done);
      s.on('close', done);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => all.length,
    all: () => all,
    pairs: () => [...pairs],
    // Waits (at most ms) until some connection is live(pair), then cuts
    // every connection; resolves how many it cut.
    async cutWhen(live, ms, what) {
      await waitFor(() => [...pairs].some(live), { timeout: ms, interval: 2, message: `proxy: ${what}` });
      return this.cut();
    },
    cut() {
      const n = pairs.size;
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      pairs.clear();
      return n;
    },
    // Resets the client side of every connection only: crier's side stays
    // open and silent (as after a NAT timeout or a network change), so crier
    // has not noticed anything when the client reconnects.
    dropClients() {
      const n = pairs.size;
      for (const pair of pairs) {
        pair.orphaned = true;
        pair.client.unpipe(pair.upstream);
        pair.upstream.unpipe(pair.client);
        pair.upstream.pause();
        orphans.add(pair.upstream);
        pair.client.resetAndDestroy();
      }
      pairs.clear();
      return n;
    },
    close() {
      this.cut();
      for (const s of orphans) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// The hub's WebSocket (GET /hubs/chat?id=… with Upgrade), answered by the
// server at least 30 ms ago: established, so a cut interrupts a running
// connection (not the client's own reconnect attempt, which the official
// client makes only once).
const isHubSocket = (p) => /^GET \/hubs\/chat\?id=/.test(p.head) && /\r\nupgrade: *websocket/i.test(p.head);
const liveHubSocket = (p) => isHubSocket(p) && p.down > 0 && Date.now() - p.downAt >= 30;

// Cuts `count` times, at a random moment in each of `count` equal slots of
// [fromMs, toMs] (from now): at the first moment from then on when the hub
// socket is live (within 3 s). Resolves [{atMs, cut}].
async function cutAtRandom(proxy, { count, fromMs, toMs, stopped }) {
  const t0 = Date.now();
  const slot = (toMs - fromMs) / count;
  const cuts = [];
  for (let k = 0; k < count && !stopped(); k++) {
    const at = fromMs + slot * k + Math.random() * slot * 0.8;
    await sleep(Math.max(0, t0 + at - Date.now()));
    const cut = await proxy.cutWhen(liveHubSocket, 3000, `no live hub WebSocket for cut ${k + 1}`);
    cuts.push({ atMs: Date.now() - t0, cut });
  }
  return cuts;
}

// -------------------------------------------------------------- publisher



// ---------------------------------------------------------------- checks

// Asserts that got is exactly 1..n in order; reports the first difference.
function assertAllOnceInOrder(label, got, n) {
  const firstBad = got.findIndex((v, i) => v !== i + 1);
  assert.ok(
    firstBad < 0,
    `${label}: value #${firstBad + 1} is ${JSON.stringify(got[firstBad])} ` +
      `(around it: ${JSON.stringify(got.slice(Math.max(0, firstBad - 3), firstBad + 4))}; ${got.length} in all)`,
  );
  assert.equal(got.length, n, `${label}: ${got.length} values, expected ${n} (last ${got.at(-1)})`);
}

// Starts crier for test t, and returns a function that registers clean-ups
// to run after the test in reverse order (the client, then the proxy, then
// crier, which must exit cleanly); the first failure is reported.
async function startWithCleanup(t) {
  const srv = await startCrier(CONFIG);
  const fns = [() => stopClean(srv)];
  t.after(async () => {
    let first = null;
    for (const fn of fns.reverse()) {
      try {
        await fn();
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  });
  return { srv, cleanup: (fn) => fns.push(fn) };
}

// ----------------------------------------------------------------- tests

test('negotiate grants stateful reconnect when asked for it', { timeout: 15_000 }, async (t) => {
  const { srv } = await startWithCleanup(t);
  const res = await request(`${srv.url}/hubs/chat/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json?.useStatefulReconnect, true, `negotiate answered ${res.text}`);
  assert.equal(typeof res.json.connectionToken, 'string', res.text);
  assert.ok(
    res.json.availableTransports?.some((tr) => tr.transport === 'WebSockets'),
    `WebSockets offered: ${res.text}`,
  );
});

// Both hub protocols: JSON text frames and MessagePack binary ones.
const PROTOCOLS = [
  ['JSON', () => new signalR.JsonHubProtocol()],
  ['MessagePack', () => new MessagePackHubProtocol()],
];

for (const [protocolName, makeProtocol] of PROTOCOLS)
test(`official client (${protocolName}), withStatefulReconnect: ${N} messages exactly once, in order, across ${CUTS} abrupt cuts`, { timeout: 60_000 }, async (t) => {
  const { srv, cleanup } = await startWithCleanup(t);
  const proxy = await startProxy(srv.port);
  cleanup(() => proxy.close());

  const logs = [];
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${proxy.url}/hubs/chat`, { transport: signalR.HttpTransportType.WebSockets })
    .withHubProtocol(makeProtocol())
    .withStatefulReconnect()
    // A failed stateful resume would end in a full reconnect, which fires
    // onreconnecting: enabled so that it shows (and fails the test).
    .withAutomaticReconnect([0, 100, 500])
    .configureLogging({
      log(level, message) {
        if (level >= signalR.LogLevel.Information) logs.push(`${Date.now()} ${signalR.LogLevel[level]}: ${message}`);
      },
    })
    .build();
  cleanup(() => withTimeout(conn.stop(), 5000, 'client stop()'));

  const got = [];
  const bad = [];
  let waiter = null;
  conn.on('ReceiveMessage', (user, i) => {
    if (user !== 'p' || !Number.isInteger(i)) bad.push([user, i]);
    got.push(i);
    waiter?.();
    // returns nothing: the server expects no result
  });
  const reconnecting = [];
  const closed = [];
  conn.onreconnecting((err) => reconnecting.push(err?.message ?? String(err)));
  conn.onclose((err) => closed.push(err?.message ?? String(err)));

  await withTimeout(conn.start(), 5000, 'client start()');
  const connectionId = conn.connectionId;
  assert.equal(conn.connection.transport?.constructor.name, 'WebSocketTransport', 'the client runs on WebSockets');
  assert.equal(conn.connection.features.reconnect, true, 'the client negotiated stateful reconnect');
  const joined = await withTimeout(conn.invoke('JoinRoom', ROOM), 3000, 'JoinRoom');
  assert.equal(joined?.room ?? ROOM, ROOM, `JoinRoom answered ${JSON.stringify(joined)}`);
  assert.equal(proxy.pairs().filter(isHubSocket).length, 1, 'one hub WebSocket through the proxy');

  let publishing = true;
  const t0 = Date.now();
  const [pub, cuts] = await Promise.all([
    publishSteady(srv.url, ROOM, N, PERIOD_MS, (i) => ['p', i]).finally(() => (publishing = false)),
    cutAtRandom(proxy, { count: CUTS, fromMs: 300, toMs: N * PERIOD_MS - 300, stopped: () => !publishing }),
  ]);
  assert.deepEqual(pub.bad, [], 'publisher: every POST answered 201 with the next id');

  const diag = () =>
    `have ${got.length} (last ${got.at(-1)}), state ${conn.state}, ${proxy.connections()} proxied connections, ` +
    `reconnecting ${JSON.stringify(reconnecting)}, closed ${JSON.stringify(closed)}\n` +
    `hub sockets crier refused: ${JSON.stringify(
      proxy
        .all()
        .filter((p) => isHubSocket(p) && p.down > 0 && !p.resp.startsWith('HTTP/1.1 101'))
        .map((p) => `${p.head.split('\r\n')[0]} -> ${p.resp.split('\r\n')[0]} ${p.resp.split('\r\n\r\n')[1] ?? ''}`),
    )}\nclient log:\n  ${logs.join('\n  ')}`;
  await withTimeout(
    new Promise((resolve) => {
      waiter = () => got.length >= N && resolve();
      waiter();
    }),
    15_000,
    `all ${N} messages after the last cut`,
  ).catch((err) => {
    err.message += `\n${diag()}`;
    throw err;
  });
  await sleep(500); // a duplicate would show up now
  const ms = Date.now() - t0;
  const hubSockets = proxy.all().filter(isHubSocket).length;
  t.diagnostic(
    `published in ${pub.ms} ms; cuts at ${cuts.map((c) => `${c.atMs} ms (${c.cut})`).join(', ')}; ` +
      `${proxy.connections()} connections through the proxy; all in ${ms} ms`,
  );

  assert.equal(cuts.length, CUTS, `${CUTS} cuts while publishing: ${JSON.stringify(cuts)}`);
  cuts.forEach((c, k) => assert.ok(c.cut >= 1, `cut ${k + 1} ended no connection`));
  assert.ok(hubSockets >= CUTS + 1, `the client opened ${hubSockets} sockets, expected a new one after each cut\n${diag()}`);
  assert.deepEqual(bad, [], 'every ReceiveMessage was ("p", integer)');
  assertAllOnceInOrder('ReceiveMessage', got, N);
  assert.deepEqual(reconnecting, [], `onreconnecting never fired (stateful reconnect resumes silently)\n${diag()}`);
  assert.deepEqual(closed, [], 'onclose never fired');
  assert.equal(conn.state, signalR.HubConnectionState.Connected, diag());
  assert.equal(conn.connectionId, connectionId, 'the same connection throughout');

  // Still a working connection: one more message arrives, once.
  const res = await request(`${srv.url}/rooms/${ROOM}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(['p', N + 1]),
  });
  assert.equal(res.status, 201, res.text);
  await waitFor(() => got.length >= N + 1, { timeout: 3000, message: `message ${N + 1} after the run` });
  await sleep(200);
  assert.deepEqual(got.slice(N - 1), [N, N + 1], 'the live message, once');
  assert.ok(ms < 30_000, `the run took ${ms} ms`);
});

// The client notices a dead socket before crier does (or crier never hears
// of it: a NAT timeout, a network change). Its resume on the same token must
// still take over the connection; refusing it makes the client start over on
// a new connection, outside the room, and what is published meanwhile is lost.
test('a resume that reaches crier before it noticed the old socket died still resumes', { timeout: 30_000 }, async (t) => {
  const { srv, cleanup } = await startWithCleanup(t);
  const proxy = await startProxy(srv.port);
  cleanup(() => proxy.close());
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${proxy.url}/hubs/chat`, { transport: signalR.HttpTransportType.WebSockets })
    .withStatefulReconnect()
    .withAutomaticReconnect([0, 100, 500])
    .configureLogging(signalR.LogLevel.None)
    .build();
  cleanup(() => withTimeout(conn.stop(), 5000, 'client stop()'));
  const got = [];
  conn.on('ReceiveMessage', (user, i) => {
    got.push(i);
  });
  const reconnecting = [];
  conn.onreconnecting((err) => reconnecting.push(err?.message ?? String(err)));
  await withTimeout(conn.start(), 5000, 'client start()');
  const connectionId = conn.connectionId;
  await withTimeout(conn.invoke('JoinRoom', ROOM), 3000, 'JoinRoom');
  const publish = async (i) => {
    const res = await request(`${srv.url}/rooms/${ROOM}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(['p', i]),
    });
    assert.equal(res.status, 201, res.text);
  };
  await publish(1);
  await waitFor(() => got.length >= 1, { timeout: 3000, message: 'message 1' });

  assert.ok(proxy.dropClients() >= 1, 'a connection was dropped');
  // The client reconnects at once; wait for crier's answer to it.
  await waitFor(() => proxy.all().filter(isHubSocket).length >= 2 && proxy.all().filter(isHubSocket)[1].down > 0, {
    timeout: 3000,
    message: 'the client\'s resume reached crier and was answered',
  });
  for (let i = 2; i <= 20; i++) await publish(i);
  await waitFor(() => got.length >= 20, { timeout: 5000, message: 'messages 2..20 after the resume' }).catch(
    (err) => {
      const resume = proxy.all().filter(isHubSocket)[1];
      err.message += `; have ${JSON.stringify(got)}`;
      err.message += `; the resume ${resume.head.split('\r\n')[0]} was answered ${JSON.stringify(resume.resp.slice(0, 300))}`;
      err.message += `; onreconnecting fired ${reconnecting.length} time(s), connection id ${conn.connectionId === connectionId ? 'kept' : 'changed'}`;
      throw err;
    },
  );
  await sleep(200);
  assertAllOnceInOrder('ReceiveMessage', got, 20);
  assert.deepEqual(reconnecting, [], 'onreconnecting never fired');
  assert.equal(conn.connectionId, connectionId, 'the same connection');
  assert.equal(conn.state, signalR.HubConnectionState.Connected);
});
