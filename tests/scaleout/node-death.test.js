// kill -9 of one of three nodes (one Redis, deploy/nginx.conf round robin in
// front, no sticky sessions) while 400 messages stream to a room: official
// @microsoft/signalr clients on each transport (withAutomaticReconnect, and
// the hub option rejoin_query: the app passes its rooms' cursors in the
// reconnect's URL, README "Gaps with the official client"), plain clients
// (SSE with Last-Event-ID, long polls with since/epoch, WebSocket with
// since/epoch, each reconnecting from its cursor), and web/crier.js itself
// in headless Chromium, loaded through nginx, forced onto each of its
// transports, one of each placed on the node killed and one on a live node
// (its defaults: reconnect with backoff, rejoin with JoinRoom(room, since,
// epoch)). Every client is streaming again within 5 s of the kill, and gets
// every message or is told of the gap (CrierGap, a gap event or field).
// A second kill, with a history too short for the outage, shows crier.js's
// gap event: one, for exactly what it missed, then streaming in order.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as signalR from '@microsoft/signalr';

import { launchBrowser, openPage, WEB_ROOT } from '../browser/helpers.js';
import { request } from '../lib/http.js';
import { publishSteady } from '../lib/publish.js';
import { unhandledRejections } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { openWs } from '../lib/ws.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { killNode, startCluster, startNginx } from './helpers.js';

const N = 400;
const PERIOD_MS = 20; // 8 s of publishing
const KILL_AT_MS = 2000;
const ROOM = 'death';
const T = signalR.HttpTransportType;
const CONFIG = {
  history: { size: 2000 },
  web: { root: WEB_ROOT }, // crier.js for the browser pages
  hubs: {
    chat: {
      path: '/hubs/chat',
      rejoin_query: true,
      methods: { JoinRoom: { action: 'join', args: 1 }, LeaveRoom: { action: 'leave', args: 1 } },
    },
  },
};

// The README's app code: the hub protocol notes each room message's
// position (crier-room, crier-epoch, crier-id headers).
class CursorProtocol extends signalR.JsonHubProtocol {
  constructor(positions) {
    super();
    this.positions = positions;
  }

  parseMessages(input, logger) {
    const messages = super.parseMessages(input, logger);
    for (const m of messages) {
      const h = m.headers;
      if (h && h['crier-room'] && h['crier-epoch'] && !h['crier-room'].startsWith('~'))
        this.positions.set(h['crier-room'], { epoch: h['crier-epoch'], id: Number(h['crier-id']) });
    }
    return messages;
  }
}

// A client's record: the message numbers received and when, gaps told.
function tally(label) {
  return {
    label,
    got: [],
    at: [],
    gaps: [],
    logs: [],
    reconnects: 0,
    add(n) {
      this.got.push(n);
      this.at.push(Date.now());
    },
  };
}

async function officialClient(t, url, transport, label) {
  const r = tally(label);
  const positions = new Map();
  const hubUrl = `${url}/hubs/chat`;
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl, { transport })
    .withHubProtocol(new CursorProtocol(positions))
    .withAutomaticReconnect([0, 200, 500, 1000, 1000, 1000])
    .configureLogging({ log: (level, message) => level >= signalR.LogLevel.Information && r.logs.push(`${Date.now()} ${message}`) })
    .build();
  conn.on('ReceiveMessage', (...args) => r.add(args.at(-1)?.n));
  conn.on('CrierGap', (gap) => r.gaps.push(gap));
  conn.onreconnecting(() => {
    r.reconnects++;
    const rooms = [...positions].map(([room, p]) => `${room}:${p.epoch}:${p.id}`).join(',');
    conn.baseUrl = rooms ? `${hubUrl}?crier_rooms=${encodeURIComponent(rooms)}` : hubUrl;
  });
  await withTimeout(conn.start(), 5000, `${label}: start()`);
  const joined = await withTimeout(conn.invoke('JoinRoom', ROOM), 3000, 'JoinRoom');
  assert.equal(joined?.room, ROOM);
  if (!positions.has(ROOM)) positions.set(ROOM, { epoch: joined.epoch, id: joined.last_id });
  r.stop = () => withTimeout(conn.stop(), 5000, `${label}: stop()`);
  r.state = () => conn.state;
  t.after(() => r.stop().catch(() => {}));
  return r;
}

// Plain SSE as a browser's EventSource (and crier.js) does it: reconnects
// with Last-Event-ID.
function plainSse(url, label) {
  const r = tally(label);
  let stopped = false;
  let lastId = null;
  let current = null;
  r.stop = () => {
    stopped = true;
    current?.close();
  };
  r.ready = (async () => {
    while (!stopped) {
      try {
        current = await sseHttp(`${url}/rooms/${ROOM}/events`, { headers: lastId ? { 'Last-Event-ID': lastId } : {} });
        let seen = 0;
        while (!current.ended && !stopped) {
          for (; seen < current.events.length; seen++) {
            const e = current.events[seen];
            if (e.type === 'gap') r.gaps.push(e.data);
            else if (e.data) r.add(JSON.parse(e.data).n);
            if (e.id) lastId = e.id;
          }
          await sleep(20);
        }
      } catch {
        // the node was gone: try again
      }
      if (!stopped) {
        r.reconnects++;
        await sleep(100);
      }
    }
  })();
  return r;
}

// Plain long polls from since/epoch, as crier.js's poll fallback and curl.
function plainPoll(url, label) {
  const r = tally(label);
  let stopped = false;
  const ac = new AbortController();
  r.stop = () => {
    stopped = true;
    ac.abort();
  };
  r.ready = (async () => {
    let since = null;
    let epoch = null;
    while (!stopped) {
      const q = since === null ? '' : `?since=${since}${epoch ? `&epoch=${epoch}` : ''}`;
      try {
        const res = await request(`${url}/rooms/${ROOM}/poll${q}`, { timeout: 40_000, signal: ac.signal });
        if (res.status !== 200) throw new Error(String(res.status));
        if (res.json.gap) r.gaps.push(res.json.gap);
        for (const m of res.json.messages) r.add(m.data.n);
        since = res.json.messages.length ? res.json.messages.at(-1).id : res.json.last_id;
        epoch = res.json.epoch ?? epoch;
      } catch {
        if (!stopped) {
          r.reconnects++;
          await sleep(100);
        }
      }
    }
  })();
  return r;
}

// A plain WebSocket, reconnecting with since/epoch.
function plainWs(wsUrl, label) {
  const r = tally(label);
  let stopped = false;
  let current = null;
  r.stop = () => {
    stopped = true;
    current?.close();
  };
  r.ready = (async () => {
    let since = null;
    let epoch = null;
    while (!stopped) {
      try {
        const q = since === null ? '' : `?since=${since}&epoch=${epoch}`;
        current = await openWs(`${wsUrl}/rooms/${ROOM}/ws${q}`);
        let seen = 0;
        while (!current.closeInfo && !stopped) {
          for (; seen < current.messages.length; seen++) {
            const m = current.messages[seen];
            if (m?.gap) r.gaps.push(m.gap);
            else if (m) {
              r.add(m.data.n);
              since = m.id;
              epoch = m.epoch;
            }
          }
          await sleep(20);
        }
      } catch {
        // the node was gone: try again
      }
      if (!stopped) {
        r.reconnects++;
        await sleep(100);
      }
    }
  })();
  return r;
}

// Members of room on node n (every transport).
async function membersOn(n, room) {
  const s = (await request(`${n.url}/rooms/${room}`)).json?.subscribers ?? {};
  return (s.websocket ?? 0) + (s.sse ?? 0) + (s.long_polling ?? 0);
}

// web/crier.js in a Chromium page of its own, loaded through nginx, forced
// onto one transport, otherwise with its defaults (reconnect with backoff,
// rejoin with JoinRoom(room, since, epoch)). Its connection is placed on a
// node that `want` accepts: it joins a probe room, and starts again (a new
// negotiate, shifted along nginx's round robin) until the probe shows it
// there; then it joins ROOM. snapshot() gives what it received (n, the
// room id, when), its gap events, states and log.
async function crierJsClient(browser, contexts, nginx, nodes, transport, want, label) {
  const page = await openPage(browser, `${nginx}/index.html`, { contexts });
  await page.evaluate(async (transport) => {
    await import('/crier.js');
    const c = (window.__c = { got: [], ids: [], at: [], gaps: [], states: [], logs: [] });
    const conn = (window.__conn = globalThis.crier.connect('/hubs/chat', {
      transports: [transport],
      logger: (level, msg) => level !== 'debug' && c.logs.push(`${Date.now()} ${level} ${msg}`),
    }));
    conn.on('ReceiveMessage', (v) => {
      c.got.push(v?.n);
      c.ids.push(conn.messageInfo?.id);
      c.at.push(Date.now());
    });
    conn.ongap((g) => c.gaps.push(g));
    conn.onstatechange((s) => c.states.push({ at: Date.now(), s }));
  }, transport);
  for (let k = 0; k < 30; k++) {
    const probe = `probe${k}-${label.replace(/[^a-z]+/gi, '-')}`;
    await page.evaluate(async (probe) => {
      await window.__conn.start();
      await window.__conn.invoke('JoinRoom', probe);
    }, probe);
    let where = [];
    await waitFor(async () => (where = await Promise.all(nodes.map((n) => membersOn(n, probe)))).some((x) => x > 0), {
      timeout: 5000,
      message: `${label}: the probe room's member on some node`,
    });
    const node = nodes[where.findIndex((x) => x > 0)];
    if (want(node)) {
      const joined = await page.evaluate(async ({ probe, room }) => {
        await window.__conn.invoke('LeaveRoom', probe);
        return window.__conn.invoke('JoinRoom', room);
      }, { probe, room: ROOM });
      assert.equal(joined?.room, ROOM);
      return {
        label,
        node,
        snapshot: () => page.evaluate(() => ({ ...window.__c, state: window.__conn.state, transport: window.__conn.transport })),
      };
    }
    await page.evaluate(() => window.__conn.stop());
    // A start makes the same number of requests each time: one more
    // request shifts the round robin, so that the next start lands elsewhere.
    await request(`${nginx}/healthz`);
  }
  throw new Error(`${label}: 30 starts through nginx, none on the node wanted`);
}

// The checks of a crier.js client c (snapshot s) after a kill -9 of victim
// at killedAt: every id once and in order, or a gap event for exactly what
// is missing; on the node killed, it reconnected and got a message again
// within 5 s of the kill; on a live node, every message and no gap.
function checkCrierJs(c, s, victim, killedAt) {
  const detail = `\n  ${s.logs.join('\n  ')}`;
  // Every id once, in order (the room's ids are the message numbers: one
  // publisher, one message at a time).
  s.got.forEach((n, k) => assert.equal(s.ids[k], n, `${c.label}: message ${n} has room id ${s.ids[k]}`));
  for (let k = 1; k < s.got.length; k++) assert.ok(s.got[k] > s.got[k - 1], `${c.label}: in order, once (${s.got[k - 1]} then ${s.got[k]})${detail}`);
  // What is missing is exactly what a gap event told (since < id <
  // resumed_from; resumed_from null: from since on).
  const have = new Set(s.got);
  const told = (m) => s.gaps.some((g) => g.room === ROOM && g.since < m && (g.resumed_from == null || m < g.resumed_from));
  const untold = [];
  for (let m = 1; m <= N; m++) if (!have.has(m) && !told(m)) untold.push(m);
  assert.deepEqual(untold, [], `${c.label}: every message, or a gap event for what is missing${detail}`);
  for (const g of s.gaps) {
    const missing = (m) => m > g.since && m < (g.resumed_from ?? g.since + 2) && !have.has(m);
    assert.ok(Array.from({ length: N }, (_, k) => k + 1).some(missing), `${c.label}: the gap ${JSON.stringify(g)} is of messages missing`);
  }
  // Streaming again within 5 s: from the kill to the first message after
  // it (on the node killed: the first after it noticed and reconnected,
  // not one that was on its way as the node died).
  const lostAt = s.states.find((x) => x.s === 'reconnecting' && x.at >= killedAt)?.at;
  if (c.node === victim) assert.ok(lostAt, `${c.label}: it reconnected after the kill${detail}`);
  else assert.ok(have.size === N && !s.gaps.length, `${c.label}: on a live node, every message and no gap${detail}`);
  const next = s.at.find((x) => x > (c.node === victim ? lostAt : killedAt));
  assert.ok(next !== undefined && next - killedAt <= 5000, `${c.label}: streaming again within 5 s of the kill (next message ${next - killedAt} ms after)${detail}`);
  assert.equal(s.state, 'connected', `${c.label}: connected`);
  assert.equal(s.transport, c.label.split(' ')[1], `${c.label}: still on its transport`);
}

// One line on crier.js client c (snapshot s) for the test's diagnostics.
function crierJsReport(c, s, killedAt) {
  const reconnects = s.states.filter((x) => x.s === 'reconnecting').length;
  const lostAt = s.states.find((x) => x.s === 'reconnecting' && x.at >= killedAt)?.at;
  const next = s.at.find((x) => x > (lostAt ?? killedAt));
  return `${c.label} (${c.node.name}): ${s.got.length} received, ${N - new Set(s.got).size} lost, ${s.gaps.length} gaps told ${JSON.stringify(s.gaps).slice(0, 300)}, ${reconnects} reconnects, ${lostAt ? `lost ${lostAt - killedAt} ms and ` : ''}next message ${next - killedAt} ms after the kill, state ${s.state}${s.logs.length ? ` (${s.logs[0].replace(/^\d+ /, '')})` : ''}`;
}

test(`kill -9 of a node while ${N} messages stream: every client streams again within 5 s, and gets every message or is told of the gap`, { timeout: 120_000 }, async (t) => {
  const { nodes } = await startCluster(t, 3, CONFIG);
  const nginx = await startNginx(t, nodes.map((n) => n.port));
  const wsBase = nginx.replace(/^http/, 'ws');
  const before = unhandledRejections.length;

  const official = [];
  for (const [name, transport] of [
    ['WebSockets', T.WebSockets],
    ['ServerSentEvents', T.ServerSentEvents],
    ['LongPolling', T.LongPolling],
  ]) {
    for (let k = 0; k < 3; k++) official.push(await officialClient(t, nginx, transport, `official ${name} #${k}`));
  }
  const plain = [];
  for (let k = 0; k < 2; k++) plain.push(plainSse(nginx, `plain SSE #${k}`), plainPoll(nginx, `plain poll #${k}`), plainWs(wsBase, `plain WS #${k}`));
  t.after(() => plain.forEach((p) => p.stop()));

  // Everyone is in the room: 9 official and 6 plain members over the nodes.
  const counts = async () => Promise.all(nodes.map((n) => membersOn(n, ROOM)));
  await waitFor(async () => (await counts()).reduce((a, b) => a + b, 0) >= 15, { timeout: 10_000, message: 'every client in the room' });
  // The node to kill: the one with the most members; publish on another.
  const victim = nodes[(await counts()).reduce((best, x, i, a) => (x > a[best] ? i : best), 0)];
  const publisher = nodes.find((n) => n !== victim);

  // crier.js on each of its transports: one on the node to kill, one on a
  // live node (its polls and posts still cross the node killed).
  const browser = await launchBrowser();
  const contexts = [];
  const closeBrowser = async () => {
    for (const c of contexts.splice(0)) await withTimeout(c.close(), 5000, 'closing a browser context').catch(() => {});
    await withTimeout(browser.close(), 10_000, 'closing Chromium').catch(() => {});
  };
  t.after(closeBrowser);
  const crierJs = [];
  for (const transport of ['websocket', 'sse', 'longpolling']) {
    crierJs.push(await crierJsClient(browser, contexts, nginx, nodes, transport, (n) => n === victim, `crier.js ${transport} on the node killed`));
    crierJs.push(await crierJsClient(browser, contexts, nginx, nodes, transport, (n) => n !== victim, `crier.js ${transport} on a live node`));
  }
  await waitFor(async () => (await counts()).reduce((a, b) => a + b, 0) >= 15 + crierJs.length, { timeout: 10_000, message: 'every client in the room' });
  const perNode = await counts();
  t.diagnostic(`members per node ${perNode.join('/')}: killing ${victim.name}; ${crierJs.map((c) => `${c.label}: ${c.node.name}`).join(', ')}`);

  let killedAt = 0;
  const killer = (async () => {
    await sleep(KILL_AT_MS);
    killedAt = Date.now();
    await killNode(victim);
  })();
  const pub = await publishSteady(publisher.url, ROOM, N, PERIOD_MS, (i) => ({ n: i }));
  await killer;
  assert.deepEqual(pub.bad, [], 'the publisher (on a live node): every message 201');

  const everyone = [...official, ...plain];
  // The plain clients get everything, or a gap.
  await waitFor(() => plain.every((p) => p.got.includes(N) || p.gaps.length), { timeout: 15_000, message: `the plain clients: ${plain.map((p) => `${p.label} ${p.got.length}`).join(', ')}` });
  // Every official client streams again: the last message arrives (sent 6 s
  // after the kill).
  await waitFor(() => official.every((o) => o.got.includes(N)), { timeout: 15_000, message: `the official clients: ${official.map((o) => `${o.label} ${o.got.length}${o.got.includes(N) ? '' : `\n  ${o.logs.join('\n  ')}`}`).join(', ')}` });
  // crier.js: the last message, or a gap told.
  let js = [];
  await waitFor(async () => (js = await Promise.all(crierJs.map((c) => c.snapshot()))).every((s) => s.got.includes(N) || s.gaps.length), {
    timeout: 15_000,
    message: 'the crier.js clients: the last message, or a gap',
  }).catch((e) => {
    e.message += `\n${crierJs.map((c, i) => `${c.label}: ${js[i]?.got.length} received, ${js[i]?.state}\n  ${js[i]?.logs.join('\n  ')}`).join('\n')}`;
    throw e;
  });
  await sleep(300);
  js = await Promise.all(crierJs.map((c) => c.snapshot()));
  await closeBrowser();

  const report = everyone.map((c) => {
    const lost = N - new Set(c.got).size;
    return `${c.label}: ${c.got.length} received, ${lost} lost, ${c.gaps.length} gaps told ${JSON.stringify(c.gaps).slice(0, 300)}, ${c.reconnects} reconnects`;
  });
  const jsReport = crierJs.map((c, i) => crierJsReport(c, js[i], killedAt));
  t.diagnostic([...report, ...jsReport].join('\n'));
  crierJs.forEach((c, i) => checkCrierJs(c, js[i], victim, killedAt));
  for (const c of everyone) {
    const next = c.at.find((x) => x > killedAt);
    assert.ok(next !== undefined && next - killedAt <= 5000, `${c.label}: streaming again within 5 s of the kill (next message ${next - killedAt} ms after)`);
    assert.equal(c.got.length, new Set(c.got).size, `${c.label}: no duplicates`);
  }
  for (const c of everyone) assert.ok(new Set(c.got).size === N || c.gaps.length, `${c.label}: every message, or a gap told`);
  for (const o of official) assert.equal(o.state(), signalR.HubConnectionState.Connected, `${o.label}: connected`);
  assert.deepEqual(unhandledRejections.slice(before), [], 'no uncaught exception in the official clients');
  assert.ok(official.some((o) => o.reconnects), 'some official client was on the node killed');
});

// The same with a history too short to cover the outage (2 messages): the
// crier.js clients on the node killed are told of the gap (CrierGap, their
// ongap), get nothing else missing, in order and once, and stream again
// within 5 s.
test('kill -9 of a node whose crier.js clients history no longer covers: a gap event for exactly what is missing, then streaming', { timeout: 120_000 }, async (t) => {
  const { nodes } = await startCluster(t, 3, { ...CONFIG, history: { size: 2 } });
  const nginx = await startNginx(t, nodes.map((n) => n.port));
  const [victim, publisher] = nodes;
  const browser = await launchBrowser();
  const contexts = [];
  const closeBrowser = async () => {
    for (const c of contexts.splice(0)) await withTimeout(c.close(), 5000, 'closing a browser context').catch(() => {});
    await withTimeout(browser.close(), 10_000, 'closing Chromium').catch(() => {});
  };
  t.after(closeBrowser);
  const crierJs = [];
  for (const transport of ['websocket', 'sse', 'longpolling'])
    crierJs.push(await crierJsClient(browser, contexts, nginx, nodes, transport, (n) => n === victim, `crier.js ${transport} on the node killed`));

  let killedAt = 0;
  const killer = (async () => {
    await sleep(KILL_AT_MS);
    killedAt = Date.now();
    await killNode(victim);
  })();
  const pub = await publishSteady(publisher.url, ROOM, N, PERIOD_MS, (i) => ({ n: i }));
  await killer;
  assert.deepEqual(pub.bad, [], 'the publisher (on a live node): every message 201');

  let js = [];
  await waitFor(async () => (js = await Promise.all(crierJs.map((c) => c.snapshot()))).every((s) => s.got.includes(N)), {
    timeout: 15_000,
    message: 'the crier.js clients: the last message',
  }).catch((e) => {
    e.message += `\n${crierJs.map((c, i) => `${c.label}: ${js[i]?.got.length} received, ${js[i]?.state}\n  ${js[i]?.logs.join('\n  ')}`).join('\n')}`;
    throw e;
  });
  await sleep(300);
  js = await Promise.all(crierJs.map((c) => c.snapshot()));
  await closeBrowser();
  t.diagnostic(crierJs.map((c, i) => crierJsReport(c, js[i], killedAt)).join('\n'));
  crierJs.forEach((c, i) => {
    checkCrierJs(c, js[i], victim, killedAt);
    // Its reconnect takes 250 ms at least (crier.js's backoff): more than
    // the 2 messages history keeps.
    assert.ok(js[i].gaps.length >= 1, `${c.label}: a gap event`);
  });
});
