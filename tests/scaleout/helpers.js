// Several crier nodes on one real redis-server, for the scale-out tests.
//
// startCluster(t, n, config) starts a redis-server and n crier nodes sharing
// it (same key prefix), each with a clean stop after the test; returns
// {redis, nodes, prefix}. signalrCtx(base) is a context for tests/lib/
// signalr.js's connect() against any base URL (a node, or nginx).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startRedis } from '../lib/redis.js';
import { freePort, startCrier, stopClean, tail } from '../lib/server.js';
import { waitFor, withTimeout } from '../lib/util.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let clusters = 0;

export async function startCluster(t, n = 2, config = {}) {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const prefix = `scale${process.pid}-${++clusters}:`;
  const nodes = [];
  for (let i = 0; i < n; i++) {
    const node = await startCrier({ ...config, backplane: { type: 'redis', url: redis.url, key_prefix: prefix } });
    node.name = String.fromCharCode(65 + i); // A, B, ...
    t.after(() => (node.killed ? null : stopClean(node)));
    nodes.push(node);
  }
  return { redis, nodes, prefix };
}

// kill -9 (SIGCONT first, should it be stopped) of a node of startCluster:
// no clean stop is asserted for it after the test. Resolves once it is gone.
export async function killNode(node) {
  node.killed = true;
  node.proc.kill('SIGKILL');
  await withTimeout(node.exited, 10_000, `${node.name} did not die`);
}

// GET /healthz of a node: {status, backplane: {type, connected}}.
export async function health(node) {
  const res = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(3000) });
  assert.equal(res.status, 200, `${node.name}: GET /healthz ${res.status}`);
  return res.json();
}

export function signalrCtx(t, base) {
  const clients = [];
  t.after(() => Promise.all(clients.map((c) => c.close().catch(() => {}))));
  return {
    url: base,
    hubUrl: (p = '/hubs/chat') => `${base}${p}`,
    track(closeable) {
      clients.push(closeable);
      return closeable;
    },
  };
}

// POSTs a JSON value to a room on a node: {status, json}.
export async function publishOn(node, room, value, timeout = 15_000) {
  const res = await fetch(`${node.url}/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(value),
    signal: AbortSignal.timeout(timeout),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

// deploy/nginx.conf, made runnable on loopback: its upstream servers become
// `ports`, it listens on `port`, and keeps its pid, logs and temp files in
// dir. Everything else (the maps, the two upstream groups, the proxy
// settings) is the file users copy.
export function nginxConfFromDeploy(dir, port, ports) {
  let conf = fs.readFileSync(path.join(ROOT, 'deploy/nginx.conf'), 'utf8');
  const servers = ports.map((p) => `server 127.0.0.1:${p};`).join('\n        ');
  conf = conf.replace(/(upstream crier_(?:ws|http) \{\s*)(?:server [^;]+;\s*)+/g, `$1${servers}\n        `);
  conf = conf.replace(/worker_processes [^;]+;/, `worker_processes 1;\nerror_log ${dir}/error.log warn;\npid ${dir}/nginx.pid;`);
  conf = conf.replace(/worker_connections \d+;/, 'worker_connections 512;');
  conf = conf.replace(/listen 80;/, `listen 127.0.0.1:${port};`);
  conf = conf.replace(
    /http \{/,
    `http {
    log_format upstreams '$request_method $uri $status $upstream_addr';
    access_log ${dir}/access.log upstreams;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;`,
  );
  assert.ok(conf.includes(`listen 127.0.0.1:${port};`), 'deploy/nginx.conf: no "listen 80;" to replace');
  for (const p of ports) assert.ok(conf.includes(`server 127.0.0.1:${p};`), 'deploy/nginx.conf: upstreams not replaced');
  return conf;
}

const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';

// deploy/nginx.conf on a free port in front of ports (round robin), with a
// stop after the test; returns its base URL once it answers /healthz.
export async function startNginx(t, ports) {
  return (await startNginxLogged(t, ports)).url;
}

// startNginx, its conf passed through editConf first; returns {url,
// accessLog}: accessLog() reads the "METHOD URI STATUS UPSTREAM" lines
// (see nginxConfFromDeploy) so far.
export async function startNginxLogged(t, ports, { editConf = (conf) => conf } = {}) {
  assert.ok(fs.existsSync(NGINX), `no nginx at ${NGINX} (apt-get install -y nginx)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-nginx-'));
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const confFile = path.join(dir, 'nginx.conf');
  fs.writeFileSync(confFile, editConf(nginxConfFromDeploy(dir, port, ports)));
  const proc = spawn(NGINX, ['-p', dir, '-c', confFile, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => proc.on('close', resolve));
  t.after(async () => {
    proc.kill('SIGTERM');
    await withTimeout(exited, 10_000, 'nginx did not exit').catch(() => proc.kill('SIGKILL'));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`nginx exited: ${output} ${tail(fs.readFileSync(path.join(dir, 'error.log'), 'utf8'))}`);
      return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200;
    },
    { timeout: 10_000, interval: 100, message: 'nginx answering /healthz' },
  );
  const accessLog = () => fs.readFileSync(path.join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean);
  return { url, accessLog };
}

export { withTimeout };

// A TCP proxy between a node and Redis that can hold what Redis sends to
// the node: hold() keeps Redis's replies and pub/sub messages (the node's
// commands still reach Redis at once), release() lets them through, in
// order; hold({ subscriber: true }) only what comes on the node's
// subscriber connection (the rooms' messages; its commands are answered).
// A node behind it lags the others for as long as it is held.
// holdSubscribes() instead keeps what the node sends on its subscriber
// connection (the one that sent a SUBSCRIBE): its new SUBSCRIBEs reach
// Redis only at releaseSubscribes(), while its commands go on.
// Returns {url, hold(), release(), holdSubscribes(), releaseSubscribes(), close()}.
export async function startRedisHoldingProxy(t, redisPort) {
  const pairs = new Set();
  let held = false;
  let subsHeld = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(redisPort, '127.0.0.1');
    const pair = { client, upstream, queue: [], up: [], subscriber: false };
    pairs.add(pair);
    client.on('data', (d) => {
      if (!pair.subscriber && d.toString('latin1').toUpperCase().includes('SUBSCRIBE')) pair.subscriber = true;
      if (subsHeld && pair.subscriber) pair.up.push(d);
      else upstream.write(d);
    });
    upstream.on('data', (d) => (held && (!held.subscriber || pair.subscriber) ? pair.queue.push(d) : client.write(d)));
    const done = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', done);
      s.on('close', done);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy = {
    url: `redis://127.0.0.1:${server.address().port}/0`,
    hold(how = {}) {
      held = { subscriber: !!how.subscriber };
    },
    release() {
      held = false;
      for (const p of pairs) for (const d of p.queue.splice(0)) p.client.write(d);
    },
    holdSubscribes() {
      subsHeld = true;
    },
    releaseSubscribes() {
      subsHeld = false;
      for (const p of pairs) for (const d of p.up.splice(0)) p.upstream.write(d);
    },
    close() {
      proxy.releaseSubscribes();
      proxy.release();
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      return new Promise((resolve) => server.close(resolve));
    },
  };
  t.after(() => proxy.close());
  return proxy;
}
