// Moments where crier's threads meet: the acceptor, the timer, the lws
// service thread, the three libmicrohttpd daemon threads and the backplane's.
// Each test passes on any build; under the ThreadSanitizer build
// (build/tsan/crier, `tests/run.sh tsan`) a data race in what it drives
// makes crier exit 66 with a report, and stopClean fails the test.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { curlPollLoop } from '../lib/curl.js';
import { publish, rawConnect, request, roomInfo } from '../lib/http.js';
import { assertNoSanitizerReport, assertNoTsanReport, startCrier, stopClean, tail } from '../lib/server.js';
import { signalR, T } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

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

// Runs fn over and over until stop() is called; errors are counted, not
// thrown (crier may be stopping under it). Returns {stop, done, runs, errors}.
function loop(fn) {
  const state = { runs: 0, errors: 0, stopped: false };
  state.stop = () => (state.stopped = true);
  state.done = (async () => {
    while (!state.stopped) {
      try {
        await fn(state.runs);
      } catch {
        state.errors++;
        await sleep(20);
      }
      state.runs++;
    }
  })();
  return state;
}

// Every thread at once: plain WebSocket, SSE and long-poll subscribers, the
// official SignalR client on its three transports joining and leaving rooms
// and sending, publishers, room info, /metrics and the stats stream, while
// the timer expires rooms. Then crier stops with all of it still going.
test('mixed load on every transport, then a stop under it: a clean exit', { timeout: 90_000 }, async (t) => {
  const srv = await startCrier({ history: { size: 50, ttl_s: 2 }, limits: { poll_timeout_s: 1 } });
  const closers = [];
  t.after(async () => {
    for (const close of closers) await Promise.resolve().then(close).catch(() => {});
  });
  const rooms = ['mix-a', 'mix-b', 'mix-c'];
  const room = (i) => rooms[i % rooms.length];

  for (let i = 0; i < 3; i++) {
    const ws = await openWs(`${srv.wsUrl}/rooms/${room(i)}/ws`);
    closers.push(() => ws.ws.terminate());
    const sse = await sseHttp(`${srv.url}/rooms/${room(i)}/events`);
    closers.push(() => sse.close());
  }
  const stats = await sseHttp(`${srv.url}/stats/events`);
  closers.push(() => stats.close());
  for (let i = 0; i < 2; i++) {
    const lp = curlPollLoop(srv.url, room(i));
    closers.push(() => lp.stop());
  }

  const clients = [];
  for (const transport of [T.WebSockets, T.ServerSentEvents, T.LongPolling]) {
    const conn = new signalR.HubConnectionBuilder()
      .withUrl(`${srv.url}/hubs/chat`, { transport })
      .configureLogging(signalR.LogLevel.None)
      .build();
    conn.on('ReceiveMessage', () => {});
    await withTimeout(conn.start(), 10_000, `SignalR ${transport}: start()`);
    closers.push(() => withTimeout(conn.stop(), 5000, 'SignalR stop()'));
    clients.push(conn);
  }

  const loops = [
    loop((n) => publish(srv.url, room(n), { n })),
    loop((n) => publish(srv.url, `mix-once-${n}`, { n })), // rooms the timer expires
    loop(() => request(`${srv.url}/metrics`)),
    loop((n) => roomInfo(srv.url, room(n))),
    ...clients.map((conn, i) =>
      loop(async (n) => {
        await conn.invoke('JoinRoom', room(n + i));
        await conn.invoke('SendToRoom', room(n + i), 'mix', n);
        await conn.invoke('SendMessage', 'mix', n);
        await conn.invoke('LeaveRoom', room(n + i));
      }),
    ),
  ];
  closers.push(() => loops.forEach((l) => l.stop()));

  // 3 s at least: the timer expires rooms and history (ttl 2 s) meanwhile.
  const until = Date.now() + 3000;
  await waitFor(() => Date.now() >= until && loops.every((l) => l.runs >= 20), {
    timeout: 60_000,
    message: 'every loop ran 20 times',
  });
  for (const l of loops) assert.equal(l.errors, 0, 'no request failed while crier ran');
  const r = await stopClean(srv);
  loops.forEach((l) => l.stop());
  await Promise.all(loops.map((l) => l.done));
  assert.equal(r.code, 0);
});
