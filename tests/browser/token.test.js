// Access tokens from the browser pages: chat.html hands a token from its URL
// (#token= or ?token=) or its token field to crier.js, which sends it on
// every request (Authorization: Bearer) and WebSocket (?access_token=).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectText, fileBrowser, setup, STEP_MS } from './helpers.js';

const browser = fileBrowser();

// A page of crier's at `url`, with every request and WebSocket it makes to
// crier recorded: {page, seen: [[method, url, authorization]], sockets: [url]}.
async function recordedPage(t, ctx, where) {
  const context = await browser().newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const seen = [];
  const sockets = [];
  page.on('request', async (req) => {
    const h = await req.allHeaders().catch(() => ({}));
    seen.push([req.method(), req.url(), h.authorization ?? null]);
  });
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`${ctx.url}${where}`);
  return { page, seen, sockets };
}

const negotiations = (seen) => seen.filter(([m, u]) => m === 'POST' && /\/negotiate\?/.test(u)).map((x) => x[2]);

test('chat.html: the token of #token= (or ?token=) is sent, and one pasted in the token field is used on Use', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser());
  const a = await recordedPage(t, ctx, '/chat.html?room=tk#token=abc.def.ghi');
  await expectText(a.page, '#state', 'connected');
  assert.deepEqual(negotiations(a.seen), ['Bearer abc.def.ghi']);
  assert.match(a.sockets[0], /\/hubs\/chat\?id=[^&]+&access_token=abc\.def\.ghi$/);

  await a.page.click('#auth summary');
  await a.page.fill('#token', 'new.token.here');
  await a.page.click('#use-token');
  await a.page.waitForFunction(() => window.crierChat.conn.state === 'connected' &&
    performance.getEntriesByType('resource').filter((e) => e.name.includes('/negotiate')).length >= 2, null, { timeout: 15_000 });
  await expectText(a.page, '#state', 'connected', { timeout: 15_000 });
  assert.equal(negotiations(a.seen).at(-1), 'Bearer new.token.here');
  assert.match(a.sockets.at(-1), /access_token=new\.token\.here$/);

  const b = await recordedPage(t, ctx, '/chat.html?room=tk&token=from-query&transports=longpolling');
  await expectText(b.page, '#state', 'connected');
  assert.deepEqual(negotiations(b.seen), ['Bearer from-query']);
  const polls = b.seen.filter(([m, u]) => m === 'GET' && /\/hubs\/chat\?id=/.test(u));
  assert.ok(polls.length >= 1 && polls.every((p) => p[2] === 'Bearer from-query'), JSON.stringify(polls));

  const c = await recordedPage(t, ctx, '/chat.html?room=tk');
  await expectText(c.page, '#state', 'connected');
  assert.deepEqual(negotiations(c.seen), [null], 'no token: no Authorization header');
  assert.ok(!c.sockets[0].includes('access_token'));
});
