// Moments where crier's threads meet: the acceptor, the timer, the lws
// service thread, the three libmicrohttpd daemon threads and the backplane's.
// Each test passes on any build; under the ThreadSanitizer build
// (build/tsan/crier, `tests/run.sh tsan`) a data race in what it drives
// makes crier exit 66 with a report, and stopClean fails the test.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { publish, rawConnect } from '../lib/http.js';
import { assertNoSanitizerReport, assertNoTsanReport, startCrier, tail } from '../lib/server.js';
import { withTimeout } from '../lib/util.js';

// Sends requests one after another on one kept-alive connection: `first`,
// then `next` each time a whole response has come, until the server closes
// it. onResponse(n) is called after the n-th response. Resolves with the
// number of responses once the connection is closed.
async function keepAliveLoop(port, first, next, onResponse) {
  const conn = await rawConnect(port);
  let buf = '';
  let n = 0;
  conn.socket.on('data', (d) => {
    buf += d;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end));
      const len = m ? Number(m[1]) : 0;
      if (buf.length < end + 4 + len) return;
      buf = buf.slice(end + 4 + len);
      n++;
      onResponse(n);
      if (!conn.socket.destroyed) conn.send(next);
    }
  });
  conn.send(first);
  await conn.closed;
  return n;
}

// http.c's daemons[] was cleared daemon by daemon as each stopped, while the
// threads of the daemons not stopped yet read it for every answer
// (http_queue): a request on a kept-alive long-poll connection during the
// stop raced with the main thread.
test('requests on a kept-alive long-poll connection while crier stops: a clean exit', { timeout: 60_000 }, async () => {
  const srv = await startCrier();
  const room = 'threads-stop';
  await publish(srv.url, room, { n: 1 });
  const req = (path) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
  let stopping = null;
  // The first request is a long poll with a message waiting: the acceptor
  // hands the connection to the long-poll daemon, which answers at once and
  // keeps serving the connection's next requests.
  const responses = await withTimeout(
    keepAliveLoop(srv.port, req(`/rooms/${room}/poll?since=0`), req('/healthz'), (n) => {
      if (n === 20) stopping = srv.stop();
    }),
    30_000,
    'the kept-alive connection was not closed by the stop',
  );
  assert.ok(stopping, `only ${responses} responses before the connection closed`);
  const r = await stopping;
  assertNoTsanReport(srv.pid);
  assert.equal(r.code, 0, `crier exit code ${r.code} (signal ${r.signal})\n${tail(r.stderr)}`);
  assertNoSanitizerReport(r.stderr);
});
