// Backpressure instead of mass drops (issue #16 target 4), on the default
// config (limits.send_queue 1024): a publisher faster than crier's fanout is
// paced, and only the subscriber that stopped reading is dropped.
//
// - HTTP: hundreds of WebSocket subscribers read, one never reads, and a
//   closed-loop publisher (the next POST as soon as the previous is
//   answered) publishes until the stopped one is dropped. Every reader gets
//   every message, in order; exactly one subscriber is dropped; publishes
//   were paced (crier_publish_paced_total{transport="http"}).
// - WebSocket: a client sends its frames as fast as its socket takes them;
//   crier stops reading it while the backlog holds
//   (crier_publish_paced_total{transport="websocket"}) and no reader is dropped.
//
// On the code before backpressure, the publisher filled every queue and
// crier dropped all the readers ("send queue full").

import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { test } from 'node:test';
import WebSocket from 'ws';
import { publishRaw, request, subscriberCounts } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openIdReader } from '../lib/ws.js';

const READERS = Number(process.env.BACKPRESSURE_READERS || 500);
const PAD = 'x'.repeat(1024); // ~1 KiB messages: the stopped reader's kernel buffers fill early
const MAX_PUBLISH_MS = 90_000;


// A closed-loop HTTP publisher on a worker thread: POSTs {n, pad} over one
// kept-alive connection, the next as soon as the previous is answered.
// result: {accepted, refused, error} as it goes; stop() resolves the last.
const PUBLISHER = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let stopping = false;
parentPort.on('message', () => (stopping = true));
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
    while (!stopping) {
      const res = await post(JSON.stringify({ n: r.accepted + 1, pad: workerData.pad }));
      if (res.status === 201 && JSON.parse(res.text).id === r.accepted + 1) r.accepted++;
      else if (res.status === 503) r.refused++;
      else r.error = res.status + ' ' + res.text;
      if (r.error) break;
      if ((r.accepted + r.refused) % 50 === 0) parentPort.postMessage(r);
    }
  } catch (err) {
    r.error = String(err);
  }
  agent.destroy();
  parentPort.postMessage({ ...r, done: true });
})();
`;

function closedLoopPublisher(url) {
  const worker = new Worker(PUBLISHER, { eval: true, workerData: { url, pad: PAD } });
  const pub = { result: { accepted: 0, refused: 0, error: null } };
  const done = new Promise((resolve) => {
    worker.on('message', (r) => {
      pub.result = r;
      if (r.done) resolve(r);
    });
    worker.on('error', (err) => resolve({ ...pub.result, error: String(err) }));
  });
  pub.stop = async () => {
    worker.postMessage('stop');
    const r = await withTimeout(done, 90_000, 'the publisher did not stop');
    await worker.terminate();
    return r;
  };
  return pub;
}

async function metric(base, name) {
  // Once more if the kept-alive connection was closed under the request
  // (crier closes one idle for limits.header_timeout_s while readers are awaited).
  let res;
  for (let attempt = 1; !res; attempt++) {
    try {
      res = await request(`${base}/metrics`, { timeout: 60_000 });
    } catch (err) {
      if (attempt === 2) throw new Error(`GET /metrics: ${err.message} (${err.cause?.code || err.cause?.message || ''})`);
    }
  }
  const line = res.text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function openReaders(srv, room, n) {
  const readers = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, () => openIdReader(`${srv.wsUrl}/rooms/${room}/ws`));
    await Promise.all(batch.map((r) => r.opened));
    readers.push(...batch);
  }
  return readers;
}

async function allReceived(readers, n, ms, srv) {
  try {
    await waitFor(() => readers.every((r) => r.got >= n || r.closeInfo), { timeout: ms, interval: 100, message: `every reader has ${n} messages` });
  } catch (err) {
    // Say who is short, who was closed and how, and what crier logged.
    const open = readers.filter((r) => !r.closeInfo);
    const closed = readers.filter((r) => r.closeInfo);
    const codes = [...new Set(closed.map((r) => JSON.stringify(r.closeInfo)))].slice(0, 5);
    const short = open.filter((r) => r.got < n).map((r) => r.got);
    const tail = srv?.stderr ? srv.stderr().split('\n').slice(-40).join('\n') : '';
    throw new Error(`${err.message}: ${short.length} open readers short (got ${short.slice(0, 10).join(', ')}), ` +
      `${closed.length} closed (${codes.join('; ')})\n--- crier stderr (last lines) ---\n${tail}`);
  }
}

function assertReadersGotAll(readers, n, label, srv) {
  const closed = readers.filter((r) => r.closeInfo);
  // What crier said about dropping or setting aside subscribers, if any.
  const said = () => (srv?.stderr ? srv.stderr().split('\n').filter((l) => /drop|stall|behind|send queue/i.test(l)).slice(-8).join('\n') : '');
  assert.equal(closed.length, 0, `${label}: readers closed: ${JSON.stringify(closed.slice(0, 3).map((r) => r.closeInfo))} (${closed.length} of ${readers.length}), ` +
    `got ${closed.slice(0, 5).map((r) => r.got).join(', ')} of ${n} before\n--- crier said ---\n${said()}`);
  const bad = readers.filter((r) => r.bad || r.got !== n);
  assert.equal(bad.length, 0, `${label}: ${bad.length} readers did not get ids 1..${n} in order, e.g. ${bad.slice(0, 3).map((r) => r.bad || `${r.got} messages`).join('; ')}`);
}

test(`closed-loop HTTP publisher, ${READERS} WebSocket readers and one stopped: exactly one drop`, { timeout: 240_000 }, async (t) => {
  const srv = await startFor(t, {});
  const room = 'bp-http';
  const readers = [];
  try {
    const stopped = openIdReader(`${srv.wsUrl}/rooms/${room}/ws`);
    await stopped.opened;
    stopped.ws._socket.pause(); // never reads: its kernel buffers fill, then its queue
    readers.push(...(await openReaders(srv, room, READERS - 1)));
    await waitFor(async () => (await subscriberCounts(srv.url, room))?.websocket === READERS, {
      timeout: 30_000,
      message: `room info shows ${READERS} WebSocket subscribers`,
    });

    // Closed loop, on its own thread (the readers keep this one busy): the
    // next publish as soon as the previous one is answered, until the
    // stopped reader is dropped (or time is up).
    const pub = closedLoopPublisher(`${srv.url}/rooms/${room}/messages`);
    const t0 = Date.now();
    let dropped = 0;
    while (Date.now() - t0 < MAX_PUBLISH_MS && !pub.result.error) {
      await sleep(200);
      dropped = await metric(srv.url, 'crier_subscribers_dropped_total');
      if (dropped >= 1 && pub.result.accepted >= 2000) break;
    }
    const { accepted, refused, error } = await pub.stop();
    const ms = Date.now() - t0;
    t.diagnostic(`${accepted} publishes accepted (${refused} refused 503) in ${ms} ms`);
    assert.equal(error, null, 'the publisher saw only 201 (ids in order) and 503');
    assert.ok(dropped >= 1, `the stopped reader was never dropped in ${ms} ms (${accepted} publishes)`);

    await allReceived(readers, accepted, 120_000, srv);
    t.diagnostic(
      `dropped ${await metric(srv.url, 'crier_subscribers_dropped_total')}, stalled ` +
        `${await metric(srv.url, 'crier_subscribers_stalled_total')}, paced ` +
        `${await metric(srv.url, 'crier_publish_paced_total{transport="http"}')}`,
    );
    assertReadersGotAll(readers, accepted, 'HTTP publisher', srv);
    assert.equal(await metric(srv.url, 'crier_subscribers_dropped_total'), 1, 'exactly one subscriber dropped');
    assert.equal((await subscriberCounts(srv.url, room))?.websocket, READERS - 1, 'the stopped one left the room');
    const paced = await metric(srv.url, 'crier_publish_paced_total{transport="http"}');
    assert.ok(paced > 0, 'the publisher was paced (crier_publish_paced_total{transport="http"} > 0)');
    assert.ok(stopped.got < accepted, 'the stopped reader did not get everything');
  } finally {
    readers.forEach((r) => r.ws.terminate());
  }
});

test(`a WebSocket publisher is read at the fanout's pace: ${READERS} readers, no drop`, { timeout: 240_000 }, async (t) => {
  const srv = await startFor(t, {});
  const room = 'bp-ws';
  const N = 3000; // > limits.send_queue: without pacing every reader's queue overflows
  const readers = [];
  try {
    readers.push(...(await openReaders(srv, room, READERS)));
    const pub = openIdReader(`${srv.wsUrl}/rooms/${room}/ws`); // a member too, and reads
    await pub.opened;
    await waitFor(async () => (await subscriberCounts(srv.url, room))?.websocket === READERS + 1, {
      timeout: 30_000,
      message: `room info shows ${READERS + 1} WebSocket subscribers`,
    });
    // Small frames: lws reads dozens in one go, more than one round of writes drains.
    for (let i = 1; i <= N; i++) pub.ws.send(JSON.stringify({ n: i }));
    await allReceived([...readers, pub], N, 180_000, srv);
    assertReadersGotAll([...readers, pub], N, 'WebSocket publisher', srv);
    assert.equal(await metric(srv.url, 'crier_subscribers_dropped_total'), 0, 'no subscriber dropped');
    const paced = await metric(srv.url, 'crier_publish_paced_total{transport="websocket"}');
    t.diagnostic(`WebSocket reads paused: ${paced}`);
    assert.ok(paced > 0, 'the publisher was paced (crier_publish_paced_total{transport="websocket"} > 0)');
  } finally {
    readers.forEach((r) => r.ws.terminate());
  }
});

// On a backplane a WebSocket publisher's frames reach the subscriber queues
// only when they come back from it, so the queues alone showed the backlog
// too late: the publisher's frames were all read and published, and every
// reader's queue overflowed (all dropped "send queue full" on Redis, here
// with a small send_queue to make it quick). Publishes in flight to the
// backplane now hold publishers too. On the memory backplane the queues show
// it at once; the test holds on both.
test('a WebSocket publisher on send_queue 16: readers read and none is dropped', { timeout: 120_000 }, async (t) => {
  const srv = await startFor(t, { limits: { send_queue: 16 } });
  const room = 'bp-ws-small';
  const N = 1500;
  const readers = [];
  try {
    readers.push(...(await openReaders(srv, room, 20)));
    const pub = openIdReader(`${srv.wsUrl}/rooms/${room}/ws`); // a member too, and reads
    await pub.opened;
    await waitFor(async () => (await subscriberCounts(srv.url, room))?.websocket === 21, {
      message: 'room info shows 21 WebSocket subscribers',
    });
    for (let i = 1; i <= N; i++) pub.ws.send(JSON.stringify({ n: i }));
    await allReceived([...readers, pub], N, 90_000, srv);
    assertReadersGotAll([...readers, pub], N, 'WebSocket publisher, send_queue 16', srv);
    assert.equal(await metric(srv.url, 'crier_subscribers_dropped_total'), 0, 'no subscriber dropped');
    t.diagnostic(`WebSocket reads paused: ${await metric(srv.url, 'crier_publish_paced_total{transport="websocket"}')}`);
  } finally {
    readers.forEach((r) => r.ws.terminate());
  }
});

// Every reader stops reading at once for longer than
// limits.subscriber_stall_ms (their host or the network stalls, or the
// test process is starved on a loaded machine): that is not a reader that
// stopped. Publishers keep waiting and nobody is judged stalled until four
// stall times have passed, so when they read again they get everything.
// (Judged after one stall time, every queue overflowed and all were dropped,
// their close frames stuck behind full kernel buffers: 1006 for everyone.)
test('every reader pauses for longer than the stall time: none is dropped', { timeout: 120_000 }, async (t) => {
  const srv = await startFor(t, { limits: { send_queue: 16, subscriber_stall_ms: 1000 } });
  const room = 'bp-all-pause';
  const N = 1500;
  const readers = [];
  try {
    readers.push(...(await openReaders(srv, room, 10)));
    const pub = openIdReader(`${srv.wsUrl}/rooms/${room}/ws`);
    await pub.opened;
    await waitFor(async () => (await subscriberCounts(srv.url, room))?.websocket === 11, {
      message: 'room info shows 11 WebSocket subscribers',
    });
    const all = [...readers, pub];
    all.forEach((r) => r.ws._socket.pause());
    const big = 'z'.repeat(16 * 1024); // 24 MB each: more than the kernel buffers hold
    for (let i = 1; i <= N; i++) pub.ws.send(JSON.stringify({ n: i, big }));
    await sleep(2500); // 2.5 stall times with nobody reading
    all.forEach((r) => r.ws._socket.resume());
    await allReceived(all, N, 90_000, srv);
    assertReadersGotAll(all, N, 'readers paused together', srv);
    assert.equal(await metric(srv.url, 'crier_subscribers_dropped_total'), 0, 'no subscriber dropped');
    t.diagnostic(`judged stalled while reading again: ${await metric(srv.url, 'crier_subscribers_stalled_total')}`);
  } finally {
    readers.forEach((r) => r.ws.terminate());
  }
});

// A publish that waited limits.publish_wait_ms is refused 503 with
// Retry-After and not published; with publish_wait_ms 0 it is refused at
// once. A stopped reader that stays the only behind queue holds publishers
// for limits.subscriber_stall_ms (here far longer than the test).
for (const waitMs of [300, 0]) {
  test(`publish_wait_ms ${waitMs}: 503 with Retry-After while a subscriber is behind`, { timeout: 60_000 }, async (t) => {
    const srv = await startFor(t, { limits: { send_queue: 8, publish_wait_ms: waitMs, subscriber_stall_ms: 600000 } });
    const room = 'bp-wait';
    const stopped = openIdReader(`${srv.wsUrl}/rooms/${room}/ws`);
    try {
      await stopped.opened;
      stopped.ws._socket.pause();
      const big = 'y'.repeat(32 * 1024); // fills the stopped reader's socket in a few messages
      let res;
      let accepted = 0;
      for (let i = 1; i <= 2000; i++) {
        res = await publishRaw(srv.url, room, JSON.stringify({ n: i, big }));
        if (res.status !== 201) break;
        accepted++;
      }
      t.diagnostic(`${accepted} accepted before the first refusal`);
      assert.equal(res.status, 503, `a publish was refused: ${res.status} ${res.text}`);
      assert.equal(res.headers.get('retry-after'), '1', 'Retry-After: 1');
      assert.match(res.json?.error ?? '', /subscribers are behind/, `error: ${res.text}`);
      assert.ok(accepted > 4, 'publishes went through until the queue passed its mark');
      const info = await request(`${srv.url}/rooms/${room}`);
      assert.equal(info.json?.last_id, accepted, 'the refused publish was not published');
      assert.ok((await metric(srv.url, 'crier_publish_paced_total{transport="http"}')) >= 1, 'counted as paced');
      assert.equal(await metric(srv.url, 'crier_subscribers_dropped_total'), 0, 'nobody dropped');
    } finally {
      stopped.ws.terminate();
    }
  });
}
