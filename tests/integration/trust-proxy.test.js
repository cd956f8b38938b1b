// A refused request is logged once with the client's address: the peer's,
// or, with "trust_proxy": true, the one the proxy reports (X-Real-IP, else
// the last X-Forwarded-For entry). A header that is not an address is never
// copied into the log.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { request } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { waitFor } from '../lib/util.js';

const BAD = '/rooms/a%20b'; // 400: not a room name

async function refusedLine(srv, headers) {
  const before = srv.stderr().length;
  const res = await request(`${srv.url}${BAD}`, { headers });
  assert.equal(res.status, 400);
  let line = '';
  await waitFor(() => (line = srv.stderr().slice(before).split('\n').find((l) => / 400 to /.test(l)) ?? ''), {
    timeout: 3000,
    message: 'the refusal is logged',
  });
  return line;
}

test('trust_proxy false: the peer address is logged, whatever the headers say', async (t) => {
  const srv = await startFor(t, {});
  const line = await refusedLine(srv, { 'X-Forwarded-For': '198.51.100.7', 'X-Real-IP': '203.0.113.9' });
  assert.match(line, /400 to 127\.0\.0\.1: /);
  assert.ok(!line.includes('198.51.100.7') && !line.includes('203.0.113.9'), line);
});

test('trust_proxy true: the address nginx reports is logged, never a header that is not one', async (t) => {
  const srv = await startFor(t, { trust_proxy: true });
  assert.match(await refusedLine(srv, { 'X-Forwarded-For': '198.51.100.7' }), /400 to 198\.51\.100\.7: /);
  assert.match(await refusedLine(srv, { 'X-Forwarded-For': '10.1.1.1, 198.51.100.8', 'X-Real-IP': '203.0.113.9' }), /400 to 203\.0\.113\.9: /);
  const forged = await refusedLine(srv, { 'X-Real-IP': 'x 2026 fake entry' });
  assert.match(forged, /400 to 127\.0\.0\.1: /);
  assert.ok(!forged.includes('fake'), forged);
});
