// Backpressure across nodes (issue #16 target 4): a closed-loop HTTP
// publisher on node A, its readers on node B (the Redis backplane between).
// B's queues fill from Redis, not from A's publishes: A waits while B says
// its queues are behind (backlog_cluster.c), so B drops no reader that reads.
//
// Two crier nodes on one redis-server, limits.send_queue 256 on both (a
// small queue: the readers' side overflows quickly when nobody waits for
// it), WebSocket readers of one room on B (50, or 30 for the long-polling sender), and a publisher on A that
// POSTs the next message as soon as the previous one is answered; midway
// every reader stops reading until A waits (at most 6 s). Asserts: every reader gets every
// message, in order; B dropped nobody (crier_subscribers_dropped_total 0);
// A was paced (crier_publish_paced_total{transport="http"} > 0). On the
// code before, A never waited and B dropped readers ("send queue full").
//
// The queue is not smaller because across nodes the pacing is as quick as
// B's word through Redis: what A publishes meanwhile (B's thread starved on
// a loaded machine: tens of ms) lands in queues that have half their room
// for it (README "Slow subscribers and backpressure").
//
// Then the same with a SignalR client on long polling through nginx (round
// robin, deploy/nginx.conf), limits.send_queue 64 (the client sends more
// slowly than the HTTP publisher): its POSTs land on either node, those for
// the node that does not hold its connection are forwarded; each waits on
// the node it lands on (crier_publish_paced_total{transport="signalr_http"}).

import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { test } from 'node:test';
import WebSocket from 'ws';
import { request, subscriberCounts } from '../lib/http.js';
import { T, connect } from '../lib/signalr.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openIdReader } from '../lib/ws.js';
import { signalrCtx, startCluster, startNginxLogged } from './helpers.js';

const LP_READERS = 30; // fewer, with bigger messages (see the long-polling test)
const PUBLISHES = 2000;
const PAD = 'x'.repeat(4096); // 2000 x 4 KiB: more than a paused reader's kernel buffers hold
const CL_READERS = 50;

// A closed-loop HTTP publisher on a worker thread (the readers keep this
// one busy): `count` POSTs over one kept-alive connection, each as soon as
// the previous is answered. Resolves {accepted, refused, error}.
const PUBLISHER = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function post(body) {
  return new Promise((resolve, reject) => {
    const req = http.request(workerData.url, { method: 'POST', agent, timeout: 60000,
      headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}
(async () => {
  const r = { accepted: 0, refused: 0, error: null };
  try {
    while (r.accepted < workerData.count && !r.error) {
      const res = await post(JSON.stringify({ n: r.accepted + 1, pad: workerData.pad }));
      if (res.status === 201 && JSON.parse(res.text).id === r.accepted + 1) r.accepted++;
      else if (res.status === 503) r.refused++;
      else r.error = res.status + ' ' + res.text;
    }
  } catch (err) {
    r.error = String(err);
  }
  agent.destroy();
  parentPort.postMessage(r);
})();
`;

function closedLoopPublish(url, count) {
  const worker = new Worker(PUBLISHER, { eval: true, workerData: { url, count, pad: PAD } });
  return withTimeout(
    new Promise((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (err) => resolve({ error: String(err) }));
    }),
    120_000,
    'the publisher did not finish',
  ).finally(() => worker.terminate());
}

// Once every reader has `after` messages, every one of them stops reading
// for 1.5 s (less than limits.subscriber_stall_ms: they are not stalled), as
// a busy client host would: B's queues fill behind them, so the publisher
// has to wait for B whatever the machine's speed.
// Once the readers have `after` messages, every reader stops reading for
// 1.5 s, or (with `until`) until until() is true, at most 6 s: their kernel
// buffers fill at the sender's pace, which a loaded machine makes slower.
// Under four stall times (8 s) either way: a pause of everyone is waited
// for, not judged.
async function pauseReadersOnce(readers, after, until) {
  await waitFor(() => readers.every((r) => r.got >= after || r.closeInfo), { timeout: 60_000, interval: 10, message: 'the readers are under way' });
  readers.forEach((r) => r.ws._socket.pause());
  if (until) {
    const end = Date.now() + 6000;
    while (Date.now() < end && !(await until())) await sleep(200);
  } else {
    await sleep(1500);
  }
  readers.forEach((r) => r.ws._socket.resume());
}

async function metric(node, name) {
  const res = await request(`${node.url}/metrics`, { timeout: 30_000 });
  const line = res.text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

test(`closed-loop publisher on node A, ${CL_READERS} WebSocket readers on node B (send_queue 256): A waits for B, nobody dropped`, { timeout: 240_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2, { limits: { send_queue: 256 } });
  const [a, b] = nodes;
  const room = 'bp-cross';
  const readers = [];
  t.after(() => readers.forEach((r) => r.ws.terminate()));
  for (let i = 0; i < CL_READERS; i += 50) {
    const batch = Array.from({ length: Math.min(50, CL_READERS - i) }, () => openIdReader(`${b.wsUrl}/rooms/${room}/ws`));
    readers.push(...batch);
    await Promise.all(batch.map((r) => r.opened));
  }
  await waitFor(async () => (await subscriberCounts(b.url, room))?.websocket === CL_READERS, {
    timeout: 30_000,
    message: `B shows ${CL_READERS} WebSocket subscribers`,
  });
  await sleep(300); // B's room subscription on Redis is confirmed

  const publishing = closedLoopPublish(`${a.url}/rooms/${room}/messages`, PUBLISHES);
  await pauseReadersOnce(readers, 200, async () => (await metric(a, 'crier_publish_paced_total{transport="http"}')) > 0);
  const { accepted, refused, error } = await publishing;
  assert.equal(error, null, `the publisher saw only 201 (ids in order) and 503: ${error}`);
  t.diagnostic(`${accepted} publishes on A (${refused} refused 503)`);

  try {
    await waitFor(() => readers.every((r) => r.got >= accepted || r.closeInfo), { timeout: 60_000, interval: 100, message: `every reader on B has ${accepted} messages` });
  } catch (err) {
    const closed = readers.filter((r) => r.closeInfo);
    const short = readers.filter((r) => !r.closeInfo && r.got < accepted).map((r) => r.got);
    throw new Error(`${err.message}: ${closed.length} closed (${JSON.stringify(closed[0]?.closeInfo)}), ${short.length} short (${short.slice(0, 5)})`);
  }
  const paced = await metric(a, 'crier_publish_paced_total{transport="http"}');
  const dropped = await metric(b, 'crier_subscribers_dropped_total');
  t.diagnostic(`A paced ${paced}, B dropped ${dropped}, B stalled ${await metric(b, 'crier_subscribers_stalled_total')}`);
  const closed = readers.filter((r) => r.closeInfo);
  const got = closed.map((r) => r.got).sort((x, y) => x - y);
  assert.equal(
    closed.length,
    0,
    `readers on B closed: ${JSON.stringify(closed[0]?.closeInfo)} (${closed.length} of ${CL_READERS}, after ${got[0]}..${got.at(-1)} messages)\n` +
      `--- B's log ---\n${b.stderr().split('\n').filter((l, i, all) => !/dropped a/.test(l) || !/dropped a/.test(all[i - 1] || '')).slice(-25).join('\n')}\n--- A's log ---\n${a.stderr().split('\n').slice(-25).join('\n')}`,
  );
  const bad = readers.filter((r) => r.bad || r.got !== accepted);
  assert.equal(bad.length, 0, `${bad.length} readers did not get ids 1..${accepted} in order, e.g. ${bad.slice(0, 3).map((r) => r.bad || `${r.got} messages`).join('; ')}`);
  assert.equal(dropped, 0, 'B dropped no subscriber');
  assert.ok(paced > 0, 'A paced its publisher (crier_publish_paced_total{transport="http"} > 0)');
});

async function openReadersOn(t, node, room, n) {
  const readers = [];
  t.after(() => readers.forEach((r) => r.ws.terminate()));
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, () => openIdReader(`${node.wsUrl}/rooms/${room}/ws`));
    readers.push(...batch);
    await Promise.all(batch.map((r) => r.opened));
  }
  await waitFor(async () => (await subscriberCounts(node.url, room))?.websocket === n, {
    timeout: 30_000,
    message: `${node.name} shows ${n} WebSocket subscribers`,
  });
  return readers;
}

test(`a long-polling SignalR client through nginx (round robin over A and B) sending fast, ${LP_READERS} readers on B (send_queue 64): paced, nobody dropped`, { timeout: 240_000 }, async (t) => {
  // Each reader is sent more (900 x 16 KiB) than its socket's kernel buffers
  // hold while it pauses, so B's queues get behind however fast the machine.
  const SENDS = 900;
  const BIG = 'x'.repeat(16 * 1024);
  const { nodes } = await startCluster(t, 2, { limits: { send_queue: 64 } });
  const [a, b] = nodes;
  const room = 'bp-cross-signalr';
  const nginx = await startNginxLogged(t, [a.port, b.port]);
  const readers = await openReadersOn(t, b, room, LP_READERS);
  await sleep(300);

  const conn = await connect(signalrCtx(t, nginx.url), { transport: T.LongPolling, label: 'long polling via nginx' });
  const label = 'crier_publish_paced_total{transport="signalr_http"}';
  const pacedNow = async () => (await metric(a, label)) + (await metric(b, label)) > 0;
  const paused = pauseReadersOnce(readers, 50, pacedNow);
  for (let n = 1; n <= SENDS; n++) await withTimeout(conn.send('SendToRoom', room, { n, pad: BIG }), 30_000, `send ${n}`);
  await paused;

  try {
    await waitFor(() => readers.every((r) => r.got >= SENDS || r.closeInfo), { timeout: 60_000, interval: 100, message: `every reader on B has ${SENDS} messages` });
  } catch (err) {
    const closed = readers.filter((r) => r.closeInfo);
    throw new Error(`${err.message}: ${closed.length} closed (${JSON.stringify(closed[0]?.closeInfo)})`);
  }
  const paced = [await metric(a, label), await metric(b, label)];
  const dropped = await metric(b, 'crier_subscribers_dropped_total');
  const posts = nginx.accessLog().filter((l) => /^POST \/hubs\/chat/.test(l));
  const upstreams = new Set(posts.map((l) => l.split(' ').at(-1)));
  t.diagnostic(`paced on A ${paced[0]}, on B ${paced[1]}; B dropped ${dropped}; ${posts.length} POSTs via nginx to ${[...upstreams].join(', ')}`);
  assert.equal(upstreams.size, 2, 'the POSTs landed on both nodes');
  const closed = readers.filter((r) => r.closeInfo);
  assert.equal(closed.length, 0, `readers on B closed: ${JSON.stringify(closed[0]?.closeInfo)} (${closed.length} of ${LP_READERS})`);
  const bad = readers.filter((r) => r.bad || r.got !== SENDS);
  assert.equal(bad.length, 0, `${bad.length} readers did not get ids 1..${SENDS} in order, e.g. ${bad.slice(0, 3).map((r) => r.bad || `${r.got} messages`).join('; ')}`);
  assert.equal(dropped, 0, 'B dropped no subscriber');
  assert.ok(paced[0] + paced[1] > 0, 'the sender was paced');
});
