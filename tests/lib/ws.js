// WebSocket helpers over the npm `ws` client.

import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { withTimeout } from './util.js';

// Opens a WebSocket; resolves when open with a client that records every
// message (client.texts: raw text, client.messages: parsed JSON or null) and
// the close (client.closeInfo: {code, reason}, client.closed: a promise of it).
export function openWs(url, { timeout = 5000, ...options } = {}) {
  const ws = new WebSocket(url, options);
  const client = new EventEmitter();
  Object.assign(client, { ws, texts: [], messages: [], closeInfo: null });
  client.closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      client.closeInfo = { code, reason: reason.toString() };
      client.emit('update');
      resolve(client.closeInfo);
    });
  });
  ws.on('message', (data, isBinary) => {
    const text = data.toString();
    client.texts.push(isBinary ? null : text);
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // kept as null
    }
    client.messages.push(parsed);
    client.emit('update');
  });
  ws.on('error', () => {}); // shows as the close

  client.until = (predicate, ms, message) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => {
          if (predicate(client)) {
            client.off('update', check);
            resolve(client);
          }
        };
        client.on('update', check);
        check();
      }),
      ms,
      `${message} [have ${client.messages.length} messages, close=${JSON.stringify(client.closeInfo)}]`,
    );
  client.waitForMessages = (n, ms = 5000) =>
    client.until((c) => c.messages.length >= n, ms, `WS ${url}: waiting for ${n} messages`);
  client.waitForClose = (ms = 5000) =>
    withTimeout(client.closed, ms, `WS ${url}: waiting for the close`);
  client.close = () => {
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
  };

  return withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (req, res) => {
        reject(new Error(`WS ${url}: HTTP ${res.statusCode} instead of an upgrade`));
        req.destroy();
      });
      ws.once('error', reject);
    }),
    timeout,
    `WS ${url}: not open`,
  );
}

// Attempts an upgrade that should be refused: resolves with the HTTP answer
// {status, headers, body}; fails if the upgrade succeeds. Other options go
// to the `ws` client (e.g. origin).
export function wsRefusal(url, { timeout = 5000, ...options } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      ws.on('error', () => {});
      ws.once('open', () => {
        ws.terminate();
        reject(new Error(`WS ${url}: upgrade accepted, expected an HTTP error`));
      });
      ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          resolve({ status: res.statusCode, headers: res.headers, body });
          req.destroy();
        });
      });
      ws.once('close', () => reject(new Error(`WS ${url}: closed without an HTTP answer`)));
    }),
    timeout,
    `WS ${url}: no answer to the upgrade`,
  );
}

// A light WebSocket reader for fanout tests: checks that the envelopes'
// ids come 1, 2, 3, ... in order and keeps only the count (hundreds of them
// share one thread, so no JSON.parse). {ws, got, bad, closeInfo, opened}.
export function openIdReader(url) {
  const ws = new WebSocket(url);
  const r = { ws, got: 0, bad: null, closeInfo: null };
  ws.on('message', (data) => {
    // The envelope's "id" (no JSON.parse: hundreds of readers share this thread).
    const text = data.toString();
    const at = text.indexOf('"id":');
    const id = at < 0 ? undefined : parseInt(text.slice(at + 5, at + 25), 10);
    if (id !== r.got + 1 && !r.bad) r.bad = `message ${r.got + 1} had id ${id}`;
    r.got++;
  });
  ws.on('close', (code, reason) => (r.closeInfo = { code, reason: reason.toString() }));
  ws.on('error', () => {});
  r.opened = withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }),
    30_000,
    `WS ${url}: not open`,
  );
  return r;
}
