// No lost messages across reconnects: on each plain transport (SSE, long
// poll, WebSocket) a subscriber whose connection is cut abruptly, again and
// again, while a publisher streams 5000 messages, resumes from the last id it
// saw and ends with every message exactly once, in order. A resume that
// history no longer covers, or one from another epoch (a gateway restart),
// gets an explicit gap signal first, never a silent gap.
//
// The cuts are real: the subscriber reaches crier through a TCP proxy in this
// file, which resets both sockets of the connection (RST, no FIN, no close
// frame) at random moments.

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { publish, request, roomInfo, subscriberCounts } from '../lib/http.js';
import { freePort, startCrier, startFor, stopClean } from '../lib/server.js';
import { SseStream, parseEventId } from '../lib/sse.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { wsRefusal } from '../lib/ws.js';
import { publishSteady } from '../lib/publish.js';

const N = 5000;
const PERIOD_MS = 0.75; // one publish every 0.75 ms: 5000 in about 3.75 s (the ASan build keeps up; TSan publishes slower, and the cuts still fall within)
const CUTS = 5;
const ROOM = 'resume:room_1';
const KIND = { sse: 'sse', poll: 'long_polling', ws: 'websocket' };
const LABEL = { sse: 'SSE', poll: 'long poll', ws: 'WebSocket' };
const EPOCH_RE = /^[A-Za-z0-9]{8}$/;

const payload = (i) => ({ n: i, text: `message ${i}` });

// ------------------------------------------------------------------ proxy

// A TCP proxy on a free loopback port, forwarding to 127.0.0.1:targetPort.
// cut() ends every connection through it at once, abruptly: both sockets
// are reset (RST), so neither end sees a clean close; it returns how many
// connections it cut. cutWhen(live, ms) waits (at most ms) until some
// connection is live(pair) ({up, down}: bytes from the client, from the
// server so far), then cuts.
async function startProxy(targetPort) {
  const pairs = new Set();
  const watchers = new Set();
  const changed = () => {
    for (const w of watchers) w();
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, up: 0, down: 0 };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('data', (d) => {
      pair.up += d.length;
      setImmediate(changed); // once it went on to the server
    });
    upstream.on('data', (d) => {
      pair.down += d.length;
      changed();
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
    wsUrl: `ws://127.0.0.1:${port}`,
    active: () => pairs.size,
    cutWhen(live, ms, what) {
      let check;
      return withTimeout(
        new Promise((resolve) => {
          check = () => {
            if ([...pairs].some(live)) resolve(this.cut());
          };
          watchers.add(check);
          check();
        }),
        ms,
        `proxy: no ${what} to cut`,
      ).finally(() => watchers.delete(check));
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

// When a subscriber's connection is live, so that cutting it interrupts
// something: an SSE stream or a WebSocket once the server answered (the
// stream runs); a long poll once its request went out and before any of
// its answer came back (the poll is held, or being answered).
const LIVE = {
  sse: (p) => p.down > 0,
  ws: (p) => p.down > 0,
  poll: (p) => p.up > 0 && p.down === 0,
};

// Cuts the subscriber's connection `count` times, at a random moment in
// each of `count` equal slots of [fromMs, toMs] (from now): at the first
// moment from then on when it is live (within 3 s). Resolves [{atMs, cut}].
async function cutAtRandom(proxy, live, { count, fromMs, toMs, stopped = () => false }) {
  const t0 = Date.now();
  const slot = (toMs - fromMs) / count;
  const cuts = [];
  for (let k = 0; k < count && !stopped(); k++) {
    const at = fromMs + slot * k + Math.random() * slot * 0.8;
    await sleep(Math.max(0, t0 + at - Date.now()));
    const cut = await proxy.cutWhen(live, 3000, `live connection for cut ${k + 1}`);
    cuts.push({ atMs: Date.now() - t0, cut });
  }
  return cuts;
}

// -------------------------------------------------------------- publisher



// ------------------------------------------------------------ subscribers

// What a subscriber got, in order: log holds {id, epoch, data, room} for
// messages and {gap} for gap signals.
class Received {
  constructor() {
    this.log = [];
    this.messages = [];
    this.gaps = [];
    this.last = 0; // the cursor: last id seen ...
    this.epoch = null; // ... and its epoch
    this.waiters = new Set();
  }

  message(m) {
    this.log.push(m);
    this.messages.push(m);
    this.last = m.id;
    this.epoch = m.epoch;
    this.notify();
  }

  gap(info) {
    this.log.push({ gap: info });
    this.gaps.push(info);
    this.notify();
  }

  notify() {
    for (const w of this.waiters) w();
  }

  // Resolves once pred(this) holds; fails after ms.
  until(pred, ms, what) {
    return withTimeout(
      new Promise((resolve) => {
        const check = () => {
          if (pred(this)) {
            this.waiters.delete(check);
            resolve(this);
          }
        };
        this.waiters.add(check);
        check();
      }),
      ms,
      `${what} [have ${this.messages.length} messages, last ${this.epoch}:${this.last}, ${this.gaps.length} gaps]`,
    );
  }
}

// A subscriber of room through base (http://host:port): connect() opens one
// connection from the current cursor (none the first time: live only; long
// polls start from since=0) and resolves once it is established. With
// `reconnect`, a connection that ends is replaced after 20 ms, from the
// cursor. Counts connections, abrupt ends (reset, no clean close) and clean
// ends.
class Subscriber {
  constructor(kind, base, room, { reconnect = false } = {}) {
    Object.assign(this, { kind, base, room, reconnect });
    this.rx = new Received();
    this.connects = 0;
    this.abrupt = 0;
    this.clean = 0;
    this.errors = []; // anything unexpected: bad status, unparsable data
    this.stopped = false;
    this.current = null; // {close()} of the live connection
    this.connected = false;
  }

  // One connection ended (or failed): abruptly (reset, no clean close) or not.
  ended(abrupt) {
    this.connected = false;
    this.current = null;
    if (this.stopped) return; // closed by stop(): not counted
    if (abrupt) this.abrupt++;
    else this.clean++;
    if (this.reconnect && !this.stopped) {
      setTimeout(() => {
        // A failed attempt ends too (and so tries again): nothing to report here.
        if (!this.stopped) this.connect().catch(() => {});
      }, 20);
    }
  }

  onData(obj, where) {
    if (obj && typeof obj === 'object' && 'gap' in obj && Object.keys(obj).length === 1) {
      this.rx.gap(obj.gap);
      return;
    }
    if (!obj || typeof obj.id !== 'number' || typeof obj.epoch !== 'string' || obj.room !== this.room) {
      this.errors.push(`${where}: not a message of ${this.room}: ${JSON.stringify(obj)}`);
      return;
    }
    this.rx.message({ id: obj.id, epoch: obj.epoch, room: obj.room, data: obj.data });
  }

  connect() {
    this.connects++;
    const first = this.connects === 1;
    const { last, epoch } = this.rx;
    if (this.kind === 'sse') return this.connectSse(first ? null : epoch ? `${epoch}:${last}` : `${last}`);
    if (this.kind === 'ws') return this.connectWs(first ? '' : `?since=${last}${epoch ? `&epoch=${epoch}` : ''}`);
    return this.connectPoll();
  }

  connectSse(lastEventId) {
    let over = false;
    const end = (abrupt) => {
      if (!over) {
        over = true;
        this.ended(abrupt);
      }
    };
    return new Promise((resolve, reject) => {
      const headers = { Accept: 'text/event-stream' };
      if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
      const req = http.get(`${this.base}/rooms/${this.room}/events`, { headers, agent: false }, (res) => {
        if (res.statusCode !== 200) {
          this.errors.push(`SSE: status ${res.statusCode} for Last-Event-ID ${lastEventId}`);
          res.resume();
        }
        const stream = new SseStream();
        let seen = 0;
        stream.on('update', () => {
          for (; seen < stream.events.length; seen++) {
            const e = stream.events[seen];
            let data;
            try {
              data = JSON.parse(e.data);
            } catch {
              this.errors.push(`SSE: unparsable data ${JSON.stringify(e)}`);
              continue;
            }
            if (e.type === 'gap') {
              if (e.id !== null) this.errors.push(`SSE: a gap event with an id line: ${JSON.stringify(e)}`);
              this.rx.gap(data);
              continue;
            }
            const id = parseEventId(e.id);
            if (!id || e.type !== null) {
              this.errors.push(`SSE: an event whose id is not EPOCH:N: ${JSON.stringify(e)}`);
              continue;
            }
            this.rx.message({ id: id.n, epoch: id.epoch, room: this.room, data });
          }
        });
        res.setEncoding('utf8');
        res.on('data', (d) => stream.feed(d));
        res.on('error', () => {});
        res.on('close', () => end(!res.complete));
        this.connected = true;
        resolve();
      });
      req.on('error', (err) => {
        if (req.res) return; // the response's close tells
        if (this.connects === 1) reject(err);
        else end(true); // no response at all
      });
      this.current = { close: () => req.destroy() };
    });
  }

  connectWs(query) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${this.base.replace(/^http/, 'ws')}/rooms/${this.room}/ws${query}`);
      let open = false;
      ws.on('open', () => {
        open = true;
        this.connected = true;
        resolve();
      });
      ws.on('message', (data, isBinary) => {
        let obj = null;
        try {
          obj = isBinary ? null : JSON.parse(data.toString());
        } catch {
          // reported below
        }
        this.onData(obj, 'WebSocket');
      });
      ws.on('unexpected-response', (req, res) => {
        this.errors.push(`WebSocket: HTTP ${res.statusCode} for ${query}`);
        req.destroy();
      });
      ws.on('error', (err) => {
        if (!open && this.connects === 1) reject(err);
      });
      ws.on('close', (code) => {
        // 1006: no close frame (the connection was reset).
        if (open || this.connects > 1) this.ended(code === 1006);
        if (!open) reject(new Error(`WebSocket ${query}: closed before open (${code})`));
      });
      this.current = { close: () => ws.terminate() };
    });
  }

  // Long poll: one loop of polls, each from the cursor (since=0 at first),
  // each on a fresh connection. The loop ends with an error or a non-200
  // answer (and starts again after 20 ms with `reconnect`).
  connectPoll() {
    let stop = false;
    let req = null;
    this.current = {
      close: () => {
        stop = true;
        req?.destroy();
      },
    };
    const once = () =>
      new Promise((resolve, reject) => {
        const { last, epoch } = this.rx;
        const q = `since=${last}${epoch ? `&epoch=${epoch}` : ''}`;
        req = http.get(`${this.base}/rooms/${this.room}/poll?${q}`, { agent: false, timeout: 30_000 }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('error', () => {});
          res.on('close', () => {
            if (!res.complete) return reject(new Error('reset mid-answer'));
            resolve({ status: res.statusCode, text, q });
          });
        });
        req.on('timeout', () => req.destroy(new Error('poll not answered in 30 s')));
        req.on('error', reject);
      });
    this.connected = true;
    (async () => {
      for (;;) {
        let res;
        try {
          res = await once();
        } catch {
          if (!stop) this.ended(true);
          return;
        }
        if (res.status !== 200) {
          this.errors.push(`poll ${res.q}: status ${res.status} ${res.text}`);
          this.ended(false);
          return;
        }
        let body;
        try {
          body = JSON.parse(res.text);
        } catch {
          this.errors.push(`poll ${res.q}: unparsable ${res.text}`);
          this.ended(false);
          return;
        }
        this.polls = (this.polls ?? 0) + 1;
        if (!Array.isArray(body.messages) || typeof body.last_id !== 'number' || !EPOCH_RE.test(body.epoch ?? '')) {
          this.errors.push(`poll ${res.q}: bad answer ${res.text.slice(0, 300)}`);
        }
        if (body.gap !== undefined) {
          if (Object.keys(body)[0] !== 'gap') this.errors.push(`poll ${res.q}: "gap" is not the first field: ${res.text.slice(0, 300)}`);
          this.rx.gap(body.gap);
        }
        for (const m of body.messages ?? []) this.onData(m, `poll ${res.q}`);
        // The next poll goes on from the answer: its last_id and epoch.
        if (typeof body.last_id === 'number') this.rx.last = body.last_id;
        if (typeof body.epoch === 'string') this.rx.epoch = body.epoch;
        if (stop || this.stopped) return;
      }
    })();
    return Promise.resolve();
  }

  // Ends the live connection (not counted as an end) and any reconnecting.
  stop() {
    this.stopped = true;
    this.current?.close();
  }
}

// ---------------------------------------------------------------- checks

// Asserts that msgs are exactly ids 1..n in order, of one epoch, with the
// published data. Reports the first difference only (the arrays are long).
function assertAllOnceInOrder(label, msgs, n, epoch) {
  const firstBad = msgs.findIndex((m, i) => m.id !== i + 1);
  assert.ok(
    firstBad < 0,
    `${label}: message #${firstBad + 1} has id ${msgs[firstBad]?.id} (ids around it: ${msgs
      .slice(Math.max(0, firstBad - 3), firstBad + 4)
      .map((m) => m.id)
      .join(',')})`,
  );
  assert.equal(msgs.length, n, `${label}: ${msgs.length} messages, expected ${n} (last id ${msgs.at(-1)?.id})`);
  const otherEpoch = msgs.find((m) => m.epoch !== epoch);
  assert.equal(otherEpoch, undefined, `${label}: a message of another epoch than ${epoch}: ${JSON.stringify(otherEpoch)}`);
  const badData = msgs.find((m) => JSON.stringify(m.data) !== JSON.stringify(payload(m.id)));
  assert.equal(badData, undefined, `${label}: data not as published: ${JSON.stringify(badData)}`);
}

// The log of a subscriber as a compact list: ids, and "gap" for gap signals.
const shape = (rx) => rx.log.map((e) => (e.gap ? 'gap' : e.id));
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function epochOf(base, room) {
  const res = await roomInfo(base, room);
  assert.equal(res.status, 200, `room info ${room}: ${res.text}`);
  assert.match(res.json.epoch ?? '', EPOCH_RE, `room info ${room}: ${res.text}`);
  return res.json.epoch;
}

function waitCounted(base, room, kind, n = 1) {
  return waitFor(async () => (await subscriberCounts(base, room))?.[KIND[kind]] === n, {
    timeout: 5000,
    message: `room info: ${n} ${KIND[kind]} subscriber(s) of ${room}`,
  });
}

// ----------------------------------------------------------------- tests

for (const kind of ['sse', 'poll', 'ws']) {
  test(`${LABEL[kind]}: ${N} messages exactly once, in order, across ${CUTS} abrupt cuts`, { timeout: 60_000 }, async (t) => {
    const srv = await startFor(t, { history: { size: N + 1000 }, limits: { poll_timeout_s: 10 } });
    const proxy = await startProxy(srv.port);
    t.after(() => proxy.close());
    const sub = new Subscriber(kind, proxy.url, ROOM, { reconnect: true });
    t.after(() => sub.stop());

    await withTimeout(sub.connect(), 5000, `${LABEL[kind]}: first connection`);
    await waitCounted(srv.url, ROOM, kind);

    let publishing = true;
    const t0 = Date.now();
    const [pub, cuts] = await Promise.all([
      publishSteady(srv.url, ROOM, N, PERIOD_MS, payload).finally(() => (publishing = false)),
      cutAtRandom(proxy, LIVE[kind], { count: CUTS, fromMs: 300, toMs: N * PERIOD_MS - 300, stopped: () => !publishing }),
    ]);
    assert.deepEqual(pub.bad, [], 'publisher: every POST answered 201 with the next id');
    await sub.rx.until((rx) => rx.last >= N && rx.epoch !== null, 15_000, `${LABEL[kind]}: all ${N} messages after the last cut`);
    await sleep(300); // a duplicate would show up now
    sub.stop();
    const ms = Date.now() - t0;
    t.diagnostic(
      `${LABEL[kind]}: published in ${pub.ms} ms; cuts at ${cuts.map((c) => `${c.atMs} ms (${c.cut})`).join(', ')}; ` +
        `${sub.connects} connections, ${sub.abrupt} abrupt ends, ${sub.clean} clean ends; all in ${ms} ms`,
    );

    assert.equal(cuts.length, CUTS, `${CUTS} cuts while publishing: ${JSON.stringify(cuts)}`);
    cuts.forEach((c, k) => assert.ok(c.cut >= 1, `cut ${k + 1} ended no connection`));
    assert.ok(sub.abrupt >= CUTS, `the subscriber saw ${sub.abrupt} abrupt ends, expected at least ${CUTS}`);
    assert.ok(sub.connects >= CUTS + 1, `${sub.connects} connections: the subscriber did not reconnect after each cut`);
    assert.deepEqual(sub.errors, [], 'nothing unexpected on the wire');
    assert.deepEqual(sub.rx.gaps, [], 'no gap signal: history keeps every message');
    const epoch = await epochOf(srv.url, ROOM);
    assertAllOnceInOrder(LABEL[kind], sub.rx.messages, N, epoch);
    assert.ok(ms < 40_000, `the run took ${ms} ms`);
  });
}

for (const kind of ['sse', 'poll', 'ws']) {
  test(`${LABEL[kind]}: a resume older than history gets a gap signal ("expired"), then the rest`, { timeout: 30_000 }, async (t) => {
    const HISTORY = 5;
    const srv = await startFor(t, { history: { size: HISTORY }, limits: { poll_timeout_s: 10 } });
    const proxy = await startProxy(srv.port);
    t.after(() => proxy.close());
    const room = 'gap';
    const sub = new Subscriber(kind, proxy.url, room);
    t.after(() => sub.stop());

    await withTimeout(sub.connect(), 5000, 'first connection');
    await waitCounted(srv.url, room, kind);
    for (let i = 1; i <= 3; i++) assert.equal(await publish(srv.url, room, payload(i)), i);
    await sub.rx.until((rx) => rx.messages.length >= 3, 5000, 'messages 1..3');
    const epoch = await epochOf(srv.url, room);

    // Cut, and publish while it is away: more than history keeps.
    assert.ok((await proxy.cutWhen(LIVE[kind], 3000, 'live connection')) >= 1, 'a connection was cut');
    await waitFor(() => !sub.connected, { timeout: 5000, message: 'the subscriber saw the cut' });
    for (let i = 4; i <= 20; i++) assert.equal(await publish(srv.url, room, payload(i)), i);

    await withTimeout(sub.connect(), 5000, 'reconnect');
    await sub.rx.until((rx) => rx.last >= 20, 5000, 'the rest after the gap');
    assert.equal(await publish(srv.url, room, payload(21)), 21);
    await sub.rx.until((rx) => rx.last >= 21, 5000, 'live message 21');
    await sleep(200);

    assert.ok(sub.abrupt >= 1, 'the cut was not a clean close');
    assert.deepEqual(sub.errors, []);
    assert.deepEqual(shape(sub.rx), [1, 2, 3, 'gap', ...range(16, 21)], 'the gap signal, before the kept messages');
    assert.deepEqual(sub.rx.gaps[0], { room, epoch, reason: 'expired', since: 3, resumed_from: 16 });
    sub.rx.messages.forEach((m) => assert.deepEqual(m.data, payload(m.id), `data of ${m.id}`));
    assert.ok(sub.rx.messages.every((m) => m.epoch === epoch), 'one epoch');
  });
}

for (const kind of ['sse', 'poll', 'ws']) {
  test(`${LABEL[kind]}: resuming with the old EPOCH:N after a gateway restart gets a gap signal ("epoch")`, { timeout: 40_000 }, async (t) => {
    const port = await freePort();
    const config = { listen: `127.0.0.1:${port}`, history: { size: 100 }, limits: { poll_timeout_s: 10 } };
    const room = 'restart';
    let srv = await startCrier(config);
    t.after(async () => {
      if (srv) await stopClean(srv);
    });
    const proxy = await startProxy(port);
    t.after(() => proxy.close());
    const sub = new Subscriber(kind, proxy.url, room);
    t.after(() => sub.stop());

    await withTimeout(sub.connect(), 5000, 'first connection');
    await waitCounted(srv.url, room, kind);
    for (let i = 1; i <= 5; i++) assert.equal(await publish(srv.url, room, payload(i)), i);
    await sub.rx.until((rx) => rx.messages.length >= 5, 5000, 'messages 1..5');
    const oldEpoch = await epochOf(srv.url, room);
    assert.equal(sub.rx.epoch, oldEpoch);

    // Stop the gateway; a new one on the same port knows nothing of it.
    const s = srv;
    srv = null;
    await stopClean(s);
    await waitFor(() => !sub.connected, { timeout: 5000, message: 'the subscriber saw the gateway go' });
    srv = await startCrier(config);
    for (let i = 1; i <= 3; i++) assert.equal(await publish(srv.url, room, payload(100 + i)), i);
    const newEpoch = await epochOf(srv.url, room);
    assert.notEqual(newEpoch, oldEpoch, 'a new gateway: a new epoch');

    // Resume with the old cursor, oldEpoch:5.
    assert.equal(sub.rx.last, 5);
    await withTimeout(sub.connect(), 5000, 'reconnect to the new gateway');
    await sub.rx.until((rx) => rx.epoch === newEpoch && rx.last >= 3, 5000, 'the new epoch\'s messages');
    assert.equal(await publish(srv.url, room, payload(104)), 4);
    await sub.rx.until((rx) => rx.epoch === newEpoch && rx.last >= 4, 5000, 'live message 4');
    await sleep(200);

    assert.deepEqual(sub.errors, []);
    assert.deepEqual(shape(sub.rx), [1, 2, 3, 4, 5, 'gap', 1, 2, 3, 4], 'the gap signal, then everything of the new epoch');
    assert.deepEqual(sub.rx.gaps[0], { room, epoch: newEpoch, reason: 'epoch', since: 5, resumed_from: 1 });
    const msgs = sub.rx.messages;
    assert.ok(msgs.slice(0, 5).every((m, i) => m.epoch === oldEpoch && m.data.n === i + 1), 'before: the old epoch');
    assert.ok(msgs.slice(5).every((m, i) => m.epoch === newEpoch && m.data.n === 101 + i), 'after: the new epoch, its data');
  });
}

test('long poll: after a gap with nothing to replay, polling on from the answer gets no second gap', { timeout: 30_000 }, async (t) => {
  // A client follows each answer's last_id and epoch. After a gap signal
  // that replayed nothing, that cursor must be where the room stands now,
  // or every following poll signals the same gap again, at once.
  const srv = await startFor(t, { history: { size: 100, ttl_s: 1 }, limits: { poll_timeout_s: 1 } });

  // (a) History expired while the room stayed (a WebSocket member keeps it).
  const member = new Subscriber('ws', srv.url, 'kept');
  t.after(() => member.stop());
  await member.connect();
  for (let i = 1; i <= 3; i++) await publish(srv.url, 'kept', i);
  const epoch = await epochOf(srv.url, 'kept');
  // ttl_s 1: messages 1..3 expire. Until they all have, the poll answers
  // at once with what is left (not held: there are messages after 1).
  const first = await waitFor(
    async () => {
      const res = await request(`${srv.url}/rooms/kept/poll?since=1&epoch=${epoch}`);
      return (res.status !== 200 || (res.json?.gap && res.json.messages?.length === 0)) && res;
    },
    { timeout: 10_000, interval: 100, message: 'messages 1..3 expired (ttl_s 1): a poll from 1 gets a gap and nothing' },
  );
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(first.json.gap, { room: 'kept', epoch, reason: 'expired', since: 1, resumed_from: 4 }, first.text);
  assert.deepEqual(first.json.messages, []);
  const next = await request(`${srv.url}/rooms/kept/poll?since=${first.json.last_id}&epoch=${first.json.epoch}`);
  assert.equal(next.status, 200, next.text);
  assert.equal(next.json.gap, undefined, `after ${first.text}, the next poll: ${next.text}`);

  // (b) Another epoch, the room empty (a restart before anything new).
  const other = epoch[0] === 'A' ? `B${epoch.slice(1)}` : `A${epoch.slice(1)}`;
  const a = await request(`${srv.url}/rooms/fresh/poll?since=7&epoch=${other}`);
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.gap?.reason, 'epoch', a.text);
  const b = await request(`${srv.url}/rooms/fresh/poll?since=${a.json.last_id}&epoch=${a.json.epoch}`);
  assert.equal(b.status, 200, b.text);
  assert.equal(b.json.gap, undefined, `after ${a.text}, the next poll: ${b.text}`);
});

test('a malformed cursor is refused on every transport', { timeout: 30_000 }, async (t) => {
  const srv = await startFor(t, { limits: { poll_timeout_s: 1 } });
  const room = 'bad-cursor';
  await publish(srv.url, room, 1);
  const epoch = await epochOf(srv.url, room);
  const long = 'A'.repeat(20);

  for (const v of ['x', '-1', '1.5', `${epoch}:`, `${epoch}:x`, 'bad!:1', `${long}:1`, `${epoch}:1:2`]) {
    const h = await request(`${srv.url}/rooms/${room}/events`, { headers: { 'Last-Event-ID': v }, timeout: 3000 });
    assert.equal(h.status, 400, `SSE Last-Event-ID: ${v} -> ${h.status} ${h.text}`);
    const q = await request(`${srv.url}/rooms/${room}/events?last_event_id=${encodeURIComponent(v)}`, { timeout: 3000 });
    assert.equal(q.status, 400, `SSE ?last_event_id=${v} -> ${q.status} ${q.text}`);
  }
  for (const q of ['since=-1', 'since=x', 'since=1.5', `since=${epoch}:1`, 'since=1&epoch=bad!', 'since=1&epoch=', `since=1&epoch=${long}`]) {
    const r = await request(`${srv.url}/rooms/${room}/poll?${q}`, { timeout: 3000 });
    assert.equal(r.status, 400, `poll ?${q} -> ${r.status} ${r.text}`);
  }
  for (const q of ['since=-1', 'since=x', `since=${epoch}:1`, 'since=1&epoch=bad!', 'since=1&epoch=', `since=1&epoch=${long}`, `since=${'0'.repeat(40)}1`]) {
    const r = await wsRefusal(`${srv.wsUrl}/rooms/${room}/ws?${q}`).catch((err) => ({ status: `accepted (${err.message})` }));
    assert.ok(r.status >= 400 && r.status < 500, `WebSocket ?${q}: ${r.status}`);
  }
});
