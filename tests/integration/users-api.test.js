// Users and connections (README "Server API"): every connection has a
// connection id (plain WebSocket, SSE and long-poll clients read it from the
// X-Crier-Connection-Id response header, SignalR clients as
// connection.connectionId) and the user id of its token; the server API
// (an API key) sends to every connection of a user or to one connection,
// joins and leaves a user's connections to rooms, and disconnects them with
// a reason each transport shows. Official @microsoft/signalr clients with
// accessTokenFactory and plain ws/SSE/long-poll clients. Run on the memory
// backplane and, by tests/run.sh, on Redis too.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import WebSocket from 'ws';

import { assertJsonError, request } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { setup, signalR, T, TRANSPORT_CLASS, receiver, assertQuiet } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { mintToken, nowS } from '../lib/token.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';

const ID_RE = /^[A-Za-z0-9_-]{1,31}$/;
const SECRET = 'users-api-test-secret-0123456789abcdef';
const API_KEY = 'users-api-test-key-0123456789';
const CONFIG = {
  limits: { poll_timeout_s: 2 },
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
    api_keys: [API_KEY],
    rooms: [{ match: '*', subscribe: 'token', publish: 'token' }],
  },
};

const token = (user) => mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: user, exp: nowS() + 600 } });

// A server API call with the API key (or the given Authorization).
function api(base, method, path, { body, json = true, auth = `Bearer ${API_KEY}`, headers = {} } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = auth;
  if (body !== undefined && json) h['Content-Type'] = 'application/json';
  return request(`${base}${path}`, { method, headers: h, body: body === undefined ? undefined : json ? JSON.stringify(body) : body });
}

// A plain WebSocket that also keeps the 101's X-Crier-Connection-Id.
function wsWithId(url) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const c = { ws, id: null, messages: [], closeInfo: null };
      c.closed = new Promise((res) => ws.on('close', (code, reason) => res((c.closeInfo = { code, reason: reason.toString() }))));
      ws.on('upgrade', (res) => (c.id = res.headers['x-crier-connection-id']));
      ws.on('message', (d) => c.messages.push(JSON.parse(d.toString())));
      ws.on('open', () => resolve(c));
      ws.on('error', reject);
    }),
    5000,
    `WS ${url}: open`,
  );
}

// An official client for user with accessTokenFactory, started.
async function official(ctx, user, { transport = T.WebSockets, reconnect } = {}) {
  const logs = [];
  let b = new signalR.HubConnectionBuilder()
    .withUrl(ctx.hubUrl(), { transport, accessTokenFactory: () => token(user) })
    .configureLogging({ log: (level, m) => level >= signalR.LogLevel.Information && logs.push(m) });
  if (reconnect) b = b.withAutomaticReconnect(reconnect);
  const conn = b.build();
  conn.logs = logs;
  conn.label = `${user} ${TRANSPORT_CLASS[transport]}`;
  conn.closed = new Promise((resolve) => conn.onclose((err) => resolve(err ?? null)));
  conn.reconnecting = 0;
  conn.onreconnecting(() => conn.reconnecting++);
  ctx.track({ close: () => withTimeout(conn.stop(), 5000, `${conn.label}: stop()`) });
  await withTimeout(conn.start(), 5000, `${conn.label}: start()`);
  return conn;
}

describe('connection ids', () => {
  test('plain WebSocket, SSE and long poll answers carry a fresh X-Crier-Connection-Id', async (t) => {
    const srv = await startFor(t, { limits: { poll_timeout_s: 1 } });
    const a = await wsWithId(`${srv.wsUrl}/rooms/r/ws`);
    const b = await wsWithId(`${srv.wsUrl}/rooms/r/ws`);
    t.after(() => {
      a.ws.terminate();
      b.ws.terminate();
    });
    const sse = await sseHttp(`${srv.url}/rooms/r/events`);
    t.after(() => sse.close());
    const poll = await request(`${srv.url}/rooms/r/poll`);
    assert.equal(poll.status, 200);
    const ids = [a.id, b.id, sse.headers['x-crier-connection-id'], poll.headers.get('x-crier-connection-id')];
    for (const id of ids) assert.match(String(id), ID_RE);
    assert.equal(new Set(ids).size, ids.length, `ids not distinct: ${ids}`);
  });
});

describe('server API: users and connections', () => {
  // alice: SignalR over WebSockets and long polling, a plain WebSocket and
  // an SSE stream; bob: SignalR and a plain WebSocket.
  async function people(t) {
    const ctx = await setup(t, CONFIG);
    const a1 = await official(ctx, 'alice');
    const a2 = await official(ctx, 'alice', { transport: T.LongPolling });
    const b1 = await official(ctx, 'bob');
    const aws = await wsWithId(`${ctx.wsUrl}/rooms/lobby/ws?access_token=${token('alice')}`);
    const bws = await wsWithId(`${ctx.wsUrl}/rooms/lobby/ws?access_token=${token('bob')}`);
    const asse = await sseHttp(`${ctx.url}/rooms/lobby/events?access_token=${token('alice')}`);
    t.after(() => {
      aws.ws.terminate();
      bws.ws.terminate();
      asse.close();
    });
    const rx = { a1: receiver(a1), a2: receiver(a2), b1: receiver(b1) };
    return { ctx, a1, a2, b1, aws, bws, asse, rx };
  }

  test('a message to a user reaches every connection of that user, and no one else', async (t) => {
    const { ctx, aws, bws, asse, rx } = await people(t);
    const res = await api(ctx.url, 'POST', '/users/alice/messages', { body: ['hello', 7] });
    assert.equal(res.status, 202, res.text);
    assert.deepEqual(res.json, { user: 'alice', connections: 4, delivered: 4 });
    assert.deepEqual((await rx.a1.wait(1))[0], ['hello', 7]);
    assert.deepEqual((await rx.a2.wait(1))[0], ['hello', 7]);
    await waitFor(() => aws.messages.length === 1, { message: 'alice plain WS message' });
    assert.deepEqual(aws.messages[0], { user: 'alice', data: ['hello', 7] });
    await asse.until((s) => s.events.some((e) => e.type === 'user'), 5000, 'alice SSE user event');
    const ev = asse.events.find((e) => e.type === 'user');
    assert.equal(ev.id, null, 'no id: the stream resume cursor stays the room one');
    assert.deepEqual(JSON.parse(ev.data), ['hello', 7]);
    await assertQuiet([rx.b1], 300);
    assert.equal(bws.messages.length, 0);
    // a text body is one JSON string; ?target= names the SignalR method
    const res2 = await api(ctx.url, 'POST', '/users/alice/messages?target=ReceiveMessage', { body: 'plain text', json: false });
    assert.equal(res2.status, 202, res2.text);
    assert.equal(res2.json.connections, 4);
    assert.deepEqual((await rx.a1.wait(2))[1], ['plain text']);
  });

  test('a message to one connection reaches it alone', async (t) => {
    const { ctx, a1, a2, aws, bws, rx } = await people(t);
    assert.match(a1.connectionId, ID_RE);
    let res = await api(ctx.url, 'POST', `/connections/${a1.connectionId}/messages`, { body: { n: 1 } });
    assert.equal(res.status, 202, res.text);
    assert.deepEqual(res.json, { connection: a1.connectionId, connections: 1, delivered: 1 });
    assert.deepEqual((await rx.a1.wait(1))[0], [{ n: 1 }]);
    res = await api(ctx.url, 'POST', `/connections/${aws.id}/messages`, { body: { n: 2 } });
    assert.equal(res.status, 202, res.text);
    await waitFor(() => aws.messages.length === 1, { message: 'plain WS message' });
    assert.deepEqual(aws.messages[0], { connection: aws.id, data: { n: 2 } });
    await assertQuiet([rx.a2, rx.b1], 300);
    assert.equal(bws.messages.length, 0);
    assert.ok(a2.connectionId !== a1.connectionId);
  });

  test('server-side join: a room publish then reaches the user; leave stops it', async (t) => {
    const { ctx, aws, bws, asse, rx } = await people(t);
    let res = await api(ctx.url, 'PUT', '/rooms/side/members/alice');
    assert.equal(res.status, 200, res.text);
    // the SSE stream carries its one room only: skipped
    assert.deepEqual(res.json, { user: 'alice', room: 'side', connections: 4, joined: 3, refused: 0, skipped: 1 });
    res = await api(ctx.url, 'PUT', '/rooms/side/members/alice'); // again: already in
    assert.equal(res.json.joined, 3);
    res = await api(ctx.url, 'PUT', '/rooms/members/members/bob'); // the user is the last segment
    assert.deepEqual([res.status, res.json.user, res.json.room], [200, 'bob', 'members'], res.text);
    res = await api(ctx.url, 'POST', '/rooms/side/messages', { body: ['in side'] });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual((await rx.a1.wait(1))[0], ['in side']);
    assert.deepEqual((await rx.a2.wait(1))[0], ['in side']);
    await waitFor(() => aws.messages.length === 1, { message: 'plain WS room message' });
    assert.equal(aws.messages[0].room, 'side');
    assert.deepEqual(aws.messages[0].data, ['in side']);
    await assertQuiet([rx.b1], 300);
    assert.equal(bws.messages.length, 0);
    assert.ok(!asse.events.some((e) => e.data?.includes('in side')));

    res = await api(ctx.url, 'DELETE', '/rooms/side/members/alice');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { user: 'alice', room: 'side', connections: 4, left: 3, skipped: 1 });
    res = await api(ctx.url, 'POST', '/rooms/side/messages', { body: ['after leave'] });
    assert.equal(res.status, 201);
    await assertQuiet([rx.a1, rx.a2], 400, [1, 1]);
    assert.equal(aws.messages.length, 1);
  });

  test('server-side join respects limits.max_rooms_per_connection', async (t) => {
    const ctx = await setup(t, { ...CONFIG, limits: { ...CONFIG.limits, max_rooms_per_connection: 1 } });
    const a1 = await official(ctx, 'alice');
    const rx = receiver(a1);
    let res = await api(ctx.url, 'PUT', '/rooms/one/members/alice');
    assert.deepEqual([res.status, res.json.joined, res.json.refused], [200, 1, 0]);
    res = await api(ctx.url, 'PUT', '/rooms/two/members/alice');
    assert.deepEqual([res.status, res.json.joined, res.json.refused], [200, 0, 1]);
    await api(ctx.url, 'POST', '/rooms/two/messages', { body: ['x'] });
    await assertQuiet([rx], 300);
  });

  test('disconnect shows the reason on every transport; the official client does not reconnect', async (t) => {
    const ctx = await setup(t, CONFIG);
    const a1 = await official(ctx, 'alice', { reconnect: [0, 0, 0] });
    const a2 = await official(ctx, 'alice', { transport: T.ServerSentEvents, reconnect: [0, 0, 0] });
    const a3 = await official(ctx, 'alice', { transport: T.LongPolling, reconnect: [0, 0, 0] });
    const b1 = await official(ctx, 'bob', { reconnect: [0] });
    const aws = await wsWithId(`${ctx.wsUrl}/rooms/lobby/ws?access_token=${token('alice')}`);
    const asse = await sseHttp(`${ctx.url}/rooms/lobby/events?access_token=${token('alice')}`);
    t.after(() => {
      aws.ws.terminate();
      asse.close();
    });
    // first a message: every SignalR transport gets it
    const rxs = [a1, a2, a3].map((c) => receiver(c));
    const sent = await api(ctx.url, 'POST', '/users/alice/messages', { body: ['before'] });
    assert.deepEqual([sent.status, sent.json.connections], [202, 5], sent.text);
    for (const r of rxs) assert.deepEqual((await r.wait(1))[0], ['before']);
    const res = await api(ctx.url, 'DELETE', '/users/alice/connections', { body: { reason: 'kicked by admin' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.user, 'alice');
    assert.equal(res.json.disconnected, 5, res.text);
    for (const c of [a1, a2, a3]) {
      const err = await withTimeout(c.closed, 5000, `${c.label}: onclose`);
      assert.match(String(err?.message), /kicked by admin/, `${c.label}: ${err}`);
    }
    const close = await withTimeout(aws.closed, 5000, 'plain WS close');
    assert.deepEqual(close, { code: 4002, reason: 'kicked by admin' });
    await asse.until((s) => s.ended, 5000, 'SSE end');
    const last = asse.events.at(-1);
    assert.equal(last.type, 'error');
    assert.deepEqual(JSON.parse(last.data), { error: 'kicked by admin' });
    await sleep(500);
    for (const c of [a1, a2, a3]) {
      assert.equal(c.reconnecting, 0, `${c.label} reconnected`);
      assert.equal(c.state, signalR.HubConnectionState.Disconnected);
    }
    assert.equal(b1.state, signalR.HubConnectionState.Connected);
    // one connection: ?reason=
    // the id is read before: once the Close arrives (it may come before the
    // answer, which on Redis waits for the other nodes) the client forgets it
    const b1id = b1.connectionId;
    const one = await api(ctx.url, 'DELETE', `/connections/${b1id}?reason=bye`);
    assert.deepEqual([one.status, one.json], [200, { connection: b1id, connections: 1, disconnected: 1 }]);
    const err = await withTimeout(b1.closed, 5000, 'bob onclose');
    assert.match(String(err?.message), /bye/);
    const gone = await api(ctx.url, 'POST', '/users/alice/messages', { body: 1 });
    assert.equal(gone.status, 404, gone.text);
  });

  test("a held long poll gets a message to its user; its last_id stays the room's", async (t) => {
    const ctx = await setup(t, CONFIG);
    const pub = await api(ctx.url, 'POST', '/rooms/lobby/messages', { body: 'one' });
    assert.equal(pub.status, 201, pub.text);
    const poll = request(`${ctx.url}/rooms/lobby/poll?since=1&access_token=${token('carol')}`);
    await waitFor(async () => (await api(ctx.url, 'POST', '/users/carol/messages', { body: { hi: 'carol' } })).status === 202, {
      message: 'carol reached',
      interval: 20,
    });
    const res = await poll;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.messages, [{ user: 'carol', data: { hi: 'carol' } }]);
    assert.equal(res.json.last_id, 1);
  });

  test('disconnect answers a held long poll with the reason', async (t) => {
    const ctx = await setup(t, CONFIG);
    const poll = request(`${ctx.url}/rooms/lobby/poll?access_token=${token('carol')}`);
    // the poll is registered once the hub has it: until then, 404
    await waitFor(async () => (await api(ctx.url, 'DELETE', '/users/carol/connections?reason=stop%20polling')).status === 200, {
      message: 'carol disconnected',
      interval: 20,
    });
    const res = await poll;
    assert.equal(res.status, 200);
    assert.equal(res.json.error, 'stop polling');
    assert.deepEqual(res.json.messages, []);
    assert.match(res.headers.get('x-crier-connection-id') ?? '', ID_RE);
  });

  test('every error path: API key, unknown user or connection, bad bodies', async (t) => {
    const ctx = await setup(t, CONFIG);
    const a1 = await official(ctx, 'alice');
    const paths = [
      ['POST', '/users/alice/messages', { body: 1 }],
      ['POST', `/connections/${a1.connectionId}/messages`, { body: 1 }],
      ['PUT', '/rooms/r/members/alice', {}],
      ['DELETE', '/rooms/r/members/alice', {}],
      ['DELETE', '/users/alice/connections', {}],
      ['DELETE', `/connections/${a1.connectionId}`, {}],
    ];
    for (const [method, path, opts] of paths) {
      assertJsonError(await api(ctx.url, method, path, { ...opts, auth: null }), 401, `${method} ${path} no key`);
      assertJsonError(await api(ctx.url, method, path, { ...opts, auth: `Bearer ${token('alice')}` }), 403, `${method} ${path} token`);
      assertJsonError(await api(ctx.url, method, path, { ...opts, auth: 'Bearer not-the-key-0123456789' }), 401, `${method} ${path} bad key`);
    }
    let res = await api(ctx.url, 'POST', '/users/nobody/messages', { body: 1 });
    assertJsonError(res, 404);
    assert.equal(res.json.error, 'no such user');
    for (const [method, path] of [
      ['PUT', '/rooms/r/members/nobody'],
      ['DELETE', '/rooms/r/members/nobody'],
      ['DELETE', '/users/nobody/connections'],
    ])
      assert.equal((await api(ctx.url, method, path)).json.error, 'no such user', path);
    res = await api(ctx.url, 'POST', '/connections/NoSuchConnection/messages', { body: 1 });
    assertJsonError(res, 404);
    assert.equal(res.json.error, 'no such connection');
    assertJsonError(await api(ctx.url, 'DELETE', '/connections/NoSuchConnection'), 404);
    assertJsonError(await api(ctx.url, 'POST', '/connections/bad.id/messages', { body: 1 }), 400);
    assertJsonError(await api(ctx.url, 'POST', '/users/alice/messages', { body: '{"bad', json: false, headers: { 'Content-Type': 'application/json' } }), 400);
    assertJsonError(await api(ctx.url, 'POST', '/users/alice/messages?target=no-such!', { body: 1 }), 400);
    assertJsonError(await api(ctx.url, 'DELETE', '/users/alice/connections', { body: '[1]', json: false }), 400);
    assertJsonError(await api(ctx.url, 'DELETE', '/users/alice/connections', { body: { reason: 5 } }), 400);
    assertJsonError(await api(ctx.url, 'DELETE', `/users/alice/connections?reason=${'x'.repeat(121)}`), 400);
    assertJsonError(await api(ctx.url, 'PUT', '/rooms/bad%20room/members/alice'), 400);
    // none of that touched alice
    assert.equal(a1.state, signalR.HubConnectionState.Connected);
  });
});
