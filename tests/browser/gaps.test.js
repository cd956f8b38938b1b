// web/crier.js notices a missing id (README "In the browser"): when the ids
// of a room jump within its epoch while connected, it resumes the room from
// the last id it saw, so the skipped messages arrive, once and in order; when
// history no longer covers them, the app gets a gap event instead. And
// `history: true` shows a late joiner the room's last messages.
//
// The skip is real, made by the server: the server API makes the user leave
// the room (DELETE /rooms/{room}/members/{user}) and join it again from now
// (PUT), and messages published in between are not sent to that connection.
// Driven in Chromium on each of the three transports.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mintToken, nowS } from '../lib/token.js';
import { fileBrowser, setup, waitFor } from './helpers.js';

const browser = fileBrowser();
const SECRET = 'gaps-browser-test-secret-0123456789abcdef';
const API_KEY = 'gaps-browser-test-key-0123456789';
const config = (history) => ({
  history: { size: history },
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
    api_keys: [API_KEY],
    rooms: [{ match: '*', subscribe: 'public', publish: 'public' }],
  },
});

async function api(url, method, path) {
  const res = await fetch(`${url}${path}`, { method, headers: { Authorization: `Bearer ${API_KEY}` }, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  assert.equal(res.status, 200, `${method} ${path}: ${text}`);
  return JSON.parse(text);
}

async function publish(url, room, value) {
  const res = await fetch(`${url}/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(value),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(res.status, 201, await res.text());
}

// Opens a page with crier.js connected over transport as user ann, joined
// to room; window.__got holds the values received, window.__gaps the gap
// events, window.__events both in order.
async function connectPage(ctx, transport, room, options = {}) {
  const page = await ctx.open('/index.html');
  const token = mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: 'ann', exp: nowS() + 600 } });
  await page.evaluate(
    async ({ transport, room, token, options }) => {
      await import('/crier.js');
      window.__got = [];
      window.__gaps = [];
      window.__events = [];
      const conn = crier.connect('/hubs/chat', { transports: [transport], token, ...options });
      conn.on('ReceiveMessage', (v) => {
        window.__got.push(v);
        window.__events.push(`m${v}`);
      });
      conn.ongap((g) => {
        window.__gaps.push(g);
        window.__events.push('gap');
      });
      window.__conn = conn;
      await conn.start();
      await conn.invoke('JoinRoom', room);
    },
    { transport, room, token, options },
  );
  return page;
}

const got = (page) => page.evaluate(() => window.__got.slice());
const waitGot = (page, n, what) =>
  waitFor(async () => (await got(page)).length >= n, { timeout: 15_000, message: `${what}: ${n} values` }).catch(async (e) => {
    e.message += ` (have ${JSON.stringify(await got(page))})`;
    throw e;
  });

for (const transport of ['websocket', 'sse', 'longpolling']) {
  test(`${transport}: ids that jump make crier.js resume the room: every message once, in order`, { timeout: 60_000 }, async (t) => {
    const ctx = await setup(t, browser(), config(100));
    const page = await connectPage(ctx, transport, 'skip');
    await publish(ctx.url, 'skip', 1);
    await publish(ctx.url, 'skip', 2);
    await waitGot(page, 2, 'before');

    assert.equal((await api(ctx.url, 'DELETE', '/rooms/skip/members/ann')).left, 1);
    await publish(ctx.url, 'skip', 3); // not sent to ann's connection
    await publish(ctx.url, 'skip', 4);
    assert.equal((await api(ctx.url, 'PUT', '/rooms/skip/members/ann')).joined, 1);
    await publish(ctx.url, 'skip', 5); // id 5 after 2: a jump

    await waitGot(page, 5, 'after the jump');
    await publish(ctx.url, 'skip', 6);
    await waitGot(page, 6, 'live after');
    assert.deepEqual(await got(page), [1, 2, 3, 4, 5, 6], `${transport}: every message once, in order`);
    assert.deepEqual(await page.evaluate(() => window.__gaps), [], `${transport}: no gap`);
    assert.equal(await page.evaluate(() => window.__conn.state), 'connected');
  });
}

test('a jump that history no longer covers: a gap event, then what is kept', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser(), config(2));
  const page = await connectPage(ctx, 'websocket', 'skip');
  await publish(ctx.url, 'skip', 1);
  await publish(ctx.url, 'skip', 2);
  await waitGot(page, 2, 'before');
  const epoch = await page.evaluate(() => window.__conn._positions.get('skip').epoch);

  await api(ctx.url, 'DELETE', '/rooms/skip/members/ann');
  for (let i = 3; i <= 5; i++) await publish(ctx.url, 'skip', i);
  await api(ctx.url, 'PUT', '/rooms/skip/members/ann');
  await publish(ctx.url, 'skip', 6); // history keeps 5, 6: 3 and 4 are gone

  await waitGot(page, 4, 'after the jump');
  await publish(ctx.url, 'skip', 7);
  await waitGot(page, 5, 'live after');
  assert.deepEqual(await page.evaluate(() => window.__events), ['m1', 'm2', 'gap', 'm5', 'm6', 'm7']);
  assert.deepEqual(await page.evaluate(() => window.__gaps), [{ room: 'skip', epoch, reason: 'expired', since: 2, resumed_from: 5 }]);
});

test('a jump in a room crier.js cannot resume (resume: false): a gap event with reason "missed"', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser(), config(100));
  const page = await connectPage(ctx, 'websocket', 'skip', { resume: false });
  await publish(ctx.url, 'skip', 1);
  await waitGot(page, 1, 'before');
  const epoch = await page.evaluate(() => window.__conn._positions.get('skip').epoch);
  await api(ctx.url, 'DELETE', '/rooms/skip/members/ann');
  await publish(ctx.url, 'skip', 2);
  await api(ctx.url, 'PUT', '/rooms/skip/members/ann');
  await publish(ctx.url, 'skip', 3);
  await waitGot(page, 2, 'after the jump');
  assert.deepEqual(await page.evaluate(() => window.__events), ['m1', 'gap', 'm3']);
  assert.deepEqual(await page.evaluate(() => window.__gaps), [{ room: 'skip', epoch, reason: 'missed', since: 1, resumed_from: 3 }]);
});

test('history: true: a late joiner gets the room\'s last messages, then live ones', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser(), config(3));
  for (let i = 1; i <= 5; i++) await publish(ctx.url, 'late', i); // history keeps 3, 4, 5
  const page = await connectPage(ctx, 'websocket', 'late', { history: true });
  await waitGot(page, 3, 'history');
  await publish(ctx.url, 'late', 6);
  await waitGot(page, 4, 'live');
  assert.deepEqual(await got(page), [3, 4, 5, 6]);
  const [gap] = await page.evaluate(() => window.__gaps);
  assert.deepEqual({ ...gap, epoch: undefined }, { room: 'late', epoch: undefined, reason: 'expired', since: 0, resumed_from: 3 }, 'older messages are not kept');
});
