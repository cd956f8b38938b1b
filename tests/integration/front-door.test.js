// The acceptor's front door (issue #11 items 5, 7, 8, 9): request heads that
// could make two HTTP parsers disagree are refused with 400 before any
// library sees them; WebSocket handshakes are checked per RFC 6455; a client
// that leaves half a request frees its slot at once; long request targets
// get an answer.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseRawResponse, rawConnect, rawRequest, request } from '../lib/http.js';
import { startCrier, stopClean } from '../lib/server.js';
import { sleep } from '../lib/util.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

// A raw request's answer must be `status` with a JSON {"error"} body and
// "Connection: close", and the server must close the connection.
async function assertRefused(port, text, status, what) {
  const res = await rawRequest(port, text, { timeout: 5000 });
  const parsed = parseRawResponse(res.raw);
  const label = `${what}: answer ${JSON.stringify(res.raw.slice(0, 300))}`;
  assert.equal(parsed.status, status, label);
  assert.match(parsed.headers['content-type'] ?? '', /^application\/json\b/, `${label}: Content-Type`);
  assert.equal(typeof JSON.parse(parsed.body).error, 'string', `${label}: body`);
  assert.match(parsed.headers.connection ?? '', /close/i, `${label}: Connection`);
  assert.notEqual(res.closedAfterMs, null, `${label}: connection left open`);
  return parsed;
}

describe('front door: request head checks', { timeout: 60_000 }, () => {
  let srv;
  before(async () => {
    srv = await startCrier({ limits: { max_message_bytes: 1024 } });
  });
  after(() => srv && stopClean(srv));

  const smuggling = {
    'two different Content-Length headers':
      'POST /rooms/s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    'Content-Length with Transfer-Encoding':
      'POST /rooms/s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'Transfer-Encoding with a space before the colon':
      'POST /rooms/s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'whitespace inside a field name': 'GET /healthz HTTP/1.1\r\nHost: x\r\nX Forwarded: a\r\n\r\n',
    'Transfer-Encoding other than chunked':
      'POST /rooms/s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'Transfer-Encoding twice':
      'POST /rooms/s/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'Content-Length that is not a number':
      'POST /rooms/s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: +3\r\n\r\nabc',
    'Content-Length as a list': 'POST /rooms/s/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc',
    'an obs-fold continuation line': 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  continued\r\n\r\n',
    'a bare LF line end': 'GET /healthz HTTP/1.1\nHost: x\n\n',
    'a bare CR in a field': 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n',
    'a control character in a value': 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n',
    'a header line without a colon': 'GET /healthz HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n',
  };
  for (const [what, text] of Object.entries(smuggling)) {
    test(`${what} -> 400 with Connection: close`, async () => {
      await assertRefused(srv.port, text, 400, what);
    });
  }

  test('nothing refused was published, and the port still serves', async () => {
    const res = await request(`${srv.url}/rooms/s`);
    assert.equal(res.status, 404, `room s exists: ${res.text}`);
    assert.equal((await request(`${srv.url}/healthz`)).status, 200);
  });

  const upgrade = (path, extra) =>
    `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}\r\n`;

  test('Sec-WebSocket-Version other than 13 -> 426 with Sec-WebSocket-Version: 13', async () => {
    for (const v of ['8', '12', '14', '13, 8']) {
      const res = await assertRefused(
        srv.port,
        upgrade('/rooms/a/ws', `Sec-WebSocket-Version: ${v}\r\nSec-WebSocket-Key: ${KEY}\r\n`),
        426,
        `version ${v}`,
      );
      assert.equal(res.headers['sec-websocket-version'], '13', `version ${v}: header`);
    }
  });

  test('a missing or malformed Sec-WebSocket-Key -> 400', async () => {
    const keys = {
      missing: '',
      'too short': 'Sec-WebSocket-Key: abc\r\n',
      'not base64': 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j!Q==\r\n',
      '17 bytes': 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZXM=\r\n',
    };
    for (const [what, key] of Object.entries(keys)) {
      await assertRefused(srv.port, upgrade('/rooms/a/ws', `Sec-WebSocket-Version: 13\r\n${key}`), 400, `key ${what}`);
    }
    // the SignalR hub path too
    await assertRefused(srv.port, upgrade('/hubs/chat', 'Sec-WebSocket-Version: 13\r\n'), 400, 'hub path, no key');
  });

  test('a sound handshake still gets 101', async () => {
    const conn = await rawConnect(srv.port);
    conn.send(upgrade('/rooms/a/ws', `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n`));
    for (let i = 0; i < 100 && !conn.data().includes('\r\n\r\n'); i++) await sleep(20);
    assert.match(conn.data(), /^HTTP\/1\.1 101 /, conn.data());
    assert.match(conn.data(), /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
    conn.socket.destroy();
  });

  test('a WebSocket upgrade with a 4 KiB bad query -> 400 (not silence)', async () => {
    const res = await assertRefused(
      srv.port,
      upgrade(`/rooms/a/ws?since=${'x'.repeat(4096)}`, `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n`),
      400,
      'long bad query',
    );
    assert.match(JSON.parse(res.body).error, /since/);
  });

  test('a WebSocket upgrade with a long valid query is accepted', async () => {
    const conn = await rawConnect(srv.port);
    conn.send(upgrade(`/rooms/a/ws?since=0&pad=${'p'.repeat(3000)}`, `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n`));
    for (let i = 0; i < 100 && !conn.data().includes('\r\n\r\n'); i++) await sleep(20);
    assert.match(conn.data(), /^HTTP\/1\.1 101 /, conn.data().slice(0, 200));
    conn.socket.destroy();
  });
});

// A WebSocket frame from a client: masked unless mask is false.
function frame(opcode, payload, { mask = true } = {}) {
  const data = Buffer.from(payload);
  const head = [0x80 | opcode, (mask ? 0x80 : 0) | data.length];
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from(head), key, Buffer.from(data.map((b, i) => b ^ key[i % 4]))]);
}

// The close frames in what the server sent after its 101: [{code, reason}].
function closeFrames(raw) {
  const bytes = Buffer.from(raw, 'latin1');
  let i = bytes.indexOf('\r\n\r\n') + 4;
  const found = [];
  while (i > 3 && i + 2 <= bytes.length) {
    const op = bytes[i] & 0x0f;
    let len = bytes[i + 1] & 0x7f;
    let at = i + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(at);
      at += 2;
    }
    if (op === 8 && at + len <= bytes.length)
      found.push({ code: len >= 2 ? bytes.readUInt16BE(at) : null, reason: bytes.subarray(at + 2, at + len).toString() });
    i = at + len;
  }
  return found;
}

describe('front door: WebSocket frames must be masked', { timeout: 60_000 }, () => {
  let srv;
  before(async () => {
    srv = await startCrier({});
  });
  after(() => srv && stopClean(srv));

  const handshake = `GET /rooms/m/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`;

  // Opens a raw WebSocket, sends `frames` (after the 101, or with the
  // handshake when together), and waits for the server to close.
  async function sendFrames(frames, { together = false } = {}) {
    const conn = await rawConnect(srv.port);
    if (together) conn.socket.write(Buffer.concat([Buffer.from(handshake), ...frames]));
    else {
      conn.send(handshake);
      for (let i = 0; i < 100 && !conn.data().includes('\r\n\r\n'); i++) await sleep(20);
      assert.match(conn.data(), /^HTTP\/1\.1 101 /);
      for (const f of frames) conn.socket.write(f);
    }
    const timer = sleep(5000).then(() => null);
    const closedAfter = await Promise.race([conn.closed, timer]);
    conn.socket.destroy();
    return { raw: conn.data(), closed: closedAfter !== null };
  }

  for (const [what, frames, opts] of [
    ['an unmasked text frame', [frame(1, 'hello', { mask: false })]],
    ['an unmasked frame after a masked one', [frame(1, '"ok"'), frame(1, 'hello', { mask: false })]],
    ['an unmasked ping', [frame(9, 'p', { mask: false })]],
    ['an unmasked frame in the handshake packet', [frame(1, 'hello', { mask: false })], { together: true }],
  ]) {
    test(`${what} -> close 1002`, async () => {
      const res = await sendFrames(frames, opts);
      const closes = closeFrames(res.raw);
      assert.equal(closes.length, 1, `close frames in ${JSON.stringify(res.raw.slice(-80))}`);
      assert.equal(closes[0].code, 1002);
      assert.match(closes[0].reason, /mask/);
      assert.ok(res.closed, 'connection closed');
    });
  }

  test('the unmasked frame was not published; masked ones were', async () => {
    await sendFrames([frame(1, '"masked"'), frame(1, '"unmasked"', { mask: false })]);
    const res = await request(`${srv.url}/rooms/m/poll?since=0`, { timeout: 3000 });
    const data = res.json.messages.map((m) => m.data);
    assert.ok(data.includes('masked'), JSON.stringify(data));
    assert.ok(!data.includes('unmasked'), JSON.stringify(data));
  });
});

describe('front door: half requests', { timeout: 60_000 }, () => {
  test('clients that send half a request and close free their slots at once', async () => {
    const srv = await startCrier({ limits: { max_connections: 20, header_timeout_s: 60 } });
    try {
      for (let round = 0; round < 3; round++) {
        const conns = [];
        for (let i = 0; i < 20; i++) {
          const c = await rawConnect(srv.port);
          c.send('POST /rooms/half/messages HTTP/1.1\r\nHost: x\r\nContent-Le');
          conns.push(c);
        }
        await sleep(200);
        for (const c of conns) c.socket.end(); // FIN after half a head
        await Promise.all(conns.map((c) => c.closed));
        // The slots must come back long before header_timeout_s (60 s).
        let res;
        const t0 = Date.now();
        while (Date.now() - t0 < 15_000) {
          res = await request(`${srv.url}/healthz`, { timeout: 3000 }).catch((e) => ({ status: String(e) }));
          if (res.status === 200) break;
          await sleep(100);
        }
        assert.equal(res.status, 200, `round ${round}: /healthz after the half requests closed: ${res.status}`);
      }
    } finally {
      await stopClean(srv);
    }
  });
});
