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

test('chart axes: tick steps of 1, 2 or 5 times a power of ten; the time range selector', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser());
  const dash = await ctx.open('/dashboard.html', { viewport: { width: 1000, height: 640 } });
  await dash.waitForFunction(() => document.getElementById('stream-state').textContent === 'live');
  // The scale for peaks that gave 62.5 and 187.5 before (a max of 250 in quarters).
  const scales = await dash.evaluate(() =>
    [0, 0.3, 0.9, 1, 3.7, 9.99, 62.5, 187.5, 250, 1234, 99_999].map((p) => ({ p, ...window.crierDashboard.niceScale(p) })));
  for (const { p, step, top } of scales) {
    const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
    assert.ok([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9), `peak ${p}: step ${step} is 1, 2 or 5 x 10^k`);
    assert.ok(top >= p, `peak ${p}: top ${top} covers it`);
    const n = Math.round(top / step);
    assert.ok(Math.abs(top / step - n) < 1e-9 && n >= 1 && n <= 5, `peak ${p}: top ${top} is 1 to 5 steps of ${step}`);
  }
  assert.deepEqual(scales.find((s) => s.p === 250), { p: 250, step: 50, top: 250 });
  // The labels drawn are multiples of one step, evenly spaced.
  const labels = await dash.$$eval('#chart text.axis[text-anchor="end"]', (ts) => ts.map((x) => x.textContent));
  const values = labels.filter((l) => /^[\d.]+$/.test(l)).map(Number);
  assert.ok(values.length >= 2, `value labels: ${labels}`);
  const step = values[1] - values[0];
  values.forEach((v, i) => assert.ok(Math.abs(v - i * step) < 1e-9, `label ${v} is ${i} steps of ${step}`));
  // The time range: 1 min by default, then 15 min.
  assert.ok(labels.includes('now'));
  assert.ok(await dash.$$eval('#chart text.axis', (ts) => ts.some((x) => x.textContent === '-1 min')));
  await dash.selectOption('#range', '900');
  await dash.waitForFunction(() => [...document.querySelectorAll('#chart text.axis')].some((x) => x.textContent === '-15 min'));
  assert.deepEqual(dash.log, [], 'no errors on the dashboard');
});
