// SignalR rooms and plain HTTP rooms are the same rooms: curl publishes reach
// SignalR members, SignalR SendToRoom reaches curl SSE subscribers; and a
// custom hubs config replaces the default hub.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { subscriberCounts } from '../lib/http.js';
import { T, assertQuiet, assertVoid, assertJoined, invoke, negotiate, receiver, setup, stop } from '../lib/signalr.js';
import { sseCurl } from '../lib/sse.js';
import { waitFor } from '../lib/util.js';

// curl -s -X POST -H 'Content-Type: application/json' -d BODY URL: {status, body}.
function curlPost(url, body) {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-s', '-X', 'POST', '-H', 'Content-Type: application/json', '-d', body, '-w', '\n%{http_code}', '--max-time', '5', url],
      { timeout: 10_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`curl ${url}: ${err.message} ${stderr}`));
        const i = stdout.lastIndexOf('\n');
        resolve({ body: stdout.slice(0, i), status: Number(stdout.slice(i + 1)) });
      },
    );
  });
}

async function curlPublish(url, body) {
  const res = await curlPost(url, body);
  assert.equal(res.status, 201, `curl POST ${url}: ${res.status} ${res.body}`);
  return res;
}

// The built-in chat hub, with "Other" allowed as a ?target= of publishes.
const CHAT_WITH_OTHER = {
  chat: {
    path: '/hubs/chat',
    default_target: 'ReceiveMessage',
    publish_targets: ['ReceiveMessage', 'Other'],
    methods: {
      SendMessage: { action: 'broadcast', target: 'ReceiveMessage', args: 2 },
      SendToRoom: { action: 'room', target: 'ReceiveMessage' },
      JoinRoom: { action: 'join', args: 1 },
      LeaveRoom: { action: 'leave', args: 1 },
    },
  },
};

test('curl POST /rooms/lobby/messages reaches SignalR members of lobby', async (t) => {
  const ctx = await setup(t, { hubs: CHAT_WITH_OTHER });
  const ws = await ctx.connect({ transport: T.WebSockets, label: 'ws member' });
  const sse = await ctx.connect({ transport: T.ServerSentEvents, label: 'sse member' });
  const lp = await ctx.connect({ transport: T.LongPolling, label: 'lp member' });
  const out = await ctx.connect({ transport: T.WebSockets, label: 'non-member' });
  for (const c of [ws, sse, lp]) assertJoined(await invoke(c, 'JoinRoom', 'lobby'), 'lobby');
  const members = [receiver(ws), receiver(sse), receiver(lp)];
  const others = [receiver(ws, 'Other'), receiver(sse, 'Other'), receiver(lp, 'Other')];
  const rxOut = receiver(out);
  assert.deepEqual(await subscriberCounts(ctx.url, 'lobby'), { websocket: 1, sse: 1, long_polling: 1 });

  // A JSON array body is the argument list.
  await curlPublish(`${ctx.url}/rooms/lobby/messages`, '["bob","from curl"]');
  for (const rx of members) await rx.wait(1);
  for (const rx of members) assert.deepEqual(rx.calls, [['bob', 'from curl']]);

  // Any other body is the single argument.
  await curlPublish(`${ctx.url}/rooms/lobby/messages`, '{"user":"bob","n":[1,2]}');
  await curlPublish(`${ctx.url}/rooms/lobby/messages`, '"just a string"');
  await curlPublish(`${ctx.url}/rooms/lobby/messages`, '42');
  for (const rx of members) await rx.wait(4);
  for (const rx of members) {
    assert.deepEqual(rx.calls.slice(1), [[{ user: 'bob', n: [1, 2] }], ['just a string'], [42]]);
  }

  // ?target= picks the client method.
  await curlPublish(`${ctx.url}/rooms/lobby/messages?target=Other`, '["via","target"]');
  for (const rx of others) await rx.wait(1);
  for (const rx of others) assert.deepEqual(rx.calls, [['via', 'target']]);
  await assertQuiet([...members, rxOut], 300, [4, 4, 4, 0]);

  // Other rooms do not reach lobby members.
  await curlPublish(`${ctx.url}/rooms/elsewhere/messages`, '["x","y"]');
  await assertQuiet([...members, rxOut], 300, [4, 4, 4, 0]);
  for (const c of [ws, sse, lp, out]) await stop(c);
});

test('SendToRoom reaches a curl SSE subscriber of the room as a JSON array', async (t) => {
  const ctx = await setup(t);
  const events = sseCurl(`${ctx.url}/rooms/lobby/events`);
  ctx.track({ close: async () => events.close() });
  await waitFor(async () => (await subscriberCounts(ctx.url, 'lobby'))?.sse === 1, { timeout: 3000, message: 'curl SSE subscriber counted' });

  const conn = await ctx.connect({ transport: T.WebSockets, label: 'sender (non-member)' });
  const member = await ctx.connect({ transport: T.LongPolling, label: 'lp member' });
  assertJoined(await invoke(member, 'JoinRoom', 'lobby'), 'lobby');
  const rx = receiver(member);
  assert.deepEqual(await subscriberCounts(ctx.url, 'lobby'), { websocket: 0, sse: 1, long_polling: 1 });

  assertVoid(await invoke(conn, 'SendToRoom', 'lobby', 'x', 1));
  assertVoid(await invoke(conn, 'SendToRoom', 'lobby', { deep: ['é', null] }));
  await events.waitForEvents(2, 3000);
  // Plain SSE ids are EPOCH:N, with the room's epoch.
  const { epoch } = await fetch(`${ctx.url}/rooms/lobby`).then((r) => r.json());
  assert.match(epoch ?? '', /^[A-Za-z0-9]{8}$/, 'room info: epoch');
  assert.deepEqual(
    events.events.map((e) => ({ id: e.id, data: JSON.parse(e.data) })),
    [
      { id: `${epoch}:1`, data: ['x', 1] },
      { id: `${epoch}:2`, data: [{ deep: ['é', null] }] },
    ],
    `SSE events: ${JSON.stringify(events.events)}`,
  );
  await rx.wait(2);
  assert.deepEqual(rx.calls, [['x', 1], [{ deep: ['é', null] }]]);

  // A SignalR message to another room does not reach the lobby stream.
  assertVoid(await invoke(conn, 'SendToRoom', 'other', 'nope'));
  assertVoid(await invoke(conn, 'SendMessage', 'broadcast', 'is hub-wide, not a room'));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(events.events.length, 2, `SSE events: ${JSON.stringify(events.events)}`);

  // The room's last_id counts the SignalR messages.
  const info = await fetch(`${ctx.url}/rooms/lobby`).then((r) => r.json());
  assert.equal(info.last_id, 2);
  await stop(conn);
  await stop(member);
  events.close();
});

test('custom hubs config: hub feed at /hubs/feed, "others" excludes the caller, default target', async (t) => {
  const ctx = await setup(t, {
    hubs: {
      feed: {
        path: '/hubs/feed',
        default_target: 'Heard',
        methods: {
          Shout: { action: 'others', target: 'Heard', args: 1 },
          Everyone: { action: 'broadcast', target: 'Announce' },
          Enter: { action: 'join', args: 1 },
          Post: { action: 'room', target: 'Posted' },
        },
      },
    },
  });
  // The configured hubs replace the default chat hub.
  const chat = await negotiate(ctx.url, { path: '/hubs/chat' });
  assert.equal(chat.status, 404, `negotiate on the replaced /hubs/chat: ${chat.status} ${chat.text}`);
  const feed = await negotiate(ctx.url, { path: '/hubs/feed' });
  assert.equal(feed.status, 200, feed.text);

  const path = '/hubs/feed';
  const a = await ctx.connect({ path, transport: T.WebSockets, label: 'a (caller)' });
  const b = await ctx.connect({ path, transport: T.ServerSentEvents, label: 'b' });
  const c = await ctx.connect({ path, transport: T.LongPolling, label: 'c' });
  const heard = [a, b, c].map((x) => receiver(x, 'Heard'));

  assertVoid(await invoke(a, 'Shout', 'hey'));
  await heard[1].wait(1);
  await heard[2].wait(1);
  assert.deepEqual(heard[1].calls, [['hey']]);
  assert.deepEqual(heard[2].calls, [['hey']]);
  await assertQuiet([heard[0]], 300);

  // Methods of the default hub do not exist here; the argument count is enforced.
  await assert.rejects(invoke(a, 'SendMessage', 'ann', 'hi'), /Unknown hub method 'SendMessage'\./);
  await assert.rejects(invoke(a, 'Shout', 'a', 'b'), /Method 'Shout' takes 1 argument\(s\), got 2\./);

  // broadcast without "args" takes any number and includes the caller.
  const announce = [a, b, c].map((x) => receiver(x, 'Announce'));
  assertVoid(await invoke(b, 'Everyone', 1, 2, 3));
  for (const rx of announce) await rx.wait(1);
  for (const rx of announce) assert.deepEqual(rx.calls, [[1, 2, 3]]);

  // Rooms on this hub: a plain HTTP publish uses the hub's default target.
  assertJoined(await invoke(c, 'Enter', 'news'), 'news');
  const posted = receiver(c, 'Posted');
  assertVoid(await invoke(a, 'Post', 'news', 'headline'));
  await posted.wait(1);
  assert.deepEqual(posted.calls, [['headline']]);
  await curlPublish(`${ctx.url}/rooms/news/messages`, '["from","http"]');
  await heard[2].wait(2);
  assert.deepEqual(heard[2].calls[1], ['from', 'http']);
  await assertQuiet([heard[0], heard[1]], 200, [0, 1]);
  for (const x of [a, b, c]) await stop(x);
});

test('POST ?target= only names a hub\'s publish_targets (default: default_target and the methods\' targets)', async (t) => {
  const ctx = await setup(t);
  const member = await ctx.connect({ transport: T.WebSockets, label: 'member' });
  assertJoined(await invoke(member, 'JoinRoom', 'guarded'), 'guarded');
  const rx = receiver(member);
  const evil = receiver(member, 'Other');

  for (const target of ['Other', 'JoinRoom', 'SendMessage']) {
    const res = await curlPost(`${ctx.url}/rooms/guarded/messages?target=${target}`, '["x","y"]');
    assert.equal(res.status, 400, `target=${target}: ${res.status} ${res.body}`);
    const body = JSON.parse(res.body);
    assert.match(body.error, new RegExp(`'${target}'.*publish_targets`), res.body);
  }
  // Allowed: the default target, in any case (SignalR clients match names so).
  await curlPublish(`${ctx.url}/rooms/guarded/messages?target=ReceiveMessage`, '["a","1"]');
  await curlPublish(`${ctx.url}/rooms/guarded/messages?target=receivemessage`, '["a","2"]');
  await curlPublish(`${ctx.url}/rooms/guarded/messages`, '["a","3"]');
  await rx.wait(3);
  assert.deepEqual(rx.calls, [['a', '1'], ['a', '2'], ['a', '3']]);
  await assertQuiet([evil], 300, [0]);
  await stop(member);
});

test('publish_targets: [] allows no ?target= at all; publishes without one still reach members', async (t) => {
  const ctx = await setup(t, { hubs: { chat: { ...CHAT_WITH_OTHER.chat, publish_targets: [] } } });
  const member = await ctx.connect({ transport: T.WebSockets, label: 'member' });
  assertJoined(await invoke(member, 'JoinRoom', 'locked'), 'locked');
  const rx = receiver(member);
  for (const target of ['ReceiveMessage', 'Other']) {
    const res = await curlPost(`${ctx.url}/rooms/locked/messages?target=${target}`, '["x","y"]');
    assert.equal(res.status, 400, `target=${target}: ${res.status} ${res.body}`);
  }
  await curlPublish(`${ctx.url}/rooms/locked/messages`, '["ok","1"]');
  await rx.wait(1);
  assert.deepEqual(rx.calls, [['ok', '1']]);
  await stop(member);
});
