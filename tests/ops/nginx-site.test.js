// deploy/nginx-site.conf (issue #17 item 8): the site file an operator
// drops into Debian's /etc/nginx/sites-enabled. Included as it is into a
// minimal nginx.conf (http { include site; }, as Debian's nginx.conf
// includes sites-enabled/*), with only its listen and upstream addresses
// moved to loopback test ports, real nginx passes a WebSocket, an SSE stream
// and a long poll through to crier, and publishes reach all three.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { poll, request } from '../lib/http.js';
import { freePort, startFor } from '../lib/server.js';
import { sseHttp } from '../lib/sse.js';
import { waitFor, withTimeout } from '../lib/util.js';
import { openWs } from '../lib/ws.js';
import { ROOT, run, scratchDir } from './helpers.js';

const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
const SITE = fs.readFileSync(path.join(ROOT, 'deploy/nginx-site.conf'), 'utf8');

// The site file with its listen lines on 127.0.0.1:port and every upstream
// server on crierPort; nothing else changed.
function siteForTest(port, crierPort) {
  let site = SITE.replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${port};`).replace(/^\s*listen \[::\]:80;\n/m, '');
  site = site.replace(/^(\s*)server 127\.0\.0\.1:8080;$/gm, `$1server 127.0.0.1:${crierPort};`);
  assert.ok(site.includes(`listen 127.0.0.1:${port};`), 'deploy/nginx-site.conf: no "listen 80;" line');
  assert.equal(site.split(`server 127.0.0.1:${crierPort};`).length - 1, 2, 'deploy/nginx-site.conf: two upstreams');
  assert.ok(!/listen (80|\[::\]:80)/.test(site), 'a port-80 listen left');
  return site;
}

// A minimal main config, as Debian's: everything but the site is here.
function mainConf(dir) {
  return `worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 256; }
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/sites-enabled/*;
}
`;
}

test('deploy/nginx-site.conf in sites-enabled: nginx -t, then WebSocket, SSE and long poll through nginx', { timeout: 60_000 }, async (t) => {
  assert.ok(fs.existsSync(NGINX), `no nginx at ${NGINX} (apt-get install -y nginx)`);
  const srv = await startFor(t, { trust_proxy: true });
  const dir = scratchDir(t, 'crier-nginx-site-');
  const port = await freePort();
  fs.mkdirSync(path.join(dir, 'sites-enabled'));
  fs.writeFileSync(path.join(dir, 'sites-enabled', 'crier'), siteForTest(port, srv.port));
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, mainConf(dir));

  const check = await run(NGINX, ['-t', '-p', dir, '-c', conf]);
  assert.equal(check.code, 0, `nginx -t:\n${check.stderr}`);

  const proc = spawn(NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  proc.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => proc.on('close', resolve));
  t.after(async () => {
    proc.kill('SIGTERM');
    await withTimeout(exited, 10_000, 'nginx did not exit').catch(() => proc.kill('SIGKILL'));
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`nginx exited: ${output}`);
      return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).catch(() => ({}))).status === 200;
    },
    { timeout: 10_000, interval: 100, message: 'nginx answering /healthz' },
  );

  const room = 'through-nginx';
  const ws = await openWs(`ws://127.0.0.1:${port}/rooms/${room}/ws`);
  t.after(() => ws.close());
  const sse = await sseHttp(`${url}/rooms/${room}/events`);
  t.after(() => sse.close());
  assert.equal(sse.status, 200);
  assert.match(sse.headers['content-type'], /^text\/event-stream\b/);
  // Both members are in the room on crier before the publish.
  await waitFor(
    async () => {
      const info = await request(`${srv.url}/rooms/${room}`);
      return info.status === 200 && info.json.subscribers.websocket === 1 && info.json.subscribers.sse === 1;
    },
    { message: 'the WebSocket and SSE members counted on crier' },
  );
  const held = poll(url, room, 0);

  const pub = await request(`${url}/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ hello: 'nginx' }),
  });
  assert.equal(pub.status, 201, pub.text);

  await ws.waitForMessages(1);
  assert.deepEqual(ws.messages[0].data, { hello: 'nginx' });
  // The SSE event arrives while the stream stays open: nginx does not buffer it.
  await sse.waitForEvents(1);
  assert.deepEqual(JSON.parse(sse.events[0].data), { hello: 'nginx' });
  assert.equal(sse.ended, false);
  const polled = await held;
  assert.equal(polled.status, 200, polled.text);
  assert.deepEqual(polled.json.messages.map((m) => m.data), [{ hello: 'nginx' }]);

  // A text frame from the WebSocket client publishes back through nginx.
  ws.ws.send(JSON.stringify({ from: 'ws' }));
  await sse.waitForEvents(2);
  assert.deepEqual(JSON.parse(sse.events[1].data), { from: 'ws' });
});
