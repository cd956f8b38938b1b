// Negotiate answers (versions 1 and 0, only enabled transports) and the
// official client's transport fallback when transports are switched off;
// skipNegotiation with WebSockets.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  T,
  assertVoid, assertJoined,
  invoke,
  negotiate,
  receiver,
  setup,
  stop,
  transportName,
} from '../lib/signalr.js';
import { wsRefusal } from '../lib/ws.js';

const WS = { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] };
const SSE = { transport: 'ServerSentEvents', transferFormats: ['Text'] };
const LP = { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] };
const URL_SAFE = /^[A-Za-z0-9._~-]+$/;

// Two default-option clients chat: a's SendMessage reaches a and b.
async function assertChat(ctx, a, b) {
  const rxA = receiver(a);
  const rxB = receiver(b);
  assertVoid(await invoke(a, 'SendMessage', 'ann', `over ${transportName(a)}`));
  await Promise.all([rxA.wait(1), rxB.wait(1)]);
  assert.deepEqual(rxB.calls, [['ann', `over ${transportName(a)}`]]);
  assert.deepEqual(rxA.calls, rxB.calls);
}

test('negotiate v1: ids, URL-safe token, all transports in order', async (t) => {
  const ctx = await setup(t);
  const res = await negotiate(ctx.url);
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/);
  const body = res.json;
  assert.deepEqual(Object.keys(body).sort(), ['availableTransports', 'connectionId', 'connectionToken', 'negotiateVersion']);
  assert.equal(body.negotiateVersion, 1);
  assert.equal(typeof body.connectionId, 'string');
  assert.equal(typeof body.connectionToken, 'string');
  assert.ok(body.connectionId.length >= 16, `connectionId ${body.connectionId}`);
  assert.ok(body.connectionToken.length >= 16, `connectionToken ${body.connectionToken}`);
  assert.notEqual(body.connectionToken, body.connectionId, 'the token differs from the id');
  assert.match(body.connectionToken, URL_SAFE);
  assert.match(body.connectionId, URL_SAFE);
  assert.deepEqual(body.availableTransports, [WS, SSE, LP]);

  const again = await negotiate(ctx.url);
  assert.notEqual(again.json.connectionId, body.connectionId, 'a new connection per negotiate');
  assert.notEqual(again.json.connectionToken, body.connectionToken);
});

test('negotiate v0: no connectionToken, no negotiateVersion; the id works as the token', async (t) => {
  const ctx = await setup(t);
  const res = await negotiate(ctx.url, { version: null });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.json).sort(), ['availableTransports', 'connectionId']);
  assert.match(res.json.connectionId, URL_SAFE);
  assert.deepEqual(res.json.availableTransports, [WS, SSE, LP]);
  // The version-0 id is what a v0 client puts in ?id=: the connection exists.
  const poll = await fetch(`${ctx.url}/hubs/chat?id=${res.json.connectionId}`, { signal: AbortSignal.timeout(3000) });
  await poll.arrayBuffer();
  assert.equal(poll.status, 200, 'first long poll with the v0 id');
});

test('websocket off: negotiate lists SSE and LP; a default client connects over SSE and chats', async (t) => {
  const ctx = await setup(t, { transports: { websocket: false } });
  const res = await negotiate(ctx.url);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.availableTransports, [SSE, LP]);
  const refused = await wsRefusal(`${ctx.wsUrl}/hubs/chat?id=${res.json.connectionToken}`);
  assert.ok(refused.status >= 400 && refused.status < 500, `WS upgrade with websocket off: ${refused.status}`);

  const a = await ctx.connect({ label: 'a (default)' });
  const b = await ctx.connect({ label: 'b (default)' });
  assert.equal(transportName(a), 'ServerSentEventsTransport');
  assert.equal(transportName(b), 'ServerSentEventsTransport');
  await assertChat(ctx, a, b);
  await stop(a);
  await stop(b);
});

test('websocket and sse off: negotiate lists LP only; a default client connects over LP and chats', async (t) => {
  const ctx = await setup(t, { transports: { websocket: false, sse: false } });
  const res = await negotiate(ctx.url);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.availableTransports, [LP]);
  const v0 = await negotiate(ctx.url, { version: null });
  assert.deepEqual(v0.json.availableTransports, [LP]);

  const a = await ctx.connect({ label: 'a (default)' });
  const b = await ctx.connect({ label: 'b (default)' });
  assert.equal(transportName(a), 'LongPollingTransport');
  assert.equal(transportName(b), 'LongPollingTransport');
  await assertChat(ctx, a, b);
  await stop(a);
  await stop(b);
});

test('sse off only: negotiate lists WS and LP; forcing SSE fails to start', async (t) => {
  const ctx = await setup(t, { transports: { sse: false } });
  const res = await negotiate(ctx.url);
  assert.deepEqual(res.json.availableTransports, [WS, LP]);
  await assert.rejects(ctx.connect({ transport: T.ServerSentEvents, label: 'forced SSE' }), (err) => {
    assert.doesNotMatch(err.message, /timed out/, 'start() rejects rather than hanging');
    return true;
  });
  const a = await ctx.connect({ label: 'a (default)' });
  const b = await ctx.connect({ transport: T.LongPolling, label: 'b (LP)' });
  assert.equal(transportName(a), 'WebSocketTransport');
  await assertChat(ctx, a, b);
  await assertChat(ctx, b, a);
});

test('skipNegotiation with WebSockets: connects without negotiate and chats with a negotiated client', async (t) => {
  const ctx = await setup(t);
  const skip = await ctx.connect({ transport: T.WebSockets, skipNegotiation: true, label: 'skipNegotiation' });
  assert.equal(transportName(skip), 'WebSocketTransport');
  assert.equal(skip.connectionId, null, 'no negotiate, so no connection id');
  const other = await ctx.connect({ transport: T.LongPolling, label: 'negotiated LP' });
  await assertChat(ctx, skip, other);
  await assertChat(ctx, other, skip);

  // Rooms work for it too, and the room info counts it as a WebSocket member.
  assertJoined(await invoke(skip, 'JoinRoom', 'skipped'), 'skipped');
  const rx = receiver(skip, 'ReceiveMessage');
  const before = rx.calls.length;
  assertVoid(await invoke(other, 'SendToRoom', 'skipped', 'lp', 'to the room'));
  await rx.wait(before + 1);
  assert.deepEqual(rx.calls.at(-1), ['lp', 'to the room']);
  const info = await fetch(`${ctx.url}/rooms/skipped`).then((r) => r.json());
  assert.deepEqual(info.subscribers, { websocket: 1, sse: 0, long_polling: 0 });
  await stop(skip);
  await stop(other);
});
