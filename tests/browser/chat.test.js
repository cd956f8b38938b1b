// Two browsers chat through web/chat.html over each transport: WebSocket by
// default, SSE when WebSocket is off, long polling when both are off.

import { test } from 'node:test';
import { chatBothWays, expectText, fileBrowser, setup } from './helpers.js';

const browser = fileBrowser();

const CASES = [
  { transport: 'websocket', config: {} },
  { transport: 'sse', config: { transports: { websocket: false } } },
  { transport: 'longpolling', config: { transports: { websocket: false, sse: false } } },
];

for (const { transport, config } of CASES) {
  test(`two pages chat both ways over ${transport}`, { timeout: 60_000 }, async (t) => {
    const ctx = await setup(t, browser(), config);
    const a = await ctx.chat({ transport });
    const b = await ctx.chat({ transport });
    await chatBothWays(a, b, transport);
    await expectText(a, '#transport', transport);
    await expectText(b, '#transport', transport);
  });
}
