// Stateful reconnect (withStatefulReconnect) behind round robin with no
// sticky sessions: the WebSocket a client reconnects with lands on any
// node. The node that holds the connection resumes it; another node closes
// the socket at once after the upgrade (1013, no hub record), and the
// official client opens its next one, until one reaches the owner: nothing
// lost. Once the owner is dead the upgrade is answered 404, and the client
// starts a new connection cleanly (withAutomaticReconnect).

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import * as signalR from '@microsoft/signalr';

import { publishSteady } from '../lib/publish.js';
import { HANDSHAKE, negotiate, unhandledRejections } from '../lib/signalr.js';
import { openWs, wsRefusal } from '../lib/ws.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { killNode, startCluster, startNginx } from './helpers.js';

test('a hub WebSocket for a connection another node holds: closed 1013 at once after the upgrade (try again), or 404 before it when that node is dead', { timeout: 60_000 }, async (t) => {
  const { nodes } = await startCluster(t, 3);
  const [a, b, c] = nodes;
  const neg = await negotiate(a.url);
  const token = neg.json.connectionToken;
  // Its first WebSocket lands on B, which takes it.
  const ws = await openWs(`${b.wsUrl}/hubs/chat?id=${token}`);
  t.after(() => ws.close());
  ws.ws.send(HANDSHAKE);
  await ws.until((s) => s.texts.length >= 1, 3000, 'the handshake reply');
  // A reconnect of it that lands on C (or A): closed at once, no hub record
  // read or sent, so that the official client tries its next socket.
  for (const node of [c, a]) {
    const other = await openWs(`${node.wsUrl}/hubs/chat?id=${token}`);
    other.ws.send('{"type":6}\x1e');
    const closed = await other.waitForClose();
    assert.deepEqual(closed, { code: 1013, reason: 'this connection is held by another node' }, `${node.name}`);
    assert.deepEqual(other.texts, [], `${node.name}: no hub record`);
  }
  // B still holds it: the handshake's connection answers a ping.
  ws.ws.send('{"type":6}\x1e');
  await ws.until((s) => s.texts.length >= 2, 3000, 'a ping back from B');
  // B dies: a WebSocket for it is refused 404 before the upgrade.
  await killNode(b);
  const res = await wsRefusal(`${c.wsUrl}/hubs/chat?id=${token}`);
  assert.equal(res.status, 404, `${res.status} ${res.body}`);
  assert.deepEqual(JSON.parse(res.body), { error: 'no such connection' });
  // A token nobody knows: 404 too.
  const unknown = await wsRefusal(`${c.wsUrl}/hubs/chat?id=${'x'.repeat(22)}`);
  assert.equal(unknown.status, 404);
});

// A TCP proxy to port; cut() resets every connection through it.
async function startProxy(t, port) {
  const pairs = new Set();
  let opened = 0;
  const server = net.createServer((client) => {
    opened++;
    const upstream = net.connect(port, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', done);
      s.on('close', done);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    return new Promise((resolve) => server.close(resolve));
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    opened: () => opened,
    cut() {
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      pairs.clear();
    },
  };
}

const N = 500;
const CUTS = 5;

test(`official client, withStatefulReconnect, through nginx over three nodes: ${N} messages, ${CUTS} cuts, nothing lost, no exception, streaming again within 5 s each time`, { timeout: 90_000 }, async (t) => {
  const { nodes } = await startCluster(t, 3, { history: { size: 2000 } });
  const nginx = await startNginx(t, nodes.map((n) => n.port));
  const proxy = await startProxy(t, Number(new URL(nginx).port));

  const logs = [];
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${proxy.url}/hubs/chat`, { transport: signalR.HttpTransportType.WebSockets })
    .withStatefulReconnect()
    .withAutomaticReconnect([0, 100, 500, 1000])
    .configureLogging({ log: (level, message) => level >= signalR.LogLevel.Information && logs.push(`${Date.now()} ${signalR.LogLevel[level]}: ${message}`) })
    .build();
  t.after(() => withTimeout(conn.stop(), 5000, 'client stop()'));
  const got = [];
  const at = []; // when each arrived
  conn.on('ReceiveMessage', (user, i) => {
    got.push(i);
    at.push(Date.now());
  });
  let resumedFull = 0;
  conn.onreconnected(async () => {
    resumedFull++;
    await conn.invoke('JoinRoom', 'sr'); // a new connection: the app joins again
  });
  const before = unhandledRejections.length;
  await withTimeout(conn.start(), 5000, 'start()');
  assert.equal(conn.connection.features.reconnect, true, 'stateful reconnect negotiated');
  await conn.invoke('JoinRoom', 'sr');

  const cutTimes = [];
  const cutter = (async () => {
    for (let k = 0; k < CUTS; k++) {
      await sleep(700);
      cutTimes.push(Date.now());
      proxy.cut();
    }
  })();
  const pub = await publishSteady(nodes[0].url, 'sr', N, 12, (i) => ['p', i]);
  await cutter;
  assert.deepEqual(pub.bad, []);
  await waitFor(() => got.includes(N), { timeout: 10_000, message: `the last message (have ${got.length})\n${logs.join('\n')}` });
  assert.equal(conn.state, signalR.HubConnectionState.Connected);
  assert.deepEqual(unhandledRejections.slice(before), [], `no uncaught exception in the client\n${logs.join('\n')}`);
  for (const c of cutTimes) {
    const next = at.find((x) => x > c);
    assert.ok(next !== undefined && next - c < 5000, `streaming again within 5 s of the cut at ${c}: next message at ${next}`);
  }
  const lost = N - new Set(got).size;
  t.diagnostic(`${got.length} received, ${lost} lost, ${got.length - new Set(got).size} duplicates, ${resumedFull} new connections over ${CUTS} cuts`);
  assert.equal(got.length, new Set(got).size, 'no duplicates');
  assert.equal(resumedFull, 0, `every cut resumed on the owner (no new connection)\n${logs.join('\n')}`);
  assert.equal(lost, 0, 'nothing lost');
  // Round robin sent resumes to nodes that do not hold the connection (they
  // closed them, 1013) before one reached the owner: the cross-node path.
  const bounced = logs.filter((l) => /WebSocket connected/.test(l)).length - 1 - CUTS;
  t.diagnostic(`${proxy.opened()} connections through the proxy, ${bounced} resumes bounced by another node`);
  assert.ok(bounced > 0, `some resume landed on another node first\n${logs.join('\n')}`);
  await withTimeout(conn.stop(), 5000, 'client stop()');
});
