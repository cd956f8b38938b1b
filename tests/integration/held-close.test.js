// Held requests whose client goes away: a long poll or an event stream
// (plain, and SignalR's) whose socket the client closes ends at once, and
// the counts in GET /rooms/{room}, /metrics and the stats stream drop with
// it, though poll_timeout_s and keepalive_s are a minute long. Before, the
// slot was held until the poll's timeout or the stream's next keep-alive.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rawConnect, request, subscriberCounts } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { HANDSHAKE, RS, negotiate } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { waitFor } from '../lib/util.js';

const CONFIG = { limits: { poll_timeout_s: 60, keepalive_s: 60 } };
const GONE_MS = 3000; // the old behaviour takes 60 s

// Members of room on transport (0 when the room is gone).
async function members(base, room, transport) {
  const counts = await subscriberCounts(base, room);
  return counts ? counts[transport] : 0;
}

// The gauge crier_subscribers{transport="..."} of /metrics.
async function metricSubscribers(base, transport) {
  const res = await request(`${base}/metrics`);
  assert.equal(res.status, 200);
  const m = new RegExp(`^crier_subscribers\\{transport="${transport}"\\} (\\d+)$`, 'm').exec(res.text);
  assert.ok(m, `no crier_subscribers for ${transport} in ${res.text}`);
  return Number(m[1]);
}

// The dashboard's stats stream: latest() is its newest sample (or null).
async function statsStream(t, base) {
  const stream = await sseHttp(`${base}/stats/events`);
  t.after(() => stream.close());
  return {
    latest() {
      const e = stream.events.at(-1);
      return e ? JSON.parse(e.data) : null;
    },
    // Waits for a sample taken after now, and returns it.
    async next() {
      const seen = stream.events.length;
      await waitFor(() => stream.events.length > seen, { timeout: 5000, message: 'a stats sample' });
      return this.latest();
    },
  };
}

// A GET held on a raw socket of its own.
async function heldGet(port, path) {
  const conn = await rawConnect(port);
  conn.send(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  return conn;
}

// Negotiates a SignalR connection for long polling and shakes hands.
async function longPollingConnection(base) {
  const neg = await negotiate(base);
  assert.equal(neg.status, 200, neg.text);
  const path = `/hubs/chat?id=${neg.json.connectionToken}`;
  const first = await request(`${base}${path}`);
  assert.equal(first.status, 200);
  const hs = await request(`${base}${path}`, { method: 'POST', body: HANDSHAKE });
  assert.equal(hs.status, 200, hs.text);
  const reply = await request(`${base}${path}`);
  assert.equal(reply.text, `{}${RS}`);
  return path;
}

// Each waits on the stats stream's samples (one a second) or on a close:
// they run side by side.
describe('held requests whose client closes', { concurrency: true }, () => {
  test('a held plain long poll whose client closes ends at once: room, metrics and stats drop', async (t) => {
    const srv = await startFor(t, CONFIG);
    const stats = await statsStream(t, srv.url);
    const conn = await heldGet(srv.port, '/rooms/hc-poll/poll');
    await waitFor(async () => (await members(srv.url, 'hc-poll', 'long_polling')) === 1, { message: 'the poll is a member' });
    await waitFor(async () => (await stats.next()).connections.long_polling === 1, { message: 'stats count the held poll' });
    assert.equal(await metricSubscribers(srv.url, 'long_polling'), 1);

    conn.socket.destroy();
    await waitFor(async () => (await members(srv.url, 'hc-poll', 'long_polling')) === 0, {
      timeout: GONE_MS,
      message: 'the closed poll left its room',
    });
    assert.equal(await metricSubscribers(srv.url, 'long_polling'), 0, '/metrics');
    await waitFor(async () => (await stats.next()).connections.long_polling === 0, { message: 'stats drop the poll' });
    assert.equal(conn.data(), '', 'nothing was answered to the closed poll');

    // The server goes on: a new poll is answered by a publish.
    const next = request(`${srv.url}/rooms/hc-poll/poll?since=0`, { timeout: 10_000 });
    const pub = await request(`${srv.url}/rooms/hc-poll/messages`, { method: 'POST', body: '{"a":1}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(pub.status, 201, pub.text);
    const res = await next;
    assert.equal(res.status, 200);
    assert.equal(res.json.messages.length, 1);
  });

  test('a plain event stream whose client closes ends at once: room, metrics and stats drop', async (t) => {
    const srv = await startFor(t, CONFIG);
    const stats = await statsStream(t, srv.url);
    const stream = await sseHttp(`${srv.url}/rooms/hc-sse/events`);
    assert.equal(stream.status, 200);
    await waitFor(async () => (await members(srv.url, 'hc-sse', 'sse')) === 1, { message: 'the stream is a member' });
    await waitFor(async () => (await stats.next()).connections.sse === 2, { message: 'stats count it (and themselves)' });

    stream.close();
    await waitFor(async () => (await members(srv.url, 'hc-sse', 'sse')) === 0, {
      timeout: GONE_MS,
      message: 'the closed stream left its room',
    });
    assert.equal(await metricSubscribers(srv.url, 'sse'), 1, '/metrics: the stats stream only');
    await waitFor(async () => (await stats.next()).connections.sse === 1, { message: 'stats drop the stream' });
  });

  test('a held SignalR long poll whose client closes ends at once; nothing queued is lost', async (t) => {
    const srv = await startFor(t, CONFIG);
    const stats = await statsStream(t, srv.url);
    const path = await longPollingConnection(srv.url);
    const conn = await heldGet(srv.port, path);
    await waitFor(async () => (await stats.next()).connections.long_polling === 1, { message: 'stats count the held poll' });

    conn.socket.destroy();
    await waitFor(async () => (await stats.next()).connections.long_polling === 0, {
      timeout: GONE_MS,
      message: 'stats drop the closed poll',
    });
    assert.equal(conn.data(), '', 'nothing was answered to the closed poll');

    // The connection lives on (a client between polls): what comes next is
    // answered by the next poll.
    const join = await request(`${srv.url}${path}`, {
      method: 'POST',
      body: `{"type":1,"target":"JoinRoom","arguments":["hc-lp"],"invocationId":"1"}${RS}`,
    });
    assert.equal(join.status, 200, join.text);
    const next = await request(`${srv.url}${path}`, { timeout: 10_000 });
    assert.equal(next.status, 200);
    assert.match(next.text, /"type":3,"invocationId":"1"/, `the completion: ${JSON.stringify(next.text)}`);
  });

  test('a SignalR event stream whose client closes ends at once: its room membership drops', async (t) => {
    const srv = await startFor(t, CONFIG);
    const neg = await negotiate(srv.url);
    assert.equal(neg.status, 200, neg.text);
    const url = `${srv.url}/hubs/chat?id=${neg.json.connectionToken}`;
    const stream = await sseHttp(url);
    assert.equal(stream.status, 200);
    const send = (body) => request(url, { method: 'POST', body });
    assert.equal((await send(HANDSHAKE)).status, 200);
    assert.equal((await send(`{"type":1,"target":"JoinRoom","arguments":["hc-srsse"],"invocationId":"1"}${RS}`)).status, 200);
    await waitFor(async () => (await members(srv.url, 'hc-srsse', 'sse')) === 1, { message: 'the connection is a member' });

    stream.close();
    await waitFor(async () => (await members(srv.url, 'hc-srsse', 'sse')) === 0, {
      timeout: GONE_MS,
      message: 'the closed stream left its room',
    });
  });
});
