// Two long polls of one SignalR connection at once, landing on two MHD
// daemons (one on a kept-alive socket first used for a POST: the main
// daemon; one on a fresh socket: the poll daemon), hundreds of times over
// many connections. The newer poll replaces the older: one of the two gets
// 204, the other the records (or an empty 200 at its timeout). Before the
// fix the replacement could find the older poll without its hold and the
// server crashed (NULL lp_conn in lp_release_locked).

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { request } from '../lib/http.js';
import { HANDSHAKE, RS, negotiate } from '../lib/signalr.js';
import { startFor, tail } from '../lib/server.js';

// 60 × 80 double polls: the -O2 build of c394c4d crashed within this in
// every run tried (the ASan build within a few runs); a few seconds here.
const CONNECTIONS = Number(process.env.DP_CONN || 60);
const ROUNDS = Number(process.env.DP_ROUNDS || 80);

// One HTTP request over agent (false: a socket of its own); resolves
// {status, text}, rejects on a socket error (a crashed server).
function send(url, { method = 'GET', agent = false, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, timeout: 20_000, headers: body ? { 'Content-Type': 'text/plain;charset=UTF-8' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in 20 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

// A poll's answer is sane: 204 (replaced, or the connection is over), or 200
// with nothing or whole records.
function assertSanePoll(res, what) {
  assert.ok(res.status === 200 || res.status === 204, `${what}: status ${res.status} ${res.text}`);
  if (res.status === 200 && res.text) assert.ok(res.text.endsWith(RS), `${what}: partial record ${JSON.stringify(res.text)}`);
}

async function doublePolls(base, id) {
  const url = `${base}/hubs/chat?id=${id}`;
  const first = await send(url);
  assert.equal(first.status, 200, `first poll of ${id}`);
  const hs = await send(url, { method: 'POST', body: HANDSHAKE });
  assert.equal(hs.status, 200, `handshake of ${id}: ${hs.text}`);
  let replaced = 0;
  const agents = [];
  const held = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // A POST opens a kept-alive socket on the main daemon; its GET follows
      // on it, while a fresh socket's GET goes to the poll daemon.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      const ping = await send(url, { method: 'POST', agent, body: `{"type":6}${RS}` });
      assert.equal(ping.status, 200, `ping of ${id}: ${ping.text}`);
      const both = [send(`${url}&k=${round}`, { agent }), send(`${url}&f=${round}`)];
      // One of the two is replaced at once; the other is held until the
      // next round's polls replace it (or the DELETE ends it).
      const done = await Promise.race(both.map((p, i) => p.then((r) => ({ r, i }))));
      assertSanePoll(done.r, `round ${round} of ${id}`);
      replaced += done.r.status === 204;
      held.push(both[1 - done.i]);
    }
    const del = await send(url, { method: 'DELETE' });
    assert.equal(del.status, 202, `DELETE of ${id}`);
    (await Promise.all(held)).forEach((r, i) => assertSanePoll(r, `held poll ${i} of ${id}`));
  } finally {
    agents.forEach((a) => a.destroy());
  }
  return replaced;
}

test('double long polls of one SignalR connection on two daemons: no crash, every poll answered', async (t) => {
  const srv = await startFor(t, { limits: { poll_timeout_s: 5 } });
  const ids = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const neg = await negotiate(srv.url);
    assert.equal(neg.status, 200, neg.text);
    ids.push(neg.json.connectionToken);
  }
  let replaced;
  try {
    replaced = await Promise.all(ids.map((id) => doublePolls(srv.url, id)));
  } catch (err) {
    const gone = await Promise.race([srv.exited, new Promise((r) => setTimeout(r, 2000, null))]);
    if (gone) assert.fail(`crier died (code ${gone.code}, signal ${gone.signal}): ${err.message}\n${tail(gone.stderr)}`);
    throw err;
  }
  assert.ok(replaced.reduce((a, b) => a + b, 0) > 0, 'some polls were replaced');
  const health = await request(`${srv.url}/healthz`);
  assert.equal(health.status, 200, 'still serving');
});
