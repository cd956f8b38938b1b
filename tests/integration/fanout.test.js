// 1000 messages published with curl reach two subscribers on each transport
// (curl SSE, curl long-poll loop, ws WebSocket) exactly once, in order, with
// ids 1..1000 and the data as posted.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { curlPollLoop, curlPublishMany } from '../lib/curl.js';
import { roomInfo, subscriberCounts } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { eventEpochs, eventSeq, sseCurl } from '../lib/sse.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

const N = 1000;
const ROOM = 'fanout:room_1.A-z';

// Distinct payloads exercising escapes, unicode and nesting.
const payloads = Array.from({ length: N }, (_, i) => ({
  n: i + 1,
  text: `message ${i + 1} "quoted" \\ back/slash \t tab`,
  unicode: 'ü € 😀',
  nested: { even: (i + 1) % 2 === 0, list: [i, null, 1.5] },
}));

// Asserts that `got` ([{id, data}]) is exactly ids 1..N with the payloads.
function assertAllInOrder(label, got) {
  const ids = got.map((m) => Number(m.id));
  assert.equal(got.length, N, `${label}: ${got.length} messages, expected ${N}`);
  assert.deepEqual(ids, payloads.map((p) => p.n), `${label}: ids are not 1..${N} in order`);
  got.forEach((m, i) => assert.deepEqual(m.data, payloads[i], `${label}: data of message ${i + 1}`));
}

test(`${N} messages fan out to SSE, long-poll and WebSocket subscribers`, { timeout: 100_000 }, async (t) => {
  const srv = await startFor(t, { limits: { poll_timeout_s: 10 } });
  const room = ROOM; // ':' '.' '_' '-' are all legal in a path as is
  const sse = [sseCurl(`${srv.url}/rooms/${room}/events`), sseCurl(`${srv.url}/rooms/${room}/events`)];
  const polls = [curlPollLoop(srv.url, room, { since: 0, count: N }), curlPollLoop(srv.url, room, { since: 0, count: N })];
  const ws = [];
  try {
    ws.push(await openWs(`${srv.wsUrl}/rooms/${room}/ws`), await openWs(`${srv.wsUrl}/rooms/${room}/ws`));
    await waitFor(
      async () => {
        const c = await subscriberCounts(srv.url, room);
        return c && c.websocket === 2 && c.sse === 2 && c.long_polling === 2;
      },
      { timeout: 10_000, message: 'room info shows 2 subscribers on each transport' },
    );

    const results = await curlPublishMany(`${srv.url}/rooms/${room}/messages`, payloads.map((p) => JSON.stringify(p)));
    assert.equal(results.length, N, 'curl made every request');
    const published = results.map((r, i) => {
      assert.equal(r.status, 201, `publish ${i + 1}: status ${r.status} ${r.body}`);
      const body = JSON.parse(r.body);
      assert.deepEqual(body, { id: i + 1, epoch: body.epoch }, `publish ${i + 1}: body`);
      return body.epoch;
    });

    await Promise.all([
      ...sse.map((s) => s.waitForEvents(N, 60_000)),
      ...ws.map((w) => w.waitForMessages(N, 60_000)),
      ...polls.map((p, i) => withTimeout(p.done, 60_000, `long-poll loop ${i + 1}: waiting for ${N} messages`)),
    ]);
    await sleep(300); // anything extra (a duplicate) would show up now

    // Every message carries the room's epoch: SSE ids are EPOCH:N, envelopes have "epoch".
    const info0 = await roomInfo(srv.url, room);
    assert.equal(info0.status, 200, info0.text);
    const { epoch } = info0.json;
    assert.match(epoch ?? '', /^[A-Za-z0-9]{8}$/, `room info: ${info0.text}`);
    assert.deepEqual([...new Set(published)], [epoch], 'every publish answered the room\'s epoch');

    sse.forEach((s, k) => {
      assert.deepEqual(eventEpochs(s.events), [epoch], `SSE ${k + 1}: every id is ${epoch}:N`);
      assertAllInOrder(`SSE ${k + 1}`, s.events.map((e) => ({ id: eventSeq(e), data: JSON.parse(e.data) })));
    });
    ws.forEach((w, k) => {
      assert.ok(w.messages.every((m) => m && m.room === ROOM), `WS ${k + 1}: every frame names room ${ROOM}`);
      assert.ok(w.messages.every((m) => m.epoch === epoch), `WS ${k + 1}: every frame has epoch ${epoch}`);
      assertAllInOrder(`WS ${k + 1}`, w.messages);
    });
    polls.forEach((p, k) => {
      assert.ok(p.messages.every((m) => m.room === ROOM), `long poll ${k + 1}: every message names room ${ROOM}`);
      assert.ok(p.messages.every((m) => m.epoch === epoch), `long poll ${k + 1}: every message has epoch ${epoch}`);
      assert.deepEqual(p.gaps, [], `long poll ${k + 1}: no gap signal`);
      assertAllInOrder(`long poll ${k + 1}`, p.messages);
    });

    const info = await subscriberCounts(srv.url, room);
    assert.equal(info?.websocket, 2, `room info after the run: ${JSON.stringify(info)}`);
    assert.equal(info?.sse, 2, `room info after the run: ${JSON.stringify(info)}`);
  } finally {
    sse.forEach((s) => s.close());
    polls.forEach((p) => p.stop());
    ws.forEach((w) => w.close());
  }
});
