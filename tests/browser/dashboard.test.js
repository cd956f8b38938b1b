// The dashboard follows the gateway live (GET /stats/events): two chat pages
// show up in the connection counts, messages in the rates and the chart.
// Screenshots of the chat page (desktop and phone) and of the dashboard go to
// tests/artifacts/.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  artifact,
  expectMessage,
  expectText,
  fileBrowser,
  say,
  setup,
  sleep,
} from './helpers.js';

const browser = fileBrowser();

const num = (page, id) => page.$eval(`#${id}`, (e) => Number(e.textContent.replace(/[^\d.]/g, '')));

test('dashboard shows live connections and rates; screenshots of the pages', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser());
  const dash = await ctx.open('/dashboard.html', { viewport: { width: 1000, height: 640 } });
  await dash.waitForFunction(() => document.getElementById('stream-state').textContent === 'live');
  const before = await num(dash, 'ws-count');
  assert.equal(before, 0, 'no WebSocket connections yet');

  const a = await ctx.chat({ transport: 'websocket' });
  const b = await ctx.chat({ transport: 'websocket', viewport: { width: 390, height: 720 } });
  await expectText(dash, '#ws-count', '2');
  // The total is the sum of the three transports (the dashboard's own SSE
  // stream is one of them).
  await dash.waitForFunction(() => {
    const n = (id) => Number(document.getElementById(id).textContent);
    return n('total-connections') === n('ws-count') + n('sse-count') + n('lp-count') && n('total-connections') >= 2;
  });

  // The rate is per second and drops back to 0 a second after the chat goes
  // quiet: remember the highest value the page showed.
  await dash.evaluate(() => {
    const el = document.getElementById('out-rate');
    window.maxOutRate = 0;
    const see = () => (window.maxOutRate = Math.max(window.maxOutRate, Number(el.textContent) || 0));
    new MutationObserver(see).observe(el, { childList: true, characterData: true, subtree: true });
  });
  for (let i = 1; i <= 6; i++) {
    await say(i % 2 ? a : b, i % 2 ? 'ann' : 'bob', `message ${i} of a little conversation`);
    await sleep(150);
  }
  await expectMessage(a, 'bob', 'message 6 of a little conversation');
  await expectMessage(b, 'bob', 'message 6 of a little conversation');
  await dash.waitForFunction(() => window.maxOutRate > 0, null, { timeout: 5000 });
  await dash.waitForFunction(() => document.querySelectorAll('#chart polyline.out').length === 1);
  await sleep(1500); // a couple more samples in the chart

  await a.screenshot({ path: artifact('chat.png') });
  await b.screenshot({ path: artifact('chat-phone.png') });
  await dash.screenshot({ path: artifact('dashboard.png') });

  // Closing a page is seen too.
  await b.context().close();
  await expectText(dash, '#ws-count', '1');
  assert.deepEqual(dash.log, [], 'no errors on the dashboard');
});
