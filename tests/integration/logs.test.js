// Logs an operator can live with (README "Logs"): log.format "json" makes
// every stderr line one JSON object (checked with jq, line by line); the
// access log (log.access) has a line per HTTP request and per WebSocket open
// and close, with method, path (never the query, where access_token is),
// status, bytes, duration, client address, user and transport; refusals
// name the method and path; tokens and API keys never appear; the start
// line names the version, config file and backplane; log.max_lines_per_s
// bounds a flood, with a "suppressed N lines" warning; a shutdown with many
// clients prints counts, not a line per client.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

import { request } from '../lib/http.js';
import { startCrier, stopClean } from '../lib/server.js';
import { T, connect, invoke, rawHub } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { mintToken, nowS } from '../lib/token.js';
import { waitFor } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

const SECRET = 'logs-test-hmac-secret-0123456789abcdefghij';
const API_KEY = 'logs-test-api-key-5e1f0c';
const authConfig = {
  auth: {
    jwt: { hmac_secret: SECRET },
    rooms: [{ match: '*', subscribe: 'token', publish: 'token' }],
    api_keys: [API_KEY],
  },
};
const token = mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: 'alice', exp: nowS() + 3600 } });
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

// A context for tests/lib/signalr.js's connect and rawHub on srv.
function hubContext(srv) {
  const clients = [];
  return {
    url: srv.url,
    wsUrl: srv.wsUrl,
    hubUrl: (p = '/hubs/chat') => `${srv.url}${p}`,
    clients,
    track: (c) => clients.push(c),
  };
}

// Every line of text is one JSON object, as jq reads them one at a time.
function parseJsonLines(text) {
  const lines = text.split('\n').filter((l) => l !== '');
  const objects = lines.map((l, i) => {
    try {
      return JSON.parse(l);
    } catch (err) {
      assert.fail(`stderr line ${i + 1} is not JSON (${err.message}): ${l}`);
    }
  });
  for (const o of objects) assert.equal(typeof o, 'object');
  const jq = spawnSync('jq', ['-c', '.'], { input: text, encoding: 'utf8' });
  assert.equal(jq.status, 0, `jq: ${jq.stderr}`);
  assert.equal(jq.stdout.split('\n').filter(Boolean).length, lines.length, 'jq reads one value a line');
  return objects;
}

test('log.format json: every line parses with jq; access and connection lines carry their fields; no secrets', async (t) => {
  const srv = await startCrier({ ...authConfig, log: { format: 'json', access: true } });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await srv.stop();
  });

  // HTTP: a publish with the API key, a long poll and an SSE stream with a
  // token in the query, a refused request, a 405, a 404.
  const pub = await request(`${srv.url}/rooms/r1/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...bearer(API_KEY) },
    body: '{"hello":1}',
  });
  assert.equal(pub.status, 201);
  const poll = await request(`${srv.url}/rooms/r1/poll?since=0&access_token=${token}`);
  assert.equal(poll.status, 200);
  const sse = await sseHttp(`${srv.url}/rooms/r1/events?access_token=${token}`);
  assert.equal(sse.status, 200);
  sse.close();
  assert.equal((await request(`${srv.url}/rooms/r1/poll?since=0`)).status, 401);
  assert.equal((await request(`${srv.url}/rooms/r1/messages`, { method: 'PUT', headers: bearer(API_KEY) })).status, 405);
  assert.equal((await request(`${srv.url}/no/such/thing`)).status, 404);
  // A plain WebSocket with the token in its query, closed by the client;
  // a SignalR client.
  const ws = await openWs(`${srv.wsUrl}/rooms/r1/ws?access_token=${token}`);
  ws.ws.close(1000, 'bye');
  await ws.waitForClose();
  const hubConn = await connect(hubContext(srv), { transport: T.WebSockets });
  await invoke(hubConn, 'SendMessage', 'a', 'b').catch(() => {});
  await hubConn.stop();
  await waitFor(() => /"event":"close","path":"\/hubs\/chat"/.test(srv.stderr()), { message: 'the SignalR close line' });

  const r = await stopClean(srv);
  stopped = true;
  const lines = parseJsonLines(r.stderr);
  for (const o of lines) {
    assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['error', 'warn', 'info', 'debug'].includes(o.level), JSON.stringify(o));
    assert.equal(typeof o.tag, 'string');
    assert.equal(typeof o.msg, 'string');
  }
  for (const secret of [token, API_KEY, SECRET]) assert.ok(!r.stderr.includes(secret), 'a secret was logged');
  assert.ok(!r.stderr.includes('access_token'), 'a query string was logged');

  const start = lines.find((o) => /listening on/.test(o.msg));
  assert.ok(start, 'the start line');
  assert.match(start.version, /^\d+\.\d+/);
  assert.equal(start.config, srv.configFile);
  assert.match(start.backplane, srv.config.backplane ? /^redis / : /^memory$/);

  const access = lines.filter((o) => o.tag === 'access');
  const find = (pred, what) => {
    const o = access.find(pred);
    assert.ok(o, `${what}: not in\n${access.map((a) => JSON.stringify(a)).join('\n')}`);
    return o;
  };
  const p = find((o) => o.method === 'POST' && o.path === '/rooms/r1/messages', 'the publish');
  assert.equal(p.status, 201);
  assert.equal(p.bytes_in, 11);
  assert.ok(Number.isInteger(p.bytes_out) && p.bytes_out > 0, JSON.stringify(p));
  assert.equal(p.user, 'api-key');
  assert.equal(p.client, '127.0.0.1');
  assert.equal(p.transport, 'http');
  assert.ok(Number.isInteger(p.duration_ms) && p.duration_ms >= 0);
  const lp = find((o) => o.path === '/rooms/r1/poll' && o.status === 200, 'the long poll');
  assert.equal(lp.user, 'alice');
  assert.equal(lp.transport, 'long_polling');
  const s = find((o) => o.path === '/rooms/r1/events', 'the SSE stream');
  assert.equal(s.transport, 'sse');
  assert.equal(s.user, 'alice');
  find((o) => o.path === '/rooms/r1/poll' && o.status === 401, 'the refused poll');
  find((o) => o.method === 'PUT' && o.status === 405, 'the 405');
  find((o) => o.path === '/no/such/thing' && o.status === 404, 'the 404');
  find((o) => o.event === 'open' && o.path === '/rooms/r1/ws' && o.transport === 'websocket', 'the WebSocket open');
  const closed = find((o) => o.event === 'close' && o.path === '/rooms/r1/ws', 'the WebSocket close');
  assert.equal(closed.close_code, 1000);
  assert.equal(closed.client, '127.0.0.1');
  assert.equal(closed.closed_by, 'client');
  assert.ok(closed.duration_ms >= 0);
  find((o) => o.event === 'open' && o.path === '/hubs/chat', 'the SignalR WebSocket open');
  find((o) => o.path === '/hubs/chat/negotiate' && o.transport === 'signalr', 'the negotiate');

  // Refusals name the method and the path.
  const refusal = lines.find((o) => o.tag === 'http' && /^405 to 127\.0\.0\.1/.test(o.msg));
  assert.ok(refusal, 'the 405 line');
  assert.match(refusal.msg, /\[PUT \/rooms\/r1\/messages\]$/);
  const unauthorized = lines.find((o) => o.tag === 'http' && /^401 to /.test(o.msg));
  assert.match(unauthorized.msg, /\[GET \/rooms\/r1\/poll\]$/);
});

test('log.max_lines_per_s bounds a flood of access lines, with one "suppressed" line a second', async (t) => {
  const srv = await startCrier({ log: { access: true, max_lines_per_s: 20 } });
  t.after(() => stopClean(srv));
  const t0 = Date.now();
  const before = srv.stderr().length;
  for (let i = 0; i < 300; i++) assert.equal((await request(`${srv.url}/healthz`)).status, 200);
  const seconds = Math.ceil((Date.now() - t0) / 1000) + 1;
  await waitFor(() => /suppressed \d+ lines/.test(srv.stderr().slice(before)), { message: 'the suppressed line' });
  const out = srv.stderr().slice(before);
  const accessLines = out.split('\n').filter((l) => / access: GET \/healthz /.test(l)).length;
  assert.ok(accessLines >= 1 && accessLines <= 20 * (seconds + 1), `${accessLines} access lines in ${seconds} s`);
  assert.match(out, /warn  log: suppressed \d+ lines \(log\.max_lines_per_s is 20\) suppressed=\d+/);
  const m = await request(`${srv.url}/metrics`);
  const dropped = Number(/^crier_log_lines_suppressed_total (\d+)$/m.exec(m.text)?.[1]);
  assert.ok(dropped >= 300 - 20 * (seconds + 1), `suppressed ${dropped}`);
});

test('shutdown with many clients prints counts, not a line per client', async (t) => {
  const srv = await startCrier({ signalr: { negotiate_rate_per_s: 1000000, negotiate_burst: 1000000 } });
  const ctx = hubContext(srv);
  t.after(() => Promise.all(ctx.clients.map((c) => c.close().catch(() => {}))));
  const N = 200;
  for (let i = 0; i < N; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = await rawHub(ctx);
        await c.handshake();
      }),
    );
  }
  const plain = await Promise.all(Array.from({ length: 20 }, () => openWs(`${srv.wsUrl}/rooms/many/ws`)));
  t.after(() => plain.forEach((c) => c.close()));
  const mark = srv.stderr().length;
  const r = await stopClean(srv);
  const shutdown = r.stderr.slice(mark).split('\n').filter(Boolean);
  assert.ok(shutdown.length <= 10, `${shutdown.length} lines at shutdown:\n${shutdown.join('\n')}`);
  assert.ok(shutdown.some((l) => l.includes(`closed ${N} SignalR connection(s): server shutting down`)), shutdown.join('\n'));
});
