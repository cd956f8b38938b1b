// Two crier nodes on one real redis-server (the Redis backplane): messages
// cross nodes on every transport in one order, a subscriber resumes on the
// other node, and Redis dying and coming back loses nothing silently.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { curlPollLoop } from '../lib/curl.js';
import { poll } from '../lib/http.js';
import { T, connect, invoke, receiver } from '../lib/signalr.js';
import { eventSeq, parseEventId, sseHttp } from '../lib/sse.js';
import { sleep, waitFor } from '../lib/util.js';
import { openWs } from '../lib/ws.js';
import { health, publishOn, signalrCtx, startCluster } from './helpers.js';

// Subscribers of `room` on `node`, one per transport: SSE, long poll,
// plain WebSocket, and the official SignalR client (WebSockets) joined to it.
async function subscribersOn(t, node, room) {
  const sse = await sseHttp(`${node.url}/rooms/${room}/events`);
  const lp = curlPollLoop(node.url, room);
  const ws = await openWs(`${node.wsUrl}/rooms/${room}/ws`);
  const conn = await connect(signalrCtx(t, node.url), { transport: T.WebSockets, label: `SignalR on ${node.name}` });
  const sr = receiver(conn);
  const joined = await invoke(conn, 'JoinRoom', room);
  assert.equal(joined?.room, room, `JoinRoom on ${node.name}: ${JSON.stringify(joined)}`);
  t.after(() => {
    sse.close();
    lp.stop();
    ws.close();
  });
  return {
    node: node.name,
    // Each as [{id, data}] in the order received.
    got: {
      sse: () => sse.events.map((e) => ({ id: eventSeq(e), data: JSON.parse(e.data) })),
      poll: () => lp.messages.map((m) => ({ id: m.id, data: m.data })),
      ws: () => ws.messages.map((m) => ({ id: m.id, data: m.data })),
      signalr: () => sr.calls.map((args) => ({ id: null, data: args })),
    },
  };
}

test('two nodes: every transport on each node gets what either node publishes, in one order', { timeout: 60_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2);
  const [a, b] = nodes;
  assert.deepEqual((await health(a)).backplane, { type: 'redis', connected: true });
  const room = 'crossing';
  const subs = [await subscribersOn(t, a, room), await subscribersOn(t, b, room)];
  await sleep(300); // the long polls are held

  // 40 messages, odd ones on A and even ones on B, two at a time, so that
  // the two nodes' publishes race each other.
  const N = 40;
  const answers = [];
  for (let i = 1; i <= N; i += 2) {
    const pair = await Promise.all([publishOn(a, room, { n: i, via: 'A' }), publishOn(b, room, { n: i + 1, via: 'B' })]);
    pair.forEach((r) => assert.equal(r.status, 201, `publish: ${r.status} ${r.text}`));
    answers.push(...pair.map((r, k) => ({ id: r.json.id, epoch: r.json.epoch, data: { n: i + k, via: k ? 'B' : 'A' } })));
  }
  // The ids Redis gave are 1..N, and they are the one order.
  assert.deepEqual(answers.map((x) => x.id).sort((x, y) => x - y), Array.from({ length: N }, (_, i) => i + 1));
  assert.equal(new Set(answers.map((x) => x.epoch)).size, 1, 'one epoch');
  const order = [...answers].sort((x, y) => x.id - y.id);

  for (const s of subs) {
    for (const [kind, got] of Object.entries(s.got)) {
      await waitFor(() => got().length >= N, { timeout: 15_000, message: `${kind} on ${s.node}: ${N} messages` });
    }
  }
  await sleep(300); // a duplicate would show up now
  for (const s of subs) {
    for (const kind of ['sse', 'poll', 'ws']) {
      assert.deepEqual(s.got[kind](), order.map(({ id, data }) => ({ id, data })), `${kind} on ${s.node}: all ${N}, in Redis's order`);
    }
    // SignalR room messages carry the published JSON array's items as arguments.
    assert.deepEqual(s.got.signalr(), order.map(({ data }) => ({ id: null, data: [data] })), `SignalR on ${s.node}`);
  }
});

test('two nodes: a SignalR broadcast from a client on A reaches a client on B, and back', { timeout: 30_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2);
  const [a, b] = nodes;
  const onA = await connect(signalrCtx(t, a.url), { transport: T.WebSockets, label: 'client on A' });
  const onB = await connect(signalrCtx(t, b.url), { transport: T.ServerSentEvents, label: 'client on B (SSE)' });
  const [ra, rb] = [receiver(onA), receiver(onB)];
  await sleep(200); // both joined their hub's room on their node
  await invoke(onA, 'SendMessage', 'ann', 'hello from A');
  await rb.wait(1, 5000);
  await invoke(onB, 'SendMessage', 'bob', 'hello from B');
  await ra.wait(2, 5000);
  await rb.wait(2, 5000);
  await sleep(200);
  // A broadcast reaches everyone, its sender too, on both nodes, in one order.
  const both = [['ann', 'hello from A'], ['bob', 'hello from B']];
  assert.deepEqual(ra.calls, both);
  assert.deepEqual(rb.calls, both);
});

test('a subscriber resumes on node B from the last id it saw on node A, nothing lost', { timeout: 30_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2);
  const [a, b] = nodes;
  const room = 'moving';
  for (let i = 1; i <= 50; i++) assert.equal((await publishOn(a, room, { n: i })).status, 201);

  // SSE on A: read 20, go away.
  const first = await sseHttp(`${a.url}/rooms/${room}/events?last_event_id=0`);
  await first.waitForEvents(20, 5000);
  first.close();
  const seen = first.events.slice(0, 20);
  const last = parseEventId(seen.at(-1).id);
  assert.equal(last.n, 20);
  for (let i = 51; i <= 60; i++) assert.equal((await publishOn(a, room, { n: i })).status, 201);

  // SSE on B from the cursor A gave.
  const again = await sseHttp(`${b.url}/rooms/${room}/events`, { headers: { 'Last-Event-ID': `${last.epoch}:${last.n}` } });
  t.after(() => again.close());
  await again.waitForEvents(40, 5000);
  await sleep(200);
  assert.deepEqual(again.events.map(eventSeq), Array.from({ length: 40 }, (_, i) => 21 + i), 'SSE on B: 21..60');
  assert.ok(!again.events.some((e) => e.type === 'gap'), 'no gap signal');

  // Long poll on B from the same cursor.
  const res = await poll(b.url, room, `${last.n}&epoch=${last.epoch}`);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.gap, undefined, `no gap: ${res.text}`);
  assert.deepEqual(res.json.messages.map((m) => m.data.n), Array.from({ length: 40 }, (_, i) => 21 + i), 'long poll on B: 21..60');
  assert.equal(res.json.epoch, last.epoch);
});

test('Redis killed for 3 s while both nodes publish: local delivery goes on, cross-node delivery comes back, nothing lost silently', { timeout: 60_000 }, async (t) => {
  const { redis, nodes } = await startCluster(t, 2, { history: { size: 5000 } });
  const [a, b] = nodes;
  const room = 'storm';
  const subA = await sseHttp(`${a.url}/rooms/${room}/events`);
  const subB = await sseHttp(`${b.url}/rooms/${room}/events`);
  t.after(() => {
    subA.close();
    subB.close();
  });
  await sleep(300);

  // Both nodes publish one message each every 25 ms; each answer is kept.
  const results = [];
  let phase = 'before';
  let stopping = false;
  // Each publish is sent 25 ms after the last one, without waiting for its
  // answer (at most 8 unanswered): a publish that was on its way to Redis
  // when Redis died waits for the link, and must not hold up the node's
  // later publishes, which are the ones queued while Redis is down.
  const publisher = async (node) => {
    const pending = new Set();
    for (let i = 0; !stopping; i++) {
      const value = { from: node.name, i, phase };
      const p = publishOn(node, room, value)
        .catch((err) => ({ status: 0, text: err.message }))
        .then((r) => results.push({ node: node.name, value, status: r.status, json: r.json, text: r.text }))
        .finally(() => pending.delete(p));
      pending.add(p);
      if (pending.size >= 8) await Promise.race(pending);
      await sleep(25);
    }
    await Promise.all(pending);
  };
  const running = [publisher(a), publisher(b)];
  await sleep(1000);

  await redis.kill();
  phase = 'down';
  await waitFor(async () => !(await health(a)).backplane.connected, { timeout: 5000, message: 'A sees Redis down' });
  await sleep(3000);
  // Both nodes still serve while Redis is down.
  assert.equal((await health(a)).status, 'ok');
  assert.equal((await health(b)).status, 'ok');
  await redis.restart();
  phase = 'after';
  await waitFor(async () => (await health(a)).backplane.connected && (await health(b)).backplane.connected, {
    timeout: 10_000,
    message: 'both nodes reconnected to Redis',
  });
  await sleep(1500);
  stopping = true;
  await Promise.all(running);
  await sleep(1000);

  const accepted = results.filter((r) => r.status === 201 || r.status === 202);
  const refused = results.filter((r) => !(r.status === 201 || r.status === 202));
  const queued = accepted.filter((r) => r.status === 202);
  t.diagnostic(`${results.length} publishes: ${accepted.length} accepted (${queued.length} queued while Redis was down), ` +
    `${refused.length} refused: ${JSON.stringify(refused.slice(0, 3).map((r) => [r.status, r.text]))}`);
  assert.ok(queued.length >= 20, `publishes while Redis was down are accepted and queued (${queued.length})`);
  assert.ok(queued.every((r) => r.json?.queued === true), '202 answers say queued');
  for (const r of refused) assert.ok([503, 504].includes(r.status), `a refusal is 503/504 with a reason: ${r.status} ${r.text}`);

  const data = (s) => s.events.filter((e) => e.type !== 'gap').map((e) => JSON.parse(e.data));
  const key = (v) => `${v.from}:${v.i}`;
  for (const [name, sub] of [['A', subA], ['B', subB]]) {
    const got = new Set(data(sub).map(key));
    const gaps = sub.events.filter((e) => e.type === 'gap').map((e) => JSON.parse(e.data));
    const missing = accepted.filter((r) => !got.has(key(r.value)));
    t.diagnostic(`subscriber on ${name}: ${got.size} messages, ${gaps.length} gap signal(s) ${JSON.stringify(gaps)}, ${missing.length} accepted ones missing`);
    // Local delivery while Redis was down: what this node accepted then.
    const localDown = queued.filter((r) => r.node === name);
    assert.ok(localDown.length > 0 && localDown.every((r) => got.has(key(r.value))), `${name} delivered its own publishes while Redis was down (${localDown.length} queued on ${name}, ${localDown.filter((r) => !got.has(key(r.value))).length} of them missing)`);
    // Cross-node delivery after Redis came back.
    const otherAfter = accepted.filter((r) => r.node !== name && r.value.phase === 'after' && r.status === 201);
    assert.ok(otherAfter.length > 0 && otherAfter.every((r) => got.has(key(r.value))), `${name} gets the other node's publishes again`);
    // Every accepted message, or an explicit gap signal.
    assert.ok(missing.length === 0 || gaps.length > 0, `${name}: ${missing.length} accepted messages missing with no gap signal: ${JSON.stringify(missing.slice(0, 5).map((r) => r.value))}`);
    // Nothing twice.
    assert.equal(data(sub).length, got.size, `${name}: no message twice`);
  }
});

test('a Redis with a password: the right one connects, a wrong one is logged and the node serves on its own', { timeout: 30_000 }, async (t) => {
  const { startRedis } = await import('../lib/redis.js');
  const { startCrier, stopClean } = await import('../lib/server.js');
  const redis = await startRedis({ extraArgs: ['--requirepass', 's3cret'] });
  t.after(() => redis.stop());
  const good = await startCrier({ backplane: { type: 'redis', url: `redis://:s3cret@127.0.0.1:${redis.port}/1` } });
  t.after(() => stopClean(good));
  assert.deepEqual((await health(good)).backplane, { type: 'redis', connected: true });
  assert.equal((await publishOn(good, 'pw', 1)).status, 201);

  // A wrong password: healthz says so, the reason is logged once, publishing
  // is still accepted for this node's own members (queued).
  const bad = await startCrier(
    { backplane: { type: 'redis', url: `redis://127.0.0.1:${redis.port}`, password: 'wrong' } },
    [],
    { waitBackplane: false },
  ).catch((e) => e);
  assert.ok(!(bad instanceof Error), `a node whose Redis refuses it still starts: ${bad.message}`);
  t.after(() => stopClean(bad));
  await sleep(1500);
  assert.deepEqual((await health(bad)).backplane, { type: 'redis', connected: false });
  const lines = bad.stderr().split('\n').filter((l) => /cannot reach Redis/.test(l));
  assert.equal(lines.length, 1, `logged once per change of state, not per retry:\n${bad.stderr()}`);
  assert.match(lines[0], /WRONGPASS|invalid password|AUTH/i);
  const r = await publishOn(bad, 'pw', 2);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.queued, true);
});

test('each node subscribes only to the rooms it has members in, and to its own channel', { timeout: 30_000 }, async (t) => {
  const { redisCommand } = await import('../lib/redis.js');
  // keepalive_s 1: a closed SSE stream is noticed at the next keep-alive.
  const { redis, nodes, prefix } = await startCluster(t, 2, { limits: { keepalive_s: 1 } });
  const [a, b] = nodes;
  const channels = async () =>
    (await redisCommand(redis.port, 'PUBSUB', 'CHANNELS', `${prefix}*`)).split('\r\n').filter((l) => l.startsWith(prefix)).sort();
  const numsub = async (ch) => Number(/:(\d+)\r\n$/.exec(await redisCommand(redis.port, 'PUBSUB', 'NUMSUB', ch))?.[1]);
  // Idle: each node's own channel only, and the server API's cluster
  // channels (README "Server API": every node's u:*, and each node's own u:NODE).
  const idle = await channels();
  const nodeIds = idle.filter((c) => c.startsWith(`${prefix}n:`)).map((c) => c.slice(prefix.length + 2));
  assert.equal(nodeIds.length, 2, `two node channels: ${idle}`);
  const want = [...nodeIds.map((id) => `${prefix}n:${id}`), `${prefix}u:*`, ...nodeIds.map((id) => `${prefix}u:${id}`)].sort();
  assert.deepEqual(idle, want, `node channels and cluster channels only: ${idle}`);

  // A member of "only-a" on A: A subscribes to it, B does not.
  const sse = await sseHttp(`${a.url}/rooms/only-a/events`);
  t.after(() => sse.close());
  await waitFor(async () => (await numsub(`${prefix}c:only-a`)) === 1, { timeout: 3000, message: 'A subscribed to only-a' });
  assert.deepEqual((await channels()).filter((c) => c.includes(':c:')), [`${prefix}c:only-a`]);
  // Publishing from B (no member there) does not subscribe B.
  assert.equal((await publishOn(b, 'only-a', 'x')).status, 201);
  await sse.waitForEvents(1, 3000);
  assert.equal(await numsub(`${prefix}c:only-a`), 1, 'still only A');
  // The member leaves: A lets the channel go (the room lingers 5 s, the
  // channel 5 s more).
  sse.close();
  await waitFor(async () => (await numsub(`${prefix}c:only-a`)) === 0, { timeout: 15_000, message: 'A unsubscribed' });
});

// A Redis that stops answering (not down: its connections stay open) must not
// let publishes pile up without bound in the node: past
// backplane.max_pending_bytes of publishes waiting for Redis's answer, a
// publish gets 503 with a JSON error; once Redis answers again, publishing
// works, and the refusals are counted in /metrics.
test('a Redis that does not answer: publishes waiting for it are bounded by backplane.max_pending_bytes (503), then publishing resumes', { timeout: 60_000 }, async (t) => {
  const { redis, nodes } = await startCluster(t, 1, {});
  const [a] = nodes;
  // A node of its own, with a small bound and a PING watchdog longer than the pause.
  const { startCrier, stopClean } = await import('../lib/server.js');
  const node = await startCrier({
    backplane: { type: 'redis', url: redis.url, key_prefix: `bound${process.pid}:`, max_pending_bytes: 65536, connect_timeout_ms: 20000 },
  });
  t.after(() => stopClean(node));
  node.name = 'bounded';
  await waitFor(async () => (await health(node)).backplane.connected, { timeout: 10_000, message: 'node connected to Redis' });
  assert.equal((await publishOn(node, 'slow', { warm: true })).status, 201);

  redis.pause();
  let resumed = false;
  t.after(() => {
    if (!resumed) redis.resume();
  });
  const pad = 'x'.repeat(8000);
  const answers = Promise.all(
    Array.from({ length: 20 }, (_, i) => publishOn(node, 'slow', { i, pad }, 30_000).catch((err) => ({ status: 0, text: err.message }))),
  );
  // 20 x ~8 KB = 160 KB against a 64 KiB bound: the publishes past it are
  // answered at once with 503 while Redis is still paused.
  await waitFor(async () => {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const m = text.match(/crier_limit_refusals_total\{limit="backplane_max_pending_bytes"\} (\d+)/);
    return m && Number(m[1]) >= 10;
  }, { timeout: 10_000, message: 'refusals counted while Redis is paused' });
  redis.resume();
  resumed = true;
  const all = await answers;
  const statuses = all.map((r) => r.status);
  const created = statuses.filter((s) => s === 201).length;
  const busy = all.filter((r) => r.status === 503);
  assert.ok(busy.length >= 10, `at least 10 of 20 refused, got ${JSON.stringify(statuses)}`);
  assert.ok(created >= 1 && created <= 10, `those within 64 KiB were published once Redis answered: ${JSON.stringify(statuses)}`);
  for (const r of busy) assert.match(r.json?.error ?? '', /backplane\.max_pending_bytes/);
  // Publishing works again, and the other node (the bound is per node) saw nothing of it.
  assert.equal((await publishOn(node, 'slow', { after: true })).status, 201);
  assert.equal((await publishOn(a, 'slow', { other: true })).status, 201);
});
