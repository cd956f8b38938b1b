// GET /rooms/{room} with the Redis backplane: this node's subscribers, and
// the cluster's totals ("cluster") from every node's presence report.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { request } from '../lib/http.js';
import { connect, invoke } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { waitFor } from '../lib/util.js';
import { signalrCtx, startCluster } from './helpers.js';

test('GET /rooms/{room} adds the cluster-wide subscribers and nodes', { timeout: 60_000 }, async (t) => {
  const { nodes } = await startCluster(t, 3);
  const [a, b, c] = nodes;
  const streams = [await sseHttp(`${a.url}/rooms/totals/events`), await sseHttp(`${a.url}/rooms/totals/events`), await sseHttp(`${b.url}/rooms/totals/events`)];
  t.after(() => streams.forEach((s) => s.close()));
  const conn = await connect(signalrCtx(t, c.url), { label: 'official client on C' });
  assert.equal((await invoke(conn, 'JoinRoom', 'totals'))?.room, 'totals');

  let info;
  await waitFor(
    async () => {
      info = (await request(`${a.url}/rooms/totals`)).json;
      return info?.cluster?.subscribers === 4;
    },
    { timeout: 10_000, message: 'the cluster totals on A' },
  );
  assert.deepEqual(info.subscribers, { websocket: 0, sse: 2, long_polling: 0 }, 'A: its own');
  assert.deepEqual(info.cluster, { subscribers: 4, nodes: 3, users: 0, anonymous: 4 }, JSON.stringify(info));

  // Every node answers the same totals.
  const onC = (await request(`${c.url}/rooms/totals`)).json;
  assert.equal(onC.cluster.subscribers, 4, JSON.stringify(onC));

  streams[2].close(); // B's only one leaves
  await waitFor(async () => (await request(`${c.url}/rooms/totals`)).json?.cluster?.nodes === 2, { timeout: 10_000, message: 'B gone from the totals' });
  assert.equal((await request(`${c.url}/rooms/totals`)).json.cluster.subscribers, 3);
});
