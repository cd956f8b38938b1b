// /metrics for an operator (README "Metrics"): the exposition format is
// valid (Debian's promtool when installed, and always a strict parser
// here: HELP and TYPE per family, names, labels, histogram buckets
// cumulative with +Inf, _sum and _count); process_* and crier_build_info;
// answers by status class; refusals by reason (limit, rate, auth, origin);
// the publish-to-write latency histogram; connections by transport; and
// crier_messages_delivered_total counts room messages only: SignalR
// handshakes, pings and completions go to crier_protocol_frames_total.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';

import { publish, request } from '../lib/http.js';
import { startFor } from '../lib/server.js';
import { T, connect, invoke, receiver } from '../lib/signalr.js';
import { sseHttp } from '../lib/sse.js';
import { waitFor } from '../lib/util.js';
import { openWs, wsRefusal } from '../lib/ws.js';

const API_KEY = 'metrics-test-api-key-0042';
const KEY = { Authorization: `Bearer ${API_KEY}` };

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"$/;

// Parses the text format strictly; returns Map name -> {type, help, samples: [{name, labels, value}]}.
export function parseExposition(text) {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const families = new Map();
  let current = null;
  for (const line of text.slice(0, -1).split('\n')) {
    let m;
    if ((m = /^# HELP (\S+) (.+)$/.exec(line))) {
      assert.match(m[1], NAME);
      assert.ok(!families.has(m[1]), `family ${m[1]} twice`);
      current = { name: m[1], help: m[2], type: null, samples: [] };
      families.set(m[1], current);
    } else if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.equal(m[1], current?.name, `TYPE ${m[1]} right after its HELP`);
      assert.equal(current.type, null);
      current.type = m[2];
    } else {
      m = SAMPLE.exec(line);
      assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
      assert.ok(current?.type, `sample before its family's TYPE: ${line}`);
      const suffixes = current.type === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
      assert.ok(suffixes.some((s) => m[1] === current.name + s), `sample ${m[1]} outside its family ${current.name}`);
      const labels = {};
      for (const pair of m[3] ? m[3].split(',') : []) {
        const l = LABEL.exec(pair);
        assert.ok(l, `bad label ${pair} in ${line}`);
        labels[l[1]] = l[2];
      }
      const value = m[4] === '+Inf' ? Infinity : Number(m[4]);
      assert.ok(!Number.isNaN(value), `bad value in ${line}`);
      if (current.type === 'counter') assert.ok(value >= 0, `negative counter ${line}`);
      current.samples.push({ name: m[1], labels, value });
    }
  }
  for (const f of families.values()) {
    assert.ok(f.type, `family ${f.name} has no TYPE`);
    assert.ok(f.samples.length > 0, `family ${f.name} has no sample`);
    if (f.type === 'histogram') checkHistogram(f);
  }
  return families;
}

function checkHistogram(f) {
  const buckets = f.samples.filter((s) => s.name.endsWith('_bucket'));
  assert.ok(buckets.length >= 2, `${f.name}: buckets`);
  let le = -Infinity;
  let count = 0;
  for (const b of buckets) {
    const bound = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le);
    assert.ok(bound > le, `${f.name}: le not increasing at ${b.labels.le}`);
    assert.ok(b.value >= count, `${f.name}: bucket le=${b.labels.le} not cumulative`);
    le = bound;
    count = b.value;
  }
  assert.equal(le, Infinity, `${f.name}: the last bucket is +Inf`);
  const c = f.samples.find((s) => s.name === `${f.name}_count`);
  const sum = f.samples.find((s) => s.name === `${f.name}_sum`);
  assert.ok(c && sum, `${f.name}: _count and _sum`);
  assert.equal(c.value, count, `${f.name}: _count is the +Inf bucket`);
  assert.ok(sum.value >= 0);
}

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;

async function scrape(srv) {
  const res = await request(`${srv.url}/metrics`, { headers: KEY });
  assert.equal(res.status, 200, res.text);
  if (promtool) {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: res.text, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool check metrics:\n${r.stdout}${r.stderr}`);
  }
  const families = parseExposition(res.text);
  return {
    families,
    value(name, labels = {}) {
      const fam = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
      assert.ok(fam, `no family for ${name}`);
      const s = fam.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      assert.ok(s, `no sample ${name} ${JSON.stringify(labels)}`);
      return s.value;
    },
  };
}

// Rewrites the config and reloads it (SIGHUP); waits for the outcome line.
async function reload(srv, config) {
  const before = srv.stderr().length;
  fs.writeFileSync(srv.configFile, JSON.stringify({ ...srv.config, ...config }));
  srv.proc.kill('SIGHUP');
  await waitFor(() => /configuration reloaded|reload refused/.test(srv.stderr().slice(before)), { message: 'reload' });
  assert.match(srv.stderr().slice(before), /configuration reloaded/);
}

const config = {
  limits: { keepalive_s: 1 },
  auth: { rooms: [{ match: '*', subscribe: 'public', publish: 'public' }], api_keys: [API_KEY] },
  cors: { allowed_origins: ['http://ok.test'] },
};

test('/metrics: valid exposition; process, build, answers, refusals, latency, connections by transport', async (t) => {
  const srv = await startFor(t, config);
  const m0 = await scrape(srv);
  assert.ok(m0.value('process_resident_memory_bytes') > 1e6);
  assert.ok(m0.value('process_open_fds') > 3);
  assert.ok(m0.value('process_max_fds') >= m0.value('process_open_fds'));
  assert.ok(m0.value('process_cpu_seconds_total') >= 0);
  assert.ok(Math.abs(m0.value('process_start_time_seconds') - Date.now() / 1000) < 600);
  const build = m0.families.get('crier_build_info').samples;
  assert.equal(build.length, 1);
  assert.match(build[0].labels.version, /^\d+\.\d+\.\d+/);
  assert.equal(build[0].value, 1);
  for (const name of ['crier_redis_queue', 'crier_redis_reconnects_total', 'crier_protocol_frames_total']) m0.value(name);
  assert.equal(m0.families.get('crier_connections').samples.every((s) => 'transport' in s.labels && !('library' in s.labels)), true);

  // Subscribers on a WebSocket and an SSE stream; two publishes reach both.
  const ws = await openWs(`${srv.wsUrl}/rooms/lat/ws`);
  t.after(() => ws.close());
  const sse = await sseHttp(`${srv.url}/rooms/lat/events`);
  t.after(() => sse.close());
  await waitFor(async () => (await scrape(srv)).value('crier_connections', { transport: 'sse' }) === 1, { message: 'the SSE stream counted' });
  const mid = await scrape(srv);
  assert.equal(mid.value('crier_connections', { transport: 'websocket' }), 1);
  await publish(srv.url, 'lat', { n: 1 });
  await publish(srv.url, 'lat', { n: 2 });
  await ws.waitForMessages(2);
  await sse.waitForEvents(2);
  assert.equal((await request(`${srv.url}/no/such/page`)).status, 404);
  assert.equal((await request(`${srv.url}/metrics`)).status, 401); // no key: auth refusal
  assert.equal((await wsRefusal(`${srv.wsUrl}/rooms/lat/ws`, { origin: 'http://evil.test' })).status, 403);

  // limits.rate.connect and limits.max_connections, switched on by a reload.
  await reload(srv, { limits: { keepalive_s: 1, rate: { connect: { per_s: 1, burst: 1 } } } });
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await request(`${srv.url}/healthz`, { headers: { Connection: 'close' } })).status);
  assert.ok(statuses.includes(429), `${statuses}`);
  await reload(srv, { limits: { keepalive_s: 1, max_connections: 3 } });
  const extra = await openWs(`${srv.wsUrl}/rooms/cap/ws`);
  t.after(() => extra.close());
  assert.equal((await wsRefusal(`${srv.wsUrl}/rooms/cap/ws`)).status, 503);
  extra.close();
  await reload(srv, { limits: { keepalive_s: 1 } });

  const m1 = await scrape(srv);
  const latencyCount = m1.value('crier_delivery_latency_seconds_count') - m0.value('crier_delivery_latency_seconds_count');
  assert.ok(latencyCount >= 4, `latency observations: ${latencyCount} (2 messages to 2 subscribers)`);
  assert.ok(m1.value('crier_delivery_latency_seconds_bucket', { le: '+Inf' }) >= 4);
  const grew = (name, labels) => m1.value(name, labels) - m0.value(name, labels);
  assert.ok(grew('crier_http_responses_total', { code: '2xx' }) >= 3);
  assert.ok(grew('crier_http_responses_total', { code: '4xx' }) >= 4);
  assert.ok(grew('crier_http_responses_total', { code: '1xx' }) >= 2, 'the WebSocket upgrades');
  assert.ok(grew('crier_http_responses_total', { code: '5xx' }) >= 1, 'the 503 past max_connections');
  for (const reason of ['limit', 'rate', 'auth', 'origin'])
    assert.ok(grew('crier_connections_refused_total', { reason }) >= 1, `refused ${reason}`);
  assert.equal(grew('crier_config_reloads_total', { result: 'applied' }), 3);
});

test('SignalR handshakes, pings and completions are protocol frames, not deliveries', async (t) => {
  const srv = await startFor(t, config);
  const ctx = { url: srv.url, wsUrl: srv.wsUrl, hubUrl: (p = '/hubs/chat') => `${srv.url}${p}`, track: (c) => t.after(() => c.close().catch(() => {})) };
  const before = await scrape(srv);
  const conns = [];
  for (const transport of [T.WebSockets, T.ServerSentEvents, T.LongPolling]) conns.push(await connect(ctx, { transport }));
  for (const c of conns) await invoke(c, 'JoinRoom', 'frames'); // a completion each
  const delta = (m, name) => m.value(name) - before.value(name);
  // limits.keepalive_s 1: pings to every streaming client, counted as frames
  const quiet = await waitFor(async () => {
    const m = await scrape(srv);
    return delta(m, 'crier_protocol_frames_total') >= 3 + 3 + 2 && m;
  }, { timeout: 10_000, interval: 200, message: 'protocol frames: 3 handshakes, 3 completions and 2 pings' });
  assert.equal(delta(quiet, 'crier_messages_delivered_total'), 0, 'no room message was sent');
  assert.ok(delta(quiet, 'crier_protocol_frames_total') >= 3 + 3 + 2, `protocol frames: ${delta(quiet, 'crier_protocol_frames_total')}`);
  const rx = conns.map((c) => receiver(c));
  await publish(srv.url, 'frames', { n: 1 });
  for (const r of rx) await r.wait(1);
  const after = await scrape(srv);
  assert.equal(delta(after, 'crier_messages_delivered_total'), 3, 'one room message to three members');
});
