// A plain long poll through round robin: its cursor (since, epoch) comes
// from the node that answered last, and the next poll may land on a node
// that has not yet received that message from Redis. That node is behind,
// not the client: no gap, no replay from the oldest, nothing the client
// had delivered again.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { request } from '../lib/http.js';
import { publishOn, startCluster } from './helpers.js';

test('a plain poll whose cursor is ahead of the node it lands on (same epoch) waits for what follows, with no gap', { timeout: 60_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2, { limits: { poll_timeout_s: 3 } });
  const [a, b] = nodes;
  let last;
  for (let i = 1; i <= 5; i++) last = (await publishOn(a, 'lag', { n: i })).json;
  // As if B had not received message 6 yet: the client's cursor is 6.
  const polled = request(`${b.url}/rooms/lag/poll?since=${last.id + 1}&epoch=${last.epoch}`, { timeout: 15_000 });
  await new Promise((r) => setTimeout(r, 300));
  await publishOn(a, 'lag', { n: 6 }); // the one the client "had"
  await publishOn(a, 'lag', { n: 7 });
  let res = await polled;
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.gap, undefined, `no gap: ${res.text}`);
  assert.ok(res.json.messages.every((m) => m.id > last.id + 1), `nothing the cursor had: ${res.text}`);
  if (!res.json.messages.length) {
    res = await request(`${b.url}/rooms/lag/poll?since=${res.json.last_id}&epoch=${res.json.epoch}`, { timeout: 15_000 });
  }
  assert.deepEqual(res.json.messages.map((m) => m.data), [{ n: 7 }], res.text);
});
