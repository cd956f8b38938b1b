// Paced SignalR sends go as soon as the hold ends (backpressure, issue #16
// follow-up): eight official @microsoft/signalr clients on long polling
// through nginx (round robin over two nodes on one Redis, deploy/nginx.conf)
// each send to one room as fast as their POSTs are answered. With
// limits.send_queue 4 a node's publishes in flight to Redis are bounded to
// one (a quarter of the queue), so many POSTs are parked while another
// publish is on its way (crier_publish_paced_total{transport=
// "signalr_http"}), on the node they land on, before they are taken or
// forwarded to the connection's owner.
//
// Asserts: the 600 sends end within 6 s (about 1 s on an idle host, ASan
// build; 2-3 s with both cores busy), and the clients were paced. On the
// code before, a parked POST went only on the timer's next tick (every
// 100 ms) whatever ended its hold, so each paced send cost up to 100 ms:
// ~13 s for the same sends.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../lib/http.js';
import { T, connect } from '../lib/signalr.js';
import { withTimeout } from '../lib/util.js';
import { signalrCtx, startCluster, startNginxLogged } from './helpers.js';

const CLIENTS = 8;
const SENDS = 75; // each
const BOUND_MS = 6000;

async function metric(node, name) {
  const res = await request(`${node.url}/metrics`, { timeout: 30_000 });
  const line = res.text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

test(`${CLIENTS} long-polling SignalR clients through nginx (round robin over A and B, send_queue 4): paced sends go as the hold ends, not on the timer's tick`, { timeout: 120_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2, { limits: { send_queue: 4 } });
  const [a, b] = nodes;
  const nginx = await startNginxLogged(t, [a.port, b.port]);
  const ctx = signalrCtx(t, nginx.url);
  const conns = [];
  for (let i = 0; i < CLIENTS; i++) conns.push(await connect(ctx, { transport: T.LongPolling, label: `sender ${i}` }));

  const label = 'crier_publish_paced_total{transport="signalr_http"}';
  const pacedBefore = (await metric(a, label)) + (await metric(b, label));
  const started = performance.now();
  await Promise.all(
    conns.map(async (conn, i) => {
      for (let n = 1; n <= SENDS; n++) await withTimeout(conn.send('SendToRoom', 'paced-release', { i, n }), 30_000, `sender ${i}: send ${n}`);
    }),
  );
  const took = performance.now() - started;
  const paced = (await metric(a, label)) + (await metric(b, label)) - pacedBefore;
  const posts = nginx.accessLog().filter((l) => /^POST \/hubs\/chat/.test(l));
  const upstreams = new Set(posts.map((l) => l.split(' ').at(-1)));
  t.diagnostic(`${CLIENTS * SENDS} sends in ${took.toFixed(0)} ms, ${paced} paced; POSTs via nginx to ${[...upstreams].join(', ')}`);
  assert.equal(upstreams.size, 2, 'the POSTs landed on both nodes');
  assert.ok(paced > 0, 'the senders were paced (else this test shows nothing)');
  assert.ok(took < BOUND_MS, `${CLIENTS * SENDS} sends took ${took.toFixed(0)} ms (${paced} paced), more than ${BOUND_MS} ms: paced sends wait for the timer's tick`);
});
