// A long poll of a SignalR connection that another node forwards to the
// connection's owner (three nodes on one Redis, deploy/nginx.conf round
// robin in front): what the owner hands over is not lost when the
// forwarding node dies before it answers the client, and a dead owner is
// answered 404 at once.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { request } from '../lib/http.js';
import { HANDSHAKE, RS, negotiate, parseRecords } from '../lib/signalr.js';
import { sleep, waitFor } from '../lib/util.js';
import { killNode, publishOn, startCluster, startNginxLogged } from './helpers.js';

const CONFIG = { limits: { poll_timeout_s: 4 } };

// deploy/nginx.conf in front of ports, which tells in a reply header which
// node answered (so that the test knows where round robin goes next).
function startNginx(t, ports) {
  return startNginxLogged(t, ports, {
    editConf: (conf) => conf.replace(/location \/ \{/, 'location / {\n            add_header X-Upstream $upstream_addr always;'),
  });
}

// A long-polling SignalR client by hand, whose requests go where the test
// says: negotiate, carry and handshake on `home` (which then owns it), join
// `room`. poll(base, key) is one GET with "_" = key: {status, records}.
async function rawLongPoll(home, room) {
  const neg = await negotiate(home.url);
  assert.equal(neg.status, 200, `negotiate: ${neg.text}`);
  const token = neg.json.connectionToken;
  const hub = (base, key) => `${base}/hubs/chat?id=${encodeURIComponent(token)}${key ? `&_=${key}` : ''}`;
  const client = {
    token,
    async poll(base, key, timeout = 15_000) {
      const res = await request(hub(base, key), { timeout });
      return { status: res.status, text: res.text, records: parseRecords([res.text]), upstream: res.headers.get('x-upstream') };
    },
    async send(base, text) {
      const res = await request(hub(base), { method: 'POST', body: text });
      assert.equal(res.status, 200, `send: ${res.status} ${res.text}`);
    },
  };
  assert.equal((await client.poll(home.url, 'first')).status, 200, 'the first poll (carries it)');
  await client.send(home.url, HANDSHAKE);
  assert.deepEqual((await client.poll(home.url, 'hs')).records, [{}], 'the handshake reply');
  await client.send(home.url, `${JSON.stringify({ type: 1, invocationId: '1', target: 'JoinRoom', arguments: [room] })}${RS}`);
  const joined = await client.poll(home.url, 'join');
  assert.equal(joined.records.find((r) => r.type === 3)?.result?.room, room, `JoinRoom: ${joined.text}`);
  return client;
}

const messagesOf = (records) => records.filter((r) => r.type === 1).map((r) => r.arguments.at(-1));

test('a forwarder killed mid-poll loses nothing: nginx retries the GET on another node and gets the records again', { timeout: 90_000 }, async (t) => {
  const { nodes } = await startCluster(t, 3, CONFIG);
  const [a, owner, c] = nodes;
  const nginx = await startNginx(t, [a.port, c.port]);
  const client = await rawLongPoll(owner, 'fwd');

  // Round robin over A and C alternates: once a request went to C, the
  // next goes to A, the node to kill.
  await waitFor(
    async () => (await request(`${nginx.url}/healthz`)).headers.get('x-upstream') === `127.0.0.1:${c.port}`,
    { timeout: 5000, message: 'a request answered by C' },
  );
  const polled = client.poll(nginx.url, 'k1', 30_000);
  await sleep(1500); // A forwards it to the owner, which holds it
  a.proc.kill('SIGSTOP'); // A takes the owner's answer off Redis no more
  for (let i = 1; i <= 5; i++) assert.equal((await publishOn(owner, 'fwd', { n: i })).status, 201);
  await sleep(1000); // the owner handed them to A (through Redis)
  await killNode(a); // before A answered: nginx retries the GET on C

  const got = await polled;
  assert.equal(got.status, 200, `the retried poll: ${got.status} ${got.text}`);
  assert.deepEqual(messagesOf(got.records), [1, 2, 3, 4, 5].map((n) => ({ n })), `the retried poll has what A lost: ${got.text}`);
  // nginx logs a request after its answer went: wait for the line.
  const retried = () => nginx.accessLog().filter((l) => l.includes('/hubs/chat'));
  await waitFor(() => retried().some((l) => l.includes(`127.0.0.1:${a.port}, 127.0.0.1:${c.port}`)), {
    timeout: 5000,
    message: "nginx retried A's GET on C",
  }).catch((err) => assert.fail(`${err.message}: ${retried().join(' | ')}`));

  // The next poll (a new key) confirms them: no duplicates after.
  assert.equal((await publishOn(owner, 'fwd', { n: 6 })).status, 201);
  const next = await client.poll(c.url, 'k2');
  assert.deepEqual(messagesOf(next.records), [{ n: 6 }], `the next poll: only the new one: ${next.text}`);
});

test('a poll, send or SSE GET for a connection whose owner was killed is answered 404 at once, on any node', { timeout: 60_000 }, async (t) => {
  const { nodes } = await startCluster(t, 3, CONFIG);
  const [a, owner, c] = nodes;
  const client = await rawLongPoll(owner, 'dead');
  // While the owner lives, another stream for it elsewhere: 409.
  const live = await request(`${a.url}/hubs/chat?id=${client.token}`, { headers: { Accept: 'text/event-stream' } });
  assert.equal(live.status, 409, `an SSE GET on A while the owner lives: ${live.status} ${live.text}`);
  await killNode(owner);
  for (const node of [a, c]) {
    const t0 = Date.now();
    const res = await client.poll(node.url, `after-${node.name}`);
    assert.equal(res.status, 404, `a poll on ${node.name}: ${res.status} ${res.text}`);
    assert.deepEqual(JSON.parse(res.text), { error: 'no such connection' });
    const post = await request(`${node.url}/hubs/chat?id=${client.token}`, { method: 'POST', body: `{"type":6}${RS}` });
    assert.equal(post.status, 404, `a send on ${node.name}: ${post.status} ${post.text}`);
    const sse = await request(`${node.url}/hubs/chat?id=${client.token}`, { headers: { Accept: 'text/event-stream' } });
    assert.equal(sse.status, 404, `an SSE GET on ${node.name}: ${sse.status} ${sse.text}`);
    t.diagnostic(`${node.name}: 404s in ${Date.now() - t0} ms`);
    assert.ok(Date.now() - t0 < 4000, 'not after a poll timeout');
  }
});

test('a forwarded poll held by an owner that is killed meanwhile is answered 404 within seconds, not after the poll timeout', { timeout: 60_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2, { limits: { poll_timeout_s: 20 } });
  const [a, owner] = nodes;
  const client = await rawLongPoll(owner, 'held');
  const t0 = Date.now();
  const polled = client.poll(a.url, 'held-1', 30_000); // A forwards it; the owner holds it
  await sleep(1000);
  await killNode(owner);
  const res = await polled;
  const ms = Date.now() - t0;
  t.diagnostic(`answered ${res.status} after ${ms} ms`);
  assert.equal(res.status, 404, `${res.status} ${res.text}`);
  assert.deepEqual(JSON.parse(res.text), { error: 'no such connection' });
  assert.ok(ms < 10_000, `within seconds of the kill (${ms} ms), not the 20 s poll timeout + 10 s`);
});
