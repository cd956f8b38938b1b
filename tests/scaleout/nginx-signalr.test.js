// deploy/nginx.conf in front of two crier nodes on Redis, round robin, no
// sticky sessions: the official @microsoft/signalr client chats over each
// transport through it with a client on the other side, although its
// negotiate, stream or polls and sends land on different nodes.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { T, connect, invoke, receiver, transportName } from '../lib/signalr.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { signalrCtx, startCluster, startNginxLogged as startNginx } from './helpers.js';

for (const [name, transport] of [
  ['WebSockets', T.WebSockets],
  ['ServerSentEvents', T.ServerSentEvents],
  ['LongPolling', T.LongPolling],
]) {
  test(`through nginx, round robin over two nodes: the official client over ${name} chats with a client on the other side`, { timeout: 60_000 }, async (t) => {
    const { nodes } = await startCluster(t, 2);
    const [a, b] = nodes;
    const nginx = await startNginx(t, [a.port, b.port]);

    const viaNginx = await connect(signalrCtx(t, nginx.url), { transport, label: `${name} via nginx` });
    assert.equal(transportName(viaNginx), `${name === 'WebSockets' ? 'WebSocket' : name}Transport`);
    const direct = [
      await connect(signalrCtx(t, a.url), { transport: T.WebSockets, label: 'client on A' }),
      await connect(signalrCtx(t, b.url), { transport: T.LongPolling, label: 'client on B' }),
    ];
    const rx = receiver(viaNginx);
    const rxDirect = direct.map((c) => receiver(c));
    await sleep(300);

    // Several sends each way, so that the HTTP transports' POSTs alternate
    // between the nodes.
    for (let i = 0; i < 6; i++) await invoke(viaNginx, 'SendMessage', 'proxied', `p${i}`);
    await invoke(direct[0], 'SendMessage', 'on-A', 'hello');
    await invoke(direct[1], 'SendMessage', 'on-B', 'hi');
    const all = [...Array.from({ length: 6 }, (_, i) => ['proxied', `p${i}`]), ['on-A', 'hello'], ['on-B', 'hi']];
    await rx.wait(8, 10_000);
    await Promise.all(rxDirect.map((r) => r.wait(8, 10_000)));
    await sleep(300);
    assert.deepEqual(rx.calls, all, `${name} via nginx: every message once, in order`);
    rxDirect.forEach((r, i) => assert.deepEqual(r.calls, all, `client on ${'AB'[i]}: every message once, in order`));

    // The rooms work across nodes too.
    assert.equal((await invoke(viaNginx, 'JoinRoom', 'across'))?.room, 'across');
    await invoke(direct[1], 'JoinRoom', 'across');
    await invoke(direct[1], 'SendToRoom', 'across', 'to the room');
    await waitFor(() => rx.calls.length === 9, { timeout: 5000, message: `${name} via nginx: the room message` });
    assert.deepEqual(rx.calls[8], ['to the room']);

    // nginx did spread this client's requests over both nodes.
    const hubLines = nginx.accessLog().filter((l) => / \/hubs\/chat/.test(l));
    const upstreams = new Set(hubLines.map((l) => l.split(' ').at(-1)));
    t.diagnostic(`${name}: ${hubLines.length} hub requests via nginx, upstreams ${[...upstreams].join(', ')}`);
    if (transport !== T.WebSockets) {
      assert.ok(upstreams.has(`127.0.0.1:${a.port}`) && upstreams.has(`127.0.0.1:${b.port}`), `requests on both nodes: ${hubLines.join(' | ')}`);
      assert.ok(hubLines.every((l) => / (200|202|204) /.test(l)), `every hub request succeeded: ${hubLines.join(' | ')}`);
    }
    await withTimeout(viaNginx.stop(), 10_000, 'stop()');
  });
}
