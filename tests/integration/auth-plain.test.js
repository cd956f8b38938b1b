// Access control on the plain surfaces and the operator endpoints (README
// "Access control", "What each endpoint needs"): SSE, long poll, publish,
// the plain WebSocket, room info, /metrics, /stats/events and the dashboard,
// with and without tokens (Authorization: Bearer, ?access_token=) and API
// keys; every way a token is refused answers 401 with the reason; a
// WebSocket upgrade is refused before the upgrade; and without an "auth"
// section everything stays open, with a warning at start.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import EventSource from 'eventsource';

import { assertJsonError, parseRawResponse, rawConnect, rawRequest, request } from '../lib/http.js';
import { removeTempFile, startCrier, startFor, stopClean, writeTempFile } from '../lib/server.js';
import { sseHttp } from '../lib/sse.js';
import { makeKeys, mintToken, nowS } from '../lib/token.js';
import { waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

const SECRET = 'a-test-hmac-secret-of-some-length-0123456789';
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'crier-test';
const API_KEY = 'test-api-key-7f3c9a';
const { rsa } = makeKeys();
const otherRsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

// public.*: anyone; members.*: any token; news.*: anyone reads, the server
// (an API key) publishes; anything else: the token's rooms claim.
const authConfig = (publicKeyFile) => ({
  limits: { poll_timeout_s: 1 },
  auth: {
    jwt: {
      hmac_secret: SECRET,
      public_key_file: publicKeyFile,
      algorithms: ['HS256', 'RS256'],
      issuer: ISSUER,
      audience: AUDIENCE,
      leeway_s: 0,
    },
    rooms: [
      { match: 'public.*', subscribe: 'public', publish: 'public' },
      { match: 'members.*', subscribe: 'token', publish: 'token' },
      { match: 'news.*', subscribe: 'public', publish: 'api_key' },
      { match: 'chat.*', subscribe: 'claim', publish: 'claim' },
    ],
    api_keys: [API_KEY],
    protect_admin: true,
  },
});

// A token with the right issuer and audience, valid for an hour; claims
// and options override.
function token(claims = {}, { alg = 'HS256', secret = SECRET, privateKey = rsa.privateKey } = {}) {
  const body = { iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: nowS() + 3600, iat: nowS(), ...claims };
  return mintToken({ alg, secret, privateKey, claims: body });
}

const bearer = (t) => ({ Authorization: `Bearer ${t}` });

// The token with one character of its signature changed (in the middle:
// the last one also carries padding bits).
function badSignature(t) {
  const [h, p, sig] = t.split('.');
  const i = Math.floor(sig.length / 2);
  return `${h}.${p}.${sig.slice(0, i)}${sig[i] === 'A' ? 'B' : 'A'}${sig.slice(i + 1)}`;
}

// A 401: JSON error with the reason, and the Bearer challenge.
function assert401(res, what, reason = /./) {
  assertJsonError(res, 401, what);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/, `${what}: WWW-Authenticate`);
  assert.match(res.json.error, reason, `${what}: the reason`);
}

function assert403(res, what, reason = /./) {
  assertJsonError(res, 403, what);
  assert.match(res.json.error, reason, `${what}: the reason`);
}

// A WebSocket upgrade that must be refused before the upgrade: the HTTP
// status, headers and JSON body of 'unexpected-response'.
function refusedUpgrade(url, headers = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, json: JSON.parse(body) }));
      });
      ws.on('open', () => {
        ws.terminate();
        reject(new Error(`${url}: the upgrade was accepted`));
      });
      ws.on('error', () => {});
    }),
    5000,
    `${url}: no answer to the upgrade`,
  );
}

function curl(args) {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', ...args], { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

describe('auth on', () => {
  let srv, keyFile;
  before(async () => {
    keyFile = writeTempFile('public.pem', rsa.publicKey);
    srv = await startCrier(authConfig(keyFile));
  });
  after(async () => {
    await stopClean(srv);
    removeTempFile(keyFile);
  });

  test('SSE: a public room is open; a token room needs a token; a claim room needs the claim', async () => {
    const open = await sseHttp(`${srv.url}/rooms/public.a/events`);
    assert.equal(open.status, 200);
    open.close();
    assert401(await request(`${srv.url}/rooms/members.a/events`), 'members room, no token', /token/);
    const member = await sseHttp(`${srv.url}/rooms/members.a/events`, { headers: bearer(token()) });
    assert.equal(member.status, 200);
    member.close();
    assert401(await request(`${srv.url}/rooms/chat.a/events`), 'claim room, no token');
    const noClaim = token({ rooms: { subscribe: ['chat.b'] } });
    assert403(await request(`${srv.url}/rooms/chat.a/events`, { headers: bearer(noClaim) }), 'claim room, other claim');
    const claim = token({ rooms: { subscribe: ['chat.*'] } });
    const s = await sseHttp(`${srv.url}/rooms/chat.a/events`, { headers: bearer(claim) });
    assert.equal(s.status, 200);
    s.close();
    const q = await sseHttp(`${srv.url}/rooms/chat.a/events?access_token=${claim}`);
    assert.equal(q.status, 200, '?access_token= works as the header does');
    q.close();
  });

  test('curl: 401 with WWW-Authenticate: Bearer and a JSON reason, 200 with the token', async () => {
    const out = await curl(['-i', `${srv.url}/rooms/members.a/poll`]);
    assert.match(out, /^HTTP\/1\.1 401 /);
    assert.match(out, /\r\nWWW-Authenticate: Bearer\r\n/i);
    assert.match(out, /\{"error":"[^"]+"\}$/);
    const ok = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${token()}`, `${srv.url}/rooms/members.a/poll`]);
    assert.equal(ok, '200');
  });

  test('long poll: the subscribe right, by header or query', async () => {
    const sub = token({ rooms: { subscribe: ['chat.b'] } });
    // The polls let in are held until poll_timeout_s: side by side.
    const [publicPoll, headerPoll, queryPoll] = await Promise.all([
      request(`${srv.url}/rooms/public.b/poll`),
      request(`${srv.url}/rooms/chat.b/poll`, { headers: bearer(sub) }),
      request(`${srv.url}/rooms/chat.b/poll?access_token=${sub}`),
    ]);
    assert.equal(publicPoll.status, 200);
    assert401(await request(`${srv.url}/rooms/chat.b/poll`), 'poll, no token');
    assert.equal(headerPoll.status, 200);
    assert.equal(queryPoll.status, 200);
    assert403(await request(`${srv.url}/rooms/chat.c/poll`, { headers: bearer(sub) }), 'poll, room not claimed');
    // HEAD is checked as GET is
    assert.equal((await request(`${srv.url}/rooms/chat.c/poll`, { method: 'HEAD' })).status, 401);
  });

  test('publish: the publish right; an api_key room takes only an API key', async () => {
    const post = (room, headers = {}, query = '') =>
      request(`${srv.url}/rooms/${room}/messages${query}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body: '{"n":1}',
      });
    assert.equal((await post('public.c')).status, 201);
    assert401(await post('chat.c'), 'publish, no token');
    const subOnly = token({ rooms: { subscribe: ['chat.*'] } });
    assert403(await post('chat.c', bearer(subOnly)), 'publish with a subscribe-only token', /publish/);
    const pub = token({ rooms: { publish: ['chat.c'] } });
    assert.equal((await post('chat.c', bearer(pub))).status, 201);
    assert.equal((await post('chat.c', {}, `?access_token=${pub}`)).status, 201);
    // news.*: the server only
    assert403(await post('news.c'), 'api_key room, anonymous', /API key/i);
    assert403(await post('news.c', bearer(token({ rooms: { publish: ['*'] } }))), 'api_key room, a token', /API key/i);
    assert.equal((await post('news.c', bearer(API_KEY))).status, 201);
    // the key in the query too (a client that cannot send a header; make bench's loadgen)
    assert.equal((await post('news.c', {}, `?access_token=${encodeURIComponent(API_KEY)}`)).status, 201);
    assert401(await post('news.c', bearer('not-a-key-nor-a-token')), 'unknown key');
  });

  test('operator endpoints want an API key (protect_admin): 401 without, 403 with a token, 200 with the key', async () => {
    await request(`${srv.url}/rooms/public.d/messages`, { method: 'POST', body: 'x' });
    for (const path of ['/metrics', '/rooms/public.d', '/dashboard.html', '//dashboard.html']) {
      assert401(await request(`${srv.url}${path}`), `${path}, anonymous`, /API key/);
      assert403(await request(`${srv.url}${path}`, { headers: bearer(token()) }), `${path}, a token`, /API key/);
      const ok = await request(`${srv.url}${path}`, { headers: bearer(API_KEY) });
      assert.equal(ok.status, 200, `${path} with the key: ${ok.text.slice(0, 200)}`);
    }
    // the dashboard opened with the key in its URL passes it on to its stream
    const page = await request(`${srv.url}/dashboard.html?access_token=${API_KEY}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /access_token/, 'the page hands its key to /stats/events');
    const viaQuery = await sseHttp(`${srv.url}/stats/events?access_token=${API_KEY}`);
    assert.equal(viaQuery.status, 200);
    viaQuery.close();
    assert401(await request(`${srv.url}/stats/events`), '/stats/events, anonymous', /API key/);
    const stats = await sseHttp(`${srv.url}/stats/events`, { headers: bearer(API_KEY) });
    assert.equal(stats.status, 200);
    stats.close();
    // the other pages and /healthz need nothing, and look at no credential
    assert.equal((await request(`${srv.url}/index.html`)).status, 200);
    assert.equal((await request(`${srv.url}/healthz`, { headers: bearer('garbage') })).status, 200);
  });

  test('WebSocket: refused before the upgrade (401/403), accepted with the header or ?access_token=', async () => {
    let r = await refusedUpgrade(`${srv.wsUrl}/rooms/members.e/ws`);
    assert.equal(r.status, 401);
    assert.match(r.headers['www-authenticate'] ?? '', /^Bearer/);
    assert.match(r.json.error, /token/);
    r = await refusedUpgrade(`${srv.wsUrl}/rooms/chat.e/ws`, bearer(token({ rooms: { subscribe: ['chat.x'] } })));
    assert.equal(r.status, 403);
    assert.equal(typeof r.json.error, 'string');
    r = await refusedUpgrade(`${srv.wsUrl}/rooms/public.e/ws?access_token=garbage`);
    assert.equal(r.status, 401, 'a token that does not verify, even on a public room');

    const sub = token({ rooms: { subscribe: ['chat.e'] } });
    const a = await openWs(`${srv.wsUrl}/rooms/chat.e/ws`, { headers: bearer(sub) });
    const b = await openWs(`${srv.wsUrl}/rooms/chat.e/ws?access_token=${sub}`);
    const pub = token({ sub: 'server-side', rooms: { publish: ['chat.e'] } });
    await request(`${srv.url}/rooms/chat.e/messages`, { method: 'POST', headers: bearer(pub), body: 'hello' });
    await a.waitForMessages(1);
    await b.waitForMessages(1);
    assert.equal(a.messages[0].data, 'hello');
    assert.equal(b.messages[0].data, 'hello');
    a.close();
    b.close();
  });

  test('plain WebSocket publish frames: closed 1008 without the publish right, published with it', async () => {
    const subOnly = token({ sub: 'reader', rooms: { subscribe: ['chat.f'] } });
    const reader = await openWs(`${srv.wsUrl}/rooms/chat.f/ws`, { headers: bearer(subOnly) });
    reader.ws.send('{"from":"reader"}');
    const info = await reader.waitForClose();
    assert.equal(info.code, 1008);
    assert.match(info.reason, /publish/);
    await waitFor(() => /user reader .*1008.*publish/.test(srv.stderr()), { message: 'the refusal is logged with the user' });

    const both = token({ sub: 'writer', rooms: { subscribe: ['chat.f'], publish: ['chat.f'] } });
    const writer = await openWs(`${srv.wsUrl}/rooms/chat.f/ws`, { headers: bearer(both) });
    writer.ws.send('{"from":"writer"}');
    await writer.waitForMessages(1);
    assert.deepEqual(writer.messages[0].data, { from: 'writer' });
    writer.close();
  });

  test('eventsource (npm) with ?access_token=: the stream opens and delivers', async () => {
    const sub = token({ rooms: { subscribe: ['chat.g'] } });
    const es = new EventSource(`${srv.url}/rooms/chat.g/events?access_token=${encodeURIComponent(sub)}`);
    try {
      await withTimeout(new Promise((resolve, reject) => {
        es.onopen = resolve;
        es.onerror = (e) => reject(new Error(`EventSource error: ${e.status ?? e.message}`));
      }), 5000, 'EventSource open');
      const got = new Promise((resolve) => (es.onmessage = (m) => resolve(m.data)));
      await request(`${srv.url}/rooms/chat.g/messages`, { method: 'POST', headers: bearer(API_KEY), body: 'via-key' });
      assert.equal(await withTimeout(got, 5000, 'EventSource message'), '"via-key"');
    } finally {
      es.close();
    }
    // without the token: the error event carries the 401
    const anon = new EventSource(`${srv.url}/rooms/chat.g/events`);
    try {
      const status = await withTimeout(new Promise((resolve) => (anon.onerror = (e) => resolve(e.status))), 5000, 'EventSource error');
      assert.equal(status, 401);
    } finally {
      anon.close();
    }
  });

  test('every refused token: 401 with the reason in the JSON body', async () => {
    const url = `${srv.url}/rooms/members.h/poll`;
    const good = { iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: nowS() + 3600 };
    const cases = [
      ['alg none', mintToken({ alg: 'none', claims: good }), /none|algorithm/i],
      // HS256 signed with the RSA public key as its secret (the classic key confusion)
      ['HS/RS confusion', token({}, { alg: 'HS256', secret: rsa.publicKey }), /signature|algorithm|key/i],
      ['wrong issuer', token({ iss: 'https://evil.test' }), /iss/i],
      ['wrong audience', token({ aud: 'someone-else' }), /aud/i],
      ['expired', token({ exp: nowS() - 60 }), /expired/i],
      ['not yet valid', token({ nbf: nowS() + 3600 }), /valid|nbf|before|yet/i],
      ['bad signature', badSignature(token()), /signature/i],
      ['RS256 signed by another key', token({}, { alg: 'RS256', privateKey: otherRsa }), /signature/i],
    ];
    for (const [what, t, reason] of cases) {
      assert401(await request(url, { headers: bearer(t) }), `${what} (header)`, reason);
      assert401(await request(`${url}?access_token=${t}`), `${what} (query)`, reason);
    }
    // a good RS256 token is taken
    assert.equal((await request(url, { headers: bearer(token({}, { alg: 'RS256' })) })).status, 200);
  });

  test('SignalR hub paths: a credential that does not verify is 401 before SignalR sees it', async () => {
    const negotiate = (headers) =>
      request(`${srv.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST', headers });
    assert401(await negotiate(bearer('garbage')), 'negotiate, bad token', /./);
    assert401(await negotiate(bearer(token({ exp: nowS() - 60 }))), 'negotiate, expired token', /expired/);
    const r = await refusedUpgrade(`${srv.wsUrl}/hubs/chat?access_token=garbage`);
    assert.equal(r.status, 401);
    assert.match(r.headers['www-authenticate'] ?? '', /^Bearer/);
    // a valid token (or none) is SignalR's to judge: not refused here
    assert.notEqual((await negotiate(bearer(token()))).status, 401);
  });

  test('two Authorization headers: 400, on a first request (the acceptor) and a kept-alive one (libmicrohttpd)', async () => {
    const two = `Authorization: Bearer ${API_KEY}\r\nAuthorization: Bearer ${token()}\r\n`;
    const first = await rawRequest(srv.port, `GET /metrics HTTP/1.1\r\nHost: x\r\n${two}\r\n`);
    assert.equal(first.status, 400, first.raw);
    assert.match(parseRawResponse(first.raw).body, /more than one Authorization/);
    const conn = await rawConnect(srv.port);
    conn.send('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => /\r\n\r\n\{[^}]*\}\}/.test(conn.data()), { message: 'the first answer' });
    const firstAnswer = conn.data().length;
    conn.send(`GET /metrics HTTP/1.1\r\nHost: x\r\n${two}\r\n`);
    await waitFor(() => conn.data().length > firstAnswer && conn.data().slice(firstAnswer).includes('}'), { message: 'the second answer' });
    const second = parseRawResponse(conn.data().slice(firstAnswer));
    assert.equal(second.status, 400);
    assert.match(second.body, /more than one Authorization/);
    conn.socket.destroy();
  });

  test('logs: the user on refusals, never a token or the access_token query', async () => {
    const t = token({ sub: 'mallory', rooms: { subscribe: ['chat.z'] } });
    await request(`${srv.url}/rooms/chat.i/poll?access_token=${t}`);
    await waitFor(() => / 403 to 127\.0\.0\.1 user mallory: /.test(srv.stderr()), { message: 'the 403 is logged with the user' });
    const stderr = srv.stderr();
    assert.ok(!stderr.includes(t), 'a token is in the log');
    assert.ok(!stderr.includes(t.split('.')[2]), "a token's signature is in the log");
    assert.doesNotMatch(stderr, /access_token=[^\s"]/, 'an access_token query is in the log');
    assert.ok(!stderr.includes(API_KEY), 'the API key is in the log');
  });
});

test('auth absent: everything open as before, with a warning at start', async (t) => {
  const srv = await startFor(t, {});
  assert.match(srv.stderr(), /warn.*auth/i);
  assert.equal((await request(`${srv.url}/metrics`)).status, 200);
  assert.equal((await request(`${srv.url}/rooms/chat.a/messages`, { method: 'POST', body: 'x' })).status, 201);
  assert.equal((await request(`${srv.url}/rooms/chat.a`)).status, 200);
  // a credential is not looked at: even one that could never verify
  assert.equal((await request(`${srv.url}/rooms/chat.a/poll?since=0`, { headers: bearer('garbage') })).status, 200);
  const ws = await openWs(`${srv.wsUrl}/rooms/chat.a/ws`, { headers: bearer('garbage') });
  ws.ws.send('"from ws"');
  await ws.waitForMessages(1);
  ws.close();
});
