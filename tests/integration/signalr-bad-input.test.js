// Bad input on the SignalR endpoints: a raw WebSocket sending a bad
// handshake, malformed JSON, an oversized message, a binary frame; unknown
// connection tokens and wrong methods over HTTP. Each time the offender is
// told why and closed, and the server keeps serving everyone else.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../lib/http.js';
import {
  HANDSHAKE,
  RS,
  T,
  assertStillServes,
  assertVoid,
  invoke,
  receiver,
  setup,
  stop,
} from '../lib/signalr.js';
import { waitFor } from '../lib/util.js';
import { wsRefusal } from '../lib/ws.js';

const MAX = 1024;

// Waits for the socket to close; asserts the last record is a Close with an
// error matching `pattern`, and a normal close frame. Returns the records.
async function assertClosedWithError(raw, pattern, what) {
  const info = await raw.waitForClose(3000);
  const records = raw.records();
  const close = records.at(-1);
  assert.ok(close && close.type === 7, `${what}: last record is a Close: ${JSON.stringify(raw.texts)}`);
  assert.equal(typeof close.error, 'string', `${what}: Close carries an error: ${JSON.stringify(close)}`);
  assert.match(close.error, pattern, `${what}: Close error`);
  assert.notEqual(close.allowReconnect, true, `${what}: no reconnect invited`);
  assert.equal(info.code, 1000, `${what}: close code ${info.code}`);
  return records;
}

// An official client connected for the whole test; after each bad input it
// must still get broadcasts.
async function observer(ctx) {
  const conn = await ctx.connect({ transport: T.WebSockets, label: 'observer' });
  const rx = receiver(conn);
  conn.check = async (what) => {
    assertVoid(await invoke(conn, 'SendMessage', 'obs', what));
    await waitFor(() => rx.calls.some((c) => c[0] === 'obs' && c[1] === what), {
      timeout: 3000,
      message: `observer gets its broadcast after ${what}`,
    });
  };
  return conn;
}

for (const skipNegotiation of [false, true]) {
  const how = skipNegotiation ? 'no id (skipNegotiation)' : 'negotiated id';
  test(`raw WS (${how}): garbage before the handshake -> handshake error, Close, closed`, async (t) => {
    const ctx = await setup(t);
    const obs = await observer(ctx);
    const raw = await ctx.raw({ skipNegotiation });
    raw.sendText(`hello${RS}`);
    const records = await assertClosedWithError(raw, /./, 'garbage handshake');
    assert.equal(records.length, 2, `records: ${JSON.stringify(raw.texts)}`);
    const [reply] = records;
    assert.equal(reply.type, undefined, `the first record is a handshake reply: ${JSON.stringify(reply)}`);
    assert.equal(typeof reply.error, 'string');
    assert.ok(reply.error.length > 0, 'handshake error text');
    await obs.check('garbage handshake');
    await assertStillServes(ctx, 'garbage handshake');
    await stop(obs);
  });
}

// MessagePack is supported (signalr-msgpack.test.js); another protocol is not.
test('raw WS: an unknown protocol in the handshake -> "Protocol \'protobuf\' is not supported.", closed', async (t) => {
  const ctx = await setup(t);
  const obs = await observer(ctx);
  const raw = await ctx.raw();
  raw.sendText(`{"protocol":"protobuf","version":1}${RS}`);
  const info = await raw.waitForClose(3000);
  const records = raw.records();
  assert.deepEqual(records[0], { error: "Protocol 'protobuf' is not supported." }, `records: ${JSON.stringify(raw.texts)}`);
  for (const r of records.slice(1)) assert.equal(r.type, 7, `only a Close may follow: ${JSON.stringify(raw.texts)}`);
  assert.equal(info.code, 1000, `close code ${info.code}`);
  await obs.check('unknown protocol');
  await assertStillServes(ctx, 'unknown protocol handshake');
  await stop(obs);
});

test('raw WS after a good handshake: malformed JSON -> Close with an error, closed', async (t) => {
  const ctx = await setup(t);
  const obs = await observer(ctx);
  const raw = await ctx.raw();
  await raw.handshake();
  // The connection works before the bad record.
  raw.sendText(`{"type":1,"target":"SendMessage","arguments":["raw","ok"],"invocationId":"1"}${RS}`);
  await raw.waitRecords((r) => r.some((x) => x.type === 3 && x.invocationId === '1'), 3000, 'the completion');
  raw.sendText(`{nope${RS}`);
  await assertClosedWithError(raw, /./, 'malformed JSON');
  await obs.check('malformed JSON');
  await assertStillServes(ctx, 'malformed JSON');
  await stop(obs);
});

test(`raw WS: a message over limits.max_message_bytes (${MAX}) -> Close naming the limit; within it works`, async (t) => {
  const ctx = await setup(t, { limits: { max_message_bytes: MAX } });
  const obs = await observer(ctx);
  const rxObs = receiver(obs);
  const raw = await ctx.raw();
  await raw.handshake();

  const record = (text, id) => `${JSON.stringify({ type: 1, target: 'SendMessage', arguments: ['raw', text], invocationId: id })}${RS}`;
  const small = record('y'.repeat(MAX - 200), '1');
  assert.ok(small.length < MAX);
  raw.sendText(small);
  await raw.waitRecords((r) => r.some((x) => x.type === 3 && x.invocationId === '1'), 3000, 'the completion of the small message');
  await rxObs.wait(1);
  assert.deepEqual(rxObs.calls[0], ['raw', 'y'.repeat(MAX - 200)]);

  const big = record('x'.repeat(2 * MAX), '2');
  raw.sendText(big);
  const records = await assertClosedWithError(raw, /max_message_bytes|limit/i, 'oversized message');
  assert.ok(!records.some((x) => x.type === 3 && x.invocationId === '2'), 'the oversized invocation was not run');
  await obs.check('oversized');
  assert.ok(!rxObs.calls.some((c) => c[1] === 'x'.repeat(2 * MAX)), 'the oversized message was not broadcast');
  await assertStillServes(ctx, 'oversized message');
  await stop(obs);
});

test('raw WS: a binary frame -> Close with an error, closed', async (t) => {
  const ctx = await setup(t);
  const obs = await observer(ctx);
  const raw = await ctx.raw();
  await raw.handshake();
  raw.ws.send(Buffer.from(`{"type":1,"target":"SendMessage","arguments":["bin","ary"]}${RS}`), { binary: true });
  await assertClosedWithError(raw, /./, 'binary frame');
  await obs.check('binary frame');
  await assertStillServes(ctx, 'binary frame');
  await stop(obs);
});

test('long polling: garbage handshake by POST -> handshake error and Close on the poll, then 204', async (t) => {
  const ctx = await setup(t);
  const neg = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST' });
  const url = `${ctx.url}/hubs/chat?id=${neg.json.connectionToken}`;
  assert.equal((await request(`${url}&_=1`)).status, 200, 'first poll');
  const post = await request(url, { method: 'POST', body: `hello${RS}` });
  assert.ok(post.status < 500, `POST of a bad handshake: ${post.status} ${post.text}`);
  const res = await request(`${url}&_=2`, { timeout: 3000 });
  assert.equal(res.status, 200, `poll after the bad handshake: ${res.status} ${res.text}`);
  const records = res.text.split(RS).filter(Boolean).map((r) => JSON.parse(r));
  assert.equal(typeof records[0]?.error, 'string', `handshake error first: ${JSON.stringify(res.text)}`);
  assert.equal(records[0].type, undefined);
  assert.equal(records.at(-1).type, 7, `then a Close: ${JSON.stringify(res.text)}`);
  const after = await request(`${url}&_=3`, { timeout: 3000 });
  assert.equal(after.status, 204, `poll after the close: ${after.status} ${after.text}`);
  await assertStillServes(ctx, 'LP garbage handshake');
});

test('HTTP: unknown tokens -> 404, negotiate with GET -> 405, no id -> 400; the server keeps serving', async (t) => {
  const ctx = await setup(t);
  const obs = await observer(ctx);
  const hub = `${ctx.url}/hubs/chat`;

  const lp = await request(`${hub}?id=no-such-token&_=1`, { timeout: 3000 });
  assert.equal(lp.status, 404, `LP poll, unknown token: ${lp.status} ${lp.text}`);
  const post = await request(`${hub}?id=no-such-token`, { method: 'POST', body: HANDSHAKE, timeout: 3000 });
  assert.equal(post.status, 404, `POST, unknown token: ${post.status} ${post.text}`);
  const sse = await request(`${hub}?id=no-such-token`, { headers: { Accept: 'text/event-stream' }, timeout: 3000 });
  assert.equal(sse.status, 404, `SSE GET, unknown token: ${sse.status} ${sse.text}`);
  const del = await request(`${hub}?id=no-such-token`, { method: 'DELETE', timeout: 3000 });
  assert.equal(del.status, 404, `DELETE, unknown token: ${del.status} ${del.text}`);

  const neg = await request(`${hub}/negotiate?negotiateVersion=1`, { timeout: 3000 });
  assert.equal(neg.status, 405, `GET negotiate: ${neg.status} ${neg.text}`);
  const noId = await request(hub, { timeout: 3000 });
  assert.equal(noId.status, 400, `GET without id: ${noId.status} ${noId.text}`);

  // The connection id is public; only the token opens the connection.
  const good = await request(`${hub}/negotiate?negotiateVersion=1`, { method: 'POST' });
  const byId = await request(`${hub}?id=${good.json.connectionId}&_=1`, { timeout: 3000 });
  assert.equal(byId.status, 404, `poll with the connection id instead of the token: ${byId.status}`);
  const byToken = await request(`${hub}?id=${good.json.connectionToken}&_=1`, { timeout: 3000 });
  assert.equal(byToken.status, 200, 'poll with the token');
  assert.equal((await request(`${hub}?id=${good.json.connectionToken}`, { method: 'DELETE' })).status, 202);

  await obs.check('HTTP errors');
  await assertStillServes(ctx, 'HTTP errors');
  await stop(obs);
});

test('WS upgrade with an unknown or closed connection token -> 404', async (t) => {
  // ASP.NET answers 404 for an unknown id (protocol doc (c), WebSockets), as
  // crier does for SSE, long polling and POST.
  const ctx = await setup(t);
  const ws = await wsRefusal(`${ctx.wsUrl}/hubs/chat?id=no-such-token`);
  assert.equal(ws.status, 404, `WS upgrade, unknown token: ${ws.status} ${ws.body}`);

  // A token whose connection was closed (the client's DELETE) is unknown too.
  const neg = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST' });
  const token = neg.json.connectionToken;
  assert.equal((await request(`${ctx.url}/hubs/chat?id=${token}&_=1`)).status, 200);
  assert.equal((await request(`${ctx.url}/hubs/chat?id=${token}`, { method: 'DELETE' })).status, 202);
  const closed = await wsRefusal(`${ctx.wsUrl}/hubs/chat?id=${token}`);
  assert.equal(closed.status, 404, `WS upgrade, closed connection's token: ${closed.status} ${closed.body}`);
  await assertStillServes(ctx, 'refused upgrades');
});

// Every record received parses as JSON (none is cut or badly escaped).
function assertAllParse(raw, what) {
  const bad = raw.records().filter((r) => 'unparsed' in r);
  assert.deepEqual(bad, [], `${what}: every record is valid JSON`);
}

test('raw WS: long invocationIds and hostile targets -> valid JSON completions with the error; the connection stays', async (t) => {
  const ctx = await setup(t);
  const obs = await observer(ctx);
  const raw = await ctx.raw();
  await raw.handshake();
  const completion = (id) => raw.waitRecords((r) => r.some((x) => x.type === 3 && x.invocationId === id), 3000, `the completion of ${id.slice(0, 20)}`)
    .then(() => raw.records().find((x) => x.type === 3 && x.invocationId === id));

  // A 300-byte id (past the old 160-byte buffer) is echoed whole.
  const longId = 'i'.repeat(300);
  raw.sendText(`${JSON.stringify({ type: 1, target: 'SendMessage', arguments: ['raw', 'long id'], invocationId: longId })}${RS}`);
  const ok = await completion(longId);
  assert.equal(ok.error, undefined, `SendMessage with a 300-byte id: ${JSON.stringify(ok)}`);

  // Unknown targets full of control characters, quotes, backslashes, non-ASCII.
  const targets = [
    `Bad\u0001\u001f"\\\n${'x\u0007"\\'.repeat(150)}`,
    `${'\u00e9\u4e2d\u{1F600}'.repeat(100)}`,
    `</script>\u2028\u2029${'\t'.repeat(500)}`,
  ];
  for (const [k, target] of targets.entries()) {
    const id = `${k}-${'q"\\'.repeat(100)}`;
    raw.sendText(`${JSON.stringify({ type: 1, target, arguments: [], invocationId: id })}${RS}`);
    const c = await completion(id);
    assert.match(c.error, /^Unknown hub method '/, `target ${k}: ${JSON.stringify(c)}`);
    assert.ok(c.error.length < 400, `target ${k}: the echo is bounded (${c.error.length} chars)`);
  }
  // A streaming invocation with a long id gets its refusal too.
  raw.sendText(`${JSON.stringify({ type: 4, target: 'Ticks', arguments: [], invocationId: `s${longId}` })}${RS}`);
  assert.match((await completion(`s${longId}`)).error, /Streaming/);
  assertAllParse(raw, 'long ids and hostile targets');

  // The connection still works.
  raw.sendText(`{"type":1,"target":"SendMessage","arguments":["raw","after"],"invocationId":"z"}${RS}`);
  assert.equal((await completion('z')).error, undefined);
  await obs.check('hostile targets');
  await assertStillServes(ctx, 'hostile targets');
  await stop(obs);
});

test('raw WS: an invocationId over 1024 bytes -> a Close saying so; over max_message_bytes -> Close naming the limit', async (t) => {
  const ctx = await setup(t);
  const obs = await observer(ctx);
  const raw = await ctx.raw();
  await raw.handshake();
  raw.sendText(`${JSON.stringify({ type: 1, target: 'SendMessage', arguments: ['raw', 'huge id'], invocationId: 'h'.repeat(60000) })}${RS}`);
  const records = await assertClosedWithError(raw, /invocationId.*1024/, 'a 60000-byte invocationId');
  assert.ok(!records.some((x) => x.type === 3), 'no completion echoes the huge id');
  assertAllParse(raw, 'huge invocationId');

  const raw2 = await ctx.raw();
  await raw2.handshake();
  raw2.sendText(`${JSON.stringify({ type: 1, target: 'SendMessage', arguments: [], invocationId: 'm'.repeat(1 << 20) })}${RS}`);
  await assertClosedWithError(raw2, /max_message_bytes/, 'a 1 MiB invocationId');
  assertAllParse(raw2, '1 MiB invocationId');

  await obs.check('huge invocationId');
  await assertStillServes(ctx, 'huge invocationId');
  await stop(obs);
});

test('raw WS: a handshake naming a long protocol full of control characters -> a valid JSON handshake error', async (t) => {
  const ctx = await setup(t);
  const raw = await ctx.raw();
  raw.sendText(`${JSON.stringify({ protocol: `mp\u0001"\\${'\u0002'.repeat(300)}`, version: 1 })}${RS}`);
  const records = await assertClosedWithError(raw, /not supported/, 'hostile protocol name');
  assert.match(records[0].error, /^Protocol 'mp\u0001"\\/, JSON.stringify(records[0]));
  assertAllParse(raw, 'hostile protocol name');
  await assertStillServes(ctx, 'hostile protocol name');
});

test('long polling: a POST of invalid UTF-8 -> a valid JSON Close with the error on the poll', async (t) => {
  const ctx = await setup(t);
  const neg = await request(`${ctx.url}/hubs/chat/negotiate?negotiateVersion=1`, { method: 'POST' });
  const url = `${ctx.url}/hubs/chat?id=${neg.json.connectionToken}`;
  assert.equal((await request(`${url}&_=1`)).status, 200, 'first poll');
  assert.equal((await request(url, { method: 'POST', body: HANDSHAKE })).status, 200, 'handshake');
  const hs = await request(`${url}&_=2`, { timeout: 3000 });
  assert.equal(hs.text, `{}${RS}`);
  const bad = Buffer.concat([
    Buffer.from('{"type":1,"target":"Bad\\u0001'),
    Buffer.from([0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
    Buffer.from(`","arguments":[],"invocationId":"1"}${RS}`),
  ]);
  const post = await request(url, { method: 'POST', body: bad });
  assert.ok(post.status < 500, `POST: ${post.status}`);
  const res = await request(`${url}&_=3`, { timeout: 3000 });
  assert.equal(res.status, 200, `poll: ${res.status} ${res.text}`);
  const records = res.text.split(RS).filter(Boolean).map((r) => JSON.parse(r));
  assert.equal(records.at(-1).type, 7, `a Close: ${JSON.stringify(res.text)}`);
  assert.equal(typeof records.at(-1).error, 'string');
  await assertStillServes(ctx, 'invalid UTF-8');
});
