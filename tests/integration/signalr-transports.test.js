// The official @microsoft/signalr client on each transport forced: broadcast,
// completions, hub errors, rooms across transports, stop() freeing the
// connection; and the long-polling endpoint driven by hand.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, subscriberCounts } from '../lib/http.js';
import {
  HANDSHAKE,
  RS,
  T,
  TRANSPORT_CLASS,
  assertQuiet,
  assertVoid, assertJoined,
  invoke,
  negotiate,
  receiver,
  setup,
  stop,
  transportName,
} from '../lib/signalr.js';
import { waitFor, withTimeout } from '../lib/util.js';

const zero = { websocket: 0, sse: 0, long_polling: 0 };

for (const transport of [T.WebSockets, T.ServerSentEvents, T.LongPolling]) {
  const name = TRANSPORT_CLASS[transport];
  test(`${name}: broadcast, completions, hub errors, stop() frees the connection`, async (t) => {
    const ctx = await setup(t);
    const a = await ctx.connect({ transport, label: `a (${name})` });
    const b = await ctx.connect({ transport, label: `b (${name})` });
    assert.equal(transportName(a), name);
    assert.equal(transportName(b), name);
    assert.ok(a.connectionId && b.connectionId && a.connectionId !== b.connectionId, 'distinct connection ids');
    const rxA = receiver(a);
    const rxB = receiver(b);

    assertVoid(await invoke(a, 'SendMessage', 'ann', 'hi'), 'SendMessage');
    await rxB.wait(1);
    await rxA.wait(1);
    assert.deepEqual(rxB.calls, [['ann', 'hi']], 'the other client got the broadcast');
    assert.deepEqual(rxA.calls, [['ann', 'hi']], 'the sender got its own broadcast');

    // Unicode and structured arguments round-trip.
    assertVoid(await invoke(b, 'SendMessage', 'zoë', { n: 1, list: ['€', null, true] }));
    await rxA.wait(2);
    assert.deepEqual(rxA.calls[1], ['zoë', { n: 1, list: ['€', null, true] }]);

    // Hub errors reject that invocation only; the connection stays usable.
    await assert.rejects(invoke(a, 'Frobnicate', 1), (err) => {
      assert.match(err.message, /Unknown hub method 'Frobnicate'\./);
      return true;
    });
    await assert.rejects(invoke(a, 'SendMessage', 'only one'), (err) => {
      assert.match(err.message, /Method 'SendMessage' takes 2 argument\(s\), got 1\./);
      return true;
    });
    assert.equal(a.state, 'Connected');
    assertVoid(await invoke(a, 'SendMessage', 'ann', 'after errors'));
    await rxB.wait(3);
    assert.deepEqual(rxB.calls[2], ['ann', 'after errors']);

    // A joined room counts the connection under its transport; stop() frees it.
    const room = `solo-${transport}`;
    assertJoined(await invoke(a, 'JoinRoom', room), room);
    assertVoid(await invoke(a, 'SendToRoom', room, 'keep', 'room alive')); // history keeps the room listed
    await rxA.wait(4);
    const key = { [T.WebSockets]: 'websocket', [T.ServerSentEvents]: 'sse', [T.LongPolling]: 'long_polling' }[transport];
    assert.deepEqual(await subscriberCounts(ctx.url, room), { ...zero, [key]: 1 }, 'room info counts the member');
    await stop(a);
    assert.equal(await withTimeout(a.closed, 2000, 'onclose after stop()'), null, 'stop() closes without an error');
    await waitFor(async () => JSON.stringify(await subscriberCounts(ctx.url, room)) === JSON.stringify(zero), {
      timeout: 3000,
      message: `room ${room} counts back to 0 after stop()`,
    });

    // b is unaffected and still gets broadcasts (its own).
    assertVoid(await invoke(b, 'SendMessage', 'bob', 'alone'));
    await rxB.wait(4);
    assert.deepEqual(rxB.calls[3], ['bob', 'alone']);
    await stop(b);
  });
}

test('rooms across transports: JoinRoom/SendToRoom/LeaveRoom deliver only to members', async (t) => {
  const ctx = await setup(t);
  const ws = await ctx.connect({ transport: T.WebSockets, label: 'ws member' });
  const lp = await ctx.connect({ transport: T.LongPolling, label: 'lp member' });
  const sse = await ctx.connect({ transport: T.ServerSentEvents, label: 'sse non-member' });
  const [rxWs, rxLp, rxSse] = [receiver(ws), receiver(lp), receiver(sse)];

  assertJoined(await invoke(ws, 'JoinRoom', 'r1'), 'r1');
  assertJoined(await invoke(lp, 'JoinRoom', 'r1'), 'r1');
  assertJoined(await invoke(sse, 'JoinRoom', 'elsewhere'), 'elsewhere');

  // A non-member may send to the room; only members get it, with the room name dropped.
  assertVoid(await invoke(sse, 'SendToRoom', 'r1', 'ann', 'to r1'));
  await rxWs.wait(1);
  await rxLp.wait(1);
  assert.deepEqual(rxWs.calls, [['ann', 'to r1']]);
  assert.deepEqual(rxLp.calls, [['ann', 'to r1']]);
  // Any number of arguments after the room name.
  assertVoid(await invoke(ws, 'SendToRoom', 'r1', 1, 2, 3));
  await rxLp.wait(2);
  assert.deepEqual(rxLp.calls[1], [1, 2, 3]);
  await rxWs.wait(2);
  assert.deepEqual(rxWs.calls[1], [1, 2, 3]);
  assert.deepEqual(await subscriberCounts(ctx.url, 'r1'), { websocket: 1, sse: 0, long_polling: 1 });

  // Another room reaches only its member.
  assertVoid(await invoke(lp, 'SendToRoom', 'elsewhere', 'lp', 'to elsewhere'));
  await rxSse.wait(1);
  assert.deepEqual(rxSse.calls, [['lp', 'to elsewhere']]);

  // After LeaveRoom the long-polling client no longer receives the room.
  assertVoid(await invoke(lp, 'LeaveRoom', 'r1'));
  assert.deepEqual(await subscriberCounts(ctx.url, 'r1'), { websocket: 1, sse: 0, long_polling: 0 });
  assertVoid(await invoke(sse, 'SendToRoom', 'r1', 'ann', 'after leave'));
  await rxWs.wait(3);
  assert.deepEqual(rxWs.calls[2], ['ann', 'after leave']);
  await assertQuiet([rxLp, rxSse], 300, [2, 1]);

  // A broadcast still reaches everyone, rooms or not.
  assertVoid(await invoke(lp, 'SendMessage', 'all', 'everyone'));
  await Promise.all([rxWs.wait(4), rxLp.wait(3), rxSse.wait(2)]);

  await stop(ws);
  await waitFor(async () => JSON.stringify(await subscriberCounts(ctx.url, 'r1')) === JSON.stringify(zero), {
    timeout: 3000,
    message: 'r1 counts back to 0 after the last member stopped',
  });
  await stop(lp);
  await stop(sse);
  await waitFor(async () => JSON.stringify(await subscriberCounts(ctx.url, 'elsewhere')) === JSON.stringify(zero), {
    timeout: 3000,
    message: 'elsewhere counts back to 0 after stop()',
  });
});

test('long polling by hand: first poll at once, held polls, timeout, replaced poll, close, DELETE', async (t) => {
  const ctx = await setup(t, { limits: { poll_timeout_s: 1 } });
  const neg = await negotiate(ctx.url);
  assert.equal(neg.status, 200, neg.text);
  const url = `${ctx.url}/hubs/chat?id=${neg.json.connectionToken}`;
  const poll = (opts = {}) => request(`${url}&_=${Date.now()}`, { timeout: 5000, ...opts });

  const first = await poll();
  assert.equal(first.status, 200, `first poll: ${first.status} ${first.text}`);
  assert.equal(first.text, '', 'first poll is empty');
  assert.ok(first.ms < 500, `first poll answered at once (${first.ms} ms)`);

  const hs = await request(url, { method: 'POST', body: HANDSHAKE, headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
  assert.ok(hs.status >= 200 && hs.status < 300, `handshake POST: ${hs.status} ${hs.text}`);
  const reply = await poll();
  assert.equal(reply.status, 200);
  assert.equal(reply.text, `{}${RS}`, 'handshake reply');

  // Nothing queued: held for poll_timeout_s, then 200 empty.
  const idle = await poll();
  assert.equal(idle.status, 200);
  assert.equal(idle.text, '');
  assert.ok(idle.ms >= 800 && idle.ms < 3000, `idle poll held about 1 s (${idle.ms} ms)`);

  // A held poll is answered when a record arrives: join a room, then publish to it over HTTP.
  const join = await request(url, {
    method: 'POST',
    body: `{"type":1,"target":"JoinRoom","arguments":["lp-raw"],"invocationId":"7"}${RS}`,
  });
  assert.ok(join.status >= 200 && join.status < 300, `JoinRoom POST: ${join.status}`);
  const completion = await poll();
  assert.equal(completion.status, 200);
  const records = completion.text.split(RS).filter(Boolean).map((r) => JSON.parse(r)).filter((r) => r.type !== 6);
  assert.equal(records.length, 1, `completion: ${JSON.stringify(completion.text)}`);
  const { result, ...rest } = records[0];
  assert.deepEqual(rest, { type: 3, invocationId: '7' }, `completion: ${JSON.stringify(completion.text)}`);
  assert.equal(result?.room, 'lp-raw', `completion result: ${JSON.stringify(result)}`);
  assert.equal(result?.last_id, 0, `completion result: ${JSON.stringify(result)}`);
  const held = poll();
  await new Promise((r) => setTimeout(r, 200));
  const pub = await request(`${ctx.url}/rooms/lp-raw/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '["srv","woke"]',
  });
  assert.equal(pub.status, 201, pub.text);
  const woke = await held;
  assert.equal(woke.status, 200);
  assert.ok(woke.ms < 900, `held poll answered on the record, not the timeout (${woke.ms} ms)`);
  const { headers, ...invocation } = JSON.parse(woke.text.split(RS)[0]);
  assert.deepEqual(invocation, { type: 1, target: 'ReceiveMessage', arguments: ['srv', 'woke'] });
  // where the message stands in its room, for clients that resume (web/crier.js)
  assert.equal(headers['crier-room'], 'lp-raw');
  assert.equal(headers['crier-id'], '1');
  assert.match(headers['crier-epoch'], /^[A-Za-z0-9]{8}$/);

  // A second concurrent poll replaces the first, which answers 204.
  const p1 = poll();
  await new Promise((r) => setTimeout(r, 200));
  const p2 = poll();
  const r1 = await p1;
  assert.equal(r1.status, 204, `replaced poll: ${r1.status} ${r1.text}`);
  const r2 = await p2;
  assert.equal(r2.status, 200, `replacing poll: ${r2.status} ${r2.text}`);

  // The client's Close record ends the connection: the next poll is 204.
  const close = await request(url, { method: 'POST', body: `{"type":7}${RS}` });
  assert.ok(close.status >= 200 && close.status < 300, `Close POST: ${close.status}`);
  const after = await poll();
  assert.equal(after.status, 204, `poll after close: ${after.status} ${after.text}`);

  // DELETE on another connection: 202.
  const neg2 = await negotiate(ctx.url);
  const url2 = `${ctx.url}/hubs/chat?id=${neg2.json.connectionToken}`;
  assert.equal((await request(`${url2}&_=1`)).status, 200);
  const del = await request(url2, { method: 'DELETE' });
  assert.equal(del.status, 202, `DELETE: ${del.status} ${del.text}`);
});
