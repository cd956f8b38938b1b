// Users and connections (README "Server API"): every connection has a
// connection id, which plain WebSocket, SSE and long-poll clients read from
// the X-Crier-Connection-Id response header, and SignalR clients as
// connection.connectionId.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import WebSocket from 'ws';

import { request } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { sseHttp } from '../lib/sse.js';
import { withTimeout } from '../lib/util.js';

const ID_RE = /^[A-Za-z0-9_-]{1,31}$/;

// Opens a plain WebSocket; resolves with {ws, id} once open, id from the 101.
function wsWithId(url) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      let id = null;
      ws.on('upgrade', (res) => (id = res.headers['x-crier-connection-id']));
      ws.on('open', () => resolve({ ws, id }));
      ws.on('error', reject);
    }),
    5000,
    `WS ${url}: open`,
  );
}

describe('connection ids', () => {
  test('plain WebSocket, SSE and long poll answers carry a fresh X-Crier-Connection-Id', async (t) => {
    const srv = await startFor(t, { limits: { poll_timeout_s: 1 } });
    const a = await wsWithId(`${srv.wsUrl}/rooms/r/ws`);
    const b = await wsWithId(`${srv.wsUrl}/rooms/r/ws`);
    t.after(() => {
      a.ws.terminate();
      b.ws.terminate();
    });
    const sse = await sseHttp(`${srv.url}/rooms/r/events`);
    t.after(() => sse.close());
    const poll = await request(`${srv.url}/rooms/r/poll`);
    assert.equal(poll.status, 200);
    const ids = [a.id, b.id, sse.headers['x-crier-connection-id'], poll.headers.get('x-crier-connection-id')];
    for (const id of ids) assert.match(String(id), ID_RE);
    assert.equal(new Set(ids).size, ids.length, `ids not distinct: ${ids}`);
  });
});
