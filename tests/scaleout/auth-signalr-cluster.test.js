// SignalR access across nodes (issue #13): a long-polling connection made
// on node A with alice's token, its later requests sent to node B (which
// forwards them through Redis to A). B verifies the token; A checks that it
// is alice's (401 without a token, 403 for another user) and moves the
// connection's end for a token with a later exp.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../lib/http.js';
import { mintToken, nowS } from '../lib/token.js';
import { sleep } from '../lib/util.js';
import { startCluster } from './helpers.js';

const SECRET = 'srauth-cluster-secret-0123456789abcdef';
const CONFIG = {
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'], leeway_s: 0 },
    rooms: [{ match: '*', subscribe: 'token', publish: 'token' }, { match: 'hub:chat', subscribe: 'token', publish: 'token' }],
  },
};
const HANDSHAKE = '{"protocol":"json","version":1}\x1e';

const token = (user, expS = 300) => mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: user, exp: nowS() + expS } });
const bearer = (tok) => (tok ? { Authorization: `Bearer ${tok}` } : {});

// Negotiates on node `on` and starts long polling there (which makes the
// connection on that node); returns the connection's URL path and query.
async function longPollingOn(on, tok) {
  const neg = await request(`${on.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST', headers: bearer(tok) });
  assert.equal(neg.status, 200, neg.text);
  const q = `/hubs/chat?id=${neg.json.connectionToken}`;
  const first = await request(`${on.url}${q}&_=0`, { headers: bearer(tok) });
  assert.equal(first.status, 200, `first poll: ${first.status} ${first.text}`);
  return q;
}

function send(node, q, tok, body, extra = {}) {
  return request(`${node.url}${q}`, {
    method: 'POST',
    headers: { ...bearer(tok), 'Content-Type': 'text/plain', ...extra },
    body,
  });
}

test('forwarded requests of a connection made with a token: its user only (401/403 from the owner)', { timeout: 30_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2, CONFIG);
  const [a, b] = nodes;
  const alice = token('alice');
  const q = await longPollingOn(a, alice);

  const anon = await send(b, q, null, HANDSHAKE);
  assert.equal(anon.status, 401, anon.text);
  const other = await send(b, q, token('mallory'), HANDSHAKE);
  assert.equal(other.status, 403, other.text);
  assert.match(other.json?.error ?? '', /another user/);
  const del = await request(`${b.url}${q}`, { method: 'DELETE', headers: bearer(token('mallory')) });
  assert.equal(del.status, 403, del.text);

  const hs = await send(b, q, alice, HANDSHAKE);
  assert.equal(hs.status, 200, hs.text);
  const poll = await request(`${b.url}${q}&_=1`, { headers: bearer(alice), timeout: 10_000 });
  assert.equal(poll.status, 200, poll.text);
  assert.equal(poll.text, '{}\x1e');
});

test('a refreshed token on a request forwarded to the owner moves the connection\'s end', { timeout: 30_000 }, async (t) => {
  const { nodes } = await startCluster(t, 2, CONFIG);
  const [a, b] = nodes;
  const short = token('erin', 3);
  const q = await longPollingOn(a, short);
  assert.equal((await send(a, q, short, HANDSHAKE)).status, 200);
  const control = await longPollingOn(a, short); // never refreshed: closed at exp
  assert.equal((await send(a, control, short, HANDSHAKE)).status, 200);
  assert.equal((await request(`${a.url}${control}&_=1`, { headers: bearer(short) })).text, '{}\x1e');
  const long = token('erin', 300);
  // through B: the owner (A) moves the end to the long token's exp
  const poll = await request(`${b.url}${q}&_=1`, { headers: bearer(long), timeout: 10_000 });
  assert.equal(poll.text, '{}\x1e');
  await sleep(4200); // past the short token's exp
  const held = request(`${a.url}${q}&_=2`, { headers: bearer(long), timeout: 15_000 });
  const msg = await send(b, q, long, '{"type":1,"target":"SendMessage","arguments":["erin","still here"]}\x1e');
  assert.equal(msg.status, 200, msg.text);
  const res = await held;
  assert.equal(res.status, 200, res.text);
  assert.match(res.text, /still here/);
  assert.doesNotMatch(res.text, /"type":7/);
  const closed = await request(`${b.url}${control}&_=2`, { headers: bearer(long), timeout: 10_000 });
  assert.match(closed.text, /"type":7.*token expired/, `control: ${closed.status} ${closed.text}`);
});
