// A WebSocket subscriber that never reads is dropped once its send queue
// (limits.send_queue) is full; the other subscribers get everything, and the
// server's memory stays bounded.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { publish, request, subscriberCounts } from '../lib/http.js';
import { rssKb, startFor } from '../lib/server.js';
import { eventSeq, sseHttp } from '../lib/sse.js';
import { payloadOfSize, waitFor } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

const N = 4000;
const SIZE = 16 * 1024; // 4000 x 16 KiB = 64 MiB, far more than the loopback socket buffers
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
