// Backpressure for the server API's sends (issue #16 target 4): while the
// fanout backlog holds, POST /users/{user}/messages and
// /connections/{id}/messages wait as room publishes do (parked; after
// limits.publish_wait_ms answered 503 with Retry-After, not sent), counted
// in crier_publish_paced_total{transport="server_api"}. On the code before,
// they were answered 202 at once, adding to queues that were behind.
//
// The backlog is made to hold by one WebSocket reader that stops reading
// while a publisher sends 60 KiB messages until its queue is behind; with
// limits.subscriber_stall_ms 30 s it holds for the whole test (nobody else
// is behind to show that it stalled) until that reader goes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { publishRaw, request } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { waitFor, withTimeout } from '../lib/util.js';

const PAD = 'x'.repeat(60 * 1024);

async function metric(base, name) {
  const res = await request(`${base}/metrics`, { timeout: 30_000 });
  const line = res.text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

// A plain WebSocket that keeps the 101's X-Crier-Connection-Id.
function wsWithId(url) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const c = { ws, id: null, messages: [] };
      ws.on('upgrade', (res) => (c.id = res.headers['x-crier-connection-id']));
      ws.on('message', (d) => c.messages.push(JSON.parse(d.toString())));
      ws.on('open', () => resolve(c));
      ws.on('error', reject);
    }),
    5000,
    `WS ${url}: open`,
  );
}

function send(base, id, body) {
  return request(`${base}/connections/${id}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    timeout: 30_000,
  });
}

test('server API sends wait while the backlog holds: 503 with Retry-After after publish_wait_ms, sent once it drains', { timeout: 120_000 }, async (t) => {
  const srv = await startFor(t, { limits: { send_queue: 32, publish_wait_ms: 1500, subscriber_stall_ms: 30_000 } });
  const target = await wsWithId(`${srv.wsUrl}/rooms/elsewhere/ws`);
  const stopped = await wsWithId(`${srv.wsUrl}/rooms/bp-api/ws`);
  t.after(() => {
    target.ws.terminate();
    stopped.ws.terminate();
  });
  stopped.ws._socket.pause(); // never reads: its kernel buffers fill, then its queue

  // Publishes until the stopped reader's queue is behind (the kernel's
  // buffers take megabytes first). Batches of 10 at once: once it holds,
  // they are parked (and refused after publish_wait_ms).
  const publishes = [];
  const makeBehind = () =>
    waitFor(
      async () => {
        if ((await metric(srv.url, 'crier_fanout_behind')) >= 1) return true;
        for (let i = 0; i < 10; i++) publishes.push(publishRaw(srv.url, 'bp-api', JSON.stringify({ pad: PAD })).catch(() => null));
        await Promise.all(publishes.slice(-10));
        return (await metric(srv.url, 'crier_fanout_behind')) >= 1;
      },
      { timeout: 60_000, interval: 10, message: 'the stopped reader is behind' },
    );
  await makeBehind();

  // Parked, then refused after publish_wait_ms: not sent. The stopped
  // reader's kernel buffers may still take a little now and then, bringing
  // its queue back to its mark for a moment: a send that lands then goes at
  // once (202); the next one, once it is behind again, must wait.
  const before = await metric(srv.url, 'crier_publish_paced_total{transport="server_api"}');
  let refused = null;
  let waited = 0;
  let sentAtOnce = 0;
  for (let attempt = 0; attempt < 5 && !refused; attempt++) {
    await makeBehind();
    const t0 = Date.now();
    const res = await send(srv.url, target.id, { n: 1 });
    if (res.status === 503) {
      refused = res;
      waited = Date.now() - t0;
    } else {
      assert.equal(res.status, 202, `${res.status} ${res.text}`);
      sentAtOnce++;
    }
  }
  t.diagnostic(`sends that went while the queue was back at its mark: ${sentAtOnce}`);
  assert.ok(refused, 'a send while the backlog held was refused 503');
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.match(refused.json.error, /publish_wait_ms/);
  assert.ok(waited >= 1000, `it waited publish_wait_ms first (${waited} ms)`);
  assert.ok((await metric(srv.url, 'crier_publish_paced_total{transport="server_api"}')) >= before + 1, 'counted as paced');
  await waitFor(() => target.messages.length === sentAtOnce, { timeout: 5000, message: 'the sends that went were delivered' });

  // Parked, and sent as soon as the backlog drains (the stopped reader goes).
  let parked = null;
  for (let attempt = 0; attempt < 5 && !parked; attempt++) {
    await makeBehind();
    const p = send(srv.url, target.id, { n: 2 });
    const outcome = await Promise.race([
      p.then((res) => ({ res })),
      waitFor(async () => (await metric(srv.url, 'crier_publish_parked')) >= 1, { timeout: 5000, interval: 10, message: 'the send is parked' }).then(() => ({ parked: true })),
    ]);
    if (outcome.parked) {
      parked = p;
    } else {
      assert.equal(outcome.res.status, 202, `${outcome.res.status} ${outcome.res.text}`); // went at once (see above)
      sentAtOnce++;
      await waitFor(() => target.messages.length === sentAtOnce, { timeout: 5000, message: 'the send that went was delivered' });
    }
  }
  assert.ok(parked, 'a send while the backlog held was parked');
  assert.equal(target.messages.length, sentAtOnce, 'nothing sent while parked');
  stopped.ws.terminate();
  const sent = await parked;
  assert.equal(sent.status, 202, `${sent.status} ${sent.text}`);
  await waitFor(() => target.messages.length === sentAtOnce + 1, { timeout: 5000, message: 'the target got the send' });
  assert.deepEqual(target.messages.at(-1), { connection: target.id, data: { n: 2 } });
  await Promise.all(publishes);
});
