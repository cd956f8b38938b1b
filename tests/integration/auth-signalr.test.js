// Access control on SignalR and token expiry on live connections (issue
// #13): the official @microsoft/signalr client with accessTokenFactory on
// each transport (connect with a token, refused with a bad one, join refused
// without the room's claim and allowed with it, the connection closed at the
// token's exp with a Close message and reconnected with a new token from the
// factory), the checks on a connection's later requests (the same user's
// token, or 401/403), and the plain protocols at exp: WebSocket close 4001,
// SSE `event: error`, a held long poll answered and the next one refused.
// Run on the memory backplane and, by tests/run.sh, on Redis too (where a
// SignalR connection is made by the node that first carries it).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from '../lib/http.js';
import { setup, signalR, T, TRANSPORT_CLASS, receiver, invoke, transportName, assertJoined } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { mintToken, nowS } from '../lib/token.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openWs, wsRefusal } from '../lib/ws.js';

const SECRET = 'srauth-test-secret-0123456789abcdef';
const API_KEY = 'srauth-test-api-key-0123456789';
const CONFIG = {
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'], leeway_s: 0 },
    api_keys: [API_KEY],
    rooms: [
      { match: 'open.*', subscribe: 'public', publish: 'public' },
      { match: 'secret.*', subscribe: 'claim', publish: 'claim' },
      { match: 'hub:chat', subscribe: 'public', publish: 'token' },
    ],
  },
};

// A token for user, valid for expS seconds (exp is in whole seconds).
function token(user, { expS = 300, rooms } = {}) {
  const claims = { sub: user, exp: nowS() + expS };
  if (rooms) claims.rooms = rooms;
  return mintToken({ alg: 'HS256', secret: SECRET, claims });
}

// POST a message to a room with the API key (the server side).
async function publishAsServer(base, room, value) {
  const res = await request(`${base}/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify(value),
  });
  assert.equal(res.status, 201, `publish to ${room}: ${res.status} ${res.text}`);
}

// An official client with accessTokenFactory (factory() is called for each
// token the client asks for); not started. opts: transport, reconnect (an
// array of delays: withAutomaticReconnect).
function build(ctx, factory, { transport, reconnect } = {}) {
  const logs = [];
  let b = new signalR.HubConnectionBuilder()
    .withUrl(ctx.hubUrl(), { transport, accessTokenFactory: factory })
    .configureLogging({ log: (level, m) => level >= signalR.LogLevel.Information && logs.push(m) });
  if (reconnect) b = b.withAutomaticReconnect(reconnect);
  const conn = b.build();
  conn.logs = logs;
  conn.label = `client ${TRANSPORT_CLASS[transport]}`;
  ctx.track({ close: () => withTimeout(conn.stop(), 5000, `${conn.label}: stop()`) });
  return conn;
}

async function start(conn) {
  try {
    await withTimeout(conn.start(), 5000, `${conn.label}: start()`);
  } catch (err) {
    err.message += `\n  client log:\n    ${conn.logs.join('\n    ')}`;
    throw err;
  }
}

const TRANSPORTS = [T.WebSockets, T.ServerSentEvents, T.LongPolling];

for (const transport of TRANSPORTS) {
  const name = TRANSPORT_CLASS[transport];

  describe(`SignalR with tokens over ${name}`, { concurrency: true }, () => {
    test('a valid token connects; a bad one is refused with 401 at negotiate', async (t) => {
      const ctx = await setup(t, CONFIG);
      const good = build(ctx, () => token('alice'), { transport });
      await start(good);
      assert.equal(transportName(good), name);

      const forged = token('mallory').replace(/\.[^.]+$/, '.AAAA'); // a bad signature
      const bad = build(ctx, () => forged, { transport });
      await assert.rejects(withTimeout(bad.start(), 5000, 'bad start()'), /401|Unauthorized/);
      assert.equal(bad.state, signalR.HubConnectionState.Disconnected);
    });

    test('join needs the room claim: refused with a completion error, allowed with it', async (t) => {
      const ctx = await setup(t, CONFIG);
      const plain = build(ctx, () => token('bob'), { transport });
      await start(plain);
      await assert.rejects(invoke(plain, 'JoinRoom', 'secret.a'), /not allowed: .*claim/);
      // the connection is still up and usable
      assertJoined(await invoke(plain, 'JoinRoom', 'open.a'), 'open.a');

      const claimed = build(ctx, () => token('carol', { rooms: { subscribe: ['secret.*'] } }), { transport });
      const got = receiver(claimed);
      await start(claimed);
      assertJoined(await invoke(claimed, 'JoinRoom', 'secret.a'), 'secret.a');
      await publishAsServer(ctx.url, 'secret.a', { n: 1 });
      const calls = await got.wait(1);
      assert.deepEqual(calls[0], [{ n: 1 }]);
      // a room send needs the publish right, which carol's token lacks
      await assert.rejects(invoke(claimed, 'SendToRoom', 'secret.a', 'hi'), /not allowed: .*claim/);
      // broadcast: the rules see the hub's room as "hub:chat" (publish: token)
      assert.ok((await invoke(claimed, 'SendMessage', 'carol', 'hello')) == null);
    });

    test('at exp the server closes with a Close message; the client gets a new token and reconnects', async (t) => {
      const ctx = await setup(t, CONFIG);
      // Short tokens (2-3 s) until the server has closed the connection,
      // long ones after. The client asks for one at negotiate and, on some
      // transports, again to open the transport (the WebSocket's token
      // then moves the connection's end a little later).
      let calls = 0;
      let callsAtClose = null;
      const factory = () => {
        calls++;
        const expS = callsAtClose === null ? 3 : 300;
        return token('dave', { expS, rooms: { subscribe: ['secret.*'] } });
      };
      const conn = build(ctx, factory, { transport, reconnect: [0, 500, 1000, 2000] });
      const got = receiver(conn);
      const reconnecting = new Promise((resolve) =>
        conn.onreconnecting((e) => {
          callsAtClose = calls;
          resolve(e);
        }),
      );
      const reconnected = new Promise((resolve) => conn.onreconnected(resolve));
      await start(conn);
      assertJoined(await invoke(conn, 'JoinRoom', 'secret.r'), 'secret.r');
      const firstId = conn.connectionId;

      const err = await withTimeout(reconnecting, 10_000, 'onreconnecting');
      assert.match(String(err?.message), /token expired/, 'the Close message names the reason');
      await withTimeout(reconnected, 10_000, `onreconnected\n${conn.logs.join('\n')}`);
      assert.ok(calls > callsAtClose, `accessTokenFactory called ${calls} time(s), ${callsAtClose} before the close`);
      assert.notEqual(conn.connectionId, firstId, 'a new connection');
      assert.equal(transportName(conn), name);
      // rooms are not restored by the protocol: the app joins again
      assertJoined(await invoke(conn, 'JoinRoom', 'secret.r'), 'secret.r');
      await publishAsServer(ctx.url, 'secret.r', { after: 'reconnect' });
      const got1 = await got.wait(1);
      assert.deepEqual(got1.at(-1), [{ after: 'reconnect' }]);
      assert.equal(conn.state, signalR.HubConnectionState.Connected);
    });
  });
}

describe('a SignalR connection made with a token', { concurrency: true }, () => {
  // Negotiate (raw) with alice's token, start long polling with it, then
  // try the connection's later requests with other credentials.
  test('its later requests need a token for the same user: 401 without, 403 for another user', async (t) => {
    const ctx = await setup(t, CONFIG);
    const alice = token('alice');
    const auth = (tok) => (tok ? { Authorization: `Bearer ${tok}` } : {});
    const neg = await request(`${ctx.hubUrl()}/negotiate?negotiateVersion=1`, { method: 'POST', headers: auth(alice) });
    assert.equal(neg.status, 200, neg.text);
    const id = neg.json.connectionToken;
    const url = `${ctx.hubUrl()}?id=${id}`;

    const first = await request(`${url}&_=1`, { headers: auth(alice) });
    assert.equal(first.status, 200, `first poll: ${first.text}`);

    const anon = await request(`${url}&_=2`);
    assert.equal(anon.status, 401, anon.text);
    assert.match(anon.json?.error ?? '', /token/);
    const other = await request(`${url}&_=3`, { headers: auth(token('mallory')) });
    assert.equal(other.status, 403, other.text);
    assert.match(other.json?.error ?? '', /another user/);
    const post = await request(url, {
      method: 'POST',
      headers: { ...auth(token('mallory')), 'Content-Type': 'text/plain' },
      body: '{"protocol":"json","version":1}\x1e',
    });
    assert.equal(post.status, 403, post.text);
    const del = await request(url, { method: 'DELETE' });
    assert.equal(del.status, 401, del.text);

    // alice's own token (a fresh one) goes on
    const hs = await request(url, {
      method: 'POST',
      headers: { ...auth(token('alice')), 'Content-Type': 'text/plain' },
      body: '{"protocol":"json","version":1}\x1e',
    });
    assert.equal(hs.status, 200, hs.text);
    const answer = await request(`${url}&_=4`, { headers: auth(alice) });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.text, '{}\x1e');

    // The WebSocket upgrade of a connection alice negotiated: refused before
    // the upgrade without a token (401) and with mallory's (403). With
    // Redis, negotiate makes no connection (the node that first carries it
    // does, with the principal of that request): there the check starts
    // with the first carrier, as for the long polls above.
    if (ctx.srv.config.backplane?.type === 'redis') return;
    const neg2 = await request(`${ctx.hubUrl()}/negotiate?negotiateVersion=1`, { method: 'POST', headers: auth(alice) });
    assert.equal(neg2.status, 200, neg2.text);
    const wsUrl = `${ctx.srv.wsUrl}/hubs/chat?id=${neg2.json.connectionToken}`;
    const anonWs = await wsRefusal(wsUrl);
    assert.equal(anonWs.status, 401, anonWs.body);
    const otherWs = await wsRefusal(`${wsUrl}&access_token=${token('mallory')}`);
    assert.equal(otherWs.status, 403, otherWs.body);
    assert.match(otherWs.body, /another user/);
    const ws = await openWs(`${wsUrl}&access_token=${alice}`);
    ws.ws.send('{"protocol":"json","version":1}\x1e');
    await ws.waitForMessages(1);
    assert.equal(ws.texts[0], '{}\x1e');
    ws.close();
  });

  test('a refreshed token on a later long poll moves the deadline', async (t) => {
    const ctx = await setup(t, CONFIG);
    const short = token('erin', { expS: 3 });
    const auth = (tok) => ({ Authorization: `Bearer ${tok}` });
    // A long-polling connection made with the short token, handshake done.
    const open = async () => {
      const neg = await request(`${ctx.hubUrl()}/negotiate?negotiateVersion=1`, { method: 'POST', headers: auth(short) });
      assert.equal(neg.status, 200, neg.text);
      const u = `${ctx.hubUrl()}?id=${neg.json.connectionToken}`;
      assert.equal((await request(`${u}&_=1`, { headers: auth(short) })).status, 200);
      const hs = await request(u, {
        method: 'POST',
        headers: { ...auth(short), 'Content-Type': 'text/plain' },
        body: '{"protocol":"json","version":1}\x1e',
      });
      assert.equal(hs.status, 200, hs.text);
      return u;
    };
    const url = await open();
    const control = await open(); // never refreshed: closed at exp
    assert.equal((await request(`${control}&_=2`, { headers: auth(short) })).text, '{}\x1e');
    const long = token('erin', { expS: 300 });
    assert.equal((await request(`${url}&_=2`, { headers: auth(long) })).text, '{}\x1e');
    // past the first token's exp, a poll with the long one is held, not closed
    await sleep(4200);
    const held = request(`${url}&_=3`, { headers: auth(long), timeout: 10_000 });
    const pub = await request(url, {
      method: 'POST',
      headers: { ...auth(long), 'Content-Type': 'text/plain' },
      body: '{"type":1,"target":"SendMessage","arguments":["erin","still here"]}\x1e',
    });
    assert.equal(pub.status, 200, pub.text);
    const res = await held;
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, /still here/);
    assert.doesNotMatch(res.text, /"type":7/);
    // the control connection got its Close message (its poll with the long
    // token is erin's, so it is let in: the connection is over)
    const closed = await request(`${control}&_=3`, { headers: auth(long), timeout: 10_000 });
    assert.match(closed.text, /"type":7.*token expired/, `control: ${closed.status} ${closed.text}`);
  });
});

describe('plain protocols at a token\'s exp', { concurrency: true }, () => {
  test('a WebSocket is closed with 4001 "token expired"', async (t) => {
    const ctx = await setup(t, CONFIG);
    const tok = token('frank', { expS: 3 });
    const ws = await openWs(`${ctx.srv.wsUrl}/rooms/open.w/ws?access_token=${tok}`);
    t.after(() => ws.close());
    const info = await ws.waitForClose(8000);
    assert.deepEqual(info, { code: 4001, reason: 'token expired' });
  });

  test('an SSE stream ends with an error event', async (t) => {
    const ctx = await setup(t, CONFIG);
    const tok = token('grace', { expS: 3 });
    const s = await sseHttp(`${ctx.url}/rooms/open.s/events?access_token=${tok}`);
    t.after(() => s.close());
    assert.equal(s.status, 200);
    await s.waitForEnd(8000);
    const last = s.events.at(-1);
    assert.equal(last?.type, 'error', JSON.stringify(s.events));
    assert.deepEqual(JSON.parse(last.data), { error: 'token expired' });
  });

  test('a held long poll is answered at exp; the next poll gets 401', async (t) => {
    const ctx = await setup(t, CONFIG);
    const tok = token('heidi', { expS: 3 });
    const t0 = Date.now();
    const res = await request(`${ctx.url}/rooms/open.p/poll`, {
      headers: { Authorization: `Bearer ${tok}` },
      timeout: 20_000,
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.messages, []);
    assert.ok(Date.now() - t0 < 15_000, 'answered at exp, not at the poll timeout');
    await waitFor(async () => {
      const next = await request(`${ctx.url}/rooms/open.p/poll`, { headers: { Authorization: `Bearer ${tok}` }, timeout: 5000 });
      return next.status === 401 && /expired/.test(next.json?.error ?? '');
    }, { timeout: 5000, message: 'the next poll is refused 401 (token expired)' });
  });
});
