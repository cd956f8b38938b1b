// CORS and the WebSocket Origin check (README "Origins and CORS"):
// cors.allowed_origins answered on every HTTP endpoint (Access-Control-*
// headers for an allowed Origin, preflight OPTIONS 204 / 403) and checked on
// every WebSocket handshake (403 before the upgrade); without a list, no
// CORS headers, OPTIONS a plain 204 and any WebSocket Origin taken.

import assert from 'node:assert/strict';
import { describe, test, before, after } from 'node:test';
import { assertJsonError, publish, request } from '../lib/http.js';
import { startCrier, stopClean } from '../lib/server.js';
import { negotiate } from '../lib/signalr.js';
import { openWs, wsRefusal } from '../lib/ws.js';

const APP = 'http://app.example:3000';
const EVIL = 'http://evil.example';

// Every HTTP surface, by what its OPTIONS answers in Access-Control-Allow-Methods.
const ROUTES = [
  ['/rooms/r/messages', 'POST'],
  ['/rooms/r/events', 'GET, HEAD'],
  ['/rooms/r/poll', 'GET, HEAD'],
  ['/rooms/r/ws', 'GET, HEAD'],
  ['/rooms/r', 'GET, HEAD'],
  ['/hubs/chat/negotiate', 'POST'],
  ['/hubs/chat', 'GET, HEAD, POST, DELETE'],
  ['/healthz', 'GET, HEAD'],
  ['/metrics', 'GET, HEAD'],
];

const preflight = (base, path, origin, method = 'POST') =>
  request(`${base}${path}`, {
    method: 'OPTIONS',
    headers: {
      ...(origin ? { Origin: origin } : {}),
      'Access-Control-Request-Method': method,
      'Access-Control-Request-Headers': 'authorization, x-requested-with',
    },
  });

const corsHeaders = (res) => [...res.headers.keys()].filter((k) => k.startsWith('access-control-'));
const vary = (res) => (res.headers.get('vary') ?? '').split(',').map((v) => v.trim().toLowerCase());

// An allowed origin's answer: its CORS headers.
function assertAllowed(res, origin, what, { credentials = false, wildcard = false } = {}) {
  assert.equal(res.headers.get('access-control-allow-origin'), wildcard ? '*' : origin, `${what}: Allow-Origin`);
  if (!wildcard) assert.ok(vary(res).includes('origin'), `${what}: Vary "${res.headers.get('vary')}"`);
  assert.equal(res.headers.get('access-control-allow-credentials'), credentials ? 'true' : null, `${what}: Allow-Credentials`);
  assert.match(res.headers.get('access-control-expose-headers') ?? '', /\bRetry-After\b/, `${what}: Expose-Headers`);
}

// An event stream's answer (its status and headers), left open until
// res.close().
async function streamHead(url, headers) {
  const ctl = new AbortController();
  const res = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: ctl.signal });
  res.close = () => ctl.abort();
  return res;
}

describe('without cors.allowed_origins (the default)', () => {
  let srv;
  before(async () => (srv = await startCrier({})));
  after(() => stopClean(srv));

  test('OPTIONS answers 204 with Allow and no CORS headers, on every endpoint', async () => {
    for (const [path, methods] of ROUTES) {
      const res = await preflight(srv.url, path, APP);
      assert.equal(res.status, 204, `OPTIONS ${path}: ${res.status} ${res.text}`);
      assert.equal(res.headers.get('allow'), `${methods}, OPTIONS`, `OPTIONS ${path}: Allow`);
      assert.deepEqual(corsHeaders(res), [], `OPTIONS ${path}`);
    }
  });

  test('requests with an Origin get no CORS headers', async () => {
    await publish(srv.url, 'r', 'x');
    const res = await request(`${srv.url}/rooms/r/poll?since=0`, { headers: { Origin: APP } });
    assert.equal(res.status, 200);
    assert.deepEqual(corsHeaders(res), []);
  });

  test('a WebSocket from any origin is taken, as before', async () => {
    const ws = await openWs(`${srv.wsUrl}/rooms/r/ws`, { origin: EVIL });
    ws.close();
  });

  test('the start-up log says the origins are not checked', () => {
    assert.match(srv.stderr(), /cors\.allowed_origins is not set/);
  });
});

describe('with cors.allowed_origins', () => {
  let srv;
  before(async () => (srv = await startCrier({ cors: { allowed_origins: [APP, 'https://other.example'], max_age_s: 321 } })));
  after(() => stopClean(srv));

  test('preflight from an allowed origin: 204, the route\'s methods, the headers clients send, max age', async () => {
    for (const [path, methods] of ROUTES) {
      const res = await preflight(srv.url, path, APP);
      const what = `OPTIONS ${path}`;
      assert.equal(res.status, 204, `${what}: ${res.status} ${res.text}`);
      assert.equal(res.text, '');
      assertAllowed(res, APP, what);
      assert.equal(res.headers.get('access-control-allow-methods'), methods, `${what}: Allow-Methods`);
      const allowHeaders = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      for (const h of ['authorization', 'content-type', 'x-requested-with', 'x-signalr-user-agent', 'last-event-id'])
        assert.ok(allowHeaders.includes(h), `${what}: Allow-Headers lacks ${h}: ${allowHeaders}`);
      assert.equal(res.headers.get('access-control-max-age'), '321', `${what}: Max-Age`);
    }
  });

  test('preflight asking for private network access (Chromium) gets it for an allowed origin', async () => {
    const ask = (origin) => request(`${srv.url}/rooms/r/messages`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Private-Network': 'true' },
    });
    const ok = await ask(APP);
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-private-network'), 'true');
    assert.equal((await preflight(srv.url, '/rooms/r/messages', APP)).headers.get('access-control-allow-private-network'), null);
    assertJsonError(await ask(EVIL), 403);
  });

  test('preflight from an origin not allowed: 403 {"error": "origin not allowed"}', async () => {
    for (const origin of [EVIL, 'http://app.example:3001', 'null', `${APP}.evil`]) {
      for (const [path] of ROUTES) {
        const res = await preflight(srv.url, path, origin);
        assertJsonError(res, 403, `OPTIONS ${path} from ${origin}`);
        assert.deepEqual(res.json, { error: 'origin not allowed' });
        assert.equal(res.headers.get('access-control-allow-origin'), null);
      }
    }
  });

  test('OPTIONS without an Origin (not a browser): 204 with Allow only', async () => {
    const res = await preflight(srv.url, '/rooms/r/messages', null);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('allow'), 'POST, OPTIONS');
    assert.deepEqual(corsHeaders(res), []);
  });

  test('OPTIONS where there is no endpoint: 404; on a bad room name: 400', async () => {
    assertJsonError(await preflight(srv.url, '/rooms/r/nope', APP), 404);
    assertJsonError(await preflight(srv.url, '/nope', APP), 404);
    assertJsonError(await preflight(srv.url, '/rooms/a%20b/messages', APP), 400);
  });

  test('every HTTP surface answers an allowed Origin with Access-Control-Allow-Origin', async () => {
    const h = { Origin: APP };
    const pub = await request(`${srv.url}/rooms/r/messages`, {
      method: 'POST', headers: { ...h, 'Content-Type': 'application/json' }, body: '"hi"',
    });
    assert.equal(pub.status, 201);
    assertAllowed(pub, APP, 'publish');
    const poll = await request(`${srv.url}/rooms/r/poll?since=0`, { headers: h });
    assert.equal(poll.status, 200);
    assertAllowed(poll, APP, 'long poll');
    const sse = await streamHead(`${srv.url}/rooms/r/events`, h);
    sse.close();
    assert.equal(sse.status, 200);
    assertAllowed(sse, APP, 'event stream');
    const info = await request(`${srv.url}/rooms/r`, { headers: h });
    assert.equal(info.status, 200);
    assertAllowed(info, APP, 'room info');
    for (const path of ['/healthz', '/metrics']) {
      const res = await request(`${srv.url}${path}`, { headers: h });
      assert.equal(res.status, 200);
      assertAllowed(res, APP, path);
    }
    const neg = await request(`${srv.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST', headers: h });
    assert.equal(neg.status, 200);
    assertAllowed(neg, APP, 'negotiate');
    const token = neg.json.connectionToken;
    const hubSse = await streamHead(`${srv.url}/hubs/chat?id=${token}`, h);
    assert.equal(hubSse.status, 200);
    assertAllowed(hubSse, APP, 'SignalR event stream');
    const send = await request(`${srv.url}/hubs/chat?id=${token}`, {
      method: 'POST', headers: { ...h, 'Content-Type': 'text/plain;charset=UTF-8' }, body: '{"protocol":"json","version":1}\x1e',
    });
    hubSse.close();
    assert.equal(send.status, 200, send.text);
    assertAllowed(send, APP, 'SignalR send');
    // An error answer carries them too, so that the page can read it.
    const err = await request(`${srv.url}/rooms/r/nope`, { headers: h });
    assertJsonError(err, 404);
    assertAllowed(err, APP, '404');
  });

  test('an Origin not allowed is served without CORS headers (the browser keeps the answer from the page)', async () => {
    const res = await request(`${srv.url}/rooms/r/poll?since=0`, { headers: { Origin: EVIL } });
    assert.equal(res.status, 200);
    assert.deepEqual(corsHeaders(res), []);
    assert.ok(vary(res).includes('origin'), 'Vary: Origin, since the answer depends on it');
  });

  test('WebSocket: an allowed origin, the same origin and no Origin upgrade', async () => {
    for (const origin of [APP, 'https://other.example', srv.url, undefined]) {
      const ws = await openWs(`${srv.wsUrl}/rooms/r/ws`, origin ? { origin } : {});
      ws.close();
    }
  });

  test('WebSocket: another origin gets 403 {"error": "origin not allowed"} before the upgrade', async () => {
    for (const origin of [EVIL, 'http://127.0.0.1:1', 'null']) {
      const res = await wsRefusal(`${srv.wsUrl}/rooms/r/ws`, { origin });
      assert.equal(res.status, 403, `origin ${origin}`);
      assert.deepEqual(JSON.parse(res.body), { error: 'origin not allowed' });
      assert.match(res.headers['content-type'], /^application\/json/);
    }
  });

  test('SignalR WebSocket: an allowed origin upgrades, another gets 403', async () => {
    const neg1 = await negotiate(srv.url);
    const ok = await openWs(`${srv.wsUrl}/hubs/chat?id=${neg1.json.connectionToken}`, { origin: APP });
    ok.close();
    const neg2 = await negotiate(srv.url);
    const res = await wsRefusal(`${srv.wsUrl}/hubs/chat?id=${neg2.json.connectionToken}`, { origin: EVIL });
    assert.equal(res.status, 403);
    assert.deepEqual(JSON.parse(res.body), { error: 'origin not allowed' });
  });

  test('the refusals are logged once each, with the reason', () => {
    assert.match(srv.stderr(), /403 to 127\.0\.0\.1[^\n]*: origin not allowed/);
  });
});

test('a long allowed origin echoed on an event stream with many request headers: the stream works', async (t) => {
  const origin = `https://${'a'.repeat(480)}.example`;
  const srv = await startCrier({ cors: { allowed_origins: [origin], allow_credentials: true } });
  t.after(() => stopClean(srv));
  for (const [fields, size] of [[8, 60], [10, 80], [12, 60], [8, 120]]) {
    const extra = Object.fromEntries(Array.from({ length: fields }, (_, i) => [`x-h${i}`, 'v'.repeat(size)]));
    const room = `long-${fields}-${size}`;
    const sse = await streamHead(`${srv.url}/rooms/${room}/events`, { Origin: origin, ...extra });
    try {
      assert.equal(sse.status, 200);
      assertAllowed(sse, origin, 'event stream', { credentials: true });
      await publish(srv.url, room, 'm'.repeat(900));
      const reader = sse.body.getReader();
      let text = '';
      while (!/m{900}/.test(text)) {
        const { value, done } = await reader.read();
        assert.ok(!done, `the stream ended: ${text}`);
        text += Buffer.from(value).toString();
      }
    } finally {
      sse.close();
    }
  }
});

test('with auth on, a preflight is answered before any access check (it carries no credentials)', async (t) => {
  const srv = await startCrier({
    auth: {
      jwt: { hmac_secret: 'cors-test-secret-0123456789abcdef' },
      rooms: [{ match: '*', subscribe: 'claim', publish: 'api_key' }],
      api_keys: ['cors-test-api-key-0123456789'],
      protect_admin: true,
    },
    cors: { allowed_origins: [APP] },
  });
  t.after(() => stopClean(srv));
  for (const [path, methods] of ROUTES) {
    const res = await preflight(srv.url, path, APP);
    assert.equal(res.status, 204, `OPTIONS ${path}: ${res.status} ${res.text}`);
    assertAllowed(res, APP, `OPTIONS ${path}`);
    assert.equal(res.headers.get('access-control-allow-methods'), methods);
  }
  assertJsonError(await preflight(srv.url, '/rooms/r/messages', EVIL), 403);
});

describe('cors.allowed_origins "*"', () => {
  test('without credentials the answer is "*"; every WebSocket Origin is taken', async (t) => {
    const srv = await startCrier({ cors: { allowed_origins: ['*'] } });
    t.after(() => stopClean(srv));
    const pre = await preflight(srv.url, '/rooms/r/messages', EVIL);
    assert.equal(pre.status, 204);
    assertAllowed(pre, EVIL, 'preflight', { wildcard: true });
    const poll = await request(`${srv.url}/healthz`, { headers: { Origin: EVIL } });
    assertAllowed(poll, EVIL, 'healthz', { wildcard: true });
    const ws = await openWs(`${srv.wsUrl}/rooms/r/ws`, { origin: EVIL });
    ws.close();
  });

  test('with cors.allow_credentials the origin itself is answered, with Allow-Credentials', async (t) => {
    const srv = await startCrier({ cors: { allowed_origins: ['*'], allow_credentials: true } });
    t.after(() => stopClean(srv));
    const pre = await preflight(srv.url, '/hubs/chat/negotiate', EVIL);
    assert.equal(pre.status, 204);
    assertAllowed(pre, EVIL, 'preflight', { credentials: true });
    const neg = await request(`${srv.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST', headers: { Origin: EVIL } });
    assertAllowed(neg, EVIL, 'negotiate', { credentials: true });
  });
});
