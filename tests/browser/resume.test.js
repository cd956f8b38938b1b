// A network drop with crier staying up: the pages reach crier through a real
// nginx, which is stopped (every client connection cut) and started again.
// Messages published meanwhile are not lost: each page rejoins with
// JoinRoom(room, since, epoch) from the last message it saw, gets exactly the
// missed ones, in order, then live ones; nothing twice.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectMessage, expectText, fileBrowser, messages, say, setup, startNginx } from './helpers.js';

const browser = fileBrowser();

async function publish(url, user, text) {
  const res = await fetch(`${url}/rooms/lobby/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify([user, text]),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(res.status, 201, await res.text());
}

test('network drop (nginx restarted): each transport resumes and misses nothing', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser());
  const proxy = await startNginx(t, ctx.port, { upgrade: true });
  const pages = {
    websocket: await ctx.chat({ base: proxy.url, transport: 'websocket' }),
    sse: await ctx.chat({ base: proxy.url, transport: 'sse', query: 'transports=sse' }),
    longpolling: await ctx.chat({ base: proxy.url, transport: 'longpolling', query: 'transports=longpolling' }),
  };
  await say(pages.websocket, 'ann', 'before the drop');
  for (const page of Object.values(pages)) await expectMessage(page, 'ann', 'before the drop');

  await proxy.stop();
  for (const page of Object.values(pages)) {
    await page.waitForFunction(() => window.__states.includes('reconnecting'), null, { timeout: 10_000 });
  }
  const missed = ['missed 1', 'missed 2', 'missed 3'];
  for (const text of missed) await publish(ctx.url, 'bob', text);
  await proxy.restart();

  for (const [transport, page] of Object.entries(pages)) {
    await expectText(page, '#state', 'connected', { timeout: 15_000 });
    await expectText(page, '#transport', transport);
  }
  await publish(ctx.url, 'bob', 'after the drop');
  for (const [transport, page] of Object.entries(pages)) {
    await expectMessage(page, 'bob', 'after the drop');
    assert.deepEqual(
      (await messages(page)).map(([, text]) => text),
      ['before the drop', ...missed, 'after the drop'],
      `${transport}: every message once, in order`,
    );
    const notice = await page.textContent('#notice');
    assert.equal(notice, '', `${transport}: no gap reported`);
  }
});
