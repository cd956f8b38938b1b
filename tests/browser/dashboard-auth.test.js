// The dashboard under auth.protect_admin (README "What each endpoint
// needs"): without an API key the page is refused (401); opened as
// /dashboard.html?access_token=KEY it passes the key on to its stream
// (/stats/events, which an EventSource cannot send a header to) and goes live.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileBrowser, setup } from './helpers.js';

const browser = fileBrowser();
const KEY = 'browser-test-api-key-5d1e';

test('protected dashboard: 401 without the key, live with ?access_token=KEY', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser(), { auth: { api_keys: [KEY], protect_admin: true } });
  const refused = await ctx.open('/dashboard.html');
  assert.equal((await refused.evaluate(() => document.body.innerText)).includes('API key'), true, 'the 401 names the key');
  const res = await fetch(`${ctx.url}/dashboard.html`);
  assert.equal(res.status, 401);

  const dash = await ctx.open(`/dashboard.html?access_token=${encodeURIComponent(KEY)}`);
  await dash.waitForFunction(() => document.getElementById('stream-state').textContent === 'live');
  assert.deepEqual(dash.log, [], 'no console errors on the page');
});
