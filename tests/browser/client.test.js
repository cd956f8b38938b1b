// web/crier.js as an API, driven inside a page served by crier: invoke
// results and server errors, send, on/off, stop, loading as an ES module,
// the failed-connect message, keepalive both ways and dead-connection
// detection.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileBrowser, setup } from './helpers.js';

const browser = fileBrowser();

test('invoke, send, on/off, server errors, stop', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser());
  const page = await ctx.open('/index.html');
  const r = await page.evaluate(async () => {
    await import('/crier.js'); // usable as an ES module; the API is on globalThis
    const out = { type: typeof globalThis.crier?.connect };
    const conn = new crier.HubConnection('/hubs/chat', { reconnect: false });
    const got = [];
    const closes = [];
    const handler = (user, text) => got.push([user, text]);
    conn.on('receivemessage', handler); // targets match case-insensitively
    conn.onclose((e) => closes.push(e === undefined ? 'clean' : e.message));
    out.before = conn.state;
    const starting = conn.start();
    out.during = conn.state;
    await starting;
    out.after = conn.state;
    out.transport = conn.transport;
    out.join = await conn.invoke('JoinRoom', 'api-room');
    out.rooms = conn.rooms;
    await conn.invoke('SendToRoom', 'api-room', 'ann', 'via invoke');
    await conn.send('SendToRoom', 'api-room', 'ann', 'via send');
    const until = async (f) => { for (let i = 0; i < 100 && !f(); i++) await new Promise((r) => setTimeout(r, 50)); };
    await until(() => got.length >= 2);
    out.got = got.slice();
    out.unknown = await conn.invoke('Frobnicate', 1).then(() => 'resolved', (e) => e.message);
    out.badRoom = await conn.invoke('SendToRoom', 'no spaces allowed', 'x').then(() => 'resolved', (e) => e.message);
    out.stillConnected = conn.state;
    conn.off('ReceiveMessage', handler);
    await conn.invoke('SendToRoom', 'api-room', 'ann', 'after off');
    await conn.invoke('LeaveRoom', 'api-room');
    out.roomsAfterLeave = conn.rooms;
    await new Promise((r) => setTimeout(r, 200));
    out.gotAfterOff = got.length;
    await conn.stop();
    out.stopped = conn.state;
    out.closes = closes;
    out.invokeAfterStop = await conn.invoke('SendMessage', 'a', 'b').then(() => 'resolved', (e) => e.message);
    return out;
  });
  assert.equal(r.type, 'function');
  assert.deepEqual([r.before, r.during, r.after], ['disconnected', 'connecting', 'connected']);
  assert.equal(r.transport, 'websocket');
  // invoke resolves with the completion result: JoinRoom tells where the room stands
  assert.equal(r.join?.room, 'api-room', `JoinRoom result: ${JSON.stringify(r.join)}`);
  assert.match(String(r.join?.epoch), /^[A-Za-z0-9]{8}$/, `JoinRoom result: ${JSON.stringify(r.join)}`);
  assert.deepEqual(r.rooms, ['api-room']);
  assert.deepEqual(r.got, [['ann', 'via invoke'], ['ann', 'via send']]);
  assert.equal(r.unknown, "Unknown hub method 'Frobnicate'.");
  assert.match(r.badRoom, /^The first argument of 'SendToRoom' must be a room name/);
  assert.equal(r.stillConnected, 'connected', 'a failed invoke leaves the connection up');
  assert.deepEqual(r.roomsAfterLeave, []);
  assert.equal(r.gotAfterOff, 2, 'no handler after off()');
  assert.equal(r.stopped, 'disconnected');
  assert.deepEqual(r.closes, ['clean']);
  assert.match(r.invokeAfterStop, /disconnected/);
  assert.deepEqual(page.log, ["console.warning: [crier] no handler for 'ReceiveMessage'"], 'warned once');
});

test('a failed connect says which transports were tried and why', { timeout: 60_000 }, async (t) => {
  const ctx = await setup(t, browser(), { transports: { websocket: false, sse: false } });
  const page = await ctx.open('/index.html');
  const r = await page.evaluate(async () => {
    await import('/crier.js');
    const fail = (url, opts) => crier.connect(url, opts).start().then(() => 'connected', (e) => e.message);
    const ok = crier.connect('/hubs/chat');
    await ok.start();
    const lp = [ok.transport, await ok.invoke('Nope').catch((e) => e.message)];
    await ok.stop();
    return {
      notOffered: await fail('/hubs/chat', { transports: ['websocket', 'sse'] }),
      noHub: await fail('/hubs/nope'),
      lp,
    };
  });
  assert.match(r.notOffered, /websocket: not offered by the server/);
  assert.match(r.notOffered, /sse: not offered by the server/);
  assert.match(r.noHub, /negotiate failed: HTTP 404/);
  assert.deepEqual(r.lp, ['longpolling', "Unknown hub method 'Nope'."]);
});

test('keepalive: client pings keep an idle connection up; silence is detected', { timeout: 60_000 }, async (t) => {
  // The server pings every second and drops clients silent for 2 s.
  const ctx = await setup(t, browser(), { limits: { keepalive_s: 1 }, signalr: { client_timeout_s: 2 } });
  const page = await ctx.open('/index.html');
  const r = await page.evaluate(async () => {
    await import('/crier.js');
    const watch = (opts) => {
      const conn = crier.connect('/hubs/chat', { reconnect: { maxRetries: 0 }, ...opts });
      const events = [];
      conn.onreconnecting((e) => events.push(`reconnecting: ${e ? e.message : ''}`));
      conn.onclose((e) => events.push(`close: ${e ? e.message : ''}`));
      return { conn, events };
    };
    const pinging = watch({ keepAliveMs: 500 });
    const mute = watch({ keepAliveMs: 60000 }); // sends one ping, then nothing
    const impatient = watch({ keepAliveMs: 500, serverTimeoutMs: 400 }); // the server is quiet for 1 s at a time
    await Promise.all([pinging.conn.start(), mute.conn.start(), impatient.conn.start()]);
    await new Promise((r) => setTimeout(r, 4500));
    const out = {};
    for (const [k, w] of Object.entries({ pinging, mute, impatient })) {
      out[k] = { state: w.conn.state, events: w.events.slice() };
      await w.conn.stop();
    }
    return out;
  });
  assert.deepEqual(r.pinging, { state: 'connected', events: [] }, 'pings every 0.5 s keep it up');
  assert.equal(r.mute.state, 'disconnected', `a silent client is dropped by the server: ${JSON.stringify(r.mute)}`);
  // crier ends it with a Close record carrying its reason (no allowReconnect
  // today, so the client closes instead of reconnecting; either is fine here).
  assert.match(r.mute.events[0], /^(reconnecting|close): .*client_timeout_s/);
  assert.equal(r.impatient.state, 'disconnected');
  assert.match(r.impatient.events[0], /^reconnecting: Server timeout elapsed/);
});
