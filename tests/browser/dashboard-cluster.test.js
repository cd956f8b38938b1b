// The dashboard of a Redis-backed pair (issue 18): opened on node A with
// the operator key, it lists both nodes (GET /cluster/nodes) with their
// connections, and the rooms of both, members added up; a room's page shows
// who is online there on either node and its last messages; its publish
// reaches the room's members; its disconnect action closes the chosen
// user's connection on the other node, and one connection by its id. The key typed in the key field is
// kept in sessionStorage. Screenshots: tests/artifacts/dashboard-cluster.png
// and dashboard-phone.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startRedis } from '../lib/redis.js';
import { startCrier, stopClean } from '../lib/server.js';
import { mintToken, nowS } from '../lib/token.js';
import { artifact, expectMessage, expectText, fileBrowser, openChat, openPage, WEB_ROOT, withTimeout } from './helpers.js';

const browser = fileBrowser();
const SECRET = 'dev-secret-for-the-dashboard-tests-0123456789';
const KEY = 'dashboard-operator-key-7c1f2a';
const onRedis = process.env.CRIER_TEST_BACKPLANE === 'redis';

let redis;
before(async () => {
  if (!onRedis) redis = await startRedis();
});
after(async () => {
  if (redis) await redis.stop();
});

const token = (sub) => mintToken({ secret: SECRET, claims: { sub, exp: nowS() + 600 } });

test('two nodes, their rooms, a room page; publish and disconnect from it', { timeout: 120_000, skip: onRedis && 'starts its own Redis: run in the memory pass' }, async (t) => {
  const config = {
    web: { root: WEB_ROOT },
    backplane: { type: 'redis', url: redis.url, key_prefix: 'dash:' },
    auth: {
      jwt: { hmac_secret: SECRET, algorithms: ['HS256'] },
      api_keys: [KEY],
      protect_admin: true,
      rooms: [{ match: '*', subscribe: 'public', publish: 'public', presence_events: true }],
    },
  };
  const a = await startCrier(config);
  const b = await startCrier(config);
  const contexts = [];
  t.after(async () => {
    for (const c of contexts) await withTimeout(c.close(), 5000, 'closing a browser context').catch(() => {});
    await stopClean(a);
    await stopClean(b);
  });

  const alice = await openChat(browser(), a.url, { room: 'ops', token: token('alice'), contexts });
  const bob = await openChat(browser(), b.url, { room: 'ops', token: token('bob'), contexts, query: 'transports=sse' });
  const carol = await openChat(browser(), b.url, { room: 'ops.side', token: token('carol'), contexts });

  const dash = await openPage(browser(), `${a.url}/dashboard.html?access_token=${encodeURIComponent(KEY)}`,
    { viewport: { width: 1280, height: 800 }, contexts });
  await dash.waitForFunction(() => document.getElementById('stream-state').textContent === 'live');
  await dash.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 2, null, { timeout: 15_000 });
  // Node B holds bob's SSE stream and carol's WebSocket.
  await dash.waitForFunction(() => [...document.querySelectorAll('#nodes tbody tr')]
    .some((tr) => tr.cells[3].textContent === '1 / 1 / 0'), null, { timeout: 15_000 });
  assert.match(await dash.textContent('#nodes tfoot'), /total \(2\)/);
  // Both nodes' rooms: ops on both (two members), ops.side on B only.
  await dash.waitForFunction(() => {
    const row = document.querySelector('#rooms-table tr[data-room="ops"]');
    return row && row.cells[1].textContent === '2' && row.cells[5].textContent === '2' &&
      document.querySelector('#rooms-table tr[data-room="ops.side"]');
  }, null, { timeout: 15_000 });
  assert.equal(await dash.evaluate(() => sessionStorage.getItem('crier.operatorKey')), KEY, 'the key is kept for the tab');

  // Sorting by members puts ops first.
  await dash.click('#rooms-table th[data-key="members"] button');
  assert.equal(await dash.getAttribute('#rooms-table th[data-key="members"]', 'aria-sort'), 'descending');
  assert.equal(await dash.evaluate(() => document.querySelector('#rooms-table tbody tr').dataset.room), 'ops');

  // The room's page: who is online on either node.
  await dash.click('#rooms-table tr[data-room="ops"] button');
  await dash.waitForFunction(() => ['alice', 'bob'].every((u) => document.querySelector(`#room-users li[data-user="${u}"]`)),
    null, { timeout: 15_000 });

  // Publish from the dashboard: both members get it, the page lists it.
  await dash.fill('#pub-text', '["ops", "hello from the dashboard"]');
  await dash.click('#publish-form button');
  await expectText(dash, '#action-result', 'published as #1');
  await expectMessage(alice, 'ops', 'hello from the dashboard');
  await expectMessage(bob, 'ops', 'hello from the dashboard');
  await dash.waitForFunction(() => /hello from the dashboard/.test(document.getElementById('room-messages').textContent));
  await dash.waitForFunction(() => document.getElementById('ws-count').textContent !== '–');
  await dash.waitForFunction(() => document.querySelector('#rooms-table tr[data-room="ops"]')?.cells[3].textContent === '1');
  await dash.screenshot({ path: artifact('dashboard-cluster.png') });

  // Disconnect bob (on node B) from node A's dashboard.
  await dash.click('#room-users li[data-user="bob"] button');
  await expectText(dash, '#action-result', 'bob: 1 of 1 connection(s) disconnected');
  await bob.waitForFunction(() => window.__states.includes('disconnected') || /Disconnected/.test(document.getElementById('notice').textContent),
    null, { timeout: 10_000 });
  assert.equal(await alice.textContent('#state'), 'connected', 'alice stays');

  // Disconnect one connection by its id (the chat page tells its own).
  const carolConn = await carol.textContent('#my-conn');
  assert.equal(carolConn, await carol.evaluate(() => window.crierChat.conn.connectionId));
  await dash.fill('#conn-id', carolConn);
  await dash.click('#conn-form button');
  await expectText(dash, '#action-result', `connection ${carolConn}: disconnected`);
  await carol.waitForFunction(() => window.__states.includes('disconnected'), null, { timeout: 10_000 });
  assert.equal(await alice.textContent('#state'), 'connected', 'alice still stays');
  assert.deepEqual(dash.log, [], 'no errors on the dashboard');

  const phone = await openPage(browser(), `${a.url}/dashboard.html?access_token=${encodeURIComponent(KEY)}`,
    { viewport: { width: 390, height: 900 }, contexts });
  await phone.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 2, null, { timeout: 15_000 });
  await phone.screenshot({ path: artifact('dashboard-phone.png'), fullPage: true });
});
