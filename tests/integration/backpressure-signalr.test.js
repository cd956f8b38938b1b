// Backpressure for SignalR sends over the HTTP transports (issue #16 target
// 4): an official @microsoft/signalr client on long polling sends to a room
// as fast as its POSTs are answered; while the room's readers are behind,
// crier parks those POSTs as it parks room publishes
// (crier_publish_paced_total{transport="signalr_http"}), and no reader that
// reads is dropped. On the code before, the POSTs were answered at once,
// the small queues (limits.send_queue 32) overflowed and crier dropped the
// readers ("send queue full").

import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { request, subscriberCounts } from '../lib/http.js';
import { T, setup } from '../lib/signalr.js';
import { waitFor, withTimeout } from '../lib/util.js';
import { openIdReader } from '../lib/ws.js';

const READERS = 200;
const SENDS = 600;
const PAD = 'x'.repeat(256);


async function metric(base, name) {
  const res = await request(`${base}/metrics`, { timeout: 30_000 });
  const line = res.text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

test(`a long-polling SignalR client sending fast to ${READERS} WebSocket readers (send_queue 32) is paced, nobody dropped`, { timeout: 180_000 }, async (t) => {
  const ctx = await setup(t, { limits: { send_queue: 32 } });
  const room = 'bp-signalr';
  const readers = [];
  t.after(() => readers.forEach((r) => r.ws.terminate()));
  for (let i = 0; i < READERS; i += 50) {
    const batch = Array.from({ length: Math.min(50, READERS - i) }, () => openIdReader(`${ctx.wsUrl}/rooms/${room}/ws`));
    readers.push(...batch);
    await Promise.all(batch.map((r) => r.opened));
  }
  await waitFor(async () => (await subscriberCounts(ctx.url, room))?.websocket === READERS, {
    timeout: 30_000,
    message: `${READERS} WebSocket subscribers`,
  });

  const conn = await ctx.connect({ transport: T.LongPolling, label: 'long-polling sender' });
  // Closed loop: send() resolves when its POST is answered.
  for (let n = 1; n <= SENDS; n++) await withTimeout(conn.send('SendToRoom', room, { n, pad: PAD }), 30_000, `send ${n}`);

  try {
    await waitFor(() => readers.every((r) => r.got >= SENDS || r.closeInfo), { timeout: 60_000, interval: 100, message: `every reader has ${SENDS} messages` });
  } catch (err) {
    const closed = readers.filter((r) => r.closeInfo);
    throw new Error(`${err.message}: ${closed.length} closed (${JSON.stringify(closed[0]?.closeInfo)})`);
  }
  const paced = await metric(ctx.url, 'crier_publish_paced_total{transport="signalr_http"}');
  const dropped = await metric(ctx.url, 'crier_subscribers_dropped_total');
  t.diagnostic(`paced ${paced}, dropped ${dropped}`);
  const closed = readers.filter((r) => r.closeInfo);
  assert.equal(closed.length, 0, `readers closed: ${JSON.stringify(closed[0]?.closeInfo)} (${closed.length} of ${READERS})`);
  const bad = readers.filter((r) => r.bad || r.got !== SENDS);
  assert.equal(bad.length, 0, `${bad.length} readers did not get ids 1..${SENDS} in order, e.g. ${bad.slice(0, 3).map((r) => r.bad || `${r.got} messages`).join('; ')}`);
  assert.equal(dropped, 0, 'no subscriber dropped');
  assert.ok(paced > 0, 'the sender was paced (crier_publish_paced_total{transport="signalr_http"} > 0)');
});
