// Memory no client can exhaust (issue #11 item 4). Each limit is set small
// in the config and passed: the client gets a clear refusal (503 / 429 with
// a JSON body, WebSocket close 1013 with a reason, a SignalR completion
// error), /metrics counts it, and the log has one line per burst, not one
// per request. The history byte budget evicts the oldest messages of the
// largest room, and a resume into what it evicted gets the gap signal on
// SSE, long poll and WebSocket. Expired rooms and history go to zero.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertJsonError, publish, publishRaw, request } from '../lib/http.js';
import { startCrier, stopClean } from '../lib/server.js';
import { sseHttp, parseEventId } from '../lib/sse.js';
import { T, connect, invoke, negotiate, setup, stop } from '../lib/signalr.js';
import { sleep, waitFor } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

// The value of one /metrics sample (name with its labels), or undefined.
async function metric(base, sample) {
  const res = await request(`${base}/metrics`);
  assert.equal(res.status, 200);
  for (const line of res.text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

const refusals = (base, limit) => metric(base, `crier_limit_refusals_total{limit="${limit}"}`);

// Lines of stderr that contain text.
const linesWith = (srv, text) => srv.stderr().split('\n').filter((l) => l.includes(text));

// One log line per limit every 10 s at most: the most a burst that lasted
// from t0 to now may have written.
const linesAllowed = (t0) => 1 + Math.floor((Date.now() - t0) / 10_000);

// This process's own rooms and history: on the memory backplane (with Redis,
// a publish to a room nobody here is in makes no room here, and history
// lives in Redis).
const MEMORY = { backplane: { type: 'memory' } };

async function started(t, config) {
  const srv = await startCrier(config);
  t.after(() => stopClean(srv));
  return srv;
}

test('limits.max_rooms: a new room past the cap is refused on every transport, logged once per burst', { timeout: 30_000 }, async (t) => {
  const srv = await started(t, { ...MEMORY, limits: { max_rooms: 3 } });
  for (const room of ['a', 'b', 'c']) assert.equal(await publish(srv.url, room, { room }), 1);

  const t0 = Date.now();
  const res = await publishRaw(srv.url, 'd', '{"x":1}');
  assertJsonError(res, 503, 'publish to a 4th room');
  assert.match(res.json.error, /limits\.max_rooms/);

  const sse = await sseHttp(`${srv.url}/rooms/d/events`);
  await sse.until((s) => s.ended, 5000, 'SSE refusal');
  assert.equal(sse.status, 503);

  const lp = await request(`${srv.url}/rooms/d/poll`);
  assertJsonError(lp, 503, 'long poll on a 4th room');
  assert.match(lp.json.error, /limits\.max_rooms/);

  const ws = await openWs(`${srv.wsUrl}/rooms/d/ws`);
  const close = await ws.waitForClose(5000);
  assert.equal(close.code, 1013, `close ${JSON.stringify(close)}`);
  assert.match(close.reason, /limits\.max_rooms/);

  // SignalR: JoinRoom on a new room is a completion error; the connection lives on.
  const ctx = { ...(await setupLike(t, srv)) };
  const conn = await connect(ctx, { transport: T.WebSockets });
  await assert.rejects(invoke(conn, 'JoinRoom', 'd'), /limits\.max_rooms/);
  await assert.rejects(invoke(conn, 'SendToRoom', 'd', 'hi'), /limits\.max_rooms/);
  await invoke(conn, 'JoinRoom', 'a'); // an existing room still joins
  await stop(conn);

  // Existing rooms go on; nothing new was made.
  assert.equal(await publish(srv.url, 'a', { again: true }), 2);
  assert.equal(await metric(srv.url, 'crier_rooms'), 3);
  const refused = await refusals(srv.url, 'max_rooms');
  assert.ok(refused >= 6, `refusals ${refused}`);
  await waitFor(() => linesWith(srv, 'limits.max_rooms (3) reached').length >= 1, { timeout: 3000, message: 'a log line' });
  const lines = linesWith(srv, 'limits.max_rooms (3) reached').length;
  assert.ok(lines <= linesAllowed(t0) && lines < refused, `${lines} log lines for ${refused} refusals: one per burst`);
  assert.deepEqual(linesWith(srv, '503 to'), [], 'no log line per refused request');
});

// A signalr.js context on a server started here.
async function setupLike(t, srv) {
  const clients = [];
  t.after(() => Promise.all(clients.map((c) => c.close().catch(() => {}))));
  return {
    srv,
    url: srv.url,
    wsUrl: srv.wsUrl,
    hubUrl: (path = '/hubs/chat') => `${srv.url}${path}`,
    track(c) {
      clients.push(c);
      return c;
    },
  };
}

test('limits.max_rooms_per_connection: SignalR JoinRoom past the cap gets a completion error', { timeout: 30_000 }, async (t) => {
  const ctx = await setup(t, { limits: { max_rooms_per_connection: 2 } });
  const conn = await connect(ctx, { transport: T.LongPolling });
  await invoke(conn, 'JoinRoom', 'r1');
  await invoke(conn, 'JoinRoom', 'r2');
  await assert.rejects(invoke(conn, 'JoinRoom', 'r3'), /limits\.max_rooms_per_connection/);
  await invoke(conn, 'LeaveRoom', 'r1');
  await invoke(conn, 'JoinRoom', 'r3'); // room again after a leave
  // Another connection has its own count.
  const other = await connect(ctx, { transport: T.WebSockets });
  await invoke(other, 'JoinRoom', 'r4');
  assert.ok((await refusals(ctx.url, 'max_rooms_per_connection')) >= 1);
  await stop(conn);
  await stop(other);
});

test('history.max_bytes: a flood stays within the budget; resumes into evicted messages get the gap (SSE, long poll, WebSocket)', { timeout: 60_000 }, async (t) => {
  const BUDGET = 65536;
  const srv = await started(t, { ...MEMORY, history: { max_bytes: BUDGET, size: 1000 } });
  const big = 'x'.repeat(8000);
  // A small room first, then a flood of large messages into another.
  for (let i = 1; i <= 3; i++) assert.equal(await publish(srv.url, 'small', { i }), i);
  const t0 = Date.now();
  for (let i = 1; i <= 40; i++) assert.equal(await publish(srv.url, 'flood', { i, big }), i);
  const bytes = await metric(srv.url, 'crier_history_bytes');
  assert.ok(bytes > 0 && bytes <= BUDGET, `crier_history_bytes ${bytes} within ${BUDGET}`);
  assert.ok((await metric(srv.url, 'crier_history_evicted_total')) >= 30);
  assert.equal(await metric(srv.url, 'crier_history_max_bytes'), BUDGET);

  const epoch = (await request(`${srv.url}/rooms/flood`)).json.epoch;
  const smallEpoch = (await request(`${srv.url}/rooms/small`)).json.epoch;

  // Long poll: the answer starts with the gap, then the kept messages.
  const lp = await request(`${srv.url}/rooms/flood/poll?since=1&epoch=${epoch}`);
  assert.equal(lp.status, 200, lp.text);
  assert.equal(Object.keys(lp.json)[0], 'gap');
  assert.equal(lp.json.gap.reason, 'expired');
  assert.equal(lp.json.gap.since, 1);
  const first = lp.json.gap.resumed_from;
  assert.ok(first > 2 && first <= 40, `resumed_from ${first}`);
  assert.deepEqual(lp.json.messages.map((m) => m.id), range(first, 40));

  // SSE: a "gap" event, then the kept ones.
  const sse = await sseHttp(`${srv.url}/rooms/flood/events`, { headers: { 'Last-Event-ID': `${epoch}:1` } });
  t.after(() => sse.close());
  await sse.until((s) => s.events.length >= 1 + 41 - first, 5000, 'SSE gap and kept messages');
  assert.equal(sse.events[0].type, 'gap');
  assert.equal(JSON.parse(sse.events[0].data).resumed_from, first);
  assert.deepEqual(sse.events.slice(1).map((e) => parseEventId(e.id).n), range(first, 40));

  // WebSocket: {"gap": …} first.
  const ws = await openWs(`${srv.wsUrl}/rooms/flood/ws?since=1&epoch=${epoch}`);
  t.after(() => ws.close());
  await ws.waitForMessages(1 + 41 - first);
  assert.deepEqual(Object.keys(ws.messages[0]), ['gap']);
  assert.equal(ws.messages[0].gap.resumed_from, first);
  assert.deepEqual(ws.messages.slice(1).map((m) => m.id), range(first, 40));

  // The small room lost nothing: no gap.
  const lpSmall = await request(`${srv.url}/rooms/small/poll?since=0&epoch=${smallEpoch}`);
  assert.equal(lpSmall.json.gap, undefined, lpSmall.text);
  assert.deepEqual(lpSmall.json.messages.map((m) => m.id), [1, 2, 3]);
  const lines = linesWith(srv, 'history.max_bytes').length;
  assert.ok(lines >= 1 && lines <= linesAllowed(t0), `${lines} log lines: one per burst`);
});

const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test('signalr.negotiate_rate_per_s / negotiate_burst: 429 with Retry-After past the burst, per address', { timeout: 30_000 }, async (t) => {
  const srv = await started(t, { signalr: { negotiate_rate_per_s: 1, negotiate_burst: 3 } });
  // The burst, then 429 (one more per second that the requests themselves take).
  const t0 = Date.now();
  let ok = 0;
  let res;
  for (let i = 0; i < 30; i++) {
    res = await negotiate(srv.url);
    if (res.status !== 200) break;
    ok++;
  }
  assert.ok(ok >= 3 && ok <= 3 + Math.ceil((Date.now() - t0) / 1000), `${ok} negotiates let through`);
  assertJsonError(res, 429, 'a negotiate past the burst');
  const retry = Number(res.headers.get('retry-after'));
  assert.ok(retry >= 1 && retry <= 2, `Retry-After ${res.headers.get('retry-after')}`);
  assert.ok((await refusals(srv.url, 'signalr_negotiate_rate')) >= 1);
  // Once the time Retry-After gives has passed, one more is let through.
  await sleep(retry * 1000 + 100);
  assert.equal((await negotiate(srv.url)).status, 200);
});

test('signalr.max_pending_connections: 503 while that many are negotiated and unused; a started transport frees a slot', { timeout: 30_000 }, async (t) => {
  const srv = await started(t, { ...MEMORY, signalr: { max_pending_connections: 2 } }) // clustered negotiate makes nothing;
  const a = await negotiate(srv.url);
  const b = await negotiate(srv.url);
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  assert.equal(await metric(srv.url, 'crier_signalr_pending_connections'), 2);
  const c = await negotiate(srv.url);
  assertJsonError(c, 503, 'a 3rd pending connection');
  assert.match(c.json.error, /signalr\.max_pending_connections/);
  // Starting a's transport frees its slot.
  const ws = await openWs(`${srv.wsUrl}/hubs/chat?id=${a.json.connectionToken}`);
  t.after(() => ws.close());
  await waitFor(async () => (await metric(srv.url, 'crier_signalr_pending_connections')) === 1, {
    timeout: 5000,
    message: 'the slot freed',
  });
  assert.equal((await negotiate(srv.url)).status, 200);
  assert.ok((await refusals(srv.url, 'signalr_max_pending_connections')) >= 1);
});

// Sends a non-final text fragment of n bytes on a raw `ws` socket.
function sendFragment(client, n) {
  return new Promise((resolve, reject) =>
    client.ws.send('y'.repeat(n), { fin: false }, (err) => (err ? reject(err) : resolve())),
  );
}

test('limits.max_fragment_bytes_total: unfinished WebSocket messages across connections are bounded (1013)', { timeout: 30_000 }, async (t) => {
  const TOTAL = 65536;
  const srv = await started(t, { limits: { max_fragment_bytes_total: TOTAL, max_message_bytes: 40000 } });
  const clients = [];
  t.after(() => clients.forEach((c) => c.close()));
  for (let i = 0; i < 4; i++) clients.push(await openWs(`${srv.wsUrl}/rooms/frag/ws`));
  // Each holds a 20000-byte unfinished message (a 32 KiB buffer): two fit, the third does not.
  for (const c of clients.slice(0, 2)) await sendFragment(c, 20000);
  await waitFor(async () => (await metric(srv.url, 'crier_websocket_fragment_bytes')) >= 2 * 20000, {
    timeout: 5000,
    message: 'two unfinished messages held',
  });
  await sendFragment(clients[2], 20000);
  const close = await clients[2].waitForClose(5000);
  assert.equal(close.code, 1013, JSON.stringify(close));
  assert.match(close.reason, /try again later/);
  assert.ok((await metric(srv.url, 'crier_websocket_fragment_bytes')) <= TOTAL);
  assert.equal(clients[0].closeInfo, null, 'the first connections live on');

  // Finishing a message publishes it and frees what it held.
  await new Promise((resolve) => clients[0].ws.send('', { fin: true }, resolve));
  await clients[3].waitForMessages(1);
  assert.equal(clients[3].messages[0].data, 'y'.repeat(20000));
  await waitFor(async () => (await metric(srv.url, 'crier_websocket_fragment_bytes')) < 40000, {
    timeout: 5000,
    message: 'the finished message let go',
  });
  await sendFragment(clients[3], 20000); // room again
  await sleep(300);
  assert.equal(clients[3].closeInfo, null);
  assert.ok((await refusals(srv.url, 'max_fragment_bytes_total')) >= 1);
});

test('after expiry, rooms and history bytes go back to zero', { timeout: 60_000 }, async (t) => {
  const srv = await started(t, { ...MEMORY, history: { ttl_s: 3 } });
  const N = 1000;
  for (let i = 0; i < N; i += 50) {
    await Promise.all(range(i, i + 49).map((k) => publish(srv.url, `burst-${k}`, { k })));
  }
  assert.equal(await metric(srv.url, 'crier_messages_published_total'), N);
  // (Some may have expired already on a slow machine: the last ones have not.)
  const rooms = await metric(srv.url, 'crier_rooms');
  assert.ok(rooms > 0 && rooms <= N, `crier_rooms ${rooms}`);
  assert.ok((await metric(srv.url, 'crier_history_bytes')) > rooms * 100);
  await waitFor(async () => (await metric(srv.url, 'crier_rooms')) === 0, { timeout: 30_000, message: 'rooms swept' });
  assert.equal(await metric(srv.url, 'crier_history_bytes'), 0);
});

