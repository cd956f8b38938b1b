// Helpers for the SignalR tests: the official @microsoft/signalr client with
// bounded start/stop, per-target receivers, raw negotiate, and a raw
// WebSocket speaking the JSON hub protocol by hand.
//
// setup(t, config) starts crier and registers one after-hook that stops every
// client the test opened (official and raw) and then the server (clean exit).

import assert from 'node:assert/strict';
import * as signalR from '@microsoft/signalr';
import { request } from './http.js';
import { startCrier, stopClean } from './server.js';
import { sleep, withTimeout } from './util.js';
import { openWs } from './ws.js';

export { signalR };
export const T = signalR.HttpTransportType;
export const RS = '\x1e';
export const HANDSHAKE = `{"protocol":"json","version":1}${RS}`;
export const TRANSPORT_CLASS = {
  [T.WebSockets]: 'WebSocketTransport',
  [T.ServerSentEvents]: 'ServerSentEventsTransport',
  [T.LongPolling]: 'LongPollingTransport',
};

const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 5000;

// Some server mistakes (e.g. a 204 on the first long poll) surface only as an
// unhandled rejection inside the client while start() stays pending. Record
// them so a start() timeout can say what happened, instead of the test
// process dying.
export const unhandledRejections = [];
process.on('unhandledRejection', (reason) => {
  unhandledRejections.push(reason);
  console.error('[signalr tests] unhandled rejection:', reason instanceof Error ? reason.message : reason);
});

// A client logger that keeps the lines (Information and above) for diagnostics.
function captureLogger(lines) {
  return {
    log(level, message) {
      if (level >= signalR.LogLevel.Information) lines.push(`${signalR.LogLevel[level]}: ${message}`);
    },
  };
}

// Starts crier with `config`; returns a context:
//   srv, url, wsUrl, hubUrl(path), connect(opts), raw(opts), track(closeable)
export async function setup(t, config = {}) {
  const srv = await startCrier(config);
  const clients = [];
  const ctx = {
    srv,
    url: srv.url,
    wsUrl: srv.wsUrl,
    hubUrl: (path = '/hubs/chat') => `${srv.url}${path}`,
    track(closeable) {
      clients.push(closeable);
      return closeable;
    },
    connect: (opts = {}) => connect(ctx, opts),
    raw: (opts = {}) => rawHub(ctx, opts),
  };
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await stopClean(srv);
  });
  return ctx;
}

// Builds and starts an official client on `path`. Options: transport (a
// HttpTransportType mask; omitted = full negotiation), skipNegotiation,
// serverTimeout, keepAlive (ms). The returned HubConnection has .logs (client
// log lines), .closed (a promise of the onclose error or null), .label.
export async function connect(ctx, { path = '/hubs/chat', transport, skipNegotiation, serverTimeout, keepAlive, label } = {}) {
  const logs = [];
  const options = {};
  if (transport !== undefined) options.transport = transport;
  if (skipNegotiation) options.skipNegotiation = true;
  let builder = new signalR.HubConnectionBuilder().withUrl(ctx.hubUrl(path), options).configureLogging(captureLogger(logs));
  if (serverTimeout) builder = builder.withServerTimeout(serverTimeout);
  if (keepAlive) builder = builder.withKeepAliveInterval(keepAlive);
  const conn = builder.build();
  conn.logs = logs;
  conn.label = label ?? `client ${path} ${transport === undefined ? 'default' : TRANSPORT_CLASS[transport] ?? transport}`;
  conn.closed = new Promise((resolve) => conn.onclose((err) => resolve(err ?? null)));
  ctx.track({
    close: () => withTimeout(conn.stop(), STOP_TIMEOUT_MS, `${conn.label}: stop()`),
  });
  const before = unhandledRejections.length;
  try {
    await withTimeout(conn.start(), START_TIMEOUT_MS, `${conn.label}: start()`);
  } catch (err) {
    const extra = unhandledRejections.slice(before).map((r) => `\n  unhandled rejection: ${r?.message ?? r}`).join('');
    err.message += `${extra}\n  client log:\n    ${logs.join('\n    ')}`;
    throw err;
  }
  return conn;
}

// invoke() of a void hub method resolves with null or undefined.
export function assertVoid(value, what = 'invoke') {
  assert.ok(value === null || value === undefined, `${what} resolved with ${JSON.stringify(value)}, expected null/undefined`);
}

// JoinRoom resolves with where the room stands: {room, epoch, last_id}.
export function assertJoined(value, room) {
  assert.equal(value?.room, room, `JoinRoom resolved with ${JSON.stringify(value)}`);
  assert.match(String(value?.epoch), /^[A-Za-z0-9]{8}$/, `JoinRoom epoch: ${JSON.stringify(value)}`);
  assert.ok(Number.isInteger(value?.last_id) && value.last_id >= 0, `JoinRoom last_id: ${JSON.stringify(value)}`);
}

// conn.invoke() bounded in time.
export function invoke(conn, method, ...args) {
  return withTimeout(conn.invoke(method, ...args), 3000, `${conn.label}: invoke ${method}`);
}

// conn.stop() bounded in time.
export function stop(conn) {
  return withTimeout(conn.stop(), STOP_TIMEOUT_MS, `${conn.label}: stop()`);
}

// The class name of the transport a started client uses.
export const transportName = (conn) => conn.connection.transport.constructor.name;

// Records every invocation of `target` on `conn`: {calls: [args...], wait(n)}.
export function receiver(conn, target = 'ReceiveMessage') {
  const calls = [];
  const waiters = new Set();
  conn.on(target, (...args) => {
    calls.push(args);
    for (const w of waiters) w();
  });
  return {
    calls,
    wait(n = 1, ms = 3000) {
      return withTimeout(
        new Promise((resolve) => {
          const check = () => {
            if (calls.length >= n) {
              waiters.delete(check);
              resolve(calls);
            }
          };
          waiters.add(check);
          check();
        }),
        ms,
        `${conn.label}: waiting for ${n} ${target} call(s), have ${JSON.stringify(calls)}`,
      );
    },
  };
}

// Asserts that none of the receivers got anything within `ms` (beyond what
// they had, if `baseline` counts are given).
export async function assertQuiet(receivers, ms = 300, baseline = receivers.map(() => 0)) {
  await sleep(ms);
  receivers.forEach((r, i) =>
    assert.equal(r.calls.length, baseline[i], `receiver ${i} got unexpected calls: ${JSON.stringify(r.calls.slice(baseline[i]))}`),
  );
}

// POST {path}/negotiate?negotiateVersion=N (version null: no parameter);
// returns the request() result.
export function negotiate(base, { path = '/hubs/chat', version = 1, method = 'POST' } = {}) {
  const q = version === null ? '' : `?negotiateVersion=${version}`;
  return request(`${base}${path}/negotiate${q}`, { method });
}

// Splits delivery units into parsed records (unparsable ones as {unparsed}).
export function parseRecords(texts) {
  const out = [];
  for (const text of texts) {
    if (text === null) continue; // binary frame
    for (const piece of text.split(RS)) {
      if (piece === '') continue;
      try {
        out.push(JSON.parse(piece));
      } catch {
        out.push({ unparsed: piece });
      }
    }
  }
  return out;
}

// A raw WebSocket on the hub: negotiates first (unless skipNegotiation), opens
// ws://…{path}?id=TOKEN. The client (from ws.js openWs) gets:
//   records(): every record received, parsed; token; sendText(s); handshake();
//   waitRecords(pred, ms): resolves once pred(records) holds.
export async function rawHub(ctx, { path = '/hubs/chat', skipNegotiation = false } = {}) {
  let token = null;
  if (!skipNegotiation) {
    const res = await negotiate(ctx.url, { path });
    assert.equal(res.status, 200, `negotiate: ${res.status} ${res.text}`);
    token = res.json.connectionToken;
  }
  const url = `${ctx.wsUrl}${path}${token ? `?id=${token}` : ''}`;
  const client = await openWs(url);
  ctx.track({ close: async () => client.close() });
  client.token = token;
  client.records = () => parseRecords(client.texts);
  client.sendText = (s) => client.ws.send(s);
  client.waitRecords = (pred, ms = 3000, what = 'records') =>
    client.until((c) => pred(parseRecords(c.texts)), ms, `raw ${url}: waiting for ${what}, have ${JSON.stringify(client.texts)}`);
  client.handshake = async () => {
    client.sendText(HANDSHAKE);
    await client.waitRecords((r) => r.length >= 1, 3000, 'the handshake reply');
    assert.deepEqual(client.records()[0], {}, `handshake reply: ${JSON.stringify(client.texts)}`);
  };
  return client;
}

// A fresh official WebSocket client on the chat hub can still chat: its
// SendMessage comes back to it as ReceiveMessage. Stops the client after.
export async function assertStillServes(ctx, what = '') {
  const conn = await connect(ctx, { transport: T.WebSockets, label: `fresh client after ${what}` });
  const rx = receiver(conn);
  const text = `still there after ${what}`;
  assertVoid(await withTimeout(conn.invoke('SendMessage', 'probe', text), 3000, 'invoke'), 'SendMessage');
  await rx.wait(1);
  assert.deepEqual(rx.calls[0], ['probe', text]);
  await stop(conn);
}
