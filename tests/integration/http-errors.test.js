// Bad requests get the right status and a JSON {"error": ...} body, and the
// server keeps serving; publish keeps JSON bodies as is and wraps other
// content types in a JSON string.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertJsonError, parseRawResponse, poll, publish, publishRaw, rawRequest, request, roomInfo } from '../lib/http.js';
import { startCrier, stopClean } from '../lib/server.js';
import { wsRefusal } from '../lib/ws.js';

const MAX = 1024;

describe('HTTP errors and publish bodies', { timeout: 60_000 }, () => {
  let srv;
  let base;
  before(async () => {
    srv = await startCrier({ limits: { max_message_bytes: MAX, poll_timeout_s: 2 } });
    base = srv.url;
  });
  after(() => srv && stopClean(srv));

  test('GET /healthz', async () => {
    const res = await request(`${base}/healthz`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/);
    const type = process.env.CRIER_TEST_BACKPLANE === 'redis' ? 'redis' : 'memory';
    assert.deepEqual(res.json, { status: 'ok', backplane: { type, connected: true } });
  });

  const badRooms = {
    'a space (a%20b)': 'a%20b',
    'a non-ASCII letter (é)': '%C3%A9',
    'a slash-free bad char (a!b)': 'a!b',
    'a plus (a+b)': 'a+b',
    '129 characters': 'r'.repeat(129),
    'the empty name': '',
  };
  for (const [what, room] of Object.entries(badRooms)) {
    test(`room name with ${what} -> 400 on every endpoint`, async () => {
      const opts = { timeout: 3000 };
      assertJsonError(await publishRaw(base, room, '{"a":1}'), 400, 'POST messages');
      assertJsonError(await request(`${base}/rooms/${room}/events`, opts), 400, 'GET events');
      assertJsonError(await request(`${base}/rooms/${room}/poll?since=0`, opts), 400, 'GET poll');
      assertJsonError(await request(`${base}/rooms/${room}/ws`, opts), 400, 'GET ws without upgrade');
      if (room !== '') assertJsonError(await roomInfo(base, room), 400, 'GET room info');
      const ws = await wsRefusal(`${srv.wsUrl}/rooms/${room}/ws`);
      assert.equal(ws.status, 400, `WS upgrade: HTTP ${ws.status} ${ws.body}`);
    });
  }

  test('room name with raw (not percent-encoded) UTF-8 bytes -> 400', async () => {
    const res = parseRawResponse(
      (await rawRequest(srv.port, 'GET /rooms/caf\xc3\xa9/poll?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', { timeout: 3000 })).raw,
    );
    assert.equal(res.status, 400, `status ${res.status}`);
    assert.match(res.headers['content-type'] ?? '', /^application\/json\b/);
  });

  test('room names of 128 characters and of every allowed character are accepted', async () => {
    assert.equal(await publish(base, 'r'.repeat(128), 1), 1);
    // Its info, also when it comes from the backplane: whole, valid JSON.
    const long = await roomInfo(base, 'r'.repeat(128));
    assert.equal(long.status, 200, long.text);
    assert.equal(long.json?.room, 'r'.repeat(128), long.text);
    assert.equal(long.json.last_id, 1);
    const all = 'ABCXYZabcxyz0189._-:';
    assert.equal(await publish(base, all, 1), 1);
    const info = await roomInfo(base, all);
    assert.equal(info.status, 200, info.text);
    assert.equal(info.json.room, all);
  });

  test('unknown paths -> 404', async () => {
    // (GET /rooms is the room list since the server API: server-api-rooms.test.js)
    for (const path of ['/nope', '/room', '/roomsx', '/rooms/x/nope', '/rooms/x/messages/extra', '/rooms/x/history/extra', '/healthz/x']) {
      assertJsonError(await request(`${base}${path}`), 404, `GET ${path}`);
    }
    assertJsonError(await request(`${base}/nope`, { method: 'POST', body: '{}' }), 404, 'POST /nope');
    // "/" is the web root's index page, not an unknown path.
    const index = await request(`${base}/`);
    assert.equal(index.status, 200, `GET /: ${index.status} ${index.text.slice(0, 200)}`);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html\b/i, 'GET /: Content-Type');
  });

  // A raw GET of path (not normalised as fetch would), Connection: close:
  // {status, headers, body} with the body parsed as JSON.
  async function rawGet(path, what) {
    const res = parseRawResponse((await rawRequest(srv.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).raw);
    assert.match(res.headers['content-type'] ?? '', /^application\/json\b/, `${what}: Content-Type (status ${res.status})`);
    const length = Number(res.headers['content-length']);
    res.json = JSON.parse(res.body.slice(0, length));
    assert.equal(typeof res.json.error, 'string', `${what}: ${res.body}`);
    return res;
  }

  test('long paths -> 404 or 414 with a JSON error, never another file', async () => {
    // 511 bytes that resolve to chat.html, then more: the whole path names
    // no file (once, the first 511 bytes were served).
    const prefix = `//${'./'.repeat(250)}chat.html`;
    assert.equal(prefix.length, 511);
    const cut = await rawGet(`${prefix}${'X'.repeat(18)}`, '529-byte path');
    assert.equal(cut.status, 404, `529-byte path: ${cut.status} ${cut.body.slice(0, 200)}`);
    assert.ok(cut.json.error.length < 300, `the echoed path is bounded: ${cut.json.error.length}`);
    const whole = parseRawResponse((await rawRequest(srv.port, `GET ${prefix} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).raw);
    assert.equal(whole.status, 200, 'the 511-byte path itself is chat.html');
    // Past 1024 bytes: 414, for files and endpoints alike.
    for (const path of [`/${'a'.repeat(2000)}`, `/rooms/x/${'b'.repeat(1100)}`, `//${'./'.repeat(1000)}chat.html`]) {
      const res = await rawGet(path, `${path.length}-byte path`);
      assert.equal(res.status, 414, `${path.length}-byte path: ${res.status}`);
      assert.match(res.json.error, /1024/);
    }
    // Control characters and invalid UTF-8 (percent-encoded) in a 404 path:
    // still one valid JSON body.
    const odd = await rawGet(`/nope%01%22%5C%FF%C3%28${'%07'.repeat(100)}`, 'odd bytes');
    assert.equal(odd.status, 404);
    assert.match(odd.json.error, /^no such endpoint: \/nope\u0001"\\/);
  });

  test('a room that does not exist -> 404', async () => {
    assertJsonError(await roomInfo(base, 'never-used'), 404, 'GET /rooms/never-used');
  });

  test('wrong method -> 405 with an Allow header', async () => {
    const cases = [
      ['DELETE', '/rooms/x/messages', 'POST'],
      ['GET', '/rooms/x/messages', 'POST'],
      ['PUT', '/rooms/x/messages', 'POST'],
      ['POST', '/rooms/x/events', 'GET'],
      ['POST', '/rooms/x/poll', 'GET'],
      ['POST', '/rooms/x/ws', 'GET'],
      ['DELETE', '/rooms/x', 'GET'],
      ['POST', '/rooms/x', 'GET'],
      ['POST', '/healthz', 'GET'],
    ];
    for (const [method, path, allowed] of cases) {
      const res = await request(`${base}${path}`, { method, body: method === 'GET' ? undefined : '{}' });
      assertJsonError(res, 405, `${method} ${path}`);
      const allow = (res.headers.get('allow') ?? '').split(',').map((m) => m.trim().toUpperCase());
      assert.ok(allow.includes(allowed), `${method} ${path}: Allow "${res.headers.get('allow')}" lacks ${allowed}`);
      assert.ok(!allow.includes(method), `${method} ${path}: Allow "${res.headers.get('allow')}" lists ${method}`);
    }
  });

  test('HEAD on every GET endpoint: the GET\'s status and headers, no body; streams and polls answer at once', async (t) => {
    // Default poll timeout (25 s): a HEAD that held like its GET would time out below.
    const own = await startCrier({});
    t.after(() => stopClean(own));
    const at = own.url;
    assert.equal(await publish(at, 'headroom', 1), 1);
    for (const path of ['/healthz', '/rooms/headroom', '/rooms/never-used', '/', '/chat.html', '/nope', '/rooms/bad!/events']) {
      const get = await request(`${at}${path}`);
      const head = await request(`${at}${path}`, { method: 'HEAD' });
      assert.equal(head.status, get.status, `HEAD ${path}: status`);
      assert.equal(head.text, '', `HEAD ${path}: no body`);
      for (const h of ['content-type', 'content-length', 'cache-control']) {
        assert.equal(head.headers.get(h), get.headers.get(h), `HEAD ${path}: ${h}`);
      }
    }
    const metrics = await request(`${at}/metrics`, { method: 'HEAD' });
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    // Streams and polls: 200 and the content type at once, nothing held.
    const held = [
      ['/rooms/headroom/events', /^text\/event-stream/, {}],
      ['/rooms/headroom/poll', /^application\/json/, {}],
      ['/stats/events', /^text\/event-stream/, {}],
      ['/hubs/chat?id=whatever', /^text\/event-stream/, { Accept: 'text/event-stream' }],
      ['/hubs/chat?id=whatever&_=1', /^application\/octet-stream/, {}],
    ];
    for (const [path, type, headers] of held) {
      const head = await request(`${at}${path}`, { method: 'HEAD', headers, timeout: 10_000 });
      assert.equal(head.status, 200, `HEAD ${path}`);
      assert.match(head.headers.get('content-type') ?? '', type, `HEAD ${path}: Content-Type`);
      assert.equal(head.text, '', `HEAD ${path}: no body`);
    }
    const counts = await request(`${at}/rooms/headroom`);
    assert.deepEqual(counts.json.subscribers, { websocket: 0, sse: 0, long_polling: 0 }, 'no HEAD left a subscriber');
    // Allow lists HEAD where GET is.
    const allow = (await request(`${at}/rooms/x/events`, { method: 'POST', body: '{}' })).headers.get('allow') ?? '';
    assert.match(allow, /\bHEAD\b/, `Allow: ${allow}`);
    assert.equal((await request(`${at}/rooms/x/messages`, { method: 'HEAD' })).status, 405, 'HEAD where GET is not served');
  });

  test('malformed JSON -> 400', async () => {
    for (const body of ['{"a":', '{a:1}', '[1,2', '', 'nul', '{"a":1} trailing', "{'a':1}"]) {
      assertJsonError(await publishRaw(base, 'malformed', body), 400, `body ${JSON.stringify(body)}`);
    }
  });

  test(`over max_message_bytes (${MAX}) -> 413`, async () => {
    const exact = JSON.stringify('x'.repeat(MAX - 2)); // exactly MAX bytes
    assert.equal(exact.length, MAX);
    const ok = await publishRaw(base, 'big', exact);
    assert.equal(ok.status, 201, `a ${MAX}-byte body: ${ok.status} ${ok.text}`);
    assertJsonError(await publishRaw(base, 'big', JSON.stringify('x'.repeat(MAX - 1))), 413, `${MAX + 1}-byte JSON`);
    assertJsonError(await publishRaw(base, 'big', 'y'.repeat(2 * MAX), 'text/plain'), 413, 'text/plain body');
    assertJsonError(await publishRaw(base, 'big', JSON.stringify('z'.repeat(64 * 1024))), 413, '64 KiB body');
  });

  test('over max_message_bytes with a chunked body (no Content-Length) -> 413; within it -> 201', async () => {
    const chunked = (text) =>
      request(`${base}/rooms/chunked/messages`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: new ReadableStream({
          start(controller) {
            for (let i = 0; i < text.length; i += 100) controller.enqueue(new TextEncoder().encode(text.slice(i, i + 100)));
            controller.close();
          },
        }),
        duplex: 'half',
      });
    const small = await chunked(JSON.stringify({ small: 'x'.repeat(500) }));
    assert.equal(small.status, 201, `chunked 500 bytes: ${small.status} ${small.text}`);
    assertJsonError(await chunked(JSON.stringify('x'.repeat(8 * MAX))), 413, `chunked ${8 * MAX} bytes`);
  });

  test('failed publishes do not use up ids', async () => {
    assert.equal(await publish(base, 'ids', { first: true }), 1);
    assert.equal((await publishRaw(base, 'ids', '{"broken"')).status, 400);
    assert.equal((await publishRaw(base, 'ids', JSON.stringify('x'.repeat(2 * MAX)))).status, 413);
    assert.equal(await publish(base, 'ids', { second: true }), 2);
    const res = await poll(base, 'ids', 0);
    assert.deepEqual(res.json.messages.map((m) => m.data), [{ first: true }, { second: true }]);
  });

  test('since that is not a non-negative integer -> 400', async () => {
    for (const since of ['-1', 'abc', '1.5', '1e3', '0x10']) {
      assertJsonError(await request(`${base}/rooms/x/poll?since=${since}`, { timeout: 3000 }), 400, `since=${since}`);
    }
  });

  test('epoch without since -> 400 on /poll, as on /ws', async () => {
    const epoch = (await publishRaw(base, 'epochonly', '1')).json?.epoch ?? 'abc';
    const poll = await request(`${base}/rooms/epochonly/poll?epoch=${epoch}`, { timeout: 5000 });
    assertJsonError(poll, 400, '/poll?epoch=E');
    assert.match(poll.json.error, /since/);
    const ws = await wsRefusal(`${srv.wsUrl}/rooms/epochonly/ws?epoch=${epoch}`);
    assert.equal(ws.status, 400, `/ws?epoch=E: ${ws.status} ${ws.body}`);
  });

  test('WebSocket upgrade on an unknown path -> 404', async () => {
    for (const path of ['/nope', '/rooms/x/nope', '/rooms/x/ws/extra']) {
      const res = await wsRefusal(`${srv.wsUrl}${path}`);
      assert.equal(res.status, 404, `upgrade ${path}: HTTP ${res.status}`);
      assert.match(res.headers['content-type'] ?? '', /^application\/json\b/, `upgrade ${path}: Content-Type`);
      assert.equal(typeof JSON.parse(res.body).error, 'string', `upgrade ${path}: body ${res.body}`);
    }
  });

  test('GET /rooms/x/ws without Upgrade -> 426', async () => {
    assertJsonError(await request(`${base}/rooms/x/ws`), 426, 'GET /rooms/x/ws');
  });

  test('GET /rooms/x/ws whose Upgrade does not list the token websocket -> 426', async () => {
    // The acceptor and libmicrohttpd's dispatcher read Upgrade alike: a token list.
    for (const up of ['xwebsocket', 'websocket2', 'not-websocket']) {
      const text = `GET /rooms/x/ws HTTP/1.1\r\nHost: x\r\nUpgrade: ${up}\r\nConnection: close\r\n\r\n`;
      const res = parseRawResponse((await rawRequest(srv.port, text)).raw);
      assert.equal(res.status, 426, `Upgrade: ${up}: HTTP ${res.status} ${res.body}`);
      assert.equal(res.headers.upgrade, 'websocket', `Upgrade: ${up}: the answer's Upgrade header`);
    }
  });

  test('publish: text/plain and other types become a JSON string', async () => {
    const room = 'text';
    const bodies = [
      ['text/plain', 'hello\nworld'],
      ['text/plain; charset=utf-8', '{"looks":"like json"}'],
      ['application/octet-stream', 'bytes é'],
      ['application/x-www-form-urlencoded', 'a=1&b=2'],
    ];
    for (const [type, body] of bodies) {
      const res = await publishRaw(base, room, body, type);
      assert.equal(res.status, 201, `${type}: ${res.status} ${res.text}`);
    }
    const res = await poll(base, room, 0);
    assert.deepEqual(res.json.messages.map((m) => m.data), bodies.map(([, body]) => body));
  });

  test('publish: JSON bodies are kept as their JSON value', async () => {
    const room = 'json';
    const values = [
      { a: { b: { c: [1, 2, { d: 'e' }] } }, s: 'ü "q" \\', n: -1.25, t: true, f: false, z: null },
      [1, [2, [3, []]], {}],
      'just a string',
      42,
      null,
      true,
    ];
    for (const v of values) {
      const res = await publishRaw(base, room, JSON.stringify(v, null, 1));
      assert.equal(res.status, 201, `${JSON.stringify(v)}: ${res.status} ${res.text}`);
    }
    const withCharset = await publishRaw(base, room, '{"charset":1}', 'application/json; charset=utf-8');
    assert.equal(withCharset.status, 201, withCharset.text);
    const res = await poll(base, room, 0);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.messages.map((m) => m.data), [...values, { charset: 1 }]);
    assert.deepEqual(res.json.messages.map((m) => m.id), [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(res.json.last_id, 7);
  });

  test('the server still serves after all of the above', async () => {
    const health = await request(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await publish(base, 'after', 'still here'), 1);
  });
});
