// A WebSocket subscriber that never reads is dropped once its send queue
// (limits.send_queue) is full; the other subscribers get everything, and the
// server's memory stays bounded.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { publish, request, subscriberCounts } from '../lib/http.js';
import { rssKb, startFor } from '../lib/server.js';
import { eventSeq, sseHttp } from '../lib/sse.js';
import { payloadOfSize, sleep, waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

// Fewer, larger messages than 4000 x 16 KiB: the bytes are what fill the
// socket buffers and the queue, and each publish has a fixed cost (the ASan
// build: 19 s for 4000 x 16 KiB, 14 s for 2050 x 32 KiB). Not larger: with
// 60 KiB messages the ThreadSanitizer build's RSS grows by 28 MiB, too near
// the bound below (18 MiB with 32 KiB, as with 16 KiB).
const N = 2050;
const SIZE = 32 * 1024; // 2050 x 32 KiB = 64 MiB, far more than the loopback socket buffers
// An unbounded queue for the stalled subscriber would hold all N x SIZE bytes;
// a bounded one holds send_queue (32) messages. Allow for ASan's quarantine (8 MB)
// and allocator slack, but less than what the messages add up to.
const MAX_RSS_GROWTH_KB = 32 * 1024;
// The publisher lets the reading subscribers lag at most this many messages
// behind, well inside their send queue (32), so only the stalled one can fill it.
const MAX_LAG = 12;

test('a subscriber that does not read is dropped; others get every message', { timeout: 90_000 }, async (t) => {
  const srv = await startFor(
    t,
    { limits: { send_queue: 32 }, history: { size: 10 } },
    [],
    { asanExtra: 'quarantine_size_mb=8' },
  );
  const room = 'slow';
  const clients = [];
  let sampler;
  try {
    const slow = await openWs(`${srv.wsUrl}/rooms/${room}/ws`);
    clients.push(slow);
    slow.ws._socket.pause(); // never reads again: the kernel buffers fill, then the server's queue
    const fast = await openWs(`${srv.wsUrl}/rooms/${room}/ws`);
    clients.push(fast);
    const sse = await sseHttp(`${srv.url}/rooms/${room}/events`);
    clients.push(sse);
    assert.equal(sse.status, 200);
    await waitFor(
      async () => {
        const c = await subscriberCounts(srv.url, room);
        return c?.websocket === 2 && c?.sse === 1;
      },
      { message: 'room info shows 2 WebSocket and 1 SSE subscriber' },
    );

    const baseKb = rssKb(srv.pid);
    let maxKb = baseKb;
    sampler = setInterval(() => {
      try {
        maxKb = Math.max(maxKb, rssKb(srv.pid));
      } catch {
        // exited; the final checks will say so
      }
    }, 20);

    for (let i = 1; i <= N; i++) {
      if (i - Math.min(fast.messages.length, sse.events.length) > MAX_LAG) {
        await Promise.all([fast.waitForMessages(i - MAX_LAG, 10_000), sse.waitForEvents(i - MAX_LAG, 10_000)]);
      }
      const id = await publish(srv.url, room, payloadOfSize(i, SIZE));
      assert.equal(id, i, `publish ${i} got id ${id}`);
    }
    await Promise.all([fast.waitForMessages(N, 60_000), sse.waitForEvents(N, 60_000)]);
    clearInterval(sampler);
    maxKb = Math.max(maxKb, rssKb(srv.pid));

    assert.deepEqual(fast.messages.map((m) => m.id), Array.from({ length: N }, (_, i) => i + 1), 'WS reader: ids 1..N in order');
    assert.ok(fast.messages.every((m, i) => m.data.n === i + 1 && m.data.pad.length > SIZE / 2), 'WS reader: data');
    assert.deepEqual(sse.events.map(eventSeq), Array.from({ length: N }, (_, i) => i + 1), 'SSE reader: ids 1..N in order');
    assert.ok(sse.events.every((e, i) => JSON.parse(e.data).n === i + 1), 'SSE reader: data');

    await waitFor(
      async () => {
        const c = await subscriberCounts(srv.url, room);
        return c?.websocket === 1 && c?.sse === 1;
      },
      { timeout: 10_000, message: 'room info: the stalled WebSocket subscriber was dropped (websocket 2 -> 1)' },
    );

    const growthKb = maxKb - baseKb;
    t.diagnostic(`RSS ${Math.round(baseKb / 1024)} MiB at start, peak growth ${Math.round(growthKb / 1024)} MiB`);
    assert.ok(
      growthKb < MAX_RSS_GROWTH_KB,
      `RSS grew by ${Math.round(growthKb / 1024)} MiB (from ${Math.round(baseKb / 1024)} MiB), ` +
        `bound ${MAX_RSS_GROWTH_KB / 1024} MiB; ${(N * SIZE) / 2 ** 20} MiB were published`,
    );

    const health = await request(`${srv.url}/healthz`);
    assert.equal(health.status, 200, 'server still answers /healthz');

    // Read what reached the stalled client: a gap-free prefix, then the close.
    // The close frame may not have made it through the full socket (1006 then),
    // but if it did it must say why.
    slow.ws._socket.resume();
    const close = await slow.waitForClose(10_000);
    const ids = slow.messages.map((m) => m?.id);
    t.diagnostic(`stalled client: ${ids.length} messages received, then close ${close.code} "${close.reason}"`);
    assert.ok(ids.length < N, `the stalled client received all ${N} messages: it was never dropped`);
    assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i + 1), 'stalled client: a gap-free prefix');
    if (close.code !== 1006) {
      assert.equal(close.code, 1008, `stalled client: close code ${close.code} ${close.reason}`);
      assert.equal(close.reason, 'send queue full');
    }
  } finally {
    clearInterval(sampler);
    clients.forEach((c) => c.close());
  }
});

// A drop ends with the close reaching the client: a WebSocket subscriber
// that stopped reading long enough to be judged stalled, was dropped for
// "send queue full", and then reads again receives close 1008 "send queue
// full" (the messages queued before the drop are not sent: the queue is
// emptied at the drop) and its TCP connection is closed, within a few
// seconds, on the memory backplane and on Redis.
//
// Backpressure paces every publisher of this node, server API sends
// included (while a queue is behind they are refused 503 with
// publish_wait_ms 0), so a subscriber that reads is never dropped; one that
// stops is set aside after limits.subscriber_stall_ms and then dropped.
// The subscriber keeps sending frames all the while (as a publisher that is
// a member does): before the fix crier closed its socket with those frames
// unread, the kernel answered with a reset, and the client lost the close
// frame (1006).

const API_KEY = 'drop-close-test-key-0123456789';

async function dropMetric(base, name) {
  const text = (await request(`${base}/metrics`, { headers: { Authorization: `Bearer ${API_KEY}` } })).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

function send(base, id, body) {
  return request(`${base}/connections/${id}/messages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body,
  });
}

test('a WebSocket subscriber dropped for send queue full, reading again, gets close 1008 and a closed TCP connection', { timeout: 90_000 }, async (t) => {
  const srv = await startFor(t, {
    limits: { send_queue: 8, publish_wait_ms: 0, subscriber_stall_ms: 500 },
    auth: { api_keys: [API_KEY], rooms: [{ match: '*', subscribe: 'public', publish: 'public' }] },
  });
  const ws = new WebSocket(`${srv.wsUrl}/rooms/dropclose/ws`);
  const c = { got: 0, id: null, close: null, tcpClosed: false };
  ws.on('upgrade', (res) => (c.id = res.headers['x-crier-connection-id']));
  ws.on('message', () => c.got++);
  ws.on('close', (code, reason) => (c.close = { code, reason: reason.toString(), at: Date.now() }));
  ws.on('error', () => {});
  await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 10_000, 'open');
  ws._socket.on('close', () => (c.tcpClosed = true));
  assert.ok(c.id, 'X-Crier-Connection-Id');
  ws._socket.pause(); // stops reading: its kernel buffers fill, then its queue
  // Frames to its room, all the time, until the close.
  const chatter = setInterval(() => {
    if (ws.readyState !== WebSocket.OPEN) return;
    for (let i = 0; i < 20; i++) ws.send(JSON.stringify({ chat: i, pad: 'c'.repeat(200) }));
  }, 5);
  try {
    const pad = 'p'.repeat(16 * 1024); // fills the kernel buffers in a few hundred sends
    let dropAt = 0;
    const statuses = new Set();
    for (let round = 0; round < 400 && !dropAt; round++) {
      const res = await Promise.all(Array.from({ length: 16 }, (_, i) => send(srv.url, c.id, JSON.stringify({ round, i, pad })).catch((e) => ({ status: String(e) }))));
      res.forEach((r) => statuses.add(r.status));
      // Dropped: counted (its close waits behind its full kernel buffers).
      if (res.some((r) => r.status === 404) || (await dropMetric(srv.url, 'crier_subscribers_dropped_total')) > 0) dropAt = Date.now();
      else if (res.some((r) => r.status === 503)) await sleep(50); // paced: the stall rule takes its time
    }
    t.diagnostic(`statuses seen: ${[...statuses].join(', ')}`);
    assert.ok(dropAt, 'the stopped subscriber was dropped (crier_subscribers_dropped_total 1)');
    assert.ok(statuses.has(503), 'sends were paced (503) while its queue was behind and not yet judged');
    ws._socket.resume(); // reads again: what the kernel holds, then the close
    await waitFor(() => c.close && c.tcpClosed, { timeout: 10_000, message: `close and TCP end within 10 s (close ${JSON.stringify(c.close)}, tcp closed ${c.tcpClosed})` });
    t.diagnostic(`close ${c.close.code} "${c.close.reason}" ${c.close.at - dropAt} ms after the drop was seen, ${c.got} messages read`);
    assert.equal(c.close.code, 1008, `close code ${c.close.code} "${c.close.reason}"`);
    assert.equal(c.close.reason, 'send queue full');
  } finally {
    clearInterval(chatter);
    ws.terminate();
    await sleep(0);
  }
});
