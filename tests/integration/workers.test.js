// "workers" (WebSocket service threads and SSE stream threads, one per core
// by default) and "latency" ("low": each message written at once;
// "efficient": after a quiet moment at once, else what a socket has queued
// within coalesce_ms of the last flush goes out in one
// write). README "Configuration" and "Performance".

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { test } from 'node:test';
import { publish, rawConnect, request, subscriberCounts } from '../lib/http.js';
import { startCrier, startFor, stopClean } from '../lib/server.js';
import { sseHttp } from '../lib/sse.js';
import { sleep, waitFor } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

// The names of crier's threads (ws.c names its service threads crier-ws-N).
function threadNames(pid) {
  return fs
    .readdirSync(`/proc/${pid}/task`)
    .map((tid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      } catch {
        return null; // the thread ended meanwhile
      }
    })
    .filter((n) => n !== null);
}

const wsThreads = (pid) => threadNames(pid).filter((n) => /^crier-ws-\d+$/.test(n)).sort();

// /metrics: WebSocket connections per worker, by worker index.
async function workerConnections(url) {
  const res = await request(`${url}/metrics`);
  assert.equal(res.status, 200);
  const counts = [];
  for (const m of res.text.matchAll(/^crier_websocket_worker_connections\{worker="(\d+)"\} (\d+)$/gm))
    counts[Number(m[1])] = Number(m[2]);
  return counts;
}

test('workers: 3 WebSocket workers share one room, every subscriber gets every message, clean stop', { timeout: 60_000 }, async () => {
  const srv = await startCrier({ workers: 3 });
  try {
    assert.deepEqual(wsThreads(srv.pid), ['crier-ws-0', 'crier-ws-1', 'crier-ws-2']);
    const room = 'workers-big-room';
    const subs = [];
    for (let i = 0; i < 9; i++) subs.push(await openWs(`${srv.wsUrl}/rooms/${room}/ws`));
    const streams = [];
    for (let i = 0; i < 6; i++) streams.push(await sseHttp(`${srv.url}/rooms/${room}/events`));
    // The acceptor gives each socket to the least loaded worker: 3 each.
    await waitFor(async () => (await workerConnections(srv.url)).join(',') === '3,3,3', {
      message: 'WebSockets spread 3, 3, 3 over the workers',
    });
    await waitFor(async () => {
      const c = await subscriberCounts(srv.url, room);
      return c?.websocket === 9 && c?.sse === 6;
    }, { message: '9 WebSocket and 6 SSE subscribers in the room' });
    const n = 20;
    for (let i = 0; i < n; i++) await publish(srv.url, room, { i });
    for (const ws of subs) {
      await ws.waitForMessages(n);
      assert.deepEqual(
        ws.messages.map((m) => m.data.i),
        [...Array(n).keys()],
        'a WebSocket subscriber got every message, in order',
      );
    }
    for (const s of streams) {
      await s.waitForEvents(n);
      assert.deepEqual(
        s.events.map((e) => JSON.parse(e.data).i),
        [...Array(n).keys()],
        'an SSE subscriber got every message, in order',
      );
    }
    // Subscribers stay open: the stop closes them on every worker.
  } finally {
    await stopClean(srv);
  }
});

test('workers: 1 runs one WebSocket service thread; the default is one per core', { timeout: 60_000 }, async (t) => {
  const one = await startFor(t, { workers: 1 });
  assert.deepEqual(wsThreads(one.pid), ['crier-ws-0']);
  const ws = await openWs(`${one.wsUrl}/rooms/w1/ws`);
  await publish(one.url, 'w1', { ok: true });
  await ws.waitForMessages(1);
  assert.deepEqual(await workerConnections(one.url), [1]);

  const dflt = await startFor(t, {});
  const cores = Math.min(os.cpus().length, 64);
  assert.equal(wsThreads(dflt.pid).length, cores, `one service thread per core (${cores})`);
});

// Where a thread sleeps (/proc/PID/task/TID/wchan: "do_epoll_wait" in
// epoll_wait, "poll_schedule_timeout..." in poll), by thread name.
function wsWaits(pid) {
  const waits = {};
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      if (/^crier-ws-\d+$/.test(name)) waits[name] = fs.readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8').trim();
    } catch {
      // the thread ended meanwhile
    }
  }
  return waits;
}

// lws's poll() asked the kernel about every connection of a worker on every
// wake-up (a fifth of the CPU at 10000 subscribers); each worker now runs on
// a libev loop on epoll, which reports only the ready ones.
test('workers: each WebSocket worker waits in epoll (libev), not in poll() over its connections', { timeout: 60_000 }, async (t) => {
  const srv = await startFor(t, { workers: 2, log_level: 'info' });
  await waitFor(() => srv.stderr().includes('WebSocket workers'), { message: 'the workers line' });
  assert.match(srv.stderr(), /ws: 2 WebSocket workers, latency efficient, epoll \(libev\)/);
  const ws = await openWs(`${srv.wsUrl}/rooms/ep/ws`);
  t.after(() => ws.close());
  await publish(srv.url, 'ep', { ok: true });
  await ws.waitForMessages(1);
  if (Object.values(wsWaits(srv.pid)).every((w) => w === '0')) {
    t.skip('this kernel hides wchan');
    return;
  }
  await waitFor(() => {
    const w = Object.values(wsWaits(srv.pid));
    return w.length === 2 && w.every((x) => x === 'do_epoll_wait');
  }, { message: `both service threads wait in epoll_wait (${JSON.stringify(wsWaits(srv.pid))})` });
});

// A raw WebSocket client: each TCP read it gets is kept apart (chunks), so
// that what the server sent in one write can be seen.
async function rawWs(port, path) {
  const conn = await rawConnect(port);
  const chunks = [];
  let upgraded = false;
  conn.socket.on('data', (d) => {
    if (!upgraded) {
      upgraded = conn.data().includes('\r\n\r\n');
      return;
    }
    chunks.push({ at: Date.now(), bytes: Buffer.from(d, 'latin1') });
  });
  conn.send(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  await waitFor(() => upgraded, { message: 'the 101' });
  assert.match(conn.data(), /^HTTP\/1\.1 101/);
  // Frames per chunk (server frames are unmasked, payloads < 126 bytes here).
  const framesIn = (b) => {
    let n = 0;
    for (let i = 0; i + 2 <= b.length; i += 2 + (b[i + 1] & 0x7f)) n++;
    return n;
  };
  return { conn, chunks, frames: () => chunks.reduce((s, c) => s + framesIn(c.bytes), 0), framesIn };
}

// "efficient" follows Nagle's rule per worker: a message after a quiet
// moment goes at once; what comes within coalesce_ms of that flush waits for
// the window's end and goes out in one write; after a quiet window, at once again.
test('latency "efficient": at once after a quiet moment, then what is queued within coalesce_ms in one write at the window\'s end', { timeout: 60_000 }, async (t) => {
  const srv = await startFor(t, { latency: 'efficient', coalesce_ms: 1000, workers: 1 });
  const sub = await rawWs(srv.port, '/rooms/coalesce/ws');
  await waitFor(async () => (await subscriberCounts(srv.url, 'coalesce'))?.websocket === 1);
  await sleep(1100); // a quiet window
  let t0 = Date.now();
  await publish(srv.url, 'coalesce', { i: 0 });
  await waitFor(() => sub.frames() >= 1, { timeout: 10_000, message: 'the first frame' });
  assert.ok(sub.chunks[0].at - t0 < 900, `the first message went at once: came after ${sub.chunks[0].at - t0} ms`);
  await sleep(50); // past the first flush's burst (a publish's fanout, at most 10 ms)
  for (let i = 1; i < 5; i++) await publish(srv.url, 'coalesce', { i });
  await waitFor(() => sub.frames() >= 5, { timeout: 10_000, message: '5 frames' });
  assert.equal(sub.chunks.length, 2, 'the 4 messages within the window came in one write');
  assert.equal(sub.framesIn(sub.chunks[1].bytes), 4);
  const held = sub.chunks[1].at - sub.chunks[0].at;
  assert.ok(held >= 600, `held until the window's end: came ${held} ms after the first`);
  await sleep(1100); // quiet again
  t0 = Date.now();
  await publish(srv.url, 'coalesce', { i: 5 });
  await waitFor(() => sub.frames() >= 6, { timeout: 10_000, message: 'the sixth frame' });
  assert.ok(sub.chunks.at(-1).at - t0 < 900, `after a quiet window at once: came after ${sub.chunks.at(-1).at - t0} ms`);
  sub.conn.socket.destroy();
});

test('latency "low": a message is written at once, without the coalescing wait', { timeout: 60_000 }, async (t) => {
  const srv = await startFor(t, { latency: 'low', coalesce_ms: 1000, workers: 1 });
  const sub = await rawWs(srv.port, '/rooms/at-once/ws');
  await waitFor(async () => (await subscriberCounts(srv.url, 'at-once'))?.websocket === 1);
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    await publish(srv.url, 'at-once', { i });
    await waitFor(() => sub.frames() >= i + 1, { timeout: 10_000, message: `frame ${i + 1}` });
    const ms = sub.chunks.at(-1).at - t0;
    assert.ok(ms < 900, `frame ${i + 1} came ${ms} ms after its publish, not held for coalesce_ms`);
  }
  sub.conn.socket.destroy();
});

// A masked client frame (payload < 126 bytes), as latin1 text for conn.send.
function clientFrame(opcode, payload) {
  const mask = [0x11, 0x22, 0x33, 0x44];
  const body = Buffer.from(payload).map((b, i) => b ^ mask[i % 4]);
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | body.length, ...mask]), body]).toString('latin1');
}

// The opcodes (and a close frame's code) of the server frames in what came
// (payloads < 126 bytes).
function serverFrames(chunks) {
  const b = Buffer.concat(chunks.map((c) => c.bytes));
  const frames = [];
  for (let i = 0; i + 2 <= b.length; i += 2 + (b[i + 1] & 0x7f)) {
    const opcode = b[i] & 0x0f;
    frames.push(opcode === 8 && (b[i + 1] & 0x7f) >= 2 ? { opcode, code: b.readUInt16BE(i + 2) } : { opcode });
  }
  return frames;
}

// A woken connection is written at once by its service thread, not in lws's
// writable callback, which lws no longer calls once a close frame is on its
// way: the service thread must see that too. The client's own Close, and a
// close lws starts itself (invalid UTF-8: 1007), while the room keeps
// publishing: the close frame is the last frame the client gets.
for (const [how, frame, code] of [
  ['the client\'s Close', clientFrame(8, [0x03, 0xe8]), 1000],
  ['invalid UTF-8 (lws closes 1007)', clientFrame(1, [0xff, 0xfe, 0x41]), 1007],
]) {
  test(`latency "low": after ${how}, no data frame follows the close frame while the room publishes`, { timeout: 60_000 }, async (t) => {
    const srv = await startFor(t, { latency: 'low', workers: 1 });
    const room = `after-close-${code}`;
    const sub = await rawWs(srv.port, `/rooms/${room}/ws`);
    t.after(() => sub.conn.socket.destroy());
    await waitFor(async () => (await subscriberCounts(srv.url, room))?.websocket === 1);
    for (let i = 0; i < 3; i++) await publish(srv.url, room, { i });
    await waitFor(() => sub.frames() >= 3, { message: 'the first 3 messages' });
    sub.conn.send(frame);
    let closed = false;
    sub.conn.closed.then(() => (closed = true));
    for (let i = 3; i < 40 && !closed; i++) await publish(srv.url, room, { i });
    await waitFor(() => closed, { timeout: 10_000, message: 'the server closes the connection' });
    const frames = serverFrames(sub.chunks);
    const at = frames.findIndex((f) => f.opcode === 8);
    assert.ok(at >= 3, `a close frame after the first messages: ${JSON.stringify(frames)}`);
    assert.equal(frames[at].code, code);
    assert.equal(at, frames.length - 1, `nothing after the close frame: ${JSON.stringify(frames.slice(at))}`);
    assert.ok(frames.slice(0, at).every((f) => f.opcode === 1), 'text frames before it');
  });
}

// A raw SSE client: each TCP read after the response head is kept apart
// (chunks), so that what the server sent in one write can be seen.
async function rawSse(port, path) {
  const conn = await rawConnect(port);
  const chunks = [];
  let head = false;
  conn.socket.on('data', (d) => {
    if (!head) {
      head = conn.data().includes('\r\n\r\n');
      return;
    }
    chunks.push({ at: Date.now(), text: Buffer.from(d, 'latin1').toString('latin1') });
  });
  conn.send(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
  await waitFor(() => head, { message: 'the response head' });
  assert.match(conn.data(), /^HTTP\/1\.1 200/);
  // Events per chunk: each starts with its id line.
  const eventsIn = (text) => (text.match(/(^|\n)id: /g) ?? []).length;
  // Every event's data, in the order the chunks came.
  const data = () => [...chunks.map((c) => c.text).join('').matchAll(/(?:^|\n)id: [^\n]*\ndata: ([^\n]*)\n(?=\n)/g)].map((m) => m[1]);
  return { conn, chunks, events: () => chunks.reduce((n, c) => n + eventsIn(c.text), 0), eventsIn, data };
}

test('SSE, latency "efficient": at once after a quiet moment, then what is queued within coalesce_ms in one write at the window\'s end, in order', { timeout: 60_000 }, async (t) => {
  const srv = await startFor(t, { latency: 'efficient', coalesce_ms: 1000, workers: 1 });
  const sub = await rawSse(srv.port, '/rooms/sse-coalesce/events');
  await waitFor(async () => (await subscriberCounts(srv.url, 'sse-coalesce'))?.sse === 1);
  await waitFor(() => sub.conn.data().includes('retry:'), { message: 'the stream\'s first line' });
  await sleep(1100); // a quiet window
  sub.chunks.length = 0;
  const t0 = Date.now();
  await publish(srv.url, 'sse-coalesce', { i: 0 });
  await waitFor(() => sub.events() >= 1, { timeout: 10_000, message: 'the first event' });
  assert.ok(sub.chunks[0].at - t0 < 900, `the first message went at once: came after ${sub.chunks[0].at - t0} ms`);
  for (let i = 1; i < 5; i++) await publish(srv.url, 'sse-coalesce', { i });
  await waitFor(() => sub.events() >= 5, { timeout: 10_000, message: '5 events' });
  assert.equal(sub.chunks.length, 2, 'the 4 messages within the window came in one write');
  assert.equal(sub.eventsIn(sub.chunks[1].text), 4);
  const held = sub.chunks[1].at - sub.chunks[0].at;
  assert.ok(held >= 600, `held until the window's end: came ${held} ms after the first`);
  assert.deepEqual(sub.data().map((d) => JSON.parse(d).i), [0, 1, 2, 3, 4]);
  sub.conn.socket.destroy();
});

test('SSE, latency "low": a message is written at once, without the coalescing wait', { timeout: 60_000 }, async (t) => {
  const srv = await startFor(t, { latency: 'low', coalesce_ms: 1000, workers: 1 });
  const sub = await rawSse(srv.port, '/rooms/sse-at-once/events');
  await waitFor(async () => (await subscriberCounts(srv.url, 'sse-at-once'))?.sse === 1);
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    await publish(srv.url, 'sse-at-once', { i });
    await waitFor(() => sub.events() >= i + 1, { timeout: 10_000, message: `event ${i + 1}` });
    const ms = sub.chunks.at(-1).at - t0;
    assert.ok(ms < 900, `event ${i + 1} came ${ms} ms after its publish, not held for coalesce_ms`);
  }
  sub.conn.socket.destroy();
});

// Coalesced answers are cut at the stream's write buffer (some 2 KB): events
// larger than it, and many small ones, are split across writes and still
// arrive whole and in order on every stream of every worker.
for (const latency of ['low', 'efficient']) {
  test(`SSE, latency "${latency}": 12 streams on 2 workers get 300 messages of 10 B to 6 KB whole and in order`, { timeout: 90_000 }, async (t) => {
    const srv = await startFor(t, { workers: 2, latency, coalesce_ms: 20 });
    const room = `sse-many-${latency}`;
    const streams = [];
    t.after(() => streams.forEach((s) => s.close?.()));
    for (let i = 0; i < 12; i++) streams.push(await sseHttp(`${srv.url}/rooms/${room}/events`));
    await waitFor(async () => (await subscriberCounts(srv.url, room))?.sse === 12);
    const n = 300;
    const pad = (i) => 'x'.repeat(i % 7 === 0 ? 6000 : (i * 37) % 300);
    for (let i = 0; i < n; i++) await publish(srv.url, room, { i, pad: pad(i) });
    for (const s of streams) {
      await s.waitForEvents(n, 30_000);
      assert.deepEqual(
        s.events.map((e) => JSON.parse(e.data).i),
        [...Array(n).keys()],
        'a stream got every message, in order',
      );
      s.events.forEach((e, i) => assert.equal(JSON.parse(e.data).pad, pad(i), `message ${i} whole`));
    }
  });
}

// A frame larger than a worker's write buffer (64 KiB) is framed into a
// buffer of its own; the small ones around it still share one.
for (const latency of ['low', 'efficient']) {
  test(`workers, latency "${latency}": a message larger than the write buffer arrives whole on every worker, in order with small ones`, { timeout: 60_000 }, async (t) => {
    const srv = await startFor(t, { workers: 2, latency, limits: { max_message_bytes: 300_000 } });
    const subs = [await openWs(`${srv.wsUrl}/rooms/big-frame/ws`), await openWs(`${srv.wsUrl}/rooms/big-frame/ws`)];
    t.after(() => subs.forEach((s) => s.close()));
    await waitFor(async () => (await workerConnections(srv.url)).join(',') === '1,1', { message: 'one on each worker' });
    const big = 'x'.repeat(200_000);
    await publish(srv.url, 'big-frame', 'before');
    await publish(srv.url, 'big-frame', big);
    await publish(srv.url, 'big-frame', 'after');
    for (const ws of subs) {
      await ws.waitForMessages(3, 10_000);
      assert.deepEqual(ws.messages.map((m) => m.data.length), ['before'.length, big.length, 'after'.length]);
      assert.equal(ws.messages[1].data, big);
    }
  });
}
