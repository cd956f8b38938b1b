// The chat page as people use it (issue 18): a late joiner sees the room's
// last messages, on each transport; two signed-in users (one by a token in
// the fragment, one through the dev login) see each other online and see a
// leave within the presence bound; switching rooms without a reload, with
// unread counts; a divider where the server says messages are missing
// (crier restarted: history and numbering gone). Screenshots of the page
// (desktop and 390 px) go to tests/artifacts/.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mintToken, nowS } from '../lib/token.js';
import { artifact, expectMessage, expectText, fileBrowser, messages, say, setup, STEP_MS } from './helpers.js';

const browser = fileBrowser();
const SECRET = 'dev-secret-for-the-chat-tests-0123456789abcdef';
const AUTH = {
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
    rooms: [{ match: '*', subscribe: 'public', publish: 'public', presence_events: true }],
    protect_admin: false,
  },
};

// The names shown in the page's online list.
const online = (page) => page.$$eval('#online li[data-user]', (lis) => lis.map((li) => li.dataset.user));

async function expectOnline(page, want, what) {
  try {
    await page.waitForFunction(
      (w) => JSON.stringify([...document.querySelectorAll('#online li[data-user]')].map((li) => li.dataset.user)) === w,
      JSON.stringify(want),
      { timeout: 15_000 }, // presence grace (2 s) plus a read every 3 s, on a loaded machine
    );
  } catch {
    assert.fail(`${what}: online should be ${JSON.stringify(want)}, shows ${JSON.stringify(await online(page))}`);
  }
}

// Sends from a page whose name comes from its token (the name field is read-only).
async function send(page, body) {
  await page.fill('#message', body);
  await page.press('#message', 'Enter');
}

for (const transport of ['websocket', 'sse', 'longpolling']) {
  test(`a late joiner sees the room's last messages (${transport})`, { timeout: 60_000 }, async (t) => {
    const ctx = await setup(t, browser(), { history: { size: 50, ttl_s: 300 } });
    const room = `late-${transport}`;
    const a = await ctx.chat({ room, transport: 'websocket' });
    for (let i = 1; i <= 3; i++) await say(a, 'ann', `before you came ${i}`);
    await expectMessage(a, 'ann', 'before you came 3');
    const b = await ctx.chat({ room, transport, query: `transports=${transport}` });
    for (let i = 1; i <= 3; i++) await expectMessage(b, 'ann', `before you came ${i}`);
    await say(a, 'ann', 'and now live');
    await expectMessage(b, 'ann', 'and now live');
    assert.deepEqual((await messages(b)).map(([, text]) => text),
      ['before you came 1', 'before you came 2', 'before you came 3', 'and now live'], 'each once, in order');
    await expectText(b, '#transport', transport);
    assert.deepEqual(b.log, [], 'no page errors');
  });
}

test('two users see each other online and see a leave; the dev login signs in', { timeout: 90_000 }, async (t) => {
  const ctx = await setup(t, browser(), AUTH);
  const alice = mintToken({ secret: SECRET, claims: { sub: 'alice', exp: nowS() + 600 } });
  const a = await ctx.chat({ room: 'team', token: alice });
  await expectText(a, '#me', 'alice');
  assert.equal(await a.inputValue('#name'), 'alice', 'the name comes from the token');
  await expectOnline(a, ['alice'], 'alice alone');

  // bob signs in through the dev login (a token minted in the page).
  const b = await ctx.chat({ room: 'team' });
  await expectText(b, '#me', 'guest');
  await b.click('#auth summary');
  await b.fill('#dev-user', 'bob');
  await b.fill('#dev-secret', SECRET);
  await b.click('#dev-login');
  await expectText(b, '#me', 'bob');
  await expectText(b, '#state', 'connected');
  await b.waitForFunction(() => window.crierChat.joined === true);
  await expectOnline(a, ['alice', 'bob'], 'alice sees bob');
  await expectOnline(b, ['alice', 'bob'], 'bob sees alice');
  await send(b, 'hi alice, bob here');
  await expectMessage(a, 'bob', 'hi alice, bob here');
  await send(a, 'hello bob, welcome to #team');
  await expectMessage(b, 'alice', 'hello bob, welcome to #team');
  await send(b, 'thanks! the deploy is done, dashboards are green');
  await expectMessage(a, 'bob', 'thanks! the deploy is done, dashboards are green');

  await a.screenshot({ path: artifact('chat-rooms.png') });
  const phone = await ctx.chat({ room: 'team', viewport: { width: 390, height: 720 }, token: alice });
  await expectMessage(phone, 'bob', 'thanks! the deploy is done, dashboards are green');
  await phone.screenshot({ path: artifact('chat-rooms-phone.png') });
  await phone.click('#side-toggle');
  await expectOnline(phone, ['alice', 'bob'], 'the phone layout lists them too');
  await phone.screenshot({ path: artifact('chat-rooms-phone-side.png') });

  await b.context().close();
  await expectOnline(a, ['alice'], 'bob left');
});

test('switching rooms without a reload; unread counts', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser());
  const a = await ctx.chat({ room: 'lobby' });
  const b = await ctx.chat({ room: 'random' });
  await a.evaluate(() => { window.__loaded = performance.timeOrigin; });
  await a.click('#rooms button[data-room="random"]');
  await expectText(a, '#room', '#random');
  await a.waitForFunction(() => window.crierChat.joined === true && window.crierChat.room === 'random');
  await say(b, 'bob', 'in random');
  await expectMessage(a, 'bob', 'in random');

  // Back in lobby, random's messages count as unread.
  await a.click('#rooms button[data-room="lobby"]');
  await expectText(a, '#room', '#lobby');
  await say(b, 'bob', 'while you were in lobby');
  await expectText(a, '#rooms button[data-room="random"] .unread', '1');
  assert.ok(!(await messages(a)).some(([, text]) => text === 'while you were in lobby'), 'not shown in lobby');
  await a.click('#rooms button[data-room="random"]');
  await expectMessage(a, 'bob', 'while you were in lobby');
  await expectText(a, '#rooms button[data-room="random"] .unread', '');

  // A room of one's own, by name, with the keyboard.
  await a.fill('#new-room', 'side.room');
  await a.press('#new-room', 'Enter');
  await expectText(a, '#room', '#side.room');
  await a.waitForFunction(() => window.crierChat.joined === true && window.crierChat.room === 'side.room');
  assert.deepEqual((await a.evaluate(() => window.crierChat.conn.rooms)).sort(), ['lobby', 'random', 'side.room']);
  assert.equal(await a.evaluate(() => window.__loaded), await a.evaluate(() => performance.timeOrigin), 'no reload');
  assert.match(a.url(), /room=side\.room/);
  assert.deepEqual(a.log, [], 'no page errors');
});

test('a divider where messages are missing: crier restarted, its history gone', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser());
  const a = await ctx.chat({ room: 'gapped' });
  await say(a, 'ann', 'before the restart');
  await expectMessage(a, 'ann', 'before the restart');
  await ctx.restart();
  await expectText(a, '#state', 'connected', { timeout: 15_000 });
  await a.waitForFunction(() => document.querySelector('#messages li.divider'), null, { timeout: STEP_MS });
  assert.match(await a.textContent('#messages li.divider'), /server restarted/);
  await say(a, 'ann', 'after the restart');
  await expectMessage(a, 'ann', 'after the restart');
  const kinds = await a.$$eval('#messages > li', (lis) => lis.map((li) => li.className.split(' ')[0]));
  assert.deepEqual(kinds, ['msg', 'divider', 'msg'], 'the divider sits between them');
  await a.screenshot({ path: artifact('chat-gap.png') });
});
