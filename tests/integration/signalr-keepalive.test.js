// Keep-alive and timeouts: server Pings every limits.keepalive_s on WS and
// SSE keep a client with a short server timeout connected; a silent client is
// closed after signalr.client_timeout_s; a connection that never sends its
// handshake is closed after signalr.handshake_timeout_s.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from '../lib/http.js';
import { HANDSHAKE, RS, T, assertVoid, invoke, negotiate, parseRecords, receiver, setup, stop } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { sleep, withTimeout } from '../lib/util.js';

const isPing = (r) => r.type === 6 && Object.keys(r).length === 1;

// A raw SSE connection on the chat hub that has sent its handshake.
async function rawSse(ctx) {
  const neg = await negotiate(ctx.url);
  assert.equal(neg.status, 200, neg.text);
  const url = `${ctx.url}/hubs/chat?id=${neg.json.connectionToken}`;
  const stream = await sseHttp(url);
  ctx.track({ close: async () => stream.close() });
  assert.equal(stream.status, 200);
  const hs = await request(url, { method: 'POST', body: HANDSHAKE });
  assert.ok(hs.status >= 200 && hs.status < 300, `handshake POST: ${hs.status}`);
  stream.records = () => parseRecords(stream.events.map((e) => e.data));
  await stream.until((s) => s.events.length >= 1, 3000, 'SSE handshake reply');
  assert.deepEqual(stream.records()[0], {}, 'handshake reply');
  return stream;
}

// Official clients with a 3 s server timeout and 1 s keep-alive.
const shortTimeouts = { serverTimeout: 3000, keepAlive: 1000 };

async function assertStillConnectedAndChat(clients) {
  for (const c of clients) {
    assert.equal(c.state, 'Connected', `${c.label}: state ${c.state}; log:\n${c.logs.join('\n')}`);
    const race = await Promise.race([c.closed.then((e) => `closed: ${e?.message}`), sleep(0).then(() => 'open')]);
    assert.equal(race, 'open', `${c.label} was closed`);
  }
  const rxs = clients.map((c) => receiver(c));
  assertVoid(await invoke(clients[0], 'SendMessage', 'after', 'idle'));
  for (const rx of rxs) await rx.wait(1);
  for (const rx of rxs) assert.deepEqual(rx.calls, [['after', 'idle']]);
}

// The three cases wait on timers, not on the CPU: run them side by side.
describe('SignalR keep-alive and timeouts', { concurrency: true }, () => {
  test('keepalive_s 1: Pings about every second on WS and SSE; short-timeout clients stay connected', async (t) => {
    const ctx = await setup(t, { limits: { keepalive_s: 1 } });

    const raw = await ctx.raw();
    await raw.handshake();
    const wsPingTimes = [];
    raw.ws.on('message', (data) => {
      if (parseRecords([data.toString()]).some(isPing)) wsPingTimes.push(Date.now());
    });
    const sse = await rawSse(ctx);

    const ws = await ctx.connect({ transport: T.WebSockets, ...shortTimeouts, label: 'WS, 3 s server timeout' });
    const sseClient = await ctx.connect({ transport: T.ServerSentEvents, ...shortTimeouts, label: 'SSE, 3 s server timeout' });

    const t0 = Date.now();
    await sleep(4000);
    const elapsed = (Date.now() - t0) / 1000;

    const wsRecords = raw.records().slice(1);
    assert.ok(wsRecords.every(isPing), `WS: only Pings while idle: ${JSON.stringify(raw.texts)}`);
    assert.ok(wsRecords.length >= 3 && wsRecords.length <= elapsed + 2, `WS: ${wsRecords.length} Pings in ${elapsed} s`);
    for (let i = 1; i < wsPingTimes.length; i++) {
      const gap = wsPingTimes[i] - wsPingTimes[i - 1];
      assert.ok(gap > 400 && gap < 2000, `WS: gap between Pings ${gap} ms`);
    }
    const texts = raw.texts.slice(1);
    assert.ok(texts.every((x) => x === `{"type":6}${RS}`), `WS Ping frames: ${JSON.stringify(texts)}`);

    const sseRecords = sse.records().slice(1);
    assert.ok(sseRecords.every(isPing), `SSE: only Pings while idle: ${JSON.stringify(sse.events)}`);
    assert.ok(sseRecords.length >= 3 && sseRecords.length <= elapsed + 2, `SSE: ${sseRecords.length} Pings in ${elapsed} s`);

    await assertStillConnectedAndChat([ws, sseClient]);
    await stop(ws);
    await stop(sseClient);
    sse.close();
  });

  test('client_timeout_s 2: a silent client is sent a Close with an error and disconnected; pinging clients stay', async (t) => {
    const ctx = await setup(t, { limits: { keepalive_s: 1 }, signalr: { client_timeout_s: 2 } });
    const raw = await ctx.raw();
    await raw.handshake();
    const t0 = Date.now();
    const sse = await rawSse(ctx);
    const tSse = Date.now();
    const ws = await ctx.connect({ transport: T.WebSockets, ...shortTimeouts, label: 'WS client pinging every 1 s' });
    const sseClient = await ctx.connect({ transport: T.ServerSentEvents, ...shortTimeouts, label: 'SSE client pinging every 1 s' });

    // The raw WS client sends nothing after its handshake (server Pings do not count).
    const info = await raw.waitForClose(6000);
    const ms = Date.now() - t0;
    assert.ok(ms >= 1500 && ms <= 5000, `silent WS client closed after ${ms} ms (client_timeout_s 2)`);
    const records = raw.records();
    const close = records.at(-1);
    assert.ok(close?.type === 7 && typeof close.error === 'string' && close.error.length > 0, `a Close with an error last: ${JSON.stringify(raw.texts)}`);
    assert.equal(info.code, 1000, `close code ${info.code}`);

    // The same for a silent raw SSE connection: a Close record, then the stream ends.
    await sse.waitForEnd(6000);
    const sseMs = Date.now() - tSse;
    assert.ok(sseMs <= 5500, `silent SSE client closed after ${sseMs} ms`);
    const sseClose = sse.records().at(-1);
    assert.ok(sseClose?.type === 7 && typeof sseClose.error === 'string', `SSE: a Close with an error last: ${JSON.stringify(sse.events)}`);

    // The official clients ping every second, so they outlive the timeout.
    await sleep(Math.max(0, 3500 - (Date.now() - t0)));
    await assertStillConnectedAndChat([ws, sseClient]);
    await stop(ws);
    await stop(sseClient);
  });

  test('handshake_timeout_s 1: a WebSocket that never sends its handshake is closed', async (t) => {
    const ctx = await setup(t, { signalr: { handshake_timeout_s: 1 } });
    // A client that does its handshake in time is not affected (checked at the end, > 1 s later).
    const ok = await ctx.connect({ transport: T.WebSockets, label: 'prompt client' });
    const raw = await ctx.raw();
    const t0 = Date.now();
    await withTimeout(raw.closed, 4000, 'closed after the handshake timeout');
    const ms = Date.now() - t0;
    assert.ok(ms >= 700 && ms <= 3500, `closed after ${ms} ms (handshake_timeout_s 1)`);
    for (const r of raw.records()) assert.ok(r.type === undefined || r.type === 7, `only a handshake error or Close: ${JSON.stringify(raw.texts)}`);

    await sleep(Math.max(0, 1300 - (Date.now() - t0)));
    await assertStillConnectedAndChat([ok]);
    await stop(ok);
  });
});
