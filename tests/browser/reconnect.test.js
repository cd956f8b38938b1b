// crier restarted mid-chat: the pages (one per transport) show
// "reconnecting", come back by themselves on the new server (same port), join
// their room again, and get messages sent afterwards: from another page, and
// from the HTTP API (POST /rooms/lobby/messages reaches lobby's SignalR
// members as ReceiveMessage).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatBothWays, expectMessage, expectText, fileBrowser, say, setup } from './helpers.js';

const browser = fileBrowser();

test('crier restarts mid-chat: the pages reconnect, rejoin lobby and keep chatting', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser());
  const pages = {
    websocket: await ctx.chat({ transport: 'websocket' }),
    sse: await ctx.chat({ transport: 'sse', query: 'transports=sse' }),
    longpolling: await ctx.chat({ transport: 'longpolling', query: 'transports=longpolling' }),
  };
  await chatBothWays(pages.websocket, pages.sse, 'the first server');

  await ctx.restart();

  for (const [transport, page] of Object.entries(pages)) {
    await expectText(page, '#state', 'connected', { timeout: 15_000 });
    const states = await page.evaluate(() => window.__states);
    assert.ok(states.includes('reconnecting'), `${transport}: #state showed ${JSON.stringify(states)}`);
    assert.equal(states.at(-1), 'connected');
    await expectText(page, '#transport', transport);
    assert.deepEqual(await page.evaluate(() => window.crierChat.conn.rooms), ['lobby']);
    // It rejoined with where it was; the new server's room has a new epoch,
    // so it answered with a gap, which the page reports.
    assert.match(await page.textContent('#notice'), /server restarted/, `${transport}: gap notice`);
  }

  // From a page, through the room (so it arrives only after the rejoin).
  await say(pages.sse, 'bob', 'back after the restart');
  for (const page of Object.values(pages)) await expectMessage(page, 'bob', 'back after the restart');

  // From the HTTP API to the room's SignalR members.
  const res = await fetch(`${ctx.url}/rooms/lobby/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(['bob', 'hi']),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(res.status, 201, await res.text());
  for (const page of Object.values(pages)) await expectMessage(page, 'bob', 'hi');
});
