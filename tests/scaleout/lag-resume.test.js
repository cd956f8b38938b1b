// Resuming onto a node that lags the others (README "Resume" and "Scaling
// out"): through round robin a client's cursor comes from the node that
// delivered last, and its reconnect may land on a node that has not yet
// received those messages from Redis. Node B reaches Redis through a proxy
// that holds what comes to B on its subscriber connection (B lags in the
// room's messages, reliably, for as long as it is held; its commands are
// answered); a plain SSE stream (Last-Event-ID), a plain WebSocket (?since=&
// epoch=) and an official SignalR client (crier_rooms, the hub's
// rejoin_query) resume on B from a cursor B has not reached. Once B catches
// up, each gets only what follows its cursor: no duplicate, no gap, nothing
// lost.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as signalR from '@microsoft/signalr';

import { eventSeq, sseHttp } from '../lib/sse.js';
import { startCrier, stopClean } from '../lib/server.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';
import { publishOn, startCluster, startRedisHoldingProxy } from './helpers.js';

const CONFIG = {
  history: { size: 1000 },
  hubs: { chat: { path: '/hubs/chat', rejoin_query: true, methods: { JoinRoom: { action: 'join', args: 1 } } } },
};
const ROOM = 'lagroom';

const wsIds = (c) => c.messages.filter((m) => m && m.id !== undefined && m.room === ROOM).map((m) => m.id);
const gapsOf = (c) => c.messages.filter((m) => m && m.gap);

test('a resume onto a node behind Redis (SSE, WebSocket, SignalR rejoin): only what follows the cursor, once, no gap', { timeout: 60_000 }, async (t) => {
  const { redis, nodes, prefix } = await startCluster(t, 1, CONFIG);
  const [a] = nodes;
  const proxy = await startRedisHoldingProxy(t, redis.port);
  const b = await startCrier({ ...CONFIG, backplane: { type: 'redis', url: proxy.url, key_prefix: prefix } });
  b.name = 'B';
  t.after(() => stopClean(b));
  const closers = [];
  t.after(() => closers.forEach((f) => f()));

  // B follows the room (a member there), and is in step with A.
  const keeper = await openWs(`${b.wsUrl}/rooms/${ROOM}/ws`);
  closers.push(() => keeper.close());
  let last;
  for (let i = 1; i <= 3; i++) last = (await publishOn(a, ROOM, { n: i })).json;
  await keeper.until((c) => wsIds(c).includes(3), 10_000, 'B has 1..3');
  const { epoch } = last;

  // B stops hearing the room's messages; 4..8 are published (and delivered by A).
  proxy.hold({ subscriber: true });
  for (let i = 4; i <= 8; i++) assert.equal((await publishOn(a, ROOM, { n: i })).status, 201);
  const cursor = 8;

  // Clients that had 1..8 (from A) resume on B, which has only 1..3.
  const sse = await sseHttp(`${b.url}/rooms/${ROOM}/events`, { headers: { 'Last-Event-ID': `${epoch}:${cursor}` } });
  closers.push(() => sse.close());
  assert.equal(sse.status, 200);
  const ws = await openWs(`${b.wsUrl}/rooms/${ROOM}/ws?since=${cursor}&epoch=${epoch}`);
  closers.push(() => ws.close());
  const got = [];
  const gaps = [];
  const sr = new signalR.HubConnectionBuilder()
    .withUrl(`${b.url}/hubs/chat?crier_rooms=${encodeURIComponent(`${ROOM}:${epoch}:${cursor}`)}`, {
      transport: signalR.HttpTransportType.WebSockets,
    })
    .configureLogging(signalR.LogLevel.None)
    .build();
  sr.on('ReceiveMessage', (v) => got.push(v.n));
  sr.on('CrierGap', (g) => gaps.push(g));
  closers.push(() => sr.stop().catch(() => {}));
  await withTimeout(sr.start(), 10_000, 'SignalR start on B');
  // all three have joined on B (with the keeper: 3 WebSockets, 1 SSE)
  await waitFor(
    async () => {
      const res = await fetch(`${b.url}/rooms/${ROOM}`, { signal: AbortSignal.timeout(3000) });
      const s = (await res.json()).subscribers ?? {};
      return s.websocket >= 3 && s.sse >= 1;
    },
    { timeout: 10_000, message: 'the resumers joined on B' },
  );
  assert.deepEqual(wsIds(keeper).slice(-1), [3], 'B was held behind');
  assert.equal(sse.events.length + wsIds(ws).length + got.length, 0, 'nothing yet');

  proxy.release(); // B catches up: 4..8 reach it now
  for (let i = 9; i <= 10; i++) assert.equal((await publishOn(a, ROOM, { n: i })).status, 201);
  await keeper.until((c) => wsIds(c).includes(10), 10_000, 'B has 10');
  await sse.until((s) => s.events.some((e) => eventSeq(e) === 10), 10_000, 'SSE resumer has 10');
  await ws.until((c) => wsIds(c).includes(10), 10_000, 'WS resumer has 10');
  await withTimeout(
    (async () => {
      while (!got.includes(10)) await sleep(20);
    })(),
    10_000,
    `SignalR resumer has 10 (${JSON.stringify(got)})`,
  );
  await sleep(200); // anything late would show

  const sseIds = sse.events.map(eventSeq);
  assert.deepEqual(sseIds, [9, 10], `SSE: only what follows the cursor, once (${JSON.stringify(sse.events)})`);
  assert.equal(sse.events.filter((e) => e.type === 'gap').length, 0, 'SSE: no gap');
  assert.deepEqual(wsIds(ws), [9, 10], `WS: only what follows the cursor, once (${JSON.stringify(ws.messages)})`);
  assert.deepEqual(gapsOf(ws), [], 'WS: no gap');
  assert.deepEqual(got, [9, 10], 'SignalR rejoin: only what follows the cursor, once');
  assert.deepEqual(gaps, [], 'SignalR: no CrierGap');
  assert.deepEqual(wsIds(keeper), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the live member on B: every message once');
});
