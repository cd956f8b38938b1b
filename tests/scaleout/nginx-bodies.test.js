// Request bodies through deploy/nginx.conf: a SignalR send (or a publish)
// of 16 KiB used to take ~45 ms behind nginx against ~2 ms direct. nginx
// wrote a body over its 16 KiB client_body_buffer_size to a temporary file
// and passed it on in pieces that Nagle's algorithm (nginx's upstream
// socket) and crier's delayed ACK held for 40 ms each. deploy/nginx.conf
// and nginx-site.conf keep bodies up to 80 KiB in memory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { T, connect } from '../lib/signalr.js';
import { signalrCtx, startCluster, startNginxLogged } from './helpers.js';

const SENDS = 200;

async function timeSends(t, base, label, size) {
  const conn = await connect(signalrCtx(t, base), { transport: T.LongPolling, label });
  const pad = 'x'.repeat(size);
  const t0 = Date.now();
  for (let n = 1; n <= SENDS; n++) await conn.send('SendToRoom', 'bodies', { n, pad });
  return Date.now() - t0;
}

test(`${SENDS} SignalR sends of 16 KiB over long polling through nginx take about as long as direct ones`, { timeout: 120_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2, {});
  const [a, b] = nodes;
  const nginx = await startNginxLogged(t, [a.port, b.port]);
  const direct = await timeSends(t, a.url, 'direct', 16 * 1024);
  const proxied = await timeSends(t, nginx.url, 'through nginx', 16 * 1024);
  t.diagnostic(`${SENDS} sends of 16 KiB: direct ${direct} ms, through nginx ${proxied} ms`);
  // 45 ms a send before (9 s for 200); now within a few ms of direct ones.
  assert.ok(proxied < 4000 && proxied < direct * 4 + 2000, `through nginx ${proxied} ms, direct ${direct} ms`);
  const posts = nginx.accessLog().filter((l) => /^POST \/hubs\/chat/.test(l));
  assert.equal(new Set(posts.map((l) => l.split(' ').at(-1))).size, 2, 'the sends went to both nodes');
});
