// Presence (README "Presence"): GET /rooms/{room}/presence lists a room's
// users with their connection counts (anonymous members only counted),
// counts only past presence.max_listed, and needs the subscribe right on
// the room (or an API key); with a rule's presence_events the room's
// members get one join per user (not per connection) and one leave after
// the user's last connection (and the grace), batched when several come at
// once: `event: presence` on SSE (the eventsource client), {"presence": …}
// frames on the plain WebSocket and items in long-poll answers, and a
// CrierPresence invocation for the official @microsoft/signalr client (with
// accessTokenFactory). Presence events take no message id. Runs on the
// memory backplane and, by tests/run.sh, on Redis too.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import EventSource from 'eventsource';

import { assertJsonError, request } from '../lib/http.js';
import { startCrier, stopClean } from '../lib/server.js';
import { signalR, T } from '../lib/signalr.js';
import { mintToken, nowS } from '../lib/token.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';

const SECRET = 'presence-test-secret-0123456789abcdef';
const API_KEY = 'presence-test-api-key-0123456789';
const CONFIG = {
  limits: { poll_timeout_s: 2 },
  presence: { max_listed: 3 },
  auth: {
    jwt: { hmac_secret: SECRET, algorithms: ['HS256'], leeway_s: 0 },
    api_keys: [API_KEY],
    rooms: [
      { match: 'live.*', subscribe: 'token', publish: 'token', presence_events: true },
      { match: 'quiet.*', subscribe: 'token', publish: 'token' },
      { match: 'open.*', subscribe: 'public', publish: 'public' },
      { match: 'secret.*', subscribe: 'claim', publish: 'claim' },
      { match: 'hub:chat', subscribe: 'public', publish: 'token' },
    ],
  },
};

const token = (user, rooms) => mintToken({ alg: 'HS256', secret: SECRET, claims: { sub: user, exp: nowS() + 600, ...(rooms ? { rooms } : {}) } });
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

let srv;
const closers = [];
const track = (c) => (closers.push(c), c);

before(async () => {
  srv = await startCrier(CONFIG);
});
after(async () => {
  await Promise.all(closers.map((c) => Promise.resolve(c()).catch(() => {})));
  await stopClean(srv);
});

const wsUrl = (room, user) => `${srv.wsUrl}/rooms/${room}/ws${user ? `?access_token=${token(user)}` : ''}`;

async function ws(room, user) {
  const c = await openWs(wsUrl(room, user));
  track(() => c.close());
  return c;
}

// An eventsource client with the user's token; resolves once open. Records
// the presence events' data (parsed) in .presence.
function sse(room, user) {
  const es = new EventSource(`${srv.url}/rooms/${room}/events`, { headers: bearer(token(user)) });
  es.presence = [];
  es.addEventListener('presence', (e) => es.presence.push(JSON.parse(e.data)));
  track(() => es.close());
  return withTimeout(
    new Promise((resolve, reject) => {
      es.onopen = () => resolve(es);
      es.onerror = (e) => reject(new Error(`SSE ${room} as ${user}: ${e?.message ?? e?.status ?? 'error'}`));
    }),
    5000,
    `SSE ${room}: open`,
  );
}

// A held long poll as user (not awaited): its answer.
function longPoll(room, user, since) {
  const q = since === undefined ? '' : `?since=${since}`;
  return request(`${srv.url}/rooms/${room}/poll${q}`, { headers: bearer(token(user)), timeout: 10_000 });
}

async function presence(room, headers = bearer(API_KEY)) {
  return request(`${srv.url}/rooms/${room}/presence`, { headers });
}

// The presence of room once it matches want (a function of the JSON body).
async function presenceWhen(room, want, message) {
  return waitFor(
    async () => {
      const res = await presence(room);
      assert.equal(res.status, 200, `presence ${room}: ${res.status} ${res.text}`);
      return want(res.json) ? res.json : false;
    },
    { timeout: 10_000, message: `${message}` },
  );
}

// Every {user, action} a list of presence values holds (a value is one
// event or a list of them).
const flatten = (values) => values.flatMap((v) => (Array.isArray(v) ? v : [v]));
const wsPresence = (c) => c.messages.filter((m) => m && m.presence !== undefined).map((m) => m.presence);
const usersOf = (body) => Object.fromEntries((body.users ?? []).map((u) => [u.user, u.connections]));

describe('GET /rooms/{room}/presence', () => {
  test('lists users with their connection counts over every protocol; anonymous members counted apart', async () => {
    await ws('quiet.a', 'alice');
    await ws('quiet.a', 'alice');
    await sse('quiet.a', 'bob');
    const held = longPoll('quiet.a', 'carol');
    const body = await presenceWhen('quiet.a', (b) => b.count === 3, 'alice, bob and carol in quiet.a');
    assert.deepEqual(body.users, [
      { user: 'alice', connections: 2 },
      { user: 'bob', connections: 1 },
      { user: 'carol', connections: 1 },
    ]);
    assert.equal(body.anonymous, 0);
    assert.equal(body.room, 'quiet.a');
    await held;

    await ws('open.x', null);
    await ws('open.x', null);
    await ws('open.x', 'dave');
    const open = await presenceWhen('open.x', (b) => b.anonymous === 2 && b.count === 1, 'open.x: 2 anonymous, dave');
    assert.deepEqual(open.users, [{ user: 'dave', connections: 1 }]);

    const empty = await presence('open.nobody');
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.json, { room: 'open.nobody', count: 0, anonymous: 0, users: [] });
  });

  test('past presence.max_listed: counts only', async () => {
    for (const u of ['u1', 'u2', 'u3', 'u4']) await ws('quiet.big', u);
    const body = await presenceWhen('quiet.big', (b) => b.count === 4, 'four users in quiet.big');
    assert.equal(body.users, undefined, `no list past max_listed 3: ${JSON.stringify(body)}`);
    assert.equal(body.anonymous, 0);
  });

  test('needs the subscribe right on the room, or an API key', async () => {
    const none = await presence('quiet.a', {});
    assertJsonError(none, 401, 'no token');
    const ok = await presence('quiet.a', bearer(token('zed')));
    assert.equal(ok.status, 200, ok.text);
    const noClaim = await presence('secret.s', bearer(token('zed')));
    assertJsonError(noClaim, 403, 'a token without the room claim');
    const claim = await presence('secret.s', bearer(token('zed', { subscribe: ['secret.s'] })));
    assert.equal(claim.status, 200, claim.text);
    const key = await presence('secret.s', bearer(API_KEY));
    assert.equal(key.status, 200, key.text);
    const open = await presence('open.x', {});
    assert.equal(open.status, 200, 'a public room: anyone');
    const bad = await request(`${srv.url}/rooms/bad%20name/presence`);
    assert.equal(bad.status, 400);
  });
});

describe('presence events (presence_events: true)', { concurrency: true }, () => {
  test('one join per user and one leave after their last connection, on WebSocket and SSE', async () => {
    const watcher = await ws('live.a', 'watcher');
    const es = await sse('live.a', 'sseWatcher');
    // On Redis the node subscribes to the room's channel when its first
    // member joins, and joins of others come back on that channel: a publish
    // that reaches the watcher shows the subscription is live.
    const sync = await request(`${srv.url}/rooms/live.a/messages`, {
      method: 'POST',
      headers: { ...bearer(API_KEY), 'Content-Type': 'application/json' },
      body: '{"sync":1}',
    });
    assert.equal(sync.status, 201, sync.text);
    await watcher.until((c) => c.messages.some((m) => m?.data?.sync === 1), 10_000, 'watcher: the sync message');
    const a1 = await ws('live.a', 'alice');
    const a2 = await ws('live.a', 'alice');
    const a3 = await sse('live.a', 'alice');
    const joined = (list, user) => flatten(list).filter((e) => e.user === user && e.action === 'join').length;
    await watcher.until((c) => joined(wsPresence(c), 'alice') >= 1, 5000, 'watcher: alice joined');
    await waitFor(() => joined(es.presence, 'alice') >= 1, { message: 'SSE watcher: alice joined' });
    const body = await presenceWhen('live.a', (b) => usersOf(b).alice === 3, 'alice with 3 connections');
    assert.equal(usersOf(body).watcher, 1);

    a1.close();
    a2.close();
    await presenceWhen('live.a', (b) => usersOf(b).alice === 1, 'alice down to 1 connection');
    a3.close();
    const left = (list) => flatten(list).filter((e) => e.user === 'alice' && e.action === 'leave').length;
    await watcher.until((c) => left(wsPresence(c)) >= 1, 8000, 'watcher: alice left');
    await waitFor(() => left(es.presence) >= 1, { timeout: 8000, message: 'SSE watcher: alice left' });
    await presenceWhen('live.a', (b) => usersOf(b).alice === undefined, 'alice gone from the list');
    await sleep(300);
    assert.equal(joined(wsPresence(watcher), 'alice'), 1, `one join for alice: ${JSON.stringify(wsPresence(watcher))}`);
    assert.equal(left(wsPresence(watcher)), 1, 'one leave for alice');
    assert.equal(joined(es.presence, 'alice'), 1, `SSE: one join for alice: ${JSON.stringify(es.presence)}`);
    assert.equal(left(es.presence), 1, 'SSE: one leave for alice');
    for (const e of flatten(wsPresence(watcher))) assert.deepEqual(Object.keys(e).sort(), ['action', 'user']);

    // no message id taken: the room's numbering has not moved past the sync message
    const info = await request(`${srv.url}/rooms/live.a`, { headers: bearer(API_KEY) });
    assert.equal(info.status, 200, info.text);
    assert.equal(info.json.last_id, 1);
  });

  test('several at once: one message with a list', async () => {
    const watcher = await ws('live.batch', 'watcher');
    const users = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
    const conns = await Promise.all(users.map((u) => ws('live.batch', u)));
    const events = () => flatten(wsPresence(watcher));
    await watcher.until((c) => users.every((u) => flatten(wsPresence(c)).some((e) => e.user === u && e.action === 'join')), 8000, 'every join');
    const before = wsPresence(watcher).length;
    for (const c of conns) c.close(); // within a few ms: their leaves fall due in the same tick or two
    await watcher.until((c) => users.every((u) => flatten(wsPresence(c)).some((e) => e.user === u && e.action === 'leave')), 10_000, 'every leave');
    const leaveFrames = wsPresence(watcher).slice(before);
    assert.ok(leaveFrames.length < users.length, `${users.length} leaves in ${leaveFrames.length} frames: ${JSON.stringify(leaveFrames)}`);
    const batch = leaveFrames.find((v) => Array.isArray(v) && v.length > 1);
    assert.ok(batch, `a frame with a list: ${JSON.stringify(leaveFrames)}`);
    for (const e of batch) assert.equal(e.action, 'leave');
    assert.equal(events().filter((e) => e.action === 'leave').length, users.length, 'one leave per user');
  });

  test('a room without presence_events sends none', async () => {
    const watcher = await ws('quiet.ev', 'watcher');
    await ws('quiet.ev', 'someone');
    await presenceWhen('quiet.ev', (b) => b.count === 2, 'two users in quiet.ev');
    await sleep(500);
    assert.deepEqual(wsPresence(watcher), []);
  });

  test('SignalR (official client, accessTokenFactory): CrierPresence with one argument', async () => {
    const conn = new signalR.HubConnectionBuilder()
      .withUrl(`${srv.url}/hubs/chat`, { transport: T.WebSockets, accessTokenFactory: () => token('sam') })
      .configureLogging(signalR.LogLevel.None)
      .build();
    const calls = [];
    conn.on('CrierPresence', (...args) => calls.push(args));
    track(() => conn.stop());
    await withTimeout(conn.start(), 5000, 'SignalR start');
    await withTimeout(conn.invoke('JoinRoom', 'live.sr'), 5000, 'JoinRoom');
    const body = await presenceWhen('live.sr', (b) => usersOf(b).sam === 1, 'sam present in live.sr');
    assert.equal(body.count, 1);
    const plain = await ws('live.sr', 'pat');
    await waitFor(() => calls.some((a) => flatten([a[0]]).some((e) => e.user === 'pat' && e.action === 'join')), {
      message: `CrierPresence join of pat: ${JSON.stringify(calls)}`,
    });
    for (const a of calls) assert.equal(a.length, 1, `one argument: ${JSON.stringify(a)}`);
    await conn.stop();
    await plain.until((c) => flatten(wsPresence(c)).some((e) => e.user === 'sam' && e.action === 'leave'), 8000, 'pat sees sam leave');
  });
});

// Not side by side with the others: eve's first poll can be answered with her
// own join alone when frank's comes a presence tick later, and then frank's
// join finds no poll of eve's held (it failed so under ThreadSanitizer with
// the other tests running at the same time).
describe('presence events (presence_events: true) on long polls', () => {
  test('long polls get them as items of their answer, with no id', async () => {
    let since;
    const items = [];
    const deadline = Date.now() + 15_000;
    let frank = null;
    while (!items.some((m) => m.presence && flatten([m.presence]).some((e) => e.user === 'frank' && e.action === 'join'))) {
      assert.ok(Date.now() < deadline, `eve's polls: no join of frank in ${JSON.stringify(items)}`);
      const p = longPoll('live.lp', 'eve', since);
      if (!frank) {
        await presenceWhen('live.lp', (b) => usersOf(b).eve >= 1, 'eve is present');
        frank = await ws('live.lp', 'frank');
      }
      const res = await p;
      assert.equal(res.status, 200, res.text);
      items.push(...res.json.messages);
      since = res.json.last_id;
      assert.equal(since, 0, 'presence items move no cursor');
    }
    for (const m of items) assert.deepEqual(Object.keys(m), ['presence']);
    // eve between two polls is still present (the grace)
    const body = await presence('live.lp');
    assert.equal(usersOf(body.json).eve, 1, JSON.stringify(body.json));
  });
});
