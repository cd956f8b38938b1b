// Gaps with the official client across nodes (README "Gaps with the
// official client"): two crier nodes on one Redis, the hub option
// rejoin_query on. An official @microsoft/signalr client with
// withAutomaticReconnect reaches node A through a TCP proxy; the proxy cuts
// every connection, and while the client is away messages are published on
// node B; the proxy then sends the client to node B. The client reconnects
// there with crier_rooms in its URL (set in onreconnecting, from the
// crier-* headers its protocol noted), and node B, which had no member in
// the room, fetches the room's numbering and history from Redis and replays
// what the client missed: every message once, in order, on each transport.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import { publishOn, startCluster } from './helpers.js';
import { waitFor, withTimeout } from '../lib/util.js';

const T = signalR.HttpTransportType;
const CONFIG = {
  history: { size: 1000 },
  signalr: { disconnect_timeout_s: 2 },
  hubs: { chat: { path: '/hubs/chat', rejoin_query: true, methods: { JoinRoom: { action: 'join', args: 1 } } } },
};

// A TCP proxy to a node that can be switched: outage() resets every
// connection and refuses new ones until restore(port).
async function startProxy(port) {
  const pairs = new Set();
  let target = port;
  const server = net.createServer((client) => {
    if (!target) return client.resetAndDestroy();
    const upstream = net.connect(target, '127.0.0.1');
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
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    outage() {
      target = 0;
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      pairs.clear();
    },
    restore(to) {
      target = to;
    },
    close() {
      this.outage();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// The README's app code: the protocol notes each room message's position.
class CursorProtocol extends signalR.JsonHubProtocol {
  constructor(positions) {
    super();
    this.positions = positions;
  }

  parseMessages(input, logger) {
    const messages = super.parseMessages(input, logger);
    for (const m of messages) {
      const h = m.headers;
      if (h && h['crier-room'] && h['crier-epoch'] && !h['crier-room'].startsWith('~'))
        this.positions.set(h['crier-room'], { epoch: h['crier-epoch'], id: Number(h['crier-id']) });
    }
    return messages;
  }
}

for (const transport of [T.WebSockets, T.ServerSentEvents, T.LongPolling]) {
  const name = T[transport];
  test(`${name}: reconnecting to another node with crier_rooms, nothing is lost`, { timeout: 60_000 }, async (t) => {
    const { nodes } = await startCluster(t, 2, CONFIG);
    const [a, b] = nodes;
    const proxy = await startProxy(a.port);
    t.after(() => proxy.close());
    const positions = new Map();
    const hubUrl = `${proxy.url}/hubs/chat`;
    const logs = [];
    const conn = new signalR.HubConnectionBuilder()
      .withUrl(hubUrl, { transport })
      .withHubProtocol(new CursorProtocol(positions))
      .withAutomaticReconnect(Array(100).fill(200))
      .configureLogging({ log: (level, message) => level >= signalR.LogLevel.Information && logs.push(message) })
      .build();
    const got = [];
    const gaps = [];
    conn.on('ReceiveMessage', (v) => got.push(v));
    conn.on('CrierGap', (g) => gaps.push(g));
    conn.onreconnecting(() => {
      const rooms = [...positions].map(([room, p]) => `${room}:${p.epoch}:${p.id}`).join(',');
      conn.baseUrl = rooms ? `${hubUrl}?crier_rooms=${encodeURIComponent(rooms)}` : hubUrl;
    });
    t.after(() => withTimeout(conn.stop(), 5000, 'stop').catch(() => {}));
    await withTimeout(conn.start(), 10_000, 'start');
    const joined = await withTimeout(conn.invoke('JoinRoom', 'lobby'), 5000, 'JoinRoom');
    if (!positions.has('lobby')) positions.set('lobby', { epoch: joined.epoch, id: joined.last_id });

    for (let i = 1; i <= 5; i++) assert.equal((await publishOn(a, 'lobby', i)).status, 201);
    await waitFor(() => got.length >= 5, { timeout: 10_000, message: `the first 5 (${JSON.stringify(got)})` });

    proxy.outage();
    await waitFor(() => conn.state === signalR.HubConnectionState.Reconnecting, { timeout: 15_000, message: 'reconnecting' });
    for (let i = 6; i <= 30; i++) assert.equal((await publishOn(b, 'lobby', i)).status, 201);
    proxy.restore(b.port); // the client comes back on node B

    await waitFor(() => got.length >= 30, { timeout: 20_000, message: `all 30 on node B (${JSON.stringify(got)}; ${logs.join(' | ')})` });
    for (let i = 31; i <= 32; i++) assert.equal((await publishOn(a, 'lobby', i)).status, 201); // live, from A
    await waitFor(() => got.length >= 32, { timeout: 10_000, message: `live after (${JSON.stringify(got)})` });
    assert.deepEqual(got, Array.from({ length: 32 }, (_, i) => i + 1), `${name}: every message once, in order`);
    assert.deepEqual(gaps, []);
  });
}
