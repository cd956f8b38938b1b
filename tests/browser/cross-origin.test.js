// A page served from ANOTHER origin (a second loopback port: a tiny Node
// server with the page, web/crier.js and the official client's signalr.js)
// using crier from headless Chromium: plain publish, SSE, long poll and
// WebSocket, crier.js on each transport and the official SignalR client on
// each transport. It all works when cors.allowed_origins lists the page's
// origin; when it does not, the browser refuses every HTTP answer (CORS) and
// crier refuses the WebSocket (403 before the upgrade). And crier.js's token
// option: sent on every transport, asked for again on each reconnect.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, WEB_ROOT, fileBrowser, openPage, setup } from './helpers.js';
import { mintToken, nowS } from '../lib/token.js';


const browser = fileBrowser();

const FILES = {
  '/crier.js': path.join(WEB_ROOT, 'crier.js'),
  '/signalr.js': path.join(REPO, 'node_modules/@microsoft/signalr/dist/browser/signalr.js'),
};
const PAGE = `<!doctype html><meta charset="utf-8"><title>another origin</title>
<script src="/crier.js"></script><script src="/signalr.js"></script><p id="state">loaded</p>`;

// The page's own server, on a free loopback port: another origin than crier's.
async function pageOrigin(t) {
  const srv = http.createServer((req, res) => {
    const file = FILES[req.url];
    if (file) {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(fs.readFileSync(file));
    } else if (req.url === '/page.html') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(PAGE);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { srv.closeAllConnections(); srv.close(resolve); }));
  return `http://127.0.0.1:${srv.address().port}`;
}

// Runs inside the page: each surface of crier at `base`, used the way a
// browser app would. Each entry is 'ok' or the error the page saw.
async function useEverySurface(base) {
  const out = {};
  const wsBase = base.replace(/^http/, 'ws');
  const within = (p, ms, what) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms))]);
  const publish = async (room, value) => {
    const res = await fetch(`${base}/rooms/${room}/messages`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value),
    });
    const body = await res.json();
    if (res.status !== 201 || typeof body.id !== 'number') throw new Error(`publish: ${res.status}`);
    return body.id;
  };
  const attempt = async (name, f) => {
    try {
      await within(f(), 8000, name);
      out[name] = 'ok';
    } catch (e) {
      out[name] = `${e.name}: ${e.message}`;
    }
  };
  await attempt('publish', () => publish('xo', 'one'));
  await attempt('long poll', async () => {
    const res = await fetch(`${base}/rooms/xo/poll?since=0`);
    const body = await res.json();
    if (!Array.isArray(body.messages) && !Array.isArray(body)) throw new Error(`poll answer ${JSON.stringify(body)}`);
  });
  await attempt('room info', async () => {
    const res = await fetch(`${base}/rooms/xo`);
    if (res.status !== 200) throw new Error(`room info: ${res.status}`);
  });
  await attempt('sse', () => new Promise((resolve, reject) => {
    const es = new EventSource(`${base}/rooms/xo/events`);
    es.onopen = () => publish('xo', 'over sse').catch(reject);
    es.onmessage = (ev) => { if (ev.data.includes('over sse')) { es.close(); resolve(); } };
    es.onerror = () => { es.close(); reject(new Error('EventSource error')); };
  }));
  await attempt('websocket open', () => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}/rooms/xo/ws`);
    ws.onopen = () => { ws.close(); resolve(); };
    ws.onerror = () => reject(new Error('WebSocket error'));
  }));
  await attempt('websocket', () => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}/rooms/xo/ws`);
    ws.onopen = () => publish('xo', 'over ws').catch(reject);
    ws.onmessage = (ev) => { if (String(ev.data).includes('over ws')) { ws.close(); resolve(); } };
    ws.onerror = () => reject(new Error('WebSocket error'));
  }));
  for (const transport of ['websocket', 'sse', 'longpolling']) {
    await attempt(`crier.js ${transport}`, async () => {
      const conn = crier.connect(`${base}/hubs/chat`, { transports: [transport], reconnect: false });
      const got = new Promise((resolve) => conn.on('ReceiveMessage', (u, m) => resolve(m)));
      try {
        await conn.start();
        if (conn.transport !== transport) throw new Error(`connected over ${conn.transport}`);
        await conn.invoke('JoinRoom', 'xo-hub');
        await conn.invoke('SendToRoom', 'xo-hub', 'ann', `crier.js ${transport}`);
        if ((await got) !== `crier.js ${transport}`) throw new Error('wrong message');
      } finally {
        await conn.stop();
      }
    });
  }
  const T = signalR.HttpTransportType;
  for (const [name, transport] of [['WebSockets', T.WebSockets], ['ServerSentEvents', T.ServerSentEvents], ['LongPolling', T.LongPolling]]) {
    await attempt(`signalr ${name}`, async () => {
      const conn = new signalR.HubConnectionBuilder()
        .withUrl(`${base}/hubs/chat`, { transport })
        .configureLogging(signalR.LogLevel.None)
        .build();
      const got = new Promise((resolve) => conn.on('ReceiveMessage', (u, m) => resolve(m)));
      try {
        await conn.start();
        await conn.invoke('JoinRoom', 'xo-sr');
        await conn.invoke('SendToRoom', 'xo-sr', 'bob', `signalr ${name}`);
        if ((await got) !== `signalr ${name}`) throw new Error('wrong message');
      } finally {
        await conn.stop();
      }
    });
  }
  return out;
}

const SURFACES = ['publish', 'long poll', 'room info', 'sse', 'websocket open', 'websocket', 'crier.js websocket', 'crier.js sse',
  'crier.js longpolling', 'signalr WebSockets', 'signalr ServerSentEvents', 'signalr LongPolling'];

test('a page of an allowed origin uses every surface: plain HTTP, SSE, WebSocket, crier.js and the official client', { timeout: 120_000 }, async (t) => {
  const origin = await pageOrigin(t);
  // allow_credentials: the official client sends credentials by default.
  const ctx = await setup(t, browser(), { cors: { allowed_origins: [origin], allow_credentials: true } });
  const page = await openPage(browser(), `${origin}/page.html`);
  t.after(() => page.context().close());
  const out = await page.evaluate(useEverySurface, ctx.url);
  assert.deepEqual(Object.keys(out), SURFACES);
  for (const s of SURFACES) assert.equal(out[s], 'ok', `${s}: ${out[s]}\n${page.log.join('\n')}`);
});

test('a page of an origin not allowed: every HTTP answer kept from it (CORS), its WebSocket refused', { timeout: 120_000 }, async (t) => {
  const origin = await pageOrigin(t);
  // A short poll timeout: an empty poll answers (and is refused by the browser) soon.
  const ctx = await setup(t, browser(), { cors: { allowed_origins: ['https://app.example'] }, limits: { poll_timeout_s: 1 } });
  const page = await openPage(browser(), `${origin}/page.html`);
  t.after(() => page.context().close());
  const out = await page.evaluate(useEverySurface, ctx.url);
  assert.deepEqual(Object.keys(out), SURFACES);
  for (const s of SURFACES) assert.notEqual(out[s], 'ok', `${s} worked from an origin not allowed`);
  for (const s of ['publish', 'long poll', 'room info']) assert.match(out[s], /^TypeError: Failed to fetch/, s);
  assert.match(out.sse, /EventSource error/);
  assert.match(out['websocket open'], /WebSocket error/);
  assert.match(out.websocket, /WebSocket error/);
  // Chromium says why: CORS for the HTTP answers, the 403 for the WebSocket.
  const log = page.log.join('\n');
  assert.match(log, /blocked by CORS policy/);
  assert.match(log, /WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/rooms\/xo\/ws' failed: Error during WebSocket handshake: Unexpected response code: 403/);
  // crier logged the refused WebSockets (plain and hub), once each.
  assert.match(ctx.srv.stderr(), /403 to 127\.0\.0\.1[^\n]*: origin not allowed/);
  const neg = await fetch(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST' });
  assert.equal(neg.status, 200, 'crier itself is fine');
});

test('without cors.allowed_origins: HTTP answers kept from another origin, its WebSocket taken as before', { timeout: 60_000 }, async (t) => {
  const origin = await pageOrigin(t);
  const ctx = await setup(t, browser(), { limits: { poll_timeout_s: 1 } });
  const page = await openPage(browser(), `${origin}/page.html`);
  t.after(() => page.context().close());
  const out = await page.evaluate(useEverySurface, ctx.url);
  assert.match(out.publish, /^TypeError: Failed to fetch/);
  assert.match(out['long poll'], /^TypeError: Failed to fetch/);
  assert.match(out.sse, /EventSource error/);
  assert.match(out['crier.js websocket'], /Failed to fetch/, 'negotiate is HTTP: kept from the page');
  assert.equal(out['websocket open'], 'ok', 'no list: the WebSocket is taken from any origin, as before');
});

test('crier.js token option: Bearer on negotiate, polls and sends, access_token on WebSocket and EventSource, asked again on reconnect', { timeout: 120_000 }, async (t) => {
  const origin = await pageOrigin(t);
  const ctx = await setup(t, browser(), { cors: { allowed_origins: [origin] } });
  const page = await openPage(browser(), `${origin}/page.html`);
  t.after(() => page.context().close());
  const seen = []; // [method, url, authorization]
  page.on('request', async (req) => {
    if (!req.url().startsWith(ctx.url)) return;
    const h = await req.allHeaders().catch(() => ({}));
    seen.push([req.method(), req.url(), h.authorization ?? null]);
  });
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  const r = await page.evaluate(async (base) => {
    const out = {};
    let n = 0;
    window.tokenCalls = () => n;
    for (const transport of ['websocket', 'sse', 'longpolling']) {
      const conn = crier.connect(`${base}/hubs/chat`, {
        transports: [transport],
        reconnect: false,
        token: transport === 'sse' ? async () => `tok-${++n}` : () => `tok-${++n}`,
      });
      await conn.start();
      await conn.invoke('JoinRoom', 'tok');
      out[transport] = n;
      await conn.stop();
    }
    out.fixed = await (async () => {
      const conn = crier.connect(`${base}/hubs/chat`, { transports: ['longpolling'], reconnect: false, token: 'fixed' });
      await conn.start();
      await conn.stop();
      return 'ok';
    })();
    out.badType = (() => { try { crier.connect('/hubs/chat', { token: 42 }); return 'accepted'; } catch (e) { return e.message; } })();
    return out;
  }, ctx.url);
  assert.deepEqual(r, { websocket: 1, sse: 2, longpolling: 3, fixed: 'ok', badType: 'options.token must be a string or a function returning one' });
  await new Promise((res) => setTimeout(res, 200));
  const auth = (m, re) => seen.filter(([method, url]) => method === m && re.test(url)).map((x) => x[2]);
  // negotiate: each connection's own token, in the header
  assert.deepEqual(auth('POST', /\/negotiate\?/), ['Bearer tok-1', 'Bearer tok-2', 'Bearer tok-3', 'Bearer fixed']);
  // WebSocket: in the query
  assert.equal(sockets.length, 1);
  assert.match(sockets[0], /\/hubs\/chat\?id=[^&]+&access_token=tok-1$/);
  // SSE: the EventSource in the query (no header), its sends in the header
  const sse = seen.filter(([m, url]) => m === 'GET' && /access_token=tok-2/.test(url));
  assert.equal(sse.length, 1, JSON.stringify(seen));
  assert.deepEqual(auth('POST', /\/hubs\/chat\?id=/).filter((a) => a === 'Bearer tok-2').length > 0, true);
  // long polling: polls, sends and the DELETE in the header, no token in a URL
  assert.ok(auth('GET', /\/hubs\/chat\?id=.*&_=/).every((a) => a === 'Bearer tok-3' || a === 'Bearer fixed'));
  assert.ok(auth('GET', /\/hubs\/chat\?id=.*&_=/).length >= 2);
  assert.ok(auth('DELETE', /\/hubs\/chat\?id=/).includes('Bearer tok-3'));
  assert.ok(!seen.some(([, url]) => /access_token=tok-3|access_token=fixed/.test(url)), 'no token in a long-polling URL');

  // Reconnect: the function is asked again, and the new token is used.
  await page.evaluate(async (base) => {
    let n = 0;
    window.conn = crier.connect(`${base}/hubs/chat`, { transports: ['websocket'], token: () => `re-${++n}`, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } });
    await window.conn.start();
  }, ctx.url);
  await ctx.restart();
  await page.waitForFunction(() => window.conn.state === 'connected' && window.conn.connectionId, null, { timeout: 20_000 });
  await page.waitForFunction(() => true);
  const reSockets = sockets.filter((u) => /access_token=re-/.test(u));
  assert.ok(reSockets.length >= 2, JSON.stringify(reSockets));
  assert.match(reSockets[0], /access_token=re-1$/);
  assert.match(reSockets.at(-1), /access_token=re-[2-9]\d*$/, 'the reconnect asked for a new token');
  await page.evaluate(() => window.conn.stop());
});

// --- tokens from another origin (README "Access control") ---

const SECRET = 'cross-origin-test-secret-0123456789';
const AUTH = {
  jwt: { hmac_secret: SECRET },
  rooms: [
    { match: 'vip.*', subscribe: 'claim', publish: 'claim' },
    { match: '*', subscribe: 'public', publish: 'public' },
  ],
};
const vipToken = (sub, rooms = ['vip.*']) => mintToken({
  secret: SECRET,
  claims: { sub, exp: nowS() + 600, rooms: { subscribe: rooms, publish: rooms } },
});

// Runs inside the page: a claim room over every transport, with the token
// from a function (crier.js's token, the official client's
// accessTokenFactory) and on plain publish (Authorization) and SSE / WebSocket
// (access_token). Each entry is 'ok' or the error the page saw.
async function useClaimRoom([base, token]) {
  const out = {};
  const attempt = async (name, f) => {
    try {
      await Promise.race([f(), new Promise((_, rej) => setTimeout(() => rej(new Error('no answer in 8000 ms')), 8000))]);
      out[name] = 'ok';
    } catch (e) {
      out[name] = `${e.name}: ${e.message}`;
    }
  };
  const publish = async (room, value) => {
    const res = await fetch(`${base}/rooms/${room}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(value),
    });
    const body = await res.json(); // readable: the error answers carry the CORS headers too
    if (res.status !== 201) throw new Error(`publish ${res.status} ${body.error}`);
  };
  const q = token ? `?access_token=${encodeURIComponent(token)}` : '';
  await attempt('publish', () => publish('vip.plain', 'one'));
  await attempt('sse', () => new Promise((resolve, reject) => {
    const es = new EventSource(`${base}/rooms/vip.plain/events${q}`);
    es.onopen = () => publish('vip.plain', 'over sse').catch(reject);
    es.onmessage = (ev) => { if (ev.data.includes('over sse')) { es.close(); resolve(); } };
    es.onerror = () => { es.close(); reject(new Error('EventSource error')); };
  }));
  await attempt('websocket', () => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/rooms/vip.plain/ws${q}`);
    ws.onopen = () => publish('vip.plain', 'over ws').catch(reject);
    ws.onmessage = (ev) => { if (String(ev.data).includes('over ws')) { ws.close(); resolve(); } };
    ws.onerror = () => reject(new Error('WebSocket error'));
    ws.onclose = (ev) => reject(new Error(`WebSocket closed ${ev.code} ${ev.reason}`));
  }));
  for (const transport of ['websocket', 'sse', 'longpolling']) {
    await attempt(`crier.js ${transport}`, async () => {
      const conn = crier.connect(`${base}/hubs/chat`, { transports: [transport], reconnect: false, token: async () => token });
      const got = new Promise((resolve) => conn.on('ReceiveMessage', (u, m) => resolve(m)));
      try {
        await conn.start();
        await conn.invoke('JoinRoom', `vip.${transport}`);
        await conn.invoke('SendToRoom', `vip.${transport}`, 'ann', `crier.js ${transport}`);
        if ((await got) !== `crier.js ${transport}`) throw new Error('wrong message');
      } finally {
        await conn.stop();
      }
    });
  }
  const T = signalR.HttpTransportType;
  for (const [name, transport] of [['WebSockets', T.WebSockets], ['ServerSentEvents', T.ServerSentEvents], ['LongPolling', T.LongPolling]]) {
    await attempt(`signalr ${name}`, async () => {
      const conn = new signalR.HubConnectionBuilder()
        .withUrl(`${base}/hubs/chat`, { transport, accessTokenFactory: () => token, withCredentials: false })
        .configureLogging(signalR.LogLevel.None)
        .build();
      const got = new Promise((resolve) => conn.on('ReceiveMessage', (u, m) => resolve(m)));
      try {
        await conn.start();
        await conn.invoke('JoinRoom', `vip.sr-${name}`);
        await conn.invoke('SendToRoom', `vip.sr-${name}`, 'bob', `signalr ${name}`);
        if ((await got) !== `signalr ${name}`) throw new Error('wrong message');
      } finally {
        await conn.stop();
      }
    });
  }
  return out;
}

const CLAIM_SURFACES = ['publish', 'sse', 'websocket', 'crier.js websocket', 'crier.js sse', 'crier.js longpolling',
  'signalr WebSockets', 'signalr ServerSentEvents', 'signalr LongPolling'];

test('from another origin, a token whose rooms claim lists the room: every transport (crier.js token, accessTokenFactory)', { timeout: 120_000 }, async (t) => {
  const origin = await pageOrigin(t);
  const ctx = await setup(t, browser(), { auth: AUTH, cors: { allowed_origins: [origin] } });
  const page = await openPage(browser(), `${origin}/page.html`);
  t.after(() => page.context().close());
  const out = await page.evaluate(useClaimRoom, [ctx.url, vipToken('ann')]);
  assert.deepEqual(Object.keys(out), CLAIM_SURFACES);
  for (const s of CLAIM_SURFACES) assert.equal(out[s], 'ok', `${s}: ${out[s]}\n${page.log.join('\n')}`);
  assert.ok(!ctx.srv.stderr().includes(vipToken('ann').split('.')[2]), 'the token is never logged');
});

// The surfaces' refusals of a page without a token, and of one whose token
// lacks the claim.
async function refusals(t) {
  const origin = await pageOrigin(t);
  const ctx = await setup(t, browser(), { auth: AUTH, cors: { allowed_origins: [origin] }, limits: { poll_timeout_s: 1 } });
  const page = await openPage(browser(), `${origin}/page.html`);
  t.after(() => page.context().close());
  const none = await page.evaluate(useClaimRoom, [ctx.url, null]);
  const other = await page.evaluate(useClaimRoom, [ctx.url, vipToken('eve', ['other.*'])]);
  return { none, other };
}

test('from another origin, no token or one without the claim: plain publish, SSE and WebSocket refused, the refusal readable', { timeout: 120_000 }, async (t) => {
  const { none, other } = await refusals(t);
  for (const s of ['publish', 'sse', 'websocket']) {
    assert.notEqual(none[s], 'ok', `${s} without a token`);
    assert.notEqual(other[s], 'ok', `${s} without the claim`);
  }
  // The HTTP refusals reach the page: the error answers carry the CORS headers too.
  assert.match(none.publish, /publish 401 /);
  assert.match(other.publish, /publish 403 /);
});

test('from another origin, no token or one without the claim: crier.js and the official client refused the room', { timeout: 120_000 }, async (t) => {
  const { none, other } = await refusals(t);
  for (const s of CLAIM_SURFACES.filter((x) => /crier\.js|signalr/.test(x))) {
    assert.notEqual(none[s], 'ok', `${s} without a token`);
    assert.notEqual(other[s], 'ok', `${s} without the claim`);
  }
});
