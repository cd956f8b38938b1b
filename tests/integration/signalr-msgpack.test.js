// SignalR's MessagePack hub protocol: the official client with
// MessagePackHubProtocol (@microsoft/signalr-protocol-msgpack) on WebSockets
// and long polling shares a room with an official JSON client and a plain
// crier WebSocket: 500 messages from each, every one received by every
// client in one order, values mapped alike. Server-Sent Events carry text
// only: the official client refuses them for MessagePack, and a hand-made
// client asking for it there is told so. Bad MessagePack (lying length
// prefixes, huge headers, wrong shapes, oversize records) closes that
// connection with a Close record in MessagePack, and the server goes on.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import {
  T,
  TRANSPORT_CLASS,
  assertJoined,
  assertStillServes,
  invoke,
  negotiate,
  receiver,
  setup,
  signalR,
  transportName,
  unhandledRejections,
} from '../lib/signalr.js';
import { waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

// The MessagePack codec the official protocol package itself uses.
const { decode, encode } = createRequire(import.meta.url)('@msgpack/msgpack');

const N = 500;
const ROOM = 'mixed';
// The three senders burst 3 * N messages into the room at once, and a test
// process busy sending reads slowly: each connection may queue all of them
// (the default 1024 would drop a subscriber as too slow, by design).
const CONFIG = { limits: { send_queue: 8 * N } };

// A framed MessagePack record: VarInt length, then the value.
function frame(value) {
  const body = value instanceof Uint8Array ? value : encode(value);
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

// The records of a binary unit, decoded.
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

// An official client with the MessagePack protocol, bounded start.
async function connectMsgpack(ctx, { transport, label }) {
  const logs = [];
  const options = transport === undefined ? {} : { transport };
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(ctx.hubUrl(), options)
    .withHubProtocol(new MessagePackHubProtocol())
    .configureLogging({ log: (level, m) => level >= signalR.LogLevel.Information && logs.push(m) })
    .build();
  conn.label = label;
  conn.logs = logs;
  ctx.track({ close: () => withTimeout(conn.stop(), 5000, `${label}: stop()`) });
  await withTimeout(conn.start(), 5000, `${label}: start()`);
  return conn;
}

// The value every client sends with message i (strings, numbers, nesting).
const payload = (who, i) => ({ who, i, text: `zoë € ${i}`, f: i + 0.5, neg: -i - 1, ok: i % 2 === 0, none: null, list: [i, [`${i}`]] });

// A plain crier WebSocket of ROOM: data of each envelope, in order.
async function plainClient(ctx) {
  const ws = await openWs(`${ctx.wsUrl}/rooms/${ROOM}/ws`);
  ctx.track({ close: async () => ws.close() });
  return ws;
}

// Sends n messages from each of the three clients at once; every client must
// get all 3n in the same order, each sender's in its own order.
async function exchange(ctx, mp, json, plain) {
  const rxM = receiver(mp);
  const rxJ = receiver(json);
  const sends = [];
  sends.push(
    (async () => {
      for (let i = 0; i < N; i++) await mp.send('SendToRoom', ROOM, 'mp', payload('mp', i));
    })(),
  );
  sends.push(
    (async () => {
      for (let i = 0; i < N; i++) await json.send('SendToRoom', ROOM, 'json', payload('json', i));
    })(),
  );
  for (let i = 0; i < N; i++) plain.ws.send(JSON.stringify(['plain', payload('plain', i)]));
  await Promise.all(sends);
  const total = 3 * N;
  await rxM.wait(total, 60_000);
  await rxJ.wait(total, 60_000);
  await plain.until((c) => c.messages.length >= total, 60_000, `plain client: ${total} messages`);

  const plainCalls = plain.messages.map((m) => m.data);
  for (const [name, calls] of [['msgpack client', rxM.calls], ['json client', rxJ.calls], ['plain client', plainCalls]]) {
    assert.equal(calls.length, total, `${name}: exactly ${total} messages, none twice`);
    for (const who of ['mp', 'json', 'plain']) {
      const mine = calls.filter((c) => c[0] === who).map((c) => c[1]);
      assert.equal(mine.length, N, `${name}: all ${N} from ${who}`);
      mine.forEach((p, i) => assert.deepEqual(p, payload(who, i), `${name}: message ${i} of ${who}, in order and intact`));
    }
  }
  assert.deepEqual(rxM.calls, plainCalls, 'the MessagePack client sees the room in the same order as the plain client');
  assert.deepEqual(rxJ.calls, plainCalls, 'the JSON client sees the room in the same order as the plain client');
  const ids = plain.messages.map((m) => m.id);
  ids.forEach((id, k) => k && assert.equal(id, ids[k - 1] + 1, 'the room ids have no gap'));
}

for (const transport of [T.WebSockets, T.LongPolling]) {
  const name = TRANSPORT_CLASS[transport];
  test(`MessagePack on ${name}: ${N} messages each way with an official JSON client and a plain WebSocket`, async (t) => {
    const ctx = await setup(t, CONFIG);
    const mp = await connectMsgpack(ctx, { transport, label: `msgpack (${name})` });
    assert.equal(transportName(mp), name);
    const json = await ctx.connect({ transport: T.WebSockets, label: 'json (WebSocketTransport)' });
    assertJoined(await invoke(mp, 'JoinRoom', ROOM), ROOM);
    assertJoined(await invoke(json, 'JoinRoom', ROOM), ROOM);
    const plain = await plainClient(ctx);

    // Completions: a result, an error, and the connection going on after it.
    await assert.rejects(invoke(mp, 'Frobnicate', 1), /Unknown hub method 'Frobnicate'\./);
    assert.equal(mp.state, 'Connected');

    await exchange(ctx, mp, json, plain);
    assert.equal(mp.state, 'Connected');
    assert.doesNotMatch(ctx.srv.stderr(), /dropped/, 'no subscriber was dropped');
    assert.deepEqual(unhandledRejections, [], 'no unhandled rejection in the clients');
  });
}

test('MessagePack: the default transport is WebSockets, and a bin argument reaches JSON clients as base64', async (t) => {
  const ctx = await setup(t);
  const mp = await connectMsgpack(ctx, { label: 'msgpack (default)' });
  assert.equal(transportName(mp), 'WebSocketTransport');
  const json = await ctx.connect({ transport: T.WebSockets, label: 'json' });
  const rxJ = receiver(json);
  const rxM = receiver(mp);
  await invoke(mp, 'SendMessage', 'ann', new Uint8Array([1, 2, 3, 250]));
  await rxJ.wait(1);
  await rxM.wait(1);
  assert.deepEqual(rxJ.calls[0], ['ann', 'AQID+g=='], 'bin becomes a base64 string');
  assert.deepEqual(rxM.calls[0], ['ann', 'AQID+g=='], 'and so it comes back to the sender');
  // A JSON publish over HTTP arrives mapped value for value.
  assertJoined(await invoke(mp, 'JoinRoom', ROOM), ROOM);
  const res2 = await fetch(`${ctx.url}/rooms/${ROOM}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(['curl', { big: 2 ** 53, neg: -7, real: 0.1, s: '\u0000nul', deep: [[[[]]]] }]),
  });
  assert.equal(res2.status, 201);
  await rxM.wait(2);
  assert.deepEqual(rxM.calls[1], ['curl', { big: 2 ** 53, neg: -7, real: 0.1, s: '\u0000nul', deep: [[[[]]]] }]);
});

test('MessagePack and Server-Sent Events: text only, refused by the official client and by crier', async (t) => {
  const ctx = await setup(t);
  const res = await negotiate(ctx.url);
  const sse = res.json.availableTransports.find((a) => a.transport === 'ServerSentEvents');
  assert.deepEqual(sse.transferFormats, ['Text'], 'negotiate offers SSE for text only');
  await assert.rejects(connectMsgpack(ctx, { transport: T.ServerSentEvents, label: 'msgpack (SSE)' }), /'ServerSentEvents' does not support Binary/);

  // A hand-made client asking for MessagePack on an SSE stream is answered
  // with a handshake error on its stream.
  const token = (await negotiate(ctx.url)).json.connectionToken;
  const ac = new AbortController();
  t.after(() => ac.abort());
  const stream = await fetch(`${ctx.hubUrl()}?id=${token}`, { headers: { Accept: 'text/event-stream' }, signal: ac.signal });
  assert.equal(stream.status, 200);
  const post = await fetch(`${ctx.hubUrl()}?id=${token}`, { method: 'POST', body: '{"protocol":"messagepack","version":1}\x1e' });
  assert.equal(post.status, 200);
  const reader = stream.body.getReader();
  let text = '';
  await withTimeout(
    (async () => {
      while (!text.includes('Server-Sent Events carry text only')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    })(),
    5000,
    'the handshake error on the SSE stream',
  );
  assert.match(text, /"error":"Protocol 'messagepack' is binary and Server-Sent Events carry text only/);
});

// A raw WebSocket after a MessagePack handshake; resolves with the socket.
async function rawMsgpackWs(ctx) {
  const token = (await negotiate(ctx.url)).json.connectionToken;
  const ws = await openWs(`${ctx.wsUrl}/hubs/chat?id=${token}`);
  ctx.track({ close: async () => ws.close() });
  ws.frames = [];
  ws.ws.on('message', (data, isBinary) => {
    ws.frames.push({ data: Buffer.from(data), isBinary });
    ws.emit('update'); // after openWs's own handler: until() sees the frame
  });
  ws.ws.send('{"protocol":"messagepack","version":1}\x1e');
  await ws.until(() => ws.frames.length >= 1, 3000, 'the handshake answer');
  assert.equal(ws.frames[0].data.toString(), '{}\x1e', 'the handshake answer is JSON text');
  return ws;
}

// Sends bytes; the connection must end with a MessagePack Close record
// whose error matches `error`.
async function assertClosedWith(ctx, bytes, error, what) {
  const ws = await rawMsgpackWs(ctx);
  ws.ws.send(bytes, { binary: true });
  await ws.until((c) => c.closeInfo, 5000, `${what}: waiting for the close`);
  const records = ws.frames.slice(1).flatMap((f) => {
    assert.equal(f.isBinary, true, `${what}: records after the handshake come in binary frames`);
    return unframe(f.data);
  });
  const close = records.find((r) => r[0] === 7);
  assert.ok(close, `${what}: a Close record, got ${JSON.stringify(records)}`);
  assert.match(String(close[1]), error, `${what}: the Close error`);
  assert.equal(close[2], false, `${what}: no reconnect`);
}

test('MessagePack bad input: each closes its connection with a Close error; the server goes on', async (t) => {
  const ctx = await setup(t, { limits: { max_message_bytes: 4096 } });
  const cases = [
    [Buffer.from([0x10, 0x91, 0x06]), /shorter than its length prefix/, 'a lying length prefix'],
    [Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), /malformed MessagePack length prefix/, 'an endless VarInt'],
    [Buffer.from([0x80, 0x80]), /length prefix is cut short/, 'a VarInt cut short'],
    [frame(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff])), /malformed MessagePack/, 'an array header of 4 billion elements'],
    [frame(Buffer.from([0xc1])), /malformed MessagePack/, 'the never-used byte 0xc1'],
    [frame([1, {}, '1']), /too few elements/, 'an Invocation of three elements'],
    [frame('not an array'), /not an array starting with its type/, 'a string record'],
    // [1, {}, "1", "SendMessage", [{[1]: 2}]], by hand: encoders write no array keys
    [frame(Buffer.concat([Buffer.from([0x95, 0x01, 0x80, 0xa1, 0x31, 0xab]), Buffer.from('SendMessage'), Buffer.from([0x91, 0x81, 0x91, 0x01, 0x02])])), /map key is not a string or an integer/, 'a map with an array key'],
    [Buffer.concat([Buffer.from([0x80, 0x80, 0x04]), Buffer.alloc(10)]), /larger than limits\.max_message_bytes/, 'a record of 64 KiB announced'],
    [frame([1, {}, 7, 'SendMessage', ['a', 'b']]), /'invocationId' must be a string/, 'a number as invocationId'],
  ];
  for (const [bytes, error, what] of cases) await assertClosedWith(ctx, bytes, error, what);

  // Several records in one frame, and an Invocation with streamIds: answered.
  const ws = await rawMsgpackWs(ctx);
  ws.ws.send(Buffer.concat([frame([6]), frame([1, {}, 'a', 'JoinRoom', ['r'], []]), frame([1, {}, 'b', 'Frobnicate', []])]), { binary: true });
  await ws.until(() => ws.frames.slice(1).flatMap((f) => unframe(f.data)).filter((r) => r[0] === 3).length >= 2, 3000, 'two completions');
  // By invocation id: with Redis the join completes after the room's
  // channel is subscribed, so 'b' may be answered first.
  const done = ws.frames.slice(1).flatMap((f) => unframe(f.data)).filter((r) => r[0] === 3);
  const joined = done.find((r) => r[2] === 'a');
  assert.deepEqual(joined.slice(0, 4), [3, {}, 'a', 3]);
  assert.equal(joined[4].room, 'r');
  assert.deepEqual(done.find((r) => r[2] === 'b'), [3, {}, 'b', 1, "Unknown hub method 'Frobnicate'."]);

  // Long polling: a lying prefix in a POST body closes the connection too.
  const token = (await negotiate(ctx.url)).json.connectionToken;
  const url = `${ctx.hubUrl()}?id=${token}`;
  assert.equal((await fetch(url)).status, 200, 'the first poll');
  assert.equal((await fetch(url, { method: 'POST', body: '{"protocol":"messagepack","version":1}\x1e' })).status, 200);
  const hs = Buffer.from(await (await fetch(url)).arrayBuffer());
  assert.equal(hs.toString(), '{}\x1e');
  assert.equal((await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.from([0x7f, 0x91]) })).status, 200);
  const poll = await fetch(url);
  assert.equal(poll.headers.get('content-type'), 'application/octet-stream');
  const recs = unframe(Buffer.from(await poll.arrayBuffer()));
  assert.equal(recs[0][0], 7);
  assert.match(recs[0][1], /shorter than its length prefix/);

  // A JSON connection still refuses binary frames.
  await assertStillServes(ctx, 'bad MessagePack');
  await waitFor(() => ctx.srv.stderr().includes('closed connection'), { message: 'closes are logged' });
});
