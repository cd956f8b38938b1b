// SignalR's MessagePack hub protocol across a cluster: three crier nodes on
// one redis-server behind deploy/nginx.conf (round robin, no sticky
// sessions). The official client with MessagePackHubProtocol on WebSockets
// and on long polling (whose binary POST bodies and poll answers are
// forwarded between nodes as they land on nodes that do not hold the
// connection), an official JSON client on long polling, all through nginx,
// and a plain crier WebSocket on one node share a room: 500 messages from
// each of the three SignalR clients, every one received by every client,
// in one order. Server-Sent Events stay refused for MessagePack. And by
// hand: binary POST bodies and poll answers forwarded between nodes arrive
// byte for byte.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

import { T, connect, invoke, receiver, signalR, transportName } from '../lib/signalr.js';
import { withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';
import { signalrCtx, startCluster, startNginx } from './helpers.js';

const { decode, encode } = createRequire(import.meta.url)('@msgpack/msgpack');

const N = 500;
const ROOM = 'mp-cluster';
// 3 * N messages burst into the room: every connection may queue them all.
const CONFIG = { limits: { send_queue: 8 * N } };

async function connectMsgpack(ctx, transport, label) {
  const logs = [];
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(ctx.hubUrl(), { transport })
    .withHubProtocol(new MessagePackHubProtocol())
    .configureLogging({ log: (level, m) => level >= signalR.LogLevel.Information && logs.push(m) })
    .build();
  conn.label = label;
  conn.logs = logs;
  ctx.track({ close: () => withTimeout(conn.stop(), 10_000, `${label}: stop()`) });
  await withTimeout(conn.start(), 10_000, `${label}: start()`);
  return conn;
}

const payload = (who, i) => ({ who, i, text: `zoë € ${i}`, f: i + 0.25, list: [i, { deep: [true, null] }] });

test(`MessagePack through nginx over three nodes: WebSockets and long polling exchange ${N} messages each with JSON clients`, { timeout: 240_000 }, async (t) => {
  const { nodes } = await startCluster(t, 3, CONFIG);
  const nginx = await startNginx(t, nodes.map((n) => n.port));
  const ctx = signalrCtx(t, nginx);

  const mpWs = await connectMsgpack(ctx, T.WebSockets, 'msgpack WebSockets via nginx');
  const mpLp = await connectMsgpack(ctx, T.LongPolling, 'msgpack LongPolling via nginx');
  const json = await connect(ctx, { transport: T.LongPolling, label: 'json LongPolling via nginx' });
  assert.equal(transportName(mpWs), 'WebSocketTransport');
  assert.equal(transportName(mpLp), 'LongPollingTransport');
  await assert.rejects(connectMsgpack(ctx, T.ServerSentEvents, 'msgpack SSE via nginx'), /'ServerSentEvents' does not support Binary/);

  const senders = [
    ['mpWs', mpWs],
    ['mpLp', mpLp],
    ['json', json],
  ];
  for (const [, c] of senders) assert.equal((await invoke(c, 'JoinRoom', ROOM))?.room, ROOM);
  const plain = await openWs(`${nodes[1].wsUrl}/rooms/${ROOM}/ws`);
  t.after(() => plain.close());
  const rx = senders.map(([, c]) => receiver(c));

  await Promise.all(
    senders.map(async ([who, c]) => {
      for (let i = 0; i < N; i++) await c.send('SendToRoom', ROOM, who, payload(who, i));
    }),
  );
  const total = senders.length * N;
  for (const r of rx) await r.wait(total, 180_000);
  await plain.until((c) => c.messages.length >= total, 180_000, `plain client on B: ${total} messages`);

  const plainCalls = plain.messages.map((m) => m.data);
  const all = [...senders.map(([who], k) => [who, rx[k].calls]), ['plain', plainCalls]];
  for (const [name, calls] of all) {
    assert.equal(calls.length, total, `${name}: exactly ${total} messages, none twice`);
    for (const [who] of senders) {
      const mine = calls.filter((c) => c[0] === who).map((c) => c[1]);
      assert.equal(mine.length, N, `${name}: all ${N} from ${who}`);
      mine.forEach((p, i) => assert.deepEqual(p, payload(who, i), `${name}: message ${i} of ${who}, in order and intact`));
    }
    assert.deepEqual(calls, plainCalls, `${name}: the room's one order`);
  }
  for (const [, c] of senders) assert.equal(c.state, 'Connected');
  for (const n of nodes) assert.doesNotMatch(n.stderr(), /dropped|ERROR|runtime error/, `node ${n.name}: nothing dropped, no error`);
});

// A framed MessagePack record, and the records of a binary body.
function frame(value) {
  const body = encode(value);
  const pre = [];
  let n = body.length;
  do {
    let b = n & 0x7f;
    n >>= 7;
    if (n) b |= 0x80;
    pre.push(b);
  } while (n);
  return Buffer.concat([Buffer.from(pre), Buffer.from(body)]);
}

function unframe(buf) {
  const out = [];
  let off = 0;
  while (off < buf.length) {
    let n = 0;
    let shift = 0;
    let b;
    do {
      b = buf[off++];
      n |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    out.push(decode(buf.subarray(off, off + n)));
    off += n;
  }
  return out;
}

test('MessagePack long polling by hand: binary POST bodies and poll answers survive forwarding between nodes', { timeout: 60_000 }, async (t) => {
  const { nodes } = await startCluster(t, 3, CONFIG);
  const [a, b, c] = nodes;
  const neg = await fetch(`${a.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST' });
  const { connectionToken: token } = await neg.json();
  const on = (node) => `${node.url}/hubs/chat?id=${token}`;
  assert.equal((await fetch(on(a))).status, 200, 'the first poll, on A: A holds the connection');
  // The handshake through B, the records through C, polls through B and C:
  // every one of them forwarded to A.
  assert.equal((await fetch(on(b), { method: 'POST', body: '{"protocol":"messagepack","version":1}\x1e' })).status, 200);
  const hs = Buffer.from(await (await fetch(on(c))).arrayBuffer());
  assert.equal(hs.toString(), '{}\x1e', 'the handshake answer, through C');
  // Bytes that text handling would break: NUL, CR LF, 0xff, a bin value.
  const text = 'nul\u0000 crlf\r\n high\u00ff €';
  const body = Buffer.concat([frame([1, {}, '1', 'SendMessage', [text, new Uint8Array([0, 10, 13, 255])]]), frame([6])]);
  const post = await fetch(on(c), { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body });
  assert.equal(post.status, 200, 'the binary POST, forwarded from C');
  const records = [];
  for (let i = 0; i < 10 && !records.some((r) => r[0] === 3); i++) {
    const poll = await fetch(on(i % 2 ? b : c));
    assert.equal(poll.status, 200);
    records.push(...unframe(Buffer.from(await poll.arrayBuffer())));
  }
  const call = records.find((r) => r[0] === 1);
  assert.ok(call, `the broadcast came back: ${JSON.stringify(records)}`);
  assert.deepEqual(call.slice(2), [null, 'ReceiveMessage', [text, 'AAoN/w==']], 'arguments intact; bin as base64');
  assert.deepEqual(records.find((r) => r[0] === 3), [3, {}, '1', 3, null], 'the completion');
  assert.equal((await fetch(on(b), { method: 'DELETE' })).status, 202);
});
