// The connect proxy (upstream.connect) with the Redis backplane, on two
// nodes sharing one Redis (README "Upstream hub methods", Connect proxy):
// negotiate is answered by node A, which asks the proxy and signs its
// verdict (user id, room rights) into the connection token with
// upstream.connect_secret; the transport goes to node B, which makes the
// connection from the token with no call of its own. The user id a later
// upstream call sees on B is the proxy's, on every transport; a token whose
// signed part is altered, or that carries no verdict, is refused (403)
// before anything is made, and the real token still works after.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { request } from '../lib/http.js';
import { startRedis } from '../lib/redis.js';
import { startCrier, stopClean } from '../lib/server.js';
import { signalR, T, invoke } from '../lib/signalr.js';
import { withTimeout } from '../lib/util.js';
import { wsRefusal } from '../lib/ws.js';

const onRedis = process.env.CRIER_TEST_BACKPLANE === 'redis';
// Brings its own Redis and two nodes: runs in the memory pass only.
const ownRedis = onRedis ? 'starts its own Redis: run in the memory pass' : false;
const SECRET = 'a-connect-secret-every-node-shares-0123456789';

async function startBackend() {
  const seen = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const body = JSON.parse(raw || '{}');
      seen.push({ path: req.url, body });
      let answer = { error: 'no route' };
      if (req.url === '/connect') {
        const cookie = body.headers?.Cookie ?? '';
        answer = cookie.includes('session=good')
          ? { user: 'alice', rooms: { subscribe: ['chat.*'], publish: ['chat.*'] } }
          : { error: 'who are you?' };
      } else if (req.url === '/whoami') {
        answer = { result: { user: body.user, connection_id: body.connection_id } };
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

// The official client with its negotiate sent to node `a` and everything
// else (the transport, sends) to node `b`.
function splitClient(a, b, transport) {
  class Split extends signalR.DefaultHttpClient {
    send(req) {
      if (req.url.includes('/negotiate')) req.url = req.url.replace(b, a);
      return super.send(req);
    }
  }
  return new signalR.HubConnectionBuilder()
    .withUrl(`${b}/hubs/chat`, { transport, headers: { Cookie: 'session=good' }, httpClient: new Split(signalR.NullLogger.instance) })
    .configureLogging(signalR.LogLevel.None)
    .build();
}

const negotiateOn = (base, cookie = 'session=good') =>
  request(`${base}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST', headers: { Cookie: cookie } });

describe('connect proxy on two nodes sharing one Redis', { timeout: 90_000, skip: ownRedis }, () => {
  let redis, backend, a, b;
  before(async () => {
    redis = await startRedis();
    backend = await startBackend();
    const config = {
      backplane: { type: 'redis', url: redis.url, key_prefix: 'proxy-two:' },
      hubs: { chat: { path: '/hubs/chat', methods: { Whoami: { upstream: `${backend.url}/whoami` }, JoinRoom: { action: 'join' } } } },
      upstream: { timeout_ms: 2000, connect: `${backend.url}/connect`, connect_secret: SECRET },
    };
    a = await startCrier(config);
    b = await startCrier(config);
  });
  after(async () => {
    if (a) await stopClean(a);
    if (b) await stopClean(b);
    if (backend) await backend.close();
    if (redis) await redis.stop();
  });

  for (const [name, transport] of [['WebSockets', T.WebSockets], ['ServerSentEvents', T.ServerSentEvents], ['LongPolling', T.LongPolling]]) {
    test(`${name}: negotiated on A, carried by B: the proxy's user is the connection's`, async () => {
      const asked = backend.seen.filter((s) => s.path === '/connect').length;
      const conn = splitClient(a.url, b.url, transport);
      try {
        await withTimeout(conn.start(), 10_000, `${name}: start`);
        assert.equal(backend.seen.filter((s) => s.path === '/connect').length, asked + 1, 'the proxy was asked once');
        const me = await invoke(conn, 'Whoami');
        assert.equal(me.user, 'alice');
        assert.equal(me.connection_id, conn.connectionId);
        // the proxy's room rights are the connection's (auth is off here: the join just works)
        assert.equal((await invoke(conn, 'JoinRoom', 'chat.lobby')).room, 'chat.lobby');
      } finally {
        await conn.stop();
      }
    });
  }

  test('a token altered, or without the proxy\'s verdict, is refused with 403; the real one still works', async () => {
    const res = await negotiateOn(a.url);
    assert.equal(res.status, 200, res.text);
    const token = res.json.connectionToken;
    const [base, payload, mac] = token.split('.');
    assert.equal(base.length, 22, token);
    assert.ok(payload && mac, `a signed token: ${token}`);
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    assert.equal(claims.u, 'alice');
    const forgedPayload = Buffer.from(JSON.stringify({ ...claims, u: 'mallory' })).toString('base64url');
    const forged = `${base}.${forgedPayload}.${mac}`;
    const bare = base;
    const otherMac = `${mac.slice(0, -2)}${mac.at(-2) === 'A' ? 'B' : 'A'}${mac.at(-1)}`;
    for (const bad of [forged, bare, `${base}.${payload}.${otherMac}`]) {
      const ws = await wsRefusal(`${b.wsUrl}/hubs/chat?id=${bad}`);
      assert.equal(ws.status, 403, `${bad}: ${ws.body}`);
      assert.match(JSON.parse(ws.body).error, /connection token/);
      const lp = await request(`${b.url}/hubs/chat?id=${bad}&_=1`);
      assert.equal(lp.status, 403, `${bad}: ${lp.text}`);
      const post = await request(`${a.url}/hubs/chat?id=${bad}`, { method: 'POST', body: '{"protocol":"json","version":1}\x1e' });
      assert.equal(post.status, 403, `${bad}: ${post.text}`);
    }
    // nothing was claimed by the refused attempts: the real token makes its connection on B
    const { openWs } = await import('../lib/ws.js');
    const ws = await openWs(`${b.wsUrl}/hubs/chat?id=${token}`);
    try {
      ws.ws.send('{"protocol":"json","version":1}\x1e');
      ws.ws.send('{"type":1,"invocationId":"1","target":"Whoami","arguments":[]}\x1e');
      await ws.until((c) => c.texts.join('').includes('"invocationId":"1"'), 5000, 'the Whoami completion');
      const done = ws.texts.join('').split('\x1e').filter(Boolean).map((r) => JSON.parse(r)).find((r) => r.invocationId === '1');
      assert.equal(done.result.user, 'alice');
      // a later request with the whole token on the node that does not hold the
      // connection is forwarded to B (which answers that this one sends over its socket)
      const fwd = await request(`${a.url}/hubs/chat?id=${token}`, { method: 'POST', body: '{"type":6}\x1e' });
      assert.equal(fwd.status, 405, fwd.text);
      assert.match(fwd.text, /WebSocket/);
    } finally {
      ws.close();
    }
  });

  test('the proxy\'s refusal still refuses the negotiate', async () => {
    const res = await negotiateOn(a.url, 'session=nope');
    assert.equal(res.status, 403, res.text);
    assert.deepEqual(res.json, { error: 'who are you?' });
  });
});
