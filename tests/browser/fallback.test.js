// WebSocket offered by crier but broken on the way: a real nginx in front of
// crier that does not forward Upgrade/Connection. The page's WebSocket fails
// before opening, and the client falls back to SSE by itself (after a fresh
// negotiate) and chats.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatBothWays, fileBrowser, setup, startNginx } from './helpers.js';

const browser = fileBrowser();

test('behind nginx without Upgrade: WebSocket fails, the page falls back to SSE and chats', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser());
  const proxy = await startNginx(t, ctx.port);

  const neg = await (await fetch(`${proxy.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST' })).json();
  assert.deepEqual(neg.availableTransports.map((x) => x.transport), ['WebSockets', 'ServerSentEvents', 'LongPolling'],
    'through the proxy crier still offers WebSockets');

  const a = await ctx.chat({ base: proxy.url, transport: 'sse' });
  const b = await ctx.chat({ base: proxy.url, transport: 'sse' });
  await chatBothWays(a, b, 'sse behind nginx');

  // How a client gets there: one WebSocket attempt that fails, a second
  // negotiate, then SSE.
  const how = await a.evaluate(async () => {
    const sockets = [];
    const negotiates = [];
    const { WebSocket: RealWs, fetch: realFetch } = window;
    window.WebSocket = function (url, p) {
      sockets.push(url);
      return new RealWs(url, p);
    };
    window.fetch = (url, init) => {
      if (String(url).includes('/negotiate')) negotiates.push(String(url));
      return realFetch(url, init);
    };
    const conn = crier.connect('/hubs/chat', { reconnect: false });
    const t0 = performance.now();
    try {
      await conn.start();
      const ms = performance.now() - t0;
      const seen = { sockets: sockets.slice(), negotiates: negotiates.length };
      const wsOnly = await crier.connect('/hubs/chat', { transports: ['websocket'] }).start()
        .then(() => 'connected', (e) => e.message);
      return { transport: conn.transport, ...seen, ms, wsOnly };
    } finally {
      window.WebSocket = RealWs;
      window.fetch = realFetch;
      await conn.stop();
    }
  });
  assert.equal(how.transport, 'sse');
  assert.equal(how.sockets.length, 1, `one WebSocket attempt: ${JSON.stringify(how.sockets)}`);
  assert.match(how.sockets[0], /^ws:\/\/127\.0\.0\.1:\d+\/hubs\/chat\?id=/);
  assert.equal(how.negotiates, 2, 'a fresh negotiate before the SSE attempt');
  assert.ok(how.ms < 5000, `the fallback took ${how.ms} ms`);
  // With WebSocket as the only choice, start() says what went wrong.
  assert.match(how.wsOnly, /^Unable to connect to http:\/\/127\.0\.0\.1:\d+\/hubs\/chat; tried websocket: the WebSocket failed to open/);
});
