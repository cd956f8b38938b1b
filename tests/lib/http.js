// Plain HTTP helpers: node's fetch for ordinary requests, a raw socket for
// requests fetch cannot express (half-sent headers, huge headers).

import assert from 'node:assert/strict';
import net from 'node:net';

const REQUEST_TIMEOUT_MS = 10_000;

// fetch + body: {status, headers, text, json (undefined unless JSON), ms}.
export async function request(url, { method = 'GET', headers = {}, body, duplex, timeout = REQUEST_TIMEOUT_MS, signal } = {}) {
  const t0 = Date.now();
  const res = await fetch(url, {
    method,
    headers,
    body,
    duplex,
    signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(timeout)]) : AbortSignal.timeout(timeout),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json, ms: Date.now() - t0 };
}

// Asserts an error answer: the status, Content-Type application/json and a
// body {"error": "<non-empty string>"}.
export function assertJsonError(res, status, what = '') {
  const label = `${what ? `${what}: ` : ''}status ${res.status}, body ${JSON.stringify(res.text)}`;
  assert.equal(res.status, status, label);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/i, `${label}: Content-Type`);
  assert.ok(res.json && typeof res.json === 'object', `${label}: body is not a JSON object`);
  assert.equal(typeof res.json.error, 'string', `${label}: no "error" string`);
  assert.ok(res.json.error.length > 0, `${label}: empty "error"`);
}

const roomPath = (base, room, tail = '') => `${base}/rooms/${room}${tail}`;

// POST a JSON value; asserts 201 and returns the id.
export async function publish(base, room, value) {
  const res = await request(roomPath(base, room, '/messages'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(value),
  });
  assert.equal(res.status, 201, `publish to ${room}: status ${res.status}, body ${res.text}`);
  assert.equal(typeof res.json?.id, 'number', `publish to ${room}: body ${res.text}`);
  return res.json.id;
}

// POST a raw body with the given Content-Type; returns the response.
export function publishRaw(base, room, body, contentType = 'application/json') {
  const headers = contentType === null ? {} : { 'Content-Type': contentType };
  return request(roomPath(base, room, '/messages'), { method: 'POST', headers, body });
}

export async function roomInfo(base, room) {
  return request(roomPath(base, room));
}

// The subscriber counts of a room, or null when it answers 404.
export async function subscriberCounts(base, room) {
  const res = await roomInfo(base, room);
  if (res.status === 404) return null;
  assert.equal(res.status, 200, `room info ${room}: ${res.status} ${res.text}`);
  return res.json.subscribers;
}

// One long poll: {status, json, ms}. `since` undefined omits the parameter.
export async function poll(base, room, since, { timeout = 30_000, signal } = {}) {
  const q = since === undefined ? '' : `?since=${since}`;
  return request(roomPath(base, room, `/poll${q}`), { timeout, signal });
}

// Opens a TCP connection to 127.0.0.1:port and records what comes back.
// {socket, data(), closed: Promise<ms since connect>, send(text)}.
export function rawConnect(port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let data = '';
    const socket = net.connect(port, host);
    const closed = new Promise((res) => socket.on('close', () => res(Date.now() - t0)));
    socket.setEncoding('latin1');
    socket.on('data', (d) => (data += d));
    socket.on('error', () => {}); // a reset shows as 'close'
    socket.once('connect', () =>
      resolve({ socket, data: () => data, closed, send: (text) => socket.write(text, 'latin1') }),
    );
    socket.once('error', reject);
  });
}

// The status code of the first HTTP response in raw text, or null.
export function rawStatus(text) {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m ? Number(m[1]) : null;
}

// Sends `text` on a fresh connection and collects the answer until the server
// closes or `timeout` ms pass: {status, raw, closedAfterMs}.
export async function rawRequest(port, text, { timeout = 5000 } = {}) {
  const conn = await rawConnect(port);
  conn.send(text);
  const timer = new Promise((res) => setTimeout(() => res(null), timeout));
  const closedAfterMs = await Promise.race([conn.closed, timer]);
  conn.socket.destroy();
  return { status: rawStatus(conn.data()), raw: conn.data(), closedAfterMs };
}

// Splits a raw HTTP/1.x response: {status, headers (lower-case names), body}.
// The body is whatever followed the header block (not de-chunked).
export function parseRawResponse(raw) {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: rawStatus(statusLine), headers, body: end < 0 ? '' : raw.slice(end + 4) };
}
