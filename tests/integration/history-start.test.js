// History with no cursor (README "Late joiners"): since 0 with no epoch means
// "what the room's history holds", the same on every transport: the kept
// messages, after a gap signal with since 0 when history no longer reaches
// back to id 1 (none when it does), then live ones:
//   - long poll ?since=0, plain WebSocket ?since=0, SSE ?since=0 (SSE also
//     takes since/epoch now, as the other two; Last-Event-ID wins);
//   - SignalR JoinRoom(room, 0) and JoinRoom(room, 0, null) with the official
//     client on all three transports (refused before: wrong argument count,
//     and a null epoch); JoinRoom(room, 5) without an epoch is refused.
// An epoch without since, or a bad since, is a 400 on every plain transport.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertJsonError, publish, request } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { sseHttp } from '../lib/sse.js';
import { openWs, wsRefusal } from '../lib/ws.js';
import { T, TRANSPORT_CLASS, receiver, setup } from '../lib/signalr.js';
import { sleep, withTimeout } from '../lib/util.js';

const CONFIG = { history: { size: 3 } };

// Publishes 1..6 to room: history keeps 4, 5, 6.
async function sixIn(url, room) {
  for (let i = 1; i <= 6; i++) assert.equal(await publish(url, room, i), i);
}

test('plain transports: since=0 without an epoch gets what history holds (after a gap with since 0 when 1 is gone), then live', { timeout: 20_000 }, async (t) => {
  const srv = await startFor(t, CONFIG);
  await sixIn(srv.url, 'h');
  for (let i = 1; i <= 2; i++) await publish(srv.url, 'whole', i); // all kept
  const epoch = (await request(`${srv.url}/rooms/h`)).json.epoch;
  const gap = { room: 'h', epoch, reason: 'expired', since: 0, resumed_from: 4 };

  const lp = await request(`${srv.url}/rooms/h/poll?since=0`);
  assert.equal(lp.status, 200, lp.text);
  assert.deepEqual(lp.json.gap, gap, lp.text);
  assert.deepEqual(lp.json.messages.map((m) => m.data), [4, 5, 6], lp.text);
  const whole = await request(`${srv.url}/rooms/whole/poll?since=0`);
  assert.equal(whole.json.gap, undefined, `history holds all: no gap (${whole.text})`);
  assert.deepEqual(whole.json.messages.map((m) => m.data), [1, 2], whole.text);

  const ws = await openWs(`${srv.wsUrl}/rooms/h/ws?since=0`);
  t.after(() => ws.close());
  await ws.waitForMessages(4);

  const sse = await sseHttp(`${srv.url}/rooms/h/events?since=0`);
  t.after(() => sse.close());
  await sse.waitForEvents(4);

  await publish(srv.url, 'h', 7);
  await ws.waitForMessages(5);
  await sse.waitForEvents(5);
  await sleep(100);
  assert.deepEqual(ws.messages[0], { gap }, `WebSocket: ${JSON.stringify(ws.texts)}`);
  assert.deepEqual(ws.messages.slice(1).map((m) => m.data), [4, 5, 6, 7], `WebSocket: ${JSON.stringify(ws.texts)}`);
  assert.equal(sse.events[0].type, 'gap', JSON.stringify(sse.events));
  assert.deepEqual(JSON.parse(sse.events[0].data), gap);
  assert.deepEqual(sse.events.slice(1).map((e) => JSON.parse(e.data)), [4, 5, 6, 7]);
});

test('SSE ?since=N&epoch=E resumes as a long poll does; Last-Event-ID wins over it', { timeout: 20_000 }, async (t) => {
  const srv = await startFor(t, { history: { size: 100 } });
  await sixIn(srv.url, 's');
  const epoch = (await request(`${srv.url}/rooms/s`)).json.epoch;

  const a = await sseHttp(`${srv.url}/rooms/s/events?since=4&epoch=${epoch}`);
  t.after(() => a.close());
  await a.waitForEvents(2);
  const b = await sseHttp(`${srv.url}/rooms/s/events?since=1&epoch=${epoch}`, { headers: { 'Last-Event-ID': `${epoch}:5` } });
  t.after(() => b.close());
  await b.waitForEvents(1);
  await sleep(150);
  assert.deepEqual(a.events.map((e) => JSON.parse(e.data)), [5, 6]);
  assert.deepEqual(b.events.map((e) => JSON.parse(e.data)), [6]);
});

test('an epoch without since, or a bad since, is a 400 on every plain transport', async (t) => {
  const srv = await startFor(t, CONFIG);
  for (const q of ['epoch=Ab12', 'since=x', 'since=-1', 'since=1&epoch=no-way']) {
    assertJsonError(await request(`${srv.url}/rooms/h/poll?${q}`), 400, `poll ?${q}`);
    assertJsonError(await request(`${srv.url}/rooms/h/events?${q}`, { headers: { Accept: 'text/event-stream' } }), 400, `events ?${q}`);
    const ws = await wsRefusal(`${srv.wsUrl}/rooms/h/ws?${q}`);
    assert.equal(ws.status, 400, `ws ?${q}: ${JSON.stringify(ws)}`);
  }
});

for (const transport of [T.WebSockets, T.ServerSentEvents, T.LongPolling]) {
  test(`SignalR over ${TRANSPORT_CLASS[transport]}: JoinRoom(room, 0) and JoinRoom(room, 0, null) get what history holds, then live`, { timeout: 20_000 }, async (t) => {
    const ctx = await setup(t, CONFIG);
    for (const args of [['late', 0], ['late.null', 0, null]]) {
      const room = args[0];
      await sixIn(ctx.url, room);
      const conn = await ctx.connect({ transport });
      const rx = receiver(conn);
      const gaps = receiver(conn, 'CrierGap');
      const joined = await withTimeout(conn.invoke('JoinRoom', ...args), 3000, `JoinRoom${JSON.stringify(args)}`);
      assert.equal(joined.room, room);
      assert.equal(joined.last_id >= 6, true, JSON.stringify(joined));
      await rx.wait(3);
      await publish(ctx.url, room, `live ${args.length}`);
      await rx.wait(4);
      assert.deepEqual(rx.calls.slice(0, 3), [[4], [5], [6]], `JoinRoom${JSON.stringify(args)}: ${JSON.stringify(rx.calls)}`);
      assert.deepEqual(rx.calls[3], [`live ${args.length}`]);
      assert.deepEqual(gaps.calls, [[{ room, epoch: joined.epoch, reason: 'expired', since: 0, resumed_from: 4 }]], 'a gap with since 0: 1..3 are not kept');
      await conn.stop();
    }
  });
}

test('SignalR: JoinRoom(room, 5) without an epoch is refused; the connection stays', async (t) => {
  const ctx = await setup(t, CONFIG);
  const conn = await ctx.connect({ transport: T.WebSockets });
  await assert.rejects(conn.invoke('JoinRoom', 'late', 5), /\(room, 0\) for what the room's history holds/);
  await assert.rejects(conn.invoke('JoinRoom', 'late', 5, null), /epoch/);
  await assert.rejects(conn.invoke('JoinRoom', 'late', 0, 7), /epoch/);
  assert.equal((await conn.invoke('JoinRoom', 'late', 0)).room, 'late');
});
