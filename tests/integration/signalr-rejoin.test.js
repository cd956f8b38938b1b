// Gaps with the official client, no crier.js (README "Gaps with the
// official client"): with the hub option rejoin_query, a connection whose
// URL carries crier_rooms=ROOM:EPOCH:ID,... rejoins those rooms at its
// handshake, gets what history kept after each cursor, or first a
// CrierGap invocation when history no longer covers it.
//
// The official @microsoft/signalr client (withAutomaticReconnect) reaches
// crier through a TCP proxy in this file that can cut every connection and
// refuse new ones for a while (an outage). The app code is the README's: a
// JsonHubProtocol subclass notes the crier-room/crier-id/crier-epoch headers
// of each message, and onreconnecting sets connection.baseUrl to the hub URL
// with the cursor. On every transport: messages published during the
// outage all arrive, once, in order; with a small history a CrierGap comes
// first, then what is kept. Bad crier_rooms values get 400 at negotiate, on
// the transport's request and before a WebSocket upgrade.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { assertJsonError, publish, rawRequest, request } from '../lib/http.js';
import { mintToken, nowS } from '../lib/token.js';
import { startCrier, stopClean } from '../lib/server.js';
import { HANDSHAKE, parseRecords, signalR, T, TRANSPORT_CLASS, setup } from '../lib/signalr.js';
import { openWs } from '../lib/ws.js';
import { waitFor, withTimeout } from '../lib/util.js';

const HUB = { path: '/hubs/chat', rejoin_query: true, methods: { JoinRoom: { action: 'join', args: 1 }, LeaveRoom: { action: 'leave', args: 1 } } };
const hubs = (extra = {}) => ({ hubs: { chat: { ...HUB, ...extra } } });

// ------------------------------------------------------------------ proxy

// A TCP proxy to 127.0.0.1:port. cut() resets every connection through it;
// while closed, new connections are reset at once (the node is away).
async function startProxy(port) {
  const pairs = new Set();
  const requests = []; // the request lines that went through
  let closed = false;
  const server = net.createServer((client) => {
    if (closed) return client.resetAndDestroy();
    const upstream = net.connect(port, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    client.on('data', (d) => {
      const line = d.toString('latin1', 0, Math.min(d.length, 600)).split('\r\n')[0];
      if (/^(GET|POST|DELETE) /.test(line)) requests.push(line);
    });
    client.pipe(upstream);
    upstream.pipe(client);
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
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    outage() {
      closed = true;
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      pairs.clear();
    },
    restore() {
      closed = false;
    },
    close() {
      this.outage();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// ------------------------------------------------------- the app's code

// What the README shows: the official JSON protocol, noting where each room
// message stands (crier's headers) before the handlers run.
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

// hubUrl with the cursor of every room in positions.
function cursorUrl(hubUrl, positions) {
  const rooms = [...positions].map(([room, p]) => `${room}:${p.epoch}:${p.id}`).join(',');
  return rooms ? `${hubUrl}?crier_rooms=${encodeURIComponent(rooms)}` : hubUrl;
}

// An official client of the hub behind the proxy, with automatic reconnect
// that sets the cursor URL; records ReceiveMessage values and CrierGap
// arguments, and every URL its requests used.
async function officialClient(t, proxy, transport) {
  const positions = new Map();
  const hubUrl = `${proxy.url}/hubs/chat`;
  const logs = [];
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl, { transport })
    .withHubProtocol(new CursorProtocol(positions))
    .withAutomaticReconnect(Array(100).fill(200))
    .configureLogging({ log: (level, message) => level >= signalR.LogLevel.Information && logs.push(message) })
    .build();
  const got = [];
  const gaps = [];
  const events = [];
  conn.on('ReceiveMessage', (v) => {
    got.push(v);
    events.push(`m${v}`);
  });
  conn.on('CrierGap', (gap) => {
    gaps.push(gap);
    events.push('gap');
  });
  let reconnected = 0;
  conn.onreconnecting(() => {
    conn.baseUrl = cursorUrl(hubUrl, positions);
  });
  conn.onreconnected(() => reconnected++);
  t.after(() => withTimeout(conn.stop(), 5000, 'stop').catch(() => {}));
  await withTimeout(conn.start(), 5000, `start over ${TRANSPORT_CLASS[transport]}`);
  const joined = await withTimeout(conn.invoke('JoinRoom', 'lobby'), 3000, 'JoinRoom');
  if (!positions.has(joined.room)) positions.set(joined.room, { epoch: joined.epoch, id: joined.last_id });
  return { conn, got, gaps, events, logs, positions, reconnects: () => reconnected };
}

const publishAll = async (url, from, to) => {
  for (let i = from; i <= to; i++) assert.equal(await publish(url, 'lobby', i), i);
};
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ------------------------------------------------------------------ tests

for (const transport of [T.WebSockets, T.ServerSentEvents, T.LongPolling]) {
  const name = TRANSPORT_CLASS[transport];

  test(`${name}: messages published during an outage arrive after the reconnect, once and in order`, { timeout: 40_000 }, async (t) => {
    const ctx = await setup(t, { ...hubs(), signalr: { disconnect_timeout_s: 2 } });
    const proxy = await startProxy(ctx.srv.port);
    t.after(() => proxy.close());
    const c = await officialClient(t, proxy, transport);
    await publishAll(ctx.url, 1, 5);
    await waitFor(() => c.got.length >= 5, { message: `${name}: the first 5 (${JSON.stringify(c.got)})` });

    proxy.outage();
    await waitFor(() => c.conn.state === signalR.HubConnectionState.Reconnecting, { timeout: 15_000, message: `${name}: reconnecting` });
    await publishAll(ctx.url, 6, 30); // nobody of this client's hears these live
    const before = proxy.requests.length;
    proxy.restore();

    await waitFor(() => c.got.length >= 30, { timeout: 20_000, message: `${name}: all 30 (${JSON.stringify(c.got)}; ${c.logs.join(' | ')})` });
    await publishAll(ctx.url, 31, 32); // live again
    await waitFor(() => c.got.length >= 32, { message: `${name}: live after (${JSON.stringify(c.got)})` });
    assert.deepEqual(c.got, range(1, 32), `${name}: every message once, in order`);
    assert.deepEqual(c.gaps, [], `${name}: no gap`);
    await waitFor(() => c.reconnects() >= 1, { message: `${name}: onreconnected` });
    assert.equal(c.positions.get('lobby').id, 32);
    // The cursor went out on negotiate and on the transport's requests.
    const after = proxy.requests.slice(before);
    const cursor = `crier_rooms=${encodeURIComponent(`lobby:${c.positions.get('lobby').epoch}:5`)}`;
    assert.ok(after.some((l) => l.startsWith(`POST /hubs/chat/negotiate?${cursor}&negotiateVersion=1 `)), `negotiate: ${after.join(' | ')}`);
    assert.ok(after.some((l) => l.startsWith(`GET /hubs/chat?${cursor}&id=`)), `transport: ${after.join(' | ')}`);
  });

  test(`${name}: a CrierGap when history no longer covers the cursor, then what is kept`, { timeout: 40_000 }, async (t) => {
    const ctx = await setup(t, { ...hubs(), history: { size: 5 }, signalr: { disconnect_timeout_s: 2 } });
    const proxy = await startProxy(ctx.srv.port);
    t.after(() => proxy.close());
    const c = await officialClient(t, proxy, transport);
    await publishAll(ctx.url, 1, 3);
    await waitFor(() => c.got.length >= 3, { message: `${name}: the first 3 (${JSON.stringify(c.got)})` });
    const epoch = c.positions.get('lobby').epoch;

    proxy.outage();
    await waitFor(() => c.conn.state === signalR.HubConnectionState.Reconnecting, { timeout: 15_000, message: `${name}: reconnecting` });
    await publishAll(ctx.url, 4, 20); // history keeps 16..20
    proxy.restore();

    await waitFor(() => c.got.length >= 8, { timeout: 20_000, message: `${name}: the kept 5 (${JSON.stringify(c.got)}; ${c.logs.join(' | ')})` });
    assert.deepEqual(c.gaps, [{ room: 'lobby', epoch, reason: 'expired', since: 3, resumed_from: 16 }], `${name}: the gap`);
    assert.deepEqual(c.events, ['m1', 'm2', 'm3', 'gap', 'm16', 'm17', 'm18', 'm19', 'm20'], `${name}: the gap comes first`);
  });
}

test('bad crier_rooms: 400 with a JSON error at negotiate, on the transport request, before an upgrade', { timeout: 20_000 }, async (t) => {
  const ctx = await setup(t, hubs());
  const bad = [
    ['lobby', /ROOM:EPOCH:ID/],
    ['lobby:5', /ROOM:EPOCH:ID/],
    ['lobby:Ep0ch:x', /non-negative integer/],
    ['lobby::5', /needs the room's epoch/],
    ['lo~bby:Ep0ch:1', /room name/],
    ['lobby:Ep-ch:1', /epoch/],
    ['lobby:Ep0ch:1,lobby:Ep0ch:2', /named twice/],
    ['lobby:Ep0ch:1,', /ROOM:EPOCH:ID/],
    [Array.from({ length: 65 }, (_, i) => `r${i}::0`).join(','), /too many rooms/],
    [`${'r'.repeat(100)}::0,`.repeat(40) + 'x::0', /too long/],
  ];
  for (const [value, why] of bad) {
    const q = `crier_rooms=${encodeURIComponent(value)}`;
    const neg = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1&${q}`, { method: 'POST' });
    assertJsonError(neg, 400, `negotiate ${value.slice(0, 40)}`);
    assert.match(neg.json.error, why, `negotiate ${value.slice(0, 40)}: ${neg.text}`);
  }
  // The transport's request: a token negotiated without, then a first poll with a bad value.
  const ok = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST' });
  assert.equal(ok.status, 200);
  const poll = await request(`${ctx.url}/hubs/chat?id=${ok.json.connectionToken}&crier_rooms=lobby`);
  assertJsonError(poll, 400, 'first long poll');
  const sse = await request(`${ctx.url}/hubs/chat?id=${ok.json.connectionToken}&crier_rooms=lobby::7`, { headers: { Accept: 'text/event-stream' } });
  assertJsonError(sse, 400, 'event stream');
  // A WebSocket upgrade is refused before the upgrade.
  const raw = await rawRequest(
    ctx.srv.port,
    `GET /hubs/chat?id=${ok.json.connectionToken}&crier_rooms=lobby%3A%3A7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  assert.equal(raw.status, 400, raw.raw.slice(0, 300));
  assert.match(raw.raw, /needs the room's epoch/, raw.raw.slice(0, 400));
  // The connection is still good for a well-formed start.
  const fine = await request(`${ctx.url}/hubs/chat?id=${ok.json.connectionToken}`);
  assert.equal(fine.status, 200, fine.text);
});

test('a hub without rejoin_query ignores crier_rooms', async (t) => {
  const ctx = await setup(t, hubs({ rejoin_query: false }));
  const neg = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1&crier_rooms=nonsense`, { method: 'POST' });
  assert.equal(neg.status, 200, neg.text);
});

test('crier_rooms: ROOM::0 joins with what history holds; rooms the caller may not subscribe to are refused', { timeout: 20_000 }, async (t) => {
  const SECRET = 'rejoin-test-secret-0123456789abcdef';
  const ctx = await setup(t, {
    ...hubs(),
    auth: {
      jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
      rooms: [
        { match: 'secret', subscribe: 'claim', publish: 'claim' },
        { match: '*', subscribe: 'public', publish: 'public' },
      ],
    },
  });
  const token = mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: 'ann', exp: nowS() + 600 } });
  const refused = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1&crier_rooms=lobby::0,secret::0`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
  });
  assertJsonError(refused, 403, 'negotiate naming a room the token may not subscribe to');
  assert.match(refused.json.error, /secret/);
  const anonymous = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1&crier_rooms=secret::0`, { method: 'POST' });
  assertJsonError(anonymous, 401, 'negotiate without a token naming a room that needs one');
  assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');

  await publishAll(ctx.url, 1, 3);
  const got = [];
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${ctx.url}/hubs/chat?crier_rooms=lobby::0`, { transport: T.WebSockets })
    .configureLogging(signalR.LogLevel.None)
    .build();
  conn.on('ReceiveMessage', (v) => got.push(v));
  t.after(() => conn.stop());
  await withTimeout(conn.start(), 5000, 'start');
  await waitFor(() => got.length >= 3, { message: `the room's history (${JSON.stringify(got)})` });
  await publishAll(ctx.url, 4, 4);
  await waitFor(() => got.length >= 4, { message: `live after (${JSON.stringify(got)})` });
  assert.deepEqual(got, [1, 2, 3, 4]);
});

test('the node restarts: a CrierGap with reason "epoch", then what the new epoch holds', { timeout: 40_000 }, async (t) => {
  const config = { ...hubs(), signalr: { disconnect_timeout_s: 2 } };
  let srv = await startCrier(config);
  t.after(() => stopClean(srv));
  const proxy = await startProxy(srv.port);
  t.after(() => proxy.close());
  const c = await officialClient(t, proxy, T.WebSockets);
  await publishAll(srv.url, 1, 3);
  await waitFor(() => c.got.length >= 3, { message: `the first 3 (${JSON.stringify(c.got)})` });

  proxy.outage();
  await stopClean(srv);
  srv = await startCrier({ ...config, listen: `127.0.0.1:${srv.port}` }); // a new epoch, history empty
  await publishAll(srv.url, 1, 2);
  const epoch = (await request(`${srv.url}/rooms/lobby`)).json.epoch;
  proxy.restore();

  await waitFor(() => c.got.length >= 5, { timeout: 20_000, message: `after the restart (${JSON.stringify(c.events)}; ${c.logs.join(' | ')})` });
  assert.deepEqual(c.events, ['m1', 'm2', 'm3', 'gap', 'm1', 'm2']);
  assert.deepEqual(c.gaps, [{ room: 'lobby', epoch, reason: 'epoch', since: 3, resumed_from: 1 }]);
  assert.deepEqual(c.positions.get('lobby'), { epoch, id: 2 });
});

test('crier_rooms naming a room the connection may not subscribe to: closed at the handshake with the reason', { timeout: 20_000 }, async (t) => {
  const SECRET = 'rejoin-test-secret-0123456789abcdef';
  const ctx = await setup(t, {
    ...hubs(),
    auth: {
      jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
      rooms: [
        { match: 'secret', subscribe: 'claim', publish: 'claim' },
        { match: '*', subscribe: 'public', publish: 'public' },
      ],
    },
  });
  const jwt = mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: 'ann', exp: nowS() + 600 } });
  const neg = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST', headers: { Authorization: `Bearer ${jwt}` } });
  assert.equal(neg.status, 200, neg.text);
  const ws = await openWs(`${ctx.wsUrl}/hubs/chat?id=${neg.json.connectionToken}&crier_rooms=lobby::0,secret::0&access_token=${jwt}`);
  t.after(() => ws.close());
  ws.ws.send(HANDSHAKE);
  await ws.until((w) => parseRecords(w.texts).some((r) => r.type === 7), 5000, 'the Close record');
  const records = parseRecords(ws.texts);
  assert.deepEqual(records[0], {}, 'the handshake is answered');
  const close = records.find((r) => r.type === 7);
  assert.match(close.error, /^not allowed: /, JSON.stringify(close));
  assert.equal(close.allowReconnect, undefined);
  await ws.waitForClose();
});
