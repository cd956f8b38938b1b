// Request bodies are bounded in time and size (issue #11 item 6): a body
// that trickles or never ends is answered 408 once limits.body_timeout_s
// passes, and one that grows past limits.max_message_bytes is answered 413
// as soon as it does, without the rest being read.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseRawResponse, rawConnect, request } from '../lib/http.js';
import { startCrier, stopClean } from '../lib/server.js';
import { sleep } from '../lib/util.js';

const LIMIT = 64 * 1024;
const BODY_TIMEOUT_S = 2;

// Sends head, then calls more() every periodMs for a piece of body to send,
// until the server answers and closes or giveUpMs passes:
// {status, body, closed (bool), ms}.
async function trickle(port, head, more, { periodMs = 500, giveUpMs = 20_000 } = {}) {
  const conn = await rawConnect(port);
  const t0 = Date.now();
  conn.send(head);
  let closed = false;
  conn.closed.then(() => (closed = true));
  while (!closed && Date.now() - t0 < giveUpMs) {
    await sleep(periodMs);
    if (!closed && !conn.socket.destroyed) conn.socket.write(more(), 'latin1');
  }
  const ms = Date.now() - t0;
  conn.socket.destroy();
  const res = parseRawResponse(conn.data());
  return { ...res, closed, ms };
}

// Writes head, then body pieces as fast as the socket takes them, until the
// server answers or closes, or `total` bytes went: {sent, raw}. sent counts
// bytes the kernel accepted.
function flood(port, head, piece, total) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let raw = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const sent = socket.bytesWritten - Buffer.byteLength(head) - socket.writableLength;
      socket.destroy();
      resolve({ sent, raw });
    };
    socket.setEncoding('latin1');
    socket.on('data', (d) => {
      raw += d;
      if (raw.includes('\r\n\r\n')) setTimeout(finish, 200);
    });
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('connect', async () => {
      socket.write(head);
      let written = 0;
      while (!done && written < total) {
        written += piece.length;
        if (!socket.write(piece)) await new Promise((r) => socket.once('drain', r).once('close', r));
      }
      if (!done) socket.write('0\r\n\r\n');
    });
  });
}

describe('request bodies', { timeout: 120_000 }, () => {
  let srv;
  before(async () => {
    srv = await startCrier({ limits: { max_message_bytes: LIMIT, body_timeout_s: BODY_TIMEOUT_S } });
  });
  after(() => srv && stopClean(srv));

  // Each waits out body_timeout_s or floods its own connection: side by
  // side; the check that the server still serves comes after them all.
  describe('stalled and oversized bodies', { concurrency: true }, () => {
    test('a body that trickles one byte a second -> 408 and closed', async () => {
      const res = await trickle(
        srv.port,
        'POST /rooms/slow/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n',
        () => 'a',
        { periodMs: 1000 },
      );
      assert.equal(res.status, 408, `status ${res.status}, ${res.ms} ms`);
      assert.equal(typeof JSON.parse(res.body).error, 'string');
      assert.ok(res.closed, 'connection closed');
    });

    test('a chunked body that never ends -> 408 and closed', async () => {
      const res = await trickle(
        srv.port,
        'POST /rooms/endless/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n',
        () => '1\r\nz\r\n',
        { periodMs: 300 },
      );
      assert.equal(res.status, 408, `status ${res.status}, ${res.ms} ms`);
      assert.ok(res.closed, 'connection closed');
    });

    test('a SignalR POST whose body stalls -> 408 and closed', async () => {
      const res = await trickle(
        srv.port,
        'POST /hubs/chat?id=nosuch HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nab',
        () => '',
        { periodMs: 300 },
      );
      assert.equal(res.status, 408, `status ${res.status}, ${res.ms} ms`);
      assert.ok(res.closed, 'connection closed');
    });

    const chunk = (n) => `${n.toString(16)}\r\n${'x'.repeat(n)}\r\n`;
    // Far below what the original code read (the whole 128 MB): the limit a
    // few times over, plus what the socket buffers on both ends hold.
    const bound = 4 * LIMIT + 32 * 1024 * 1024;
    const TOTAL = 128 * 1024 * 1024;

    for (const [what, path] of [
      ['a publish', '/rooms/big/messages'],
      ['a SignalR POST', '/hubs/chat?id=nosuch'],
      ['a request nobody reads the body of', '/rooms/big'],
    ]) {
      test(`an endless chunked body to ${what} -> 413 after little more than the limit`, async () => {
        const res = await flood(
          srv.port,
          `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`,
          chunk(16 * 1024),
          TOTAL,
        );
        const parsed = parseRawResponse(res.raw);
        assert.ok(res.sent < bound, `the client sent ${res.sent} bytes before the answer (bound ${bound})`);
        if (path === '/rooms/big/messages') {
          assert.equal(parsed.status, 413, `answer ${JSON.stringify(res.raw.slice(0, 200))}`);
          assert.match(JSON.parse(parsed.body).error, /max_message_bytes/);
        } else {
          assert.ok([404, 405, 413].includes(parsed.status), `answer ${JSON.stringify(res.raw.slice(0, 200))}`);
        }
      });
    }
  });

  test('bodies within the limits still publish, and the server still serves', async () => {
    const res = await request(`${srv.url}/rooms/ok/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: 'y'.repeat(LIMIT - 2),
    });
    assert.equal(res.status, 201, res.text);
    assert.equal((await request(`${srv.url}/healthz`)).status, 200);
  });
});
