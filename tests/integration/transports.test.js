// The three transports in detail: SSE framing, resume and keepalive; long-poll
// timing; WebSocket client publish, limits and keepalive; transports switched
// off; per-transport subscriber counts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertJsonError, parseRawResponse, poll, publish, rawConnect, request, roomInfo, subscriberCounts } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { eventEpochs, eventSeq, sseHttp } from '../lib/sse.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openWs, wsRefusal } from '../lib/ws.js';

const ids = (events) => events.map(eventSeq);

// The epoch of an existing room, from GET /rooms/{room}.
async function epochOf(base, room) {
  const res = await roomInfo(base, room);
  assert.equal(res.status, 200, `room info ${room}: ${res.text}`);
  assert.match(res.json.epoch ?? '', /^[A-Za-z0-9]{8}$/, `room info ${room}: epoch in ${res.text}`);
  return res.json.epoch;
}
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('SSE: headers, id lines, and a payload with newlines as several data lines', async (t) => {
  const srv = await startFor(t);
  const sse = await sseHttp(`${srv.url}/rooms/sse/events`);
  t.after(() => sse.close());
  assert.equal(sse.status, 200);
  assert.match(sse.headers['content-type'], /^text\/event-stream\b/);
  assert.equal(sse.headers['cache-control'], 'no-cache');
  assert.equal(sse.headers['x-accel-buffering'], 'no');
  await waitFor(async () => (await subscriberCounts(srv.url, 'sse'))?.sse === 1, { message: 'SSE subscriber counted' });

  const pretty = JSON.stringify({ a: 1, list: [1, 2], nested: { s: 'x' } }, null, 2);
  const res = await request(`${srv.url}/rooms/sse/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: pretty,
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(await publish(srv.url, 'sse', 'two'), 2);

  await sse.waitForEvents(2);
  const epoch = await epochOf(srv.url, 'sse');
  const [first, second] = sse.events;
  assert.equal(first.id, `${epoch}:1`, 'id: EPOCH:N');
  assert.equal(first.dataLines.length, pretty.split('\n').length, `data lines: ${JSON.stringify(first.dataLines)}`);
  assert.equal(first.data, pretty, 'the data lines rejoin to the text as posted');
  assert.equal(second.id, `${epoch}:2`);
  assert.equal(second.data, '"two"');
});

test('SSE: small and large request headers both stream, and a message larger than a stream buffer arrives whole', async (t) => {
  // A stream request with small headers is served with a small
  // per-connection pool, and its connection ends with the stream
  // ("Connection: close"); one with large headers (a 3 KB cookie) is served
  // as any other request. Both must carry a 20 KB message intact.
  const srv = await startFor(t);
  const small = await sseHttp(`${srv.url}/rooms/big/events`);
  t.after(() => small.close());
  const large = await sseHttp(`${srv.url}/rooms/big/events`, { headers: { Cookie: `session=${'c'.repeat(3000)}` } });
  t.after(() => large.close());
  assert.equal(small.status, 200);
  assert.equal(large.status, 200);
  assert.equal(small.headers.connection, 'close', 'a small stream request ends with its stream');
  assert.notEqual(large.headers.connection, 'close', 'a large one is an ordinary keep-alive request');
  await waitFor(async () => (await subscriberCounts(srv.url, 'big'))?.sse === 2, { message: 'both counted' });
  const text = 'x'.repeat(20000);
  assert.equal(await publish(srv.url, 'big', 'first'), 1);
  assert.equal(await publish(srv.url, 'big', text), 2);
  assert.equal(await publish(srv.url, 'big', 'third'), 3);
  for (const sse of [small, large]) {
    await sse.waitForEvents(3);
    assert.deepEqual(sse.events.map((e) => e.data), ['"first"', JSON.stringify(text), '"third"']);
  }
});

test('SSE: a browser-sized EventSource request still gets the small stream pool', async (t) => {
  // The stream daemon's pool (2560 bytes) must take what a browser sends
  // for an EventSource (some 15 fields, ~700 bytes), so that real clients
  // get the light stream, and still stream a 20 KB message whole.
  const srv = await startFor(t);
  const headers = {
    'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    Accept: 'text/event-stream',
    'Cache-Control': 'no-cache',
    Origin: 'https://app.example.com',
    Referer: 'https://app.example.com/dashboard/rooms/overview',
    'Accept-Encoding': 'gzip, deflate, br, zstd',
    'Accept-Language': 'en-US,en;q=0.9,de;q=0.8',
    'Sec-Fetch-Site': 'same-site',
    'Sec-Fetch-Mode': 'cors',
    'Sec-Fetch-Dest': 'empty',
    'sec-ch-ua': '"Chromium";v="131", "Not_A Brand";v="24", "Google Chrome";v="131"',
    'sec-ch-ua-mobile': '?0',
    'sec-ch-ua-platform': '"Linux"',
  };
  const sse = await sseHttp(`${srv.url}/rooms/browser/events`, { headers });
  t.after(() => sse.close());
  assert.equal(sse.status, 200);
  assert.equal(sse.headers.connection, 'close', 'served by the stream daemon (small pool)');
  await waitFor(async () => (await subscriberCounts(srv.url, 'browser'))?.sse === 1, { message: 'counted' });
  const text = 'y'.repeat(20000);
  assert.equal(await publish(srv.url, 'browser', text), 1);
  assert.equal(await publish(srv.url, 'browser', 'after'), 2);
  await sse.waitForEvents(2);
  assert.deepEqual(sse.events.map((e) => e.data), [JSON.stringify(text), '"after"']);
});

test('SSE: payloads with CR or CRLF line breaks still arrive whole', async (t) => {
  // JSON allows CR as whitespace; in SSE a lone CR ends a line, so the
  // server must not pass it through inside a data line.
  const srv = await startFor(t);
  const sse = await sseHttp(`${srv.url}/rooms/cr/events`);
  t.after(() => sse.close());
  await waitFor(async () => (await subscriberCounts(srv.url, 'cr'))?.sse === 1, { message: 'SSE subscriber counted' });
  const bodies = ['{"a":1,\r"b":2}', '{\r\n  "c": [1,\r\n 2]\r\n}'];
  for (const body of bodies) {
    const res = await request(`${srv.url}/rooms/cr/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });
    assert.equal(res.status, 201, res.text);
  }
  await sse.waitForEvents(2);
  sse.events.forEach((e, i) =>
    assert.deepEqual(
      (() => {
        try {
          return JSON.parse(e.data);
        } catch {
          return `unparsable data ${JSON.stringify(e.data)}`;
        }
      })(),
      JSON.parse(bodies[i]),
      `event ${i + 1}`,
    ),
  );
});

test('SSE: resume with Last-Event-ID and with ?last_event_id=', async (t) => {
  const srv = await startFor(t);
  const room = 'resume';
  for (let i = 1; i <= 5; i++) await publish(srv.url, room, { i });
  const streams = [];
  t.after(() => streams.forEach((s) => s.close()));

  const epoch = await epochOf(srv.url, room);
  const byHeader = await sseHttp(`${srv.url}/rooms/${room}/events`, { headers: { 'Last-Event-ID': `${epoch}:2` } });
  streams.push(byHeader);
  const byQuery = await sseHttp(`${srv.url}/rooms/${room}/events?last_event_id=${epoch}:3`);
  streams.push(byQuery);
  const bare = await sseHttp(`${srv.url}/rooms/${room}/events`, { headers: { 'Last-Event-ID': '4' } });
  streams.push(bare);
  const fresh = await sseHttp(`${srv.url}/rooms/${room}/events`);
  streams.push(fresh);

  await byHeader.waitForEvents(3);
  await byQuery.waitForEvents(2);
  await bare.waitForEvents(1);
  await waitFor(async () => (await subscriberCounts(srv.url, room))?.sse === 4, { message: '4 SSE subscribers' });
  assert.equal(await publish(srv.url, room, { i: 6 }), 6);
  await Promise.all([byHeader.waitForEvents(4), byQuery.waitForEvents(3), bare.waitForEvents(2), fresh.waitForEvents(1)]);
  await sleep(200);

  assert.deepEqual(ids(byHeader.events), [3, 4, 5, 6], 'Last-Event-ID: E:2 replays 3..5, then live');
  assert.deepEqual(ids(byQuery.events), [4, 5, 6], 'last_event_id=E:3 replays 4..5, then live');
  assert.deepEqual(ids(bare.events), [5, 6], 'Last-Event-ID: 4 (no epoch) replays 5, then live');
  assert.deepEqual(ids(fresh.events), [6], 'no resume point: live messages only');
  for (const s of streams) assert.deepEqual(eventEpochs(s.events), [epoch], 'every id carries the room epoch');
  assert.deepEqual(byHeader.events.map((e) => JSON.parse(e.data).i), [3, 4, 5, 6]);
});

test('SSE: resume replays only what is still in history, after a gap event', async (t) => {
  const srv = await startFor(t, { history: { size: 3 } });
  for (let i = 1; i <= 6; i++) await publish(srv.url, 'h', i);
  const epoch = await epochOf(srv.url, 'h');
  const sse = await sseHttp(`${srv.url}/rooms/h/events`, { headers: { 'Last-Event-ID': `${epoch}:1` } });
  t.after(() => sse.close());
  await sse.waitForEvents(4);
  await sleep(200);
  const [gap, ...rest] = sse.events;
  assert.equal(gap.type, 'gap', `first event: ${JSON.stringify(gap)}`);
  assert.equal(gap.id, null, 'the gap event has no id line');
  assert.deepEqual(JSON.parse(gap.data), { room: 'h', epoch, reason: 'expired', since: 1, resumed_from: 4 });
  assert.deepEqual(ids(rest), [4, 5, 6]);
  assert.deepEqual(rest.map((e) => e.data), ['4', '5', '6']);
});

test('rooms are independent: messages and ids', async (t) => {
  const srv = await startFor(t);
  const a = await openWs(`${srv.wsUrl}/rooms/a/ws`);
  const b = await openWs(`${srv.wsUrl}/rooms/b/ws`);
  t.after(() => [a, b].forEach((c) => c.close()));
  assert.equal(await publish(srv.url, 'a', 'a1'), 1);
  assert.equal(await publish(srv.url, 'a', 'a2'), 2);
  assert.equal(await publish(srv.url, 'b', 'b1'), 1);
  await Promise.all([a.waitForMessages(2), b.waitForMessages(1)]);
  await sleep(200);
  const [ea, eb] = [await epochOf(srv.url, 'a'), await epochOf(srv.url, 'b')];
  assert.deepEqual(a.messages, [
    { id: 1, epoch: ea, room: 'a', data: 'a1' },
    { id: 2, epoch: ea, room: 'a', data: 'a2' },
  ]);
  assert.deepEqual(b.messages, [{ id: 1, epoch: eb, room: 'b', data: 'b1' }]);
});

test('long poll: a kept-alive connection that started with a poll also publishes and polls again', async (t) => {
  // Connections are given to a server thread by their first request (long
  // polls to their own); whatever follows on the connection is served there.
  const srv = await startFor(t);
  const conn = await rawConnect(srv.port);
  t.after(() => conn.socket.destroy());
  const answers = () => conn.data().split(/(?=HTTP\/1\.1 )/).filter((a) => a.includes('\r\n\r\n'));
  conn.send('GET /rooms/kp/poll?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await waitFor(async () => (await subscriberCounts(srv.url, 'kp'))?.long_polling === 1, { message: 'the poll is held' });
  assert.equal(await publish(srv.url, 'kp', 'one'), 1);
  await waitFor(() => answers().length === 1 && answers()[0].includes('"one"'), { message: 'the poll answered' });
  const body = '"two"';
  conn.send(`POST /rooms/kp/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  await waitFor(() => answers().length === 2, { message: 'the publish answered' });
  assert.match(answers()[1], /^HTTP\/1\.1 201 /, answers()[1]);
  conn.send('GET /rooms/kp/poll?since=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await waitFor(() => answers().length === 3, { message: 'the second poll answered' });
  assert.match(answers()[2], /^HTTP\/1\.1 200 [\s\S]*"two"/, answers()[2]);
  assert.ok(!conn.socket.destroyed, 'the connection is still open');
});

test('long poll: after its answer, a kept-alive connection\'s next request gets the whole header limit, and the JSON 431 past it', async (t) => {
  // An answered poll's connection goes back to the acceptor (the poll
  // daemon's pool is small): the next request's head is read and checked
  // there as a new connection's, so limits.max_header_bytes (8192) holds
  // for it as for a first request, and past it the acceptor's JSON 431.
  const srv = await startFor(t);
  const pad = (n) => Array.from({ length: n }, (_, i) => `X-Pad${i}: ${'p'.repeat(1000)}\r\n`).join('');
  const answered = async (room, next) => {
    const conn = await rawConnect(srv.port);
    t.after(() => conn.socket.destroy());
    const answers = () => conn.data().split(/(?=HTTP\/1\.1 )/).filter((a) => a.includes('\r\n\r\n'));
    conn.send(`GET /rooms/${room}/poll?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await waitFor(async () => (await subscriberCounts(srv.url, room))?.long_polling === 1, { message: 'the poll is held' });
    assert.equal(await publish(srv.url, room, 'one'), 1);
    await waitFor(() => answers().length === 1 && answers()[0].includes('"one"'), { message: 'the poll answered' });
    conn.send(next);
    return { conn, answers };
  };
  // 6 KB of headers: more than the poll daemon's pool takes, within the limit.
  const within = await answered('kb1', `GET /rooms/kb1/poll?since=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n${pad(6)}\r\n`);
  await waitFor(async () => (await subscriberCounts(srv.url, 'kb1'))?.long_polling === 1, { message: 'the second poll is held' });
  assert.equal(await publish(srv.url, 'kb1', 'two'), 2);
  await waitFor(() => within.answers().length === 2, { message: 'the second poll answered' });
  assert.match(within.answers()[1], /^HTTP\/1\.1 200 [\s\S]*"two"/, within.answers()[1].slice(0, 300));
  // 9 KB: over it.
  const over = await answered('kb2', `GET /rooms/kb2/poll?since=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n${pad(9)}\r\n`);
  await waitFor(() => over.answers().length === 2, { message: 'an answer to the oversized head' });
  const refused = parseRawResponse(over.answers()[1]);
  assert.equal(refused.status, 431, over.answers()[1].slice(0, 300));
  assert.match(refused.headers['content-type'] ?? '', /^application\/json\b/, over.answers()[1].slice(0, 300));
  assert.match(refused.body, /"error"\s*:\s*"request headers are larger than limits\.max_header_bytes/, refused.body);
});

test('long poll: an idle kept-alive connection after a poll\'s answer ends silently after limits.header_timeout_s', async (t) => {
  // Back with the acceptor, it waits for its next head as any kept-alive
  // connection does: closed without an answer (a 408 there could be taken
  // for the answer to a request the client is sending just then).
  const srv = await startFor(t, { limits: { header_timeout_s: 1 } });
  assert.equal(await publish(srv.url, 'idle', 'one'), 1);
  const conn = await rawConnect(srv.port);
  t.after(() => conn.socket.destroy());
  const sentAt = Date.now();
  conn.send('GET /rooms/idle/poll?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await withTimeout(conn.closed, 5000, 'the idle connection was not closed');
  assert.ok(Date.now() - sentAt >= 900, `closed after ${Date.now() - sentAt} ms, before the header timeout`);
  const answers = conn.data().split(/(?=HTTP\/1\.1 )/).filter((a) => a.includes('\r\n\r\n'));
  assert.equal(answers.length, 1, `one answer, the poll's: ${conn.data().slice(0, 400)}`);
  assert.match(answers[0], /^HTTP\/1\.1 200 [\s\S]*"one"/);
});

test('long poll: a request sent right behind a poll (pipelined) is answered too', async (t) => {
  // A poll with more than its head already arrived is served where the
  // connection stays with libmicrohttpd, so the request behind it is not lost.
  const srv = await startFor(t);
  assert.equal(await publish(srv.url, 'pp', 'one'), 1);
  const conn = await rawConnect(srv.port);
  t.after(() => conn.socket.destroy());
  const answers = () => conn.data().split(/(?=HTTP\/1\.1 )/).filter((a) => a.includes('\r\n\r\n'));
  conn.send(
    'GET /rooms/pp/poll?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' + 'GET /rooms/pp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
  );
  await waitFor(() => answers().length === 2, { timeout: 4000, message: 'both answered' });
  assert.match(answers()[0], /^HTTP\/1\.1 200 [\s\S]*"one"/, answers()[0].slice(0, 300));
  assert.match(answers()[1], /^HTTP\/1\.1 200 /, answers()[1].slice(0, 300));
});

test('long poll: since=N answers at once from history', async (t) => {
  const srv = await startFor(t, { limits: { poll_timeout_s: 10 } });
  for (let i = 1; i <= 3; i++) await publish(srv.url, 'hist', { i });
  const epoch = await epochOf(srv.url, 'hist');
  const res = await poll(srv.url, 'hist', 1);
  assert.equal(res.status, 200, res.text);
  assert.ok(res.ms < 2000, `took ${res.ms} ms: the poll was held although messages were waiting`);
  assert.deepEqual(res.json, {
    messages: [
      { id: 2, epoch, room: 'hist', data: { i: 2 } },
      { id: 3, epoch, room: 'hist', data: { i: 3 } },
    ],
    last_id: 3,
    epoch,
  });
});

test('long poll: held until a message arrives', async (t) => {
  const srv = await startFor(t, { limits: { poll_timeout_s: 10 } });
  assert.equal(await publish(srv.url, 'held', 'old'), 1);

  const withSince = poll(srv.url, 'held', 1);
  const withoutSince = poll(srv.url, 'held');
  let settled = false;
  Promise.allSettled([withSince, withoutSince]).then(() => (settled = true));
  await waitFor(async () => (await subscriberCounts(srv.url, 'held'))?.long_polling === 2, {
    message: 'two held polls counted',
  });
  await sleep(300);
  assert.equal(settled, false, 'a poll was answered before any new message');

  const t0 = Date.now();
  assert.equal(await publish(srv.url, 'held', 'new'), 2);
  const [a, b] = await withTimeout(Promise.all([withSince, withoutSince]), 3000, 'held polls answered');
  assert.ok(Date.now() - t0 < 2000, 'held polls answered promptly');
  const epoch = await epochOf(srv.url, 'held');
  const expected = { messages: [{ id: 2, epoch, room: 'held', data: 'new' }], last_id: 2, epoch };
  assert.deepEqual(a.json, expected, 'since=1');
  assert.deepEqual(b.json, expected, 'no since: only the message published after the request');
});

test('WebSocket: client text frames publish to SSE, WebSocket and poll subscribers', async (t) => {
  const srv = await startFor(t, { limits: { poll_timeout_s: 10 } });
  const room = 'chat';
  const sse = await sseHttp(`${srv.url}/rooms/${room}/events`);
  const listener = await openWs(`${srv.wsUrl}/rooms/${room}/ws`);
  const sender = await openWs(`${srv.wsUrl}/rooms/${room}/ws`);
  t.after(() => [sse, listener, sender].forEach((c) => c.close()));
  const held = poll(srv.url, room, 0);
  await waitFor(
    async () => {
      const c = await subscriberCounts(srv.url, room);
      return c?.websocket === 2 && c?.sse === 1 && c?.long_polling === 1;
    },
    { message: 'subscribers counted' },
  );

  sender.ws.send('{"from":"ws","n":[1,2]}');
  const first = await withTimeout(held, 3000, 'held poll answered by a WS publish');
  sender.ws.send('plain text, not JSON');
  await Promise.all([sse.waitForEvents(2), listener.waitForMessages(2)]);
  const rest = await poll(srv.url, room, 1, { timeout: 3000 });

  const epoch = await epochOf(srv.url, room);
  const expected = [
    { id: 1, epoch, room, data: { from: 'ws', n: [1, 2] } },
    { id: 2, epoch, room, data: 'plain text, not JSON' },
  ];
  assert.deepEqual(listener.messages, expected, 'WS listener');
  assert.deepEqual(eventEpochs(sse.events), [epoch], 'SSE ids carry the epoch');
  assert.deepEqual(
    sse.events.map((e) => ({ id: eventSeq(e), epoch, room, data: JSON.parse(e.data) })),
    expected,
    'SSE subscriber',
  );
  assert.deepEqual([...first.json.messages, ...rest.json.messages], expected, 'long poll');
  assert.equal(sender.closeInfo, null, 'the sender stays connected');
});

test('WebSocket: a fragmented text message is published whole', async (t) => {
  const srv = await startFor(t, { limits: { max_message_bytes: 1024 } });
  const listener = await openWs(`${srv.wsUrl}/rooms/frag/ws`);
  const sender = await openWs(`${srv.wsUrl}/rooms/frag/ws`);
  t.after(() => [listener, sender].forEach((c) => c.close()));
  sender.ws.send('{"part":', { fin: false });
  sender.ws.send('"one and', { fin: false });
  sender.ws.send(' two"}', { fin: true });
  await listener.waitForMessages(1);
  const epoch = await epochOf(srv.url, 'frag');
  assert.deepEqual(listener.messages[0], { id: 1, epoch, room: 'frag', data: { part: 'one and two' } });

  // 3 fragments of 400 bytes: each within the limit, the message over it.
  const big = await openWs(`${srv.wsUrl}/rooms/frag/ws`);
  t.after(() => big.close());
  big.ws.send('x'.repeat(400), { fin: false });
  big.ws.send('x'.repeat(400), { fin: false });
  big.ws.send('x'.repeat(400), { fin: true });
  const close = await big.waitForClose(3000);
  assert.equal(close.code, 1009, `fragmented message over the limit: close ${close.code} ${close.reason}`);
  await sleep(200);
  assert.equal(listener.messages.length, 1, 'the oversize message was not published');
});

test('WebSocket: messages far larger than the 512-byte receive piece arrive whole', async (t) => {
  // lws hands received payload over in pieces of the protocol's
  // rx_buffer_size (512 B, to keep idle connections small): a 60 KB frame
  // and a 3-fragment message are gathered by crier before publishing.
  const srv = await startFor(t);
  const listener = await openWs(`${srv.wsUrl}/rooms/piece/ws`);
  const sender = await openWs(`${srv.wsUrl}/rooms/piece/ws`);
  t.after(() => [listener, sender].forEach((c) => c.close()));
  const big = 'a'.repeat(30000) + 'b'.repeat(30000);
  sender.ws.send(JSON.stringify({ big }));
  sender.ws.send('{"f":"' + 'c'.repeat(1500), { fin: false });
  sender.ws.send('d'.repeat(1500), { fin: false });
  sender.ws.send('e"}', { fin: true });
  await listener.waitForMessages(2);
  assert.equal(listener.messages[0].data.big, big, 'the 60 KB frame arrived intact');
  assert.equal(listener.messages[1].data.f, 'c'.repeat(1500) + 'd'.repeat(1500) + 'e');
  assert.equal(sender.closeInfo, null, 'the sender stays connected');
});

test('WebSocket: rooms.client_publish false closes a publishing client with 1008', async (t) => {
  const srv = await startFor(t, { rooms: { client_publish: false } });
  const other = await openWs(`${srv.wsUrl}/rooms/ro/ws`);
  const ws = await openWs(`${srv.wsUrl}/rooms/ro/ws`);
  t.after(() => [ws, other].forEach((c) => c.close()));
  ws.ws.send('{"not":"allowed"}');
  const close = await ws.waitForClose(3000);
  assert.equal(close.code, 1008, `close ${close.code} ${close.reason}`);
  await sleep(200);
  assert.equal(other.messages.length, 0, 'nothing was published');
  assert.equal(other.closeInfo, null, 'other subscribers unaffected');
  const info = await roomInfo(srv.url, 'ro');
  assert.equal(info.json?.last_id, 0, `room info: ${info.text}`);
  assert.equal(await publish(srv.url, 'ro', 'http still publishes'), 1);
  await other.waitForMessages(1);
});

test('WebSocket: a frame over max_message_bytes closes with 1009; binary with 1003', async (t) => {
  const srv = await startFor(t, { limits: { max_message_bytes: 1024 } });
  const big = await openWs(`${srv.wsUrl}/rooms/lim/ws`);
  const bin = await openWs(`${srv.wsUrl}/rooms/lim/ws`);
  t.after(() => [big, bin].forEach((c) => c.close()));

  big.ws.send(JSON.stringify('x'.repeat(500)));
  await bin.waitForMessages(1); // within the limit: published
  big.ws.send('y'.repeat(2000));
  const c1 = await big.waitForClose(3000);
  assert.equal(c1.code, 1009, `oversize frame: close ${c1.code} ${c1.reason}`);

  bin.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  const c2 = await bin.waitForClose(3000);
  assert.equal(c2.code, 1003, `binary frame: close ${c2.code} ${c2.reason}`);

  const res = await poll(srv.url, 'lim', 0, { timeout: 3000 });
  assert.deepEqual(res.json.messages.map((m) => m.id), [1], 'only the frame within the limit was published');
});

test('a transport switched off answers 404 on its endpoint', async (t) => {
  await t.test('websocket off', async (t) => {
    const srv = await startFor(t, { transports: { websocket: false } });
    const res = await wsRefusal(`${srv.wsUrl}/rooms/x/ws`);
    assert.equal(res.status, 404, `upgrade: HTTP ${res.status}`);
    assertJsonError(await request(`${srv.url}/rooms/x/ws`), 404, 'GET /rooms/x/ws');
    const sse = await sseHttp(`${srv.url}/rooms/x/events`);
    assert.equal(sse.status, 200, 'SSE still on');
    sse.close();
  });
  await t.test('sse off', async (t) => {
    const srv = await startFor(t, { transports: { sse: false } });
    assertJsonError(await request(`${srv.url}/rooms/x/events`, { timeout: 3000 }), 404, 'GET events');
    const ws = await openWs(`${srv.wsUrl}/rooms/x/ws`);
    ws.close();
  });
  await t.test('long_polling off', async (t) => {
    const srv = await startFor(t, { transports: { long_polling: false } });
    assertJsonError(await request(`${srv.url}/rooms/x/poll?since=0`, { timeout: 3000 }), 404, 'GET poll');
    const sse = await sseHttp(`${srv.url}/rooms/x/events`);
    assert.equal(sse.status, 200);
    sse.close();
  });
});

test('room info counts subscribers per transport, and back down when they leave', async (t) => {
  const srv = await startFor(t, { limits: { poll_timeout_s: 2, keepalive_s: 1 } });
  const room = 'count';
  assert.equal(await publish(srv.url, room, 'exists'), 1);
  const ws = await openWs(`${srv.wsUrl}/rooms/${room}/ws`);
  const sse1 = await sseHttp(`${srv.url}/rooms/${room}/events`);
  const sse2 = await sseHttp(`${srv.url}/rooms/${room}/events`);
  const ac = new AbortController();
  const held = poll(srv.url, room, undefined, { signal: ac.signal }).catch(() => null);
  t.after(() => [ws, sse1, sse2].forEach((c) => c.close()));

  await waitFor(
    async () => {
      const res = await roomInfo(srv.url, room);
      return (
        res.status === 200 &&
        res.json.room === room &&
        /^[A-Za-z0-9]{8}$/.test(res.json.epoch) &&
        res.json.last_id === 1 &&
        JSON.stringify(res.json.subscribers) === JSON.stringify({ websocket: 1, sse: 2, long_polling: 1 }) &&
        res
      );
    },
    { message: 'room info {"room":"count","epoch":"E","last_id":1,"subscribers":{"websocket":1,"sse":2,"long_polling":1}}' },
  );

  ws.close();
  sse1.close();
  sse2.close();
  ac.abort();
  await held;
  await waitFor(
    async () => {
      const c = await subscriberCounts(srv.url, room);
      return c && c.websocket === 0 && c.sse === 0 && c.long_polling === 0;
    },
    { timeout: 6000, message: 'room info back to 0 subscribers after they left' },
  );
});

// The tests that wait out a limit (ttl, keep-alive, poll timeout) spend
// their time idle: they run side by side.
describe('limits that take time', { concurrency: true }, () => {
  test('history.ttl_s: expired messages are not replayed, and an idle room goes away', async (t) => {
    const srv = await startFor(t, { history: { ttl_s: 1 }, limits: { poll_timeout_s: 1 } });
    assert.equal(await publish(srv.url, 'ttl', 'old'), 1);
    const fresh = await poll(srv.url, 'ttl', 0);
    assert.deepEqual(fresh.json.messages.map((m) => m.data), ['old'], 'within the ttl');
    await waitFor(async () => (await roomInfo(srv.url, 'ttl')).status === 404, {
      timeout: 4000,
      message: 'GET /rooms/ttl -> 404 once its only message expired',
    });
    const late = await poll(srv.url, 'ttl', 0);
    assert.deepEqual(late.json.messages, [], 'after the ttl: nothing replayed');
  });

  test('SSE: a keepalive comment every limits.keepalive_s', async (t) => {
    const srv = await startFor(t, { limits: { keepalive_s: 1 } });
    const sse = await sseHttp(`${srv.url}/rooms/quiet/events`);
    t.after(() => sse.close());
    const t0 = Date.now();
    await sse.until((s) => s.comments.length >= 2, 4000, 'SSE: two keepalive comments within 4 s');
    await sleep(Math.max(0, t0 + 3500 - Date.now()));
    // About one a second: no more than 5 in 3.5 s, not a flood.
    assert.ok(sse.comments.length <= 5, `${sse.comments.length} keepalive comments in 3.5 s`);
    assert.equal(sse.events.length, 0, 'comments are not events');
  });

  test('long poll: times out after poll_timeout_s with an empty list', async (t) => {
    const srv = await startFor(t, { limits: { poll_timeout_s: 1 } });
    const res = await poll(srv.url, 'lp', 0);
    assert.equal(res.status, 200, res.text);
    assert.match(res.json?.epoch ?? '', /^[A-Za-z0-9]{8}$/, `epoch in ${res.text}`);
    assert.deepEqual(res.json, { messages: [], last_id: 0, epoch: res.json.epoch });
    assert.ok(res.ms >= 900 && res.ms < 3000, `answered after ${res.ms} ms, expected about 1000`);

    for (let i = 1; i <= 3; i++) await publish(srv.url, 'lp', i);
    const epoch = await epochOf(srv.url, 'lp');
    const noSince = await poll(srv.url, 'lp');
    assert.equal(noSince.status, 200, noSince.text);
    assert.deepEqual(noSince.json, { messages: [], last_id: 3, epoch }, 'no since: history is not returned, last_id is the room\'s');
    assert.ok(noSince.ms >= 900 && noSince.ms < 3000, `answered after ${noSince.ms} ms`);

    const caughtUp = await poll(srv.url, 'lp', 3);
    assert.deepEqual(caughtUp.json, { messages: [], last_id: 3, epoch });
  });

  test('WebSocket: server pings; a peer that stops answering is closed', async (t) => {
    const srv = await startFor(t, { limits: { keepalive_s: 1 } });
    const alive = await openWs(`${srv.wsUrl}/rooms/ka/ws`);
    const mute = await openWs(`${srv.wsUrl}/rooms/ka/ws`, { autoPong: false });
    t.after(() => [alive, mute].forEach((c) => c.close()));
    let pings = 0;
    alive.ws.on('ping', () => pings++);
    await mute.waitForClose(10_000);
    assert.ok(pings >= 1, 'the answering client was pinged');
    assert.equal(alive.closeInfo, null, 'the answering client stays connected');
    assert.equal((await subscriberCounts(srv.url, 'ka'))?.websocket, 1);
  });
});
