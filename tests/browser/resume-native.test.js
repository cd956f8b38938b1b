// No lost messages across reconnects, in Chromium, with cuts made by a TCP
// proxy in this file (both sockets reset: RST, no FIN, no close frame) while
// a publisher streams messages straight to crier. The page's origin is the
// proxy, so every connection the page makes goes through it.
//
// (a) The browser's own EventSource, with no code of ours: it reconnects by
//     itself (crier sends "retry: 2000") with Last-Event-ID: EPOCH:N, and
//     crier replays what it missed: every message once, in order.
// (b) web/crier.js on /hubs/chat (WebSocket): after each cut it reconnects
//     and rejoins with JoinRoom(room, since, epoch): every message once, in
//     order, and no gap reported.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { fileBrowser, setup, sleep, waitFor } from './helpers.js';
import { publishSteady } from '../lib/publish.js';

const browser = fileBrowser();
const CONFIG = { history: { size: 6000 }, limits: { send_queue: 8192 } };
const EPOCH_ID_RE = /^([A-Za-z0-9]{8}):(\d+)$/;

// ------------------------------------------------------------------ proxy

// A TCP proxy on a free loopback port, forwarding to 127.0.0.1:targetPort.
// Each connection through it is a pair {client, upstream, head (the head of
// the latest request the client sent on it: Chromium keeps connections
// alive), down (bytes from the server since that request), downAt (when the
// server first answered it)}. requests() lists every request head seen.
// cut() resets both sockets of every connection at once and returns how many
// it cut.
const REQUEST_LINE = /^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/;
async function startProxy(targetPort) {
  const pairs = new Set();
  const heads = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, head: '', down: 0, downAt: 0 };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('data', (d) => {
      const text = d.toString('latin1');
      // A new request (not bytes of a WebSocket or of a request body).
      if (REQUEST_LINE.test(text)) {
        const end = text.indexOf('\r\n\r\n');
        pair.head = end < 0 ? text : text.slice(0, end + 4);
        pair.down = 0;
        pair.downAt = 0;
        heads.push(pair.head);
      }
    });
    upstream.on('data', (d) => {
      if (!pair.down) pair.downAt = Date.now();
      pair.down += d.length;
    });
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
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests: () => heads,
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
    close() {
      this.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// A header of a request head, or null.
function header(head, name) {
  const m = new RegExp(`\\r\\n${name}: *([^\\r]*)\\r\\n`, 'i').exec(head);
  return m ? m[1] : null;
}

// Established for at least 30 ms: the server answered, so a cut interrupts
// a running stream or socket.
const answered = (p) => p.down > 0 && Date.now() - p.downAt >= 30;

// Cuts `count` times, at a random moment in each of `count` equal slots of
// [fromMs, toMs] (from now): at the first moment from then on when the
// client says it is ready() and a connection is live(pair) (each within
// waitMs). Resolves [{atMs, cut}].
async function cutAtRandom(proxy, live, { count, fromMs, toMs, waitMs = 3000, stopped, ready }) {
  const t0 = Date.now();
  const slot = (toMs - fromMs) / count;
  const cuts = [];
  for (let k = 0; k < count && !stopped(); k++) {
    const at = fromMs + slot * k + Math.random() * slot * 0.8;
    await sleep(Math.max(0, t0 + at - Date.now()));
    // The client has finished recovering from the last cut (a loaded machine
    // can take longer than the proxy can tell), so each cut is one outage.
    await waitFor(ready, { timeout: waitMs, interval: 10, message: `the client is not ready for cut ${k + 1}` });
    const cut = await proxy.cutWhen(live, waitMs, `no live connection for cut ${k + 1}`);
    cuts.push({ atMs: Date.now() - t0, cut });
  }
  return cuts;
}

// -------------------------------------------------------------- publisher



async function roomEpoch(base, room) {
  const res = await fetch(`${base}/rooms/${room}`, { signal: AbortSignal.timeout(5000) });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

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

// ----------------------------------------------------------------- tests

test('native EventSource: 300 messages exactly once, in order, across 3 cuts, resumed by the browser itself', { timeout: 60_000 }, async (t) => {
  const N = 300;
  const PERIOD_MS = 40; // 300 in 12 s: room for 3 reconnects after 2 s each
  const CUTS = 3;
  const ROOM = 'nat';
  const ctx = await setup(t, browser(), CONFIG);
  const proxy = await startProxy(ctx.port);
  t.after(() => proxy.close());
  const page = await ctx.open(`${proxy.url}/index.html`);

  await page.evaluate((room) => {
    window.__got = [];
    window.__opens = 0;
    window.__errors = 0;
    const es = new EventSource(`/rooms/${room}/events`);
    window.__es = es;
    es.onopen = () => window.__opens++;
    es.onerror = () => window.__errors++;
    es.onmessage = (e) => window.__got.push({ id: e.lastEventId, data: e.data, type: e.type });
    es.addEventListener('gap', (e) => window.__got.push({ gap: e.data }));
  }, ROOM);
  await page.waitForFunction(() => window.__opens === 1, null, { timeout: 5000 });
  await waitFor(async () => (await roomEpoch(ctx.url, ROOM)).subscribers?.sse === 1, {
    timeout: 5000,
    message: 'crier counts the page\'s SSE subscriber',
  });

  const isStream = (head) => head.startsWith(`GET /rooms/${ROOM}/events `);
  let publishing = true;
  const t0 = Date.now();
  const [pub, cuts] = await Promise.all([
    publishSteady(ctx.url, ROOM, N, PERIOD_MS, (i) => ['p', i]).finally(() => (publishing = false)),
    cutAtRandom(proxy, (p) => isStream(p.head) && answered(p), {
      count: CUTS,
      fromMs: 300,
      toMs: N * PERIOD_MS - 300,
      waitMs: 5000, // the browser waits retry (2 s) before reconnecting
      stopped: () => !publishing,
      ready: () => page.evaluate(() => window.__es.readyState === 1),
    }),
  ]);
  assert.deepEqual(pub.bad, [], 'publisher: every POST answered 201 with the next id');

  const state = () => page.evaluate(() => ({ n: window.__got.length, opens: window.__opens, errors: window.__errors, readyState: window.__es.readyState }));
  try {
    await page.waitForFunction((n) => window.__got.length >= n, N, { timeout: 10_000 });
  } catch {
    assert.fail(`all ${N} messages after the last cut: ${JSON.stringify(await state())}`);
  }
  await sleep(500); // a duplicate would show up now
  const { got, opens, errors, readyState } = await page.evaluate(() => ({
    got: window.__got,
    opens: window.__opens,
    errors: window.__errors,
    readyState: window.__es.readyState,
  }));
  await page.evaluate(() => window.__es.close());
  const streams = proxy.requests().filter(isStream);
  t.diagnostic(
    `published in ${pub.ms} ms; cuts at ${cuts.map((c) => `${c.atMs} ms (${c.cut})`).join(', ')}; ` +
      `${streams.length} streams, ${opens} opens, ${errors} errors; all in ${Date.now() - t0} ms`,
  );

  assert.equal(cuts.length, CUTS, `${CUTS} cuts while publishing: ${JSON.stringify(cuts)}`);
  cuts.forEach((c, k) => assert.ok(c.cut >= 1, `cut ${k + 1} ended no connection`));
  assert.ok(errors >= CUTS, `the EventSource saw ${errors} errors, expected one per cut`);
  assert.equal(opens, CUTS + 1, 'the EventSource opened again once after each cut');
  assert.equal(readyState, 1, 'the EventSource is open at the end');
  assert.equal(streams.length, CUTS + 1, 'one stream request per (re)connection');
  assert.equal(header(streams[0], 'last-event-id'), null, 'the first request has no Last-Event-ID');
  const { epoch } = await roomEpoch(ctx.url, ROOM);
  for (const s of streams.slice(1)) {
    const v = header(s, 'last-event-id');
    const m = EPOCH_ID_RE.exec(v ?? '');
    assert.ok(m, `a reconnect sent Last-Event-ID ${JSON.stringify(v)}, expected EPOCH:N`);
    assert.equal(m[1], epoch, `Last-Event-ID ${v}: the room's epoch`);
  }

  const gaps = got.filter((e) => e.gap !== undefined);
  assert.deepEqual(gaps, [], 'no gap event: history keeps every message');
  const ids = got.map((e) => EPOCH_ID_RE.exec(e.id));
  const badId = got.find((e, k) => !ids[k] || ids[k][1] !== epoch);
  assert.equal(badId, undefined, `every lastEventId is ${epoch}:N`);
  assertAllOnceInOrder('lastEventId', ids.map((m) => Number(m[2])), N);
  const badData = got.find((e, k) => e.data !== JSON.stringify(['p', k + 1]));
  assert.equal(badData, undefined, `data as published: ${JSON.stringify(badData)}`);
});

test('web/crier.js: 5000 messages exactly once, in order, across 5 cuts', { timeout: 90_000 }, async (t) => {
  const N = 5000;
  const PERIOD_MS = 1.5; // 5000 in about 7.5 s
  const CUTS = 5;
  const ROOM = 'cj';
  const ctx = await setup(t, browser(), CONFIG);
  const proxy = await startProxy(ctx.port);
  t.after(() => proxy.close());
  const page = await ctx.open(`${proxy.url}/index.html`);
  await page.addScriptTag({ url: '/crier.js' });

  const joined = await page.evaluate(async (room) => {
    window.__got = [];
    window.__bad = [];
    window.__events = [];
    const conn = crier.connect('/hubs/chat');
    window.__conn = conn;
    conn.on('ReceiveMessage', (user, i, ...rest) => {
      if (user !== 'p' || !Number.isInteger(i) || rest.length) window.__bad.push([user, i, ...rest]);
      window.__got.push(i);
    });
    conn.onreconnecting((e) => window.__events.push(['reconnecting', e ? e.message : null, window.__got.length]));
    conn.onreconnected(() => window.__events.push(['reconnected', window.__got.length]));
    conn.onclose((e) => window.__events.push(['close', e ? e.message : null]));
    conn.ongap((gap) => window.__events.push(['gap', gap]));
    const bounded = (promise, ms, what) =>
      Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms))]);
    await bounded(conn.start(), 10_000, 'start()');
    const r = await bounded(conn.invoke('JoinRoom', room), 3000, 'JoinRoom');
    return { transport: conn.transport, r };
  }, ROOM);
  assert.equal(joined.transport, 'websocket', `crier.js connected over ${joined.transport}`);
  assert.equal(joined.r?.room, ROOM, `JoinRoom answered ${JSON.stringify(joined.r)}`);

  const isHubSocket = (head) => /^GET \/hubs\/chat\?/.test(head) && /websocket/i.test(header(head, 'upgrade') ?? '');
  let publishing = true;
  const t0 = Date.now();
  const [pub, cuts] = await Promise.all([
    publishSteady(ctx.url, ROOM, N, PERIOD_MS, (i) => ['p', i]).finally(() => (publishing = false)),
    cutAtRandom(proxy, (p) => isHubSocket(p.head) && answered(p), {
      count: CUTS,
      fromMs: 300,
      toMs: N * PERIOD_MS - 300,
      waitMs: 5000, // crier.js waits 250..500 ms before its first attempt
      stopped: () => !publishing,
      ready: () => page.evaluate(() => window.__conn.state === 'connected'),
    }),
  ]);
  assert.deepEqual(pub.bad, [], 'publisher: every POST answered 201 with the next id');

  const state = () =>
    page.evaluate(() => ({ n: window.__got.length, last: window.__got.at(-1), state: window.__conn.state, events: window.__events }));
  try {
    await page.waitForFunction((n) => window.__got.length >= n, N, { timeout: 20_000, polling: 100 });
  } catch {
    assert.fail(`all ${N} messages after the last cut: ${JSON.stringify(await state())}\npage log:\n${page.log.join('\n')}`);
  }
  await sleep(500); // a duplicate would show up now
  const { got, bad, events, connState } = await page.evaluate(() => ({
    got: window.__got,
    bad: window.__bad,
    events: window.__events,
    connState: window.__conn.state,
  }));
  const ms = Date.now() - t0;
  await page.evaluate(() => Promise.race([window.__conn.stop(), new Promise((r) => setTimeout(r, 3000))]));
  const sockets = proxy.requests().filter(isHubSocket).length;
  t.diagnostic(
    `published in ${pub.ms} ms; cuts at ${cuts.map((c) => `${c.atMs} ms (${c.cut})`).join(', ')}; ` +
      `${sockets} hub sockets; events ${JSON.stringify(events.map((e) => e[0]))}; all in ${ms} ms`,
  );

  assert.equal(cuts.length, CUTS, `${CUTS} cuts while publishing: ${JSON.stringify(cuts)}`);
  cuts.forEach((c, k) => assert.ok(c.cut >= 1, `cut ${k + 1} ended no connection`));
  assert.deepEqual(bad, [], 'every ReceiveMessage was ("p", integer)');
  assert.deepEqual(events.filter((e) => e[0] === 'gap' || e[0] === 'close'), [], 'no gap reported, never closed');
  const reconnects = events.filter((e) => e[0] === 'reconnected').length;
  assert.ok(reconnects >= CUTS, `crier.js reconnected ${reconnects} times, expected one per cut: ${JSON.stringify(events)}`);
  assert.ok(sockets >= CUTS + 1, `${sockets} hub sockets: a new one after each cut`);
  assert.equal(connState, 'connected', `the connection is ${connState} at the end`);
  assertAllOnceInOrder('ReceiveMessage', got, N);
  assert.deepEqual(page.log.filter((l) => !/console\.warning/.test(l)), [], 'no page errors');
});
