// Upstream hub methods, events, the connect proxy and plain frames routed
// upstream (issue #14, README "Upstream hub methods"): a Node http backend
// started here answers crier's POSTs; official @microsoft/signalr clients
// invoke methods whose logic lives in that backend (the article's ChatHub:
// SendMessage(user, message) answered with a publish action every client
// receives), and each failure of the backend reaches the client as the
// completion's error: down, slow, garbage, HTTP 500, too large, busy.

import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { request } from '../lib/http.js';
import { freePort, startCrier, stopClean } from '../lib/server.js';
import { setup, signalR, T, receiver, invoke, negotiate } from '../lib/signalr.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { mintToken, nowS } from '../lib/token.js';
import { openWs, wsRefusal } from '../lib/ws.js';
import { sseHttp } from '../lib/sse.js';

// A backend: routes[path](body, req) returns {status?, json?, text?, delayMs?}
// (or a promise of it). Every request is recorded in `seen`, with the time
// the handler took in `handledMs`.
async function startBackend(routes) {
  const seen = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (raw += d));
    req.on('end', async () => {
      let body = null;
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
      seen.push({ path: req.url, body, headers: req.headers });
      const route = routes[req.url];
      const out = route ? await route(body, req) : { status: 404, json: { error: 'no route' } };
      if (out.delayMs) await sleep(out.delayMs);
      if (res.destroyed) return;
      const text = out.text ?? JSON.stringify(out.json ?? {});
      res.writeHead(out.status ?? 200, { 'Content-Type': 'application/json' });
      res.end(text);
    });
  });
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    seen,
    connections: () => connections,
    of: (path) => seen.filter((s) => s.path === path),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// upstream.connect with the Redis backplane needs a secret every node shares.
const CONNECT_SECRET = 'a-connect-secret-for-the-tests-0123456789';

// A loopback port nothing listens on (connection refused).
const deadPort = () => freePort();

function hubConfig(B, dead, extra = {}) {
  return {
    hubs: {
      chat: {
        path: '/hubs/chat',
        methods: {
          SendMessage: { upstream: `${B}/chat` },
          ToRoom: { upstream: `${B}/toroom` },
          Add: { upstream: `${B}/add`, args: 2 },
          Throw: { upstream: `${B}/throw` },
          Garbage: { upstream: `${B}/garbage` },
          Http500: { upstream: `${B}/500` },
          Slow: { upstream: `${B}/slow` },
          Big: { upstream: `${B}/big` },
          Down: { upstream: `http://user:s3cret@127.0.0.1:${dead}/nothing?key=k3y` },
          Enter: { upstream: `${B}/enter` },
          Exit: { upstream: `${B}/exit` },
          Kick: { upstream: `${B}/kick` },
          Whoami: { upstream: `${B}/whoami` },
          ToUser: { upstream: `${B}/touser` },
          JoinRoom: { action: 'join' },
        },
      },
    },
    ...extra,
  };
}

const chatRoutes = {
  // The article's ChatHub: SendMessage(user, message) -> Clients.All.ReceiveMessage(user, message)
  '/chat': (b) => ({ json: { actions: [{ publish: { all: true, arguments: b.arguments } }] } }),
  '/toroom': (b) => ({ json: { actions: [{ publish: { room: 'everyone', target: 'RoomMessage', arguments: b.arguments } }] } }),
  '/add': (b) => ({ json: { result: b.arguments[0] + b.arguments[1] } }),
  '/throw': () => ({ json: { error: 'that went wrong in the backend' } }),
  '/garbage': () => ({ text: 'this is <b>not</b> JSON' }),
  '/500': () => ({ status: 500, json: { oops: true } }),
  '/slow': () => ({ json: { result: 'late' }, delayMs: 3000 }),
  '/big': () => ({ text: JSON.stringify({ result: 'x'.repeat(4096) }) }),
  '/enter': (b) => ({ json: { result: 'in', actions: [{ join: b.arguments[0] }] } }),
  '/exit': (b) => ({ json: { actions: [{ leave: b.arguments[0] }] } }),
  '/kick': () => ({ json: { result: 'bye', actions: [{ disconnect: 'kicked by the backend' }] } }),
  '/whoami': (b) => ({ json: { result: { user: b.user, connection_id: b.connection_id, hub: b.hub } } }),
  '/touser': (b) => ({ json: { actions: [{ publish: { user: b.arguments[0], target: 'Private', arguments: ['psst'] } }] } }),
  '/events': () => ({ json: {} }),
};

describe('upstream hub methods', () => {
  test('ChatHub: SendMessage reaches the backend, whose publish action every client receives', async (t) => {
    const backend = await startBackend(chatRoutes);
    t.after(() => backend.close());
    const ctx = await setup(t, hubConfig(backend.url, await deadPort(), { upstream: { timeout_ms: 1000 } }));
    const clients = await Promise.all([
      ctx.connect({ transport: T.WebSockets }),
      ctx.connect({ transport: T.ServerSentEvents }),
      ctx.connect({ transport: T.LongPolling }),
    ]);
    const got = clients.map((c) => receiver(c, 'ReceiveMessage'));
    await clients[0].invoke('SendMessage', 'alice', 'hello from the backend');
    await Promise.all(got.map((r) => r.wait(1)));
    for (const r of got) assert.deepEqual(r.calls[0], ['alice', 'hello from the backend']);
    const call = backend.of('/chat')[0].body;
    assert.equal(call.hub, 'chat');
    assert.equal(call.method, 'SendMessage');
    assert.deepEqual(call.arguments, ['alice', 'hello from the backend']);
    assert.equal(call.connection_id, clients[0].connectionId);
    assert.equal(call.user, null);
    assert.equal(call.claims, null);
    // send() (no invocationId) works the same, with no completion
    await clients[1].send('SendMessage', 'bob', 'fire and forget');
    await Promise.all(got.map((r) => r.wait(2)));
    assert.deepEqual(got[2].calls[1], ['bob', 'fire and forget']);
    // a publish action to a room, with a target: its members only
    const inRoom = clients.map((c) => receiver(c, 'RoomMessage'));
    await invoke(clients[0], 'JoinRoom', 'everyone');
    await invoke(clients[2], 'JoinRoom', 'everyone');
    await invoke(clients[1], 'ToRoom', 'to the room');
    await Promise.all([inRoom[0].wait(1), inRoom[2].wait(1)]);
    assert.deepEqual(inRoom[2].calls[0], ['to the room']);
    await sleep(200);
    assert.equal(inRoom[1].calls.length, 0, 'not a member: nothing');
  });

  test('a result resolves invoke(), the backend\'s error rejects it, and every failure has its message', async (t) => {
    const backend = await startBackend(chatRoutes);
    t.after(() => backend.close());
    const dead = await deadPort();
    const ctx = await setup(t, hubConfig(backend.url, dead, { upstream: { timeout_ms: 1000, max_answer_bytes: 1024 } }));
    const conn = await ctx.connect({ transport: T.WebSockets });
    assert.equal(await invoke(conn, 'Add', 2, 40), 42);
    await assert.rejects(invoke(conn, 'Throw'), /that went wrong in the backend/);
    await assert.rejects(invoke(conn, 'Down'), /upstream unavailable/);
    await assert.rejects(invoke(conn, 'Slow'), /upstream timeout/);
    await assert.rejects(invoke(conn, 'Garbage'), /upstream answer is not valid JSON/);
    await assert.rejects(invoke(conn, 'Http500'), /upstream answered HTTP 500/);
    await assert.rejects(invoke(conn, 'Big'), /upstream answer too large/);
    await assert.rejects(invoke(conn, 'ToUser', ''), /action 1: a user id is 1 to 256 bytes/);
    await assert.rejects(invoke(conn, 'Add', 1), /takes 2 argument/);
    // still served after all that
    assert.equal(await invoke(conn, 'Add', 1, 1), 2);
    const metrics = (await request(`${ctx.url}/metrics`)).text;
    for (const [result, n] of [['ok', 2], ['error', 1], ['unavailable', 1], ['timeout', 1], ['invalid', 2], ['http_status', 1], ['too_large', 1]])
      assert.match(metrics, new RegExp(`crier_upstream_calls_total\\{result="${result}"\\} ${n}\\b`), `${result}: ${metrics}`);
    assert.match(metrics, /crier_upstream_in_flight 0\b/);
    // each failure logged (once per burst), the URL without credentials, path or query
    const log = ctx.srv.stderr();
    assert.ok(log.includes(`a call to http://127.0.0.1:${dead} failed: unavailable`), log);
    assert.ok(!log.includes('s3cret') && !log.includes('k3y'), 'no credentials in the log');
    assert.match(log, /failed: timeout/);
  });

  test('with a token, the call carries its user (sub) and its claims object', async (t) => {
    const backend = await startBackend(chatRoutes);
    t.after(() => backend.close());
    const secret = 'upstream-test-secret-0123456789abcdef';
    const ctx = await setup(
      t,
      hubConfig(backend.url, await deadPort(), {
        auth: { jwt: { hmac_secret: secret, algorithms: ['HS256'] }, rooms: [{ match: '*', subscribe: 'token', publish: 'token' }] },
        upstream: { timeout_ms: 1000 },
      }),
    );
    const claims = { sub: 'carol', exp: nowS() + 300, role: 'editor', rooms: { subscribe: ['x'] } };
    const jwt = mintToken({ alg: 'HS256', secret, claims });
    const conn = new signalR.HubConnectionBuilder()
      .withUrl(ctx.hubUrl(), { transport: T.WebSockets, accessTokenFactory: () => jwt })
      .configureLogging(signalR.LogLevel.None)
      .build();
    ctx.track({ close: () => conn.stop() });
    await withTimeout(conn.start(), 5000, 'start with a token');
    assert.equal((await invoke(conn, 'Whoami')).user, 'carol');
    const call = backend.of('/whoami').at(-1).body;
    assert.equal(call.user, 'carol');
    assert.deepEqual(call.claims, claims);
    // a publish action to a user reaches every connection of that user, and no other
    const jwt2 = mintToken({ alg: 'HS256', secret, claims: { sub: 'carol', exp: nowS() + 300 } });
    const other = mintToken({ alg: 'HS256', secret, claims: { sub: 'dave', exp: nowS() + 300 } });
    const open = async (tok, transport) => {
      const c = new signalR.HubConnectionBuilder()
        .withUrl(ctx.hubUrl(), { transport, accessTokenFactory: () => tok })
        .configureLogging(signalR.LogLevel.None)
        .build();
      ctx.track({ close: () => c.stop() });
      await withTimeout(c.start(), 5000, 'start');
      return c;
    };
    const second = await open(jwt2, T.LongPolling);
    const dave = await open(other, T.ServerSentEvents);
    const got = [conn, second, dave].map((c) => receiver(c, 'Private'));
    assert.equal(await invoke(dave, 'ToUser', 'carol'), null);
    await Promise.all([got[0].wait(1), got[1].wait(1)]);
    assert.deepEqual(got[0].calls[0], ['psst']);
    await sleep(200);
    assert.equal(got[2].calls.length, 0, 'not carol: nothing');
  });

  test('connections to the backend are kept alive and reused', async (t) => {
    const backend = await startBackend(chatRoutes);
    t.after(() => backend.close());
    const ctx = await setup(t, hubConfig(backend.url, await deadPort(), { upstream: { timeout_ms: 1000 } }));
    const conn = await ctx.connect({ transport: T.WebSockets });
    for (let i = 0; i < 20; i++) assert.equal(await invoke(conn, 'Add', i, 1), i + 1);
    assert.equal(backend.of('/add').length, 20);
    assert.ok(backend.connections() <= 2, `${backend.connections()} TCP connections for 20 sequential calls`);
  });

  test('past upstream.max_in_flight a call gets "busy"', async (t) => {
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const backend = await startBackend({ ...chatRoutes, '/slow': async () => (await gate, { json: { result: 'done' } }) });
    t.after(() => backend.close());
    const ctx = await setup(t, hubConfig(backend.url, await deadPort(), { upstream: { timeout_ms: 10000, max_in_flight: 2 } }));
    const conn = await ctx.connect({ transport: T.WebSockets });
    const held = [conn.invoke('Slow'), conn.invoke('Slow')];
    await waitFor(() => backend.of('/slow').length === 2, { message: 'two slow calls at the backend' });
    await assert.rejects(invoke(conn, 'Add', 1, 2), /busy/);
    release();
    assert.deepEqual(await withTimeout(Promise.all(held), 5000, 'held calls'), ['done', 'done']);
    assert.equal(await invoke(conn, 'Add', 1, 2), 3);
  });

  test('join, leave and disconnect actions act on the calling connection; events reach upstream.events', async (t) => {
    const backend = await startBackend(chatRoutes);
    t.after(() => backend.close());
    const ctx = await setup(
      t,
      hubConfig(backend.url, await deadPort(), { upstream: { timeout_ms: 1000, events: `${backend.url}/events` } }),
    );
    const conn = await ctx.connect({ transport: T.WebSockets });
    const id = conn.connectionId; // null once closed
    const got = receiver(conn, 'ReceiveMessage');
    assert.equal(await invoke(conn, 'Enter', 'side'), 'in');
    await request(`${ctx.url}/rooms/side/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '["one"]' });
    await got.wait(1);
    assert.deepEqual(got.calls[0], ['one']);
    await invoke(conn, 'Exit', 'side');
    await request(`${ctx.url}/rooms/side/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '["two"]' });
    await sleep(300);
    assert.equal(got.calls.length, 1, 'no message after the leave action');
    assert.equal(await invoke(conn, 'Kick'), 'bye');
    const err = await withTimeout(conn.closed, 3000, 'closed by the disconnect action');
    assert.match(String(err?.message), /kicked by the backend/);
    await waitFor(() => backend.of('/events').some((e) => e.body.event === 'disconnect'), { message: 'disconnect event' });
    const events = backend.of('/events').map((e) => e.body).filter((e) => e.connection_id === id);
    assert.deepEqual(
      events.map((e) => [e.event, e.room ?? null]),
      [['connect', null], ['join', 'side'], ['leave', 'side'], ['disconnect', null]],
    );
    assert.equal(events[3].reason, 'kicked by the backend');
    assert.equal(events[0].hub, 'chat');
  });
});

describe('events of plain SSE streams, WebSockets and long polls (upstream.events)', () => {
  const SECRET = 'plain-events-test-secret-0123456789abcdef';
  const API_KEY = 'plain-events-test-key-0123456789';
  const tok = (user) => mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: user, exp: nowS() + 600 } });
  const config = (B) => ({
    limits: { poll_timeout_s: 1 },
    auth: {
      jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
      api_keys: [API_KEY],
      rooms: [{ match: '*', subscribe: 'token', publish: 'token' }],
    },
    upstream: { events: `${B}/events`, timeout_ms: 1000 },
  });
  // The events of one connection id, as [event, room, reason] in the order
  // they arrived (fire and forget: two events may overtake each other, so
  // callers compare sets where order is not promised).
  const eventsOf = (backend, id) => backend.of('/events').map((e) => e.body).filter((e) => e.connection_id === id);
  const has = (backend, id, event) => eventsOf(backend, id).some((e) => e.event === event);
  const disconnect = (base, id, reason) =>
    request(`${base}/connections/${id}?reason=${encodeURIComponent(reason)}`, { method: 'DELETE', headers: { Authorization: `Bearer ${API_KEY}` } });

  test('an SSE stream sends connect and join when it opens, leave and disconnect when its client goes', async (t) => {
    const backend = await startBackend(chatRoutes);
    t.after(() => backend.close());
    const ctx = await setup(t, config(backend.url));
    const sse = await sseHttp(`${ctx.url}/rooms/lobby/events?access_token=${tok('alice')}`);
    t.after(() => sse.close());
    assert.equal(sse.status, 200);
    const id = sse.headers['x-crier-connection-id'];
    assert.ok(id, 'the stream names its connection');
    await waitFor(() => has(backend, id, 'connect') && has(backend, id, 'join'), { message: 'connect and join' });
    for (const e of eventsOf(backend, id)) {
      assert.equal(e.room, 'lobby');
      assert.equal(e.hub, null);
      assert.equal(e.user, 'alice');
      assert.equal(e.claims.sub, 'alice');
    }
    assert.deepEqual(eventsOf(backend, id).map((e) => e.event).sort(), ['connect', 'join']);
    // the client goes away: the held-socket watcher notices, the stream ends
    sse.close();
    await waitFor(() => has(backend, id, 'disconnect') && has(backend, id, 'leave'), { message: 'leave and disconnect' });
    const ev = eventsOf(backend, id);
    assert.deepEqual(ev.map((e) => e.event).sort(), ['connect', 'disconnect', 'join', 'leave']);
    const gone = ev.find((e) => e.event === 'disconnect');
    assert.equal(gone.room, 'lobby');
    assert.equal(gone.reason ?? null, null, 'the client left: no reason');
  });

  test('DELETE /connections/{id} ends an SSE stream and a plain WebSocket; their disconnect carries the reason', async (t) => {
    const backend = await startBackend(chatRoutes);
    t.after(() => backend.close());
    const ctx = await setup(t, config(backend.url));
    const sse = await sseHttp(`${ctx.url}/rooms/lobby/events?access_token=${tok('bob')}`);
    t.after(() => sse.close());
    const sid = sse.headers['x-crier-connection-id'];
    let wid = null;
    const ws = await openWs(`${ctx.wsUrl}/rooms/lobby/ws?access_token=${tok('bob')}`);
    ctx.track({ close: async () => ws.close() });
    await waitFor(() => backend.of('/events').filter((e) => e.body.event === 'join').length === 2, { message: 'two joins' });
    wid = backend.of('/events').map((e) => e.body).find((e) => e.event === 'join' && e.connection_id !== sid).connection_id;
    assert.equal((await disconnect(ctx.url, sid, 'kicked: SSE')).status, 200);
    await sse.until((s) => s.ended, 5000, 'the stream ends');
    assert.deepEqual(JSON.parse(sse.events.at(-1).data), { error: 'kicked: SSE' });
    await waitFor(() => has(backend, sid, 'disconnect'), { message: 'SSE disconnect' });
    assert.equal(eventsOf(backend, sid).find((e) => e.event === 'disconnect').reason, 'kicked: SSE');
    assert.ok(has(backend, sid, 'leave'));
    assert.equal((await disconnect(ctx.url, wid, 'kicked: WS')).status, 200);
    await ws.waitForClose();
    await waitFor(() => has(backend, wid, 'disconnect'), { message: 'WS disconnect' });
    const wev = eventsOf(backend, wid);
    assert.deepEqual(wev.map((e) => e.event).sort(), ['connect', 'disconnect', 'join', 'leave']);
    assert.equal(wev.find((e) => e.event === 'disconnect').reason, 'kicked: WS');
    assert.ok(wev.every((e) => e.room === 'lobby' && e.user === 'bob'));
  });

  test('a long poll sends no events (each poll is a connection of its own), nor the stats stream', async (t) => {
    const backend = await startBackend(chatRoutes);
    t.after(() => backend.close());
    const ctx = await setup(t, config(backend.url));
    // two polls, held side by side until poll_timeout_s
    const answers = await Promise.all([0, 1].map(() => request(`${ctx.url}/rooms/lobby/poll?access_token=${tok('carol')}`)));
    const polls = [];
    for (const res of answers) {
      assert.equal(res.status, 200, res.text);
      polls.push(res.headers.get('x-crier-connection-id'));
    }
    // the dashboard's stats stream is no client's room: no events either
    const stats = await sseHttp(`${ctx.url}/stats/events`, { headers: { Authorization: `Bearer ${API_KEY}` } });
    t.after(() => stats.close());
    assert.equal(stats.status, 200);
    await stats.until((s) => s.events.length >= 1, 5000, 'a stats event');
    stats.close();
    // an SSE stream afterwards: its events arrive, so any of the polls' would have
    const sse = await sseHttp(`${ctx.url}/rooms/lobby/events?access_token=${tok('carol')}`);
    t.after(() => sse.close());
    const sid = sse.headers['x-crier-connection-id'];
    await waitFor(() => has(backend, sid, 'join'), { message: 'the stream\'s join' });
    await sleep(300);
    assert.deepEqual(backend.of('/events').map((e) => e.body.connection_id).filter((c) => polls.includes(c)), []);
    assert.ok(backend.of('/events').every((e) => e.body.connection_id === sid));
  });
});

describe('connect proxy (upstream.connect)', () => {
  const routes = {
    ...chatRoutes,
    '/connect': (b) => {
      const cookie = b.headers?.Cookie ?? '';
      if (cookie.includes('session=good')) return { json: { user: 'alice', rooms: { subscribe: ['*'], publish: ['*'] } } };
      if (cookie.includes('session=bad')) return { json: { error: 'session expired', status: 401 } };
      return { json: { error: 'who are you?' } };
    },
  };

  test('accepts with the user id a later call sees, refuses with 401/403', async (t) => {
    const backend = await startBackend(routes);
    t.after(() => backend.close());
    const ctx = await setup(
      t,
      // on both backplanes: with Redis, the verdict travels in the signed token
      hubConfig(backend.url, await deadPort(), {
        upstream: { timeout_ms: 1000, connect: `${backend.url}/connect`, connect_secret: CONNECT_SECRET },
      }),
    );
    const conn = new signalR.HubConnectionBuilder()
      .withUrl(ctx.hubUrl(), { transport: T.WebSockets, headers: { Cookie: 'session=good' } })
      .configureLogging(signalR.LogLevel.None)
      .build();
    ctx.track({ close: () => conn.stop() });
    await withTimeout(conn.start(), 5000, 'start with a good session');
    const me = await invoke(conn, 'Whoami');
    assert.equal(me.user, 'alice');
    assert.equal(me.connection_id, conn.connectionId);
    const asked = backend.of('/connect').at(-1).body;
    assert.equal(asked.hub, 'chat');
    assert.equal(asked.query.negotiateVersion, '1');

    const bad = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST', headers: { Cookie: 'session=bad' } });
    assert.equal(bad.status, 401, bad.text);
    assert.deepEqual(JSON.parse(bad.text), { error: 'session expired' });
    const none = await negotiate(ctx.url);
    assert.equal(none.status, 403, none.text);
    assert.deepEqual(JSON.parse(none.text), { error: 'who are you?' });
    const refused = new signalR.HubConnectionBuilder()
      .withUrl(ctx.hubUrl(), { transport: T.WebSockets })
      .configureLogging(signalR.LogLevel.None)
      .build();
    await assert.rejects(withTimeout(refused.start(), 5000, 'start refused'), /403/);
    // skipNegotiation would go round the proxy: refused
    const skip = new signalR.HubConnectionBuilder()
      .withUrl(ctx.hubUrl(), { transport: T.WebSockets, skipNegotiation: true })
      .configureLogging(signalR.LogLevel.None)
      .build();
    await assert.rejects(withTimeout(skip.start(), 5000, 'skipNegotiation refused'));
  });

  test('with auth on, the room rights the proxy gives are the connection\'s (JoinRoom checked against them)', async (t) => {
    const backend = await startBackend({
      '/connect': (b) => {
        const cookie = b.headers?.Cookie ?? '';
        if (cookie.includes('session=vip')) return { json: { user: 'vip', rooms: { subscribe: ['secret.*'] } } };
        return { json: { user: 'guest' } };
      },
      '/whoami': (b) => ({ json: { result: b.user } }),
    });
    t.after(() => backend.close());
    const ctx = await setup(t, {
      auth: { rooms: [{ match: 'secret.*', subscribe: 'claim', publish: 'api_key' }, { match: '*', subscribe: 'token', publish: 'token' }] },
      hubs: { chat: { path: '/hubs/chat', methods: { JoinRoom: { action: 'join' }, Whoami: { upstream: `${backend.url}/whoami` } } } },
      upstream: { timeout_ms: 1000, connect: `${backend.url}/connect`, connect_secret: CONNECT_SECRET },
    });
    const open = async (cookie) => {
      const conn = new signalR.HubConnectionBuilder()
        .withUrl(ctx.hubUrl(), { transport: T.LongPolling, headers: { Cookie: cookie } })
        .configureLogging(signalR.LogLevel.None)
        .build();
      ctx.track({ close: () => conn.stop() });
      await withTimeout(conn.start(), 5000, `start with ${cookie}`);
      return conn;
    };
    const vip = await open('session=vip');
    const guest = await open('session=guest');
    assert.equal(await invoke(vip, 'Whoami'), 'vip');
    assert.equal(await invoke(guest, 'Whoami'), 'guest');
    assert.equal((await invoke(vip, 'JoinRoom', 'secret.plans')).room, 'secret.plans');
    await assert.rejects(invoke(guest, 'JoinRoom', 'secret.plans'), /not allowed/);
    // "token" rooms: a proxied connection counts as one with a token
    assert.equal((await invoke(guest, 'JoinRoom', 'lobby')).room, 'lobby');
  });

  test('a backend down refuses negotiate with 502', async (t) => {
    const dead = await deadPort();
    const ctx = await setup(t, {
      upstream: { timeout_ms: 1000, connect: `http://127.0.0.1:${dead}/connect`, connect_secret: CONNECT_SECRET },
    });
    const res = await negotiate(ctx.url);
    assert.equal(res.status, 502, res.text);
    assert.deepEqual(JSON.parse(res.text), { error: 'upstream unavailable' });
  });
});

describe('plain WebSocket frames routed upstream (rooms.client_publish "upstream")', () => {
  test('a frame is POSTed to upstream.url and the backend\'s publish action decides', async (t) => {
    const backend = await startBackend({
      '/frames': (b) => ({
        json: { actions: [{ publish: { room: b.room, arguments: [{ shouted: String(b.data.text).toUpperCase() }] } }] },
      }),
      '/events': () => ({ json: {} }),
    });
    t.after(() => backend.close());
    const ctx = await setup(t, {
      rooms: { client_publish: 'upstream' },
      upstream: { url: `${backend.url}/frames`, events: `${backend.url}/events`, timeout_ms: 1000 },
    });
    const a = await openWs(`${ctx.wsUrl}/rooms/lobby/ws`);
    const b = await openWs(`${ctx.wsUrl}/rooms/lobby/ws`);
    ctx.track({ close: async () => a.close() });
    ctx.track({ close: async () => b.close() });
    a.ws.send(JSON.stringify({ text: 'hello' }));
    await b.until((c) => c.messages.some((m) => m?.data), 3000, 'the transformed message');
    const m = b.messages.find((x) => x?.data);
    assert.deepEqual(m.data, [{ shouted: 'HELLO' }]);
    assert.equal(m.room, 'lobby');
    const sent = backend.of('/frames')[0].body;
    assert.equal(sent.room, 'lobby');
    assert.deepEqual(sent.data, { text: 'hello' });
    assert.equal(typeof sent.connection_id, 'string');
    await waitFor(() => backend.of('/events').filter((e) => e.body.event === 'connect').length === 2, { message: 'connect events' });
    assert.equal(backend.of('/events')[0].body.room, 'lobby');
  });
});

describe('plain frames routed upstream: to a user', () => {
  test('a publish action to a user reaches that user\'s SignalR connection', async (t) => {
    const backend = await startBackend({
      '/frames': (b) => ({ json: { actions: [{ publish: { user: b.data.to, target: 'Private', arguments: [b.data.text, b.user] } }] } }),
    });
    t.after(() => backend.close());
    const secret = 'upstream-test-secret-0123456789abcdef';
    const ctx = await setup(t, {
      auth: { jwt: { hmac_secret: secret, algorithms: ['HS256'] }, rooms: [{ match: '*', subscribe: 'token', publish: 'token' }] },
      rooms: { client_publish: 'upstream' },
      upstream: { url: `${backend.url}/frames`, timeout_ms: 1000 },
    });
    const tok = (sub) => mintToken({ alg: 'HS256', secret, claims: { sub, exp: nowS() + 300 } });
    const erin = new signalR.HubConnectionBuilder()
      .withUrl(ctx.hubUrl(), { transport: T.WebSockets, accessTokenFactory: () => tok('erin') })
      .configureLogging(signalR.LogLevel.None)
      .build();
    ctx.track({ close: () => erin.stop() });
    await withTimeout(erin.start(), 5000, 'start');
    const got = receiver(erin, 'Private');
    const ws = await openWs(`${ctx.wsUrl}/rooms/lobby/ws?access_token=${tok('frank')}`);
    ctx.track({ close: async () => ws.close() });
    ws.ws.send(JSON.stringify({ to: 'erin', text: 'hi erin' }));
    await got.wait(1);
    assert.deepEqual(got.calls[0], ['hi erin', 'frank']);
  });
});

describe('plain frames routed upstream: failures', () => {
  test('backend down, garbage, or an action a plain frame cannot take: nothing published, counted, the socket stays open', async (t) => {
    const dead = await deadPort();
    const backend = await startBackend({
      '/garbage': () => ({ text: 'nope' }),
      '/join': () => ({ json: { actions: [{ join: 'elsewhere' }] } }),
    });
    t.after(() => backend.close());
    for (const [url, result] of [
      [`http://127.0.0.1:${dead}/frames`, 'unavailable'],
      [`${backend.url}/garbage`, 'invalid'],
      [`${backend.url}/join`, 'invalid'],
    ]) {
      const ctx = await setup(t, { rooms: { client_publish: 'upstream' }, upstream: { url, timeout_ms: 1000 } });
      const a = await openWs(`${ctx.wsUrl}/rooms/lobby/ws`);
      const b = await openWs(`${ctx.wsUrl}/rooms/lobby/ws`);
      ctx.track({ close: async () => a.close() });
      ctx.track({ close: async () => b.close() });
      a.ws.send('hello');
      const counted = new RegExp(`crier_upstream_calls_total\\{result="${result}"\\} 1\\b`);
      await waitFor(async () => counted.test((await request(`${ctx.url}/metrics`)).text), { message: `${result} counted` });
      await sleep(200);
      assert.equal(b.messages.length, 0, `${url}: nothing published`);
      assert.equal(a.closeInfo, null, `${url}: the sender's socket stays open`);
    }
  });
});

describe('shutdown with calls in flight', () => {
  test('a held upstream call and a negotiate waiting for the connect proxy end cleanly on SIGTERM', async (t) => {
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    t.after(() => release());
    const backend = await startBackend({
      '/connect': async (b) => {
        if (!(b.headers?.Cookie ?? '').includes('session=ok')) await gate;
        return { json: { user: 'u' } };
      },
      '/slow': async () => (await gate, { json: { result: 'late' } }),
    });
    t.after(() => backend.close());
    const srv = await startCrier({
      hubs: { chat: { path: '/hubs/chat', methods: { Slow: { upstream: `${backend.url}/slow` } } } },
      upstream: { timeout_ms: 30000, connect: `${backend.url}/connect`, connect_secret: CONNECT_SECRET },
    });
    const conn = new signalR.HubConnectionBuilder()
      .withUrl(`${srv.url}/hubs/chat`, { transport: T.WebSockets, headers: { Cookie: 'session=ok' } })
      .configureLogging(signalR.LogLevel.None)
      .build();
    await withTimeout(conn.start(), 5000, 'start');
    const held = conn.invoke('Slow').then(
      () => 'resolved',
      (e) => e.message,
    );
    const waiting = request(`${srv.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST', timeout: 20000 });
    // a plain SSE stream waiting for the proxy too (plain/connect.c)
    const waitingSse = request(`${srv.url}/rooms/r/events`, { headers: { Accept: 'text/event-stream' }, timeout: 20000 });
    await waitFor(() => backend.of('/slow').length === 1 && backend.of('/connect').length === 3, {
      message: 'both calls at the backend',
    });
    const r = await stopClean(srv); // exit 0, no sanitizer report
    assert.ok(r.ms < 10000, `stopped in ${r.ms} ms`);
    const neg = await waiting;
    assert.equal(neg.status, 502, neg.text);
    assert.match(neg.text, /shutting down/);
    const sse = await waitingSse;
    assert.equal(sse.status, 502, sse.text);
    assert.match(sse.text, /shutting down/);
    assert.notEqual(await withTimeout(held, 5000, 'the held invoke ends'), 'resolved');
    await conn.stop().catch(() => {});
  });
});

describe('connect proxy for plain SSE streams and long polls', () => {
  const routes = {
    '/connect': (b) => {
      const cookie = b.headers?.Cookie ?? '';
      if (cookie.includes('session=good')) return { json: { user: 'bob', rooms: { subscribe: ['news.*'] } } };
      if (cookie.includes('session=bad')) return { json: { error: 'session expired', status: 401 } };
      return { json: { error: 'who are you?' } };
    },
  };
  const presenceOf = async (base, room) => (await request(`${base}/rooms/${room}/presence`)).json;

  test('SSE: accepted with the proxy\'s user id (presence, a user-targeted send), refused 401/403', async (t) => {
    const backend = await startBackend(routes);
    t.after(() => backend.close());
    const ctx = await setup(t, { upstream: { timeout_ms: 1000, connect: `${backend.url}/connect`, connect_secret: CONNECT_SECRET } });
    const stream = await sseHttp(`${ctx.url}/rooms/news.sse/events?x=1`, { headers: { Cookie: 'session=good' } });
    ctx.track({ close: async () => stream.close() });
    assert.equal(stream.status, 200);
    const asked = backend.of('/connect').at(-1).body;
    assert.deepEqual(
      { hub: asked.hub, room: asked.room, transport: asked.transport, query: asked.query, cookie: asked.headers.Cookie },
      { hub: null, room: 'news.sse', transport: 'sse', query: { x: '1' }, cookie: 'session=good' },
    );
    await waitFor(async () => (await presenceOf(ctx.url, 'news.sse'))?.users?.some((u) => u.user === 'bob'), { message: 'bob in presence' });
    const sent = await request(`${ctx.url}/users/bob/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '["hi bob"]' });
    assert.equal(sent.status, 202, sent.text);
    await stream.until((s) => s.events.some((e) => e.type === 'user'), 5000, 'the user event');
    assert.deepEqual(JSON.parse(stream.events.find((e) => e.type === 'user').data), ['hi bob']);

    const bad = await request(`${ctx.url}/rooms/news.sse/events`, { headers: { Accept: 'text/event-stream', Cookie: 'session=bad' } });
    assert.equal(bad.status, 401, bad.text);
    assert.deepEqual(JSON.parse(bad.text), { error: 'session expired' });
    const none = await request(`${ctx.url}/rooms/news.sse/events`, { headers: { Accept: 'text/event-stream' } });
    assert.equal(none.status, 403, none.text);
    assert.deepEqual(JSON.parse(none.text), { error: 'who are you?' });
  });

  test('long poll: accepted with the proxy\'s user id, refused 401/403; a backend down: 502', async (t) => {
    const backend = await startBackend(routes);
    t.after(() => backend.close());
    const ctx = await setup(t, { upstream: { timeout_ms: 1000, connect: `${backend.url}/connect`, connect_secret: CONNECT_SECRET } });
    const held = request(`${ctx.url}/rooms/news.lp/poll`, { headers: { Cookie: 'session=good' }, timeout: 30_000 });
    await waitFor(async () => (await presenceOf(ctx.url, 'news.lp'))?.users?.some((u) => u.user === 'bob'), { message: 'bob in presence' });
    assert.equal(backend.of('/connect').at(-1).body.transport, 'long_polling');
    const sent = await request(`${ctx.url}/users/bob/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '["hi bob"]' });
    assert.equal(sent.status, 202, sent.text);
    const got = await held;
    assert.equal(got.status, 200, got.text);
    assert.ok(got.json.messages.some((m) => m.user === 'bob' && JSON.stringify(m.data) === '["hi bob"]'), got.text);

    const bad = await request(`${ctx.url}/rooms/news.lp/poll`, { headers: { Cookie: 'session=bad' } });
    assert.equal(bad.status, 401, bad.text);
    const none = await request(`${ctx.url}/rooms/news.lp/poll`);
    assert.equal(none.status, 403, none.text);
    assert.deepEqual(JSON.parse(none.text), { error: 'who are you?' });
    await backend.close();
    const down = await request(`${ctx.url}/rooms/news.lp/poll`, { headers: { Cookie: 'session=good' } });
    assert.equal(down.status, 502, down.text);
  });

  test('with auth on, the proxy\'s room rights decide (not the request\'s token): 403 past them', async (t) => {
    const backend = await startBackend(routes);
    t.after(() => backend.close());
    const ctx = await setup(t, {
      auth: { rooms: [{ match: 'vip.*', subscribe: 'claim', publish: 'api_key' }, { match: '*', subscribe: 'token', publish: 'api_key' }] },
      upstream: { timeout_ms: 1000, connect: `${backend.url}/connect`, connect_secret: CONNECT_SECRET },
    });
    // "token" rooms: a proxied request counts as one with a token (it has none)
    const stream = await sseHttp(`${ctx.url}/rooms/news.a/events`, { headers: { Cookie: 'session=good' } });
    ctx.track({ close: async () => stream.close() });
    assert.equal(stream.status, 200);
    // "claim" rooms: the proxy's rooms.subscribe (news.*) does not list vip.x
    const refused = await request(`${ctx.url}/rooms/vip.x/poll`, { headers: { Cookie: 'session=good' } });
    assert.equal(refused.status, 403, refused.text);
    assert.match(JSON.parse(refused.text).error, /claim/);
    const none = await request(`${ctx.url}/rooms/news.a/poll`);
    assert.equal(none.status, 403, none.text);
    assert.deepEqual(JSON.parse(none.text), { error: 'who are you?' });
  });
});

describe('connect proxy for the plain WebSocket', () => {
  const routes = {
    '/connect': (b) => {
      const cookie = b.headers?.Cookie ?? '';
      if (cookie.includes('session=good')) return { json: { user: 'bob', rooms: { subscribe: ['news.*'] } } };
      if (cookie.includes('session=bad')) return { json: { error: 'session expired', status: 401 } };
      return { json: { error: 'who are you?' } };
    },
  };
  const proxyConfig = (backend, extra = {}) => ({
    upstream: { timeout_ms: 1000, connect: `${backend.url}/connect`, connect_secret: CONNECT_SECRET },
    ...extra,
  });

  test('accepted with the proxy\'s user id (presence, a user-targeted send); refused 401/403 and backend down 502 before the upgrade', async (t) => {
    const backend = await startBackend(routes);
    t.after(() => backend.close());
    const ctx = await setup(t, proxyConfig(backend));
    const ws = await openWs(`${ctx.wsUrl}/rooms/news.ws/ws?x=1&y=a%20b`, { headers: { Cookie: 'session=good' } });
    ctx.track({ close: async () => ws.close() });
    const asked = backend.of('/connect').at(-1).body;
    assert.deepEqual(
      { hub: asked.hub, room: asked.room, transport: asked.transport, query: asked.query, cookie: asked.headers.Cookie },
      { hub: null, room: 'news.ws', transport: 'websocket', query: { x: '1', y: 'a b' }, cookie: 'session=good' },
    );
    const presence = async () => (await request(`${ctx.url}/rooms/news.ws/presence`)).json;
    await waitFor(async () => (await presence())?.users?.some((u) => u.user === 'bob'), { message: 'bob in presence' });
    const sent = await request(`${ctx.url}/users/bob/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '["hi bob"]' });
    assert.equal(sent.status, 202, sent.text);
    await ws.until((c) => c.messages.some((m) => m?.user === 'bob' && JSON.stringify(m.data) === '["hi bob"]'), 5000, 'the user message');

    const bad = await wsRefusal(`${ctx.wsUrl}/rooms/news.ws/ws`, { headers: { Cookie: 'session=bad' } });
    assert.equal(bad.status, 401, bad.body);
    assert.deepEqual(JSON.parse(bad.body), { error: 'session expired' });
    const none = await wsRefusal(`${ctx.wsUrl}/rooms/news.ws/ws`);
    assert.equal(none.status, 403, none.body);
    assert.deepEqual(JSON.parse(none.body), { error: 'who are you?' });
    await backend.close();
    const down = await wsRefusal(`${ctx.wsUrl}/rooms/news.ws/ws`, { headers: { Cookie: 'session=good' } });
    assert.equal(down.status, 502, down.body);
    assert.ok(JSON.parse(down.body).error, down.body);
    // the accepted socket lives on
    assert.equal(ws.closeInfo, null);
  });

  test('with auth on, the proxy\'s room rights decide: a claim room outside them is 403 before the upgrade', async (t) => {
    const backend = await startBackend(routes);
    t.after(() => backend.close());
    const ctx = await setup(t, proxyConfig(backend, {
      auth: { rooms: [{ match: 'vip.*', subscribe: 'claim', publish: 'api_key' }, { match: '*', subscribe: 'token', publish: 'api_key' }] },
    }));
    // "token" rooms: a proxied upgrade counts as one with a token (it has none)
    const ws = await openWs(`${ctx.wsUrl}/rooms/news.a/ws`, { headers: { Cookie: 'session=good' } });
    ctx.track({ close: async () => ws.close() });
    assert.equal(backend.of('/connect').at(-1).body.transport, 'websocket');
    const refused = await wsRefusal(`${ctx.wsUrl}/rooms/vip.x/ws`, { headers: { Cookie: 'session=good' } });
    assert.equal(refused.status, 403, refused.body);
    assert.match(JSON.parse(refused.body).error, /claim/);
    const none = await wsRefusal(`${ctx.wsUrl}/rooms/news.a/ws`);
    assert.equal(none.status, 403, none.body);
    assert.deepEqual(JSON.parse(none.body), { error: 'who are you?' });
    assert.equal(ws.closeInfo, null);
  });

  test('shutdown with an upgrade waiting for the proxy: it is answered, crier exits cleanly', async (t) => {
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    t.after(() => release());
    const backend = await startBackend({ '/connect': async () => (await gate, { json: { user: 'u' } }) });
    t.after(() => backend.close());
    const srv = await startCrier({ upstream: { timeout_ms: 30000, connect: `${backend.url}/connect`, connect_secret: CONNECT_SECRET } });
    const waiting = wsRefusal(`${srv.wsUrl}/rooms/r/ws`, { timeout: 20000 }).then(
      (r) => r,
      (e) => ({ error: e.message }),
    );
    await waitFor(() => backend.of('/connect').length === 1, { message: 'the upgrade at the backend' });
    await stopClean(srv); // exit 0, no sanitizer report
    const got = await waiting;
    assert.equal(got.status, 503, JSON.stringify(got));
    assert.match(got.body, /shutting down/);
  });
});
