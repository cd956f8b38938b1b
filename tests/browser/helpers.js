// Helpers for the browser tests: headless Chromium (Debian's, driven by
// playwright-core; never a downloaded browser), crier serving this repo's
// web/, chat pages, and a real nginx in front of crier.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';
import { freePort, startCrier, stopClean, tail } from '../lib/server.js';
import { sleep, waitFor, withTimeout } from '../lib/util.js';

export { sleep, waitFor, withTimeout };

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../..');
export const WEB_ROOT = path.join(REPO, 'web');
export const ARTIFACTS = path.join(REPO, 'tests/artifacts');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';

// Bounds for page waits: a UI step (connect, a message arriving).
export const STEP_MS = 10_000;

// Launches headless Chromium.
export async function launchBrowser() {
  assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_BIN)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    timeout: 30_000,
  });
}

// One browser for the whole test file: launched before its first test,
// closed after its last. Returns a getter.
export function fileBrowser() {
  let browser = null;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    if (browser) await withTimeout(browser.close(), 10_000, 'closing Chromium').catch(() => {});
  });
  return () => browser;
}

// Starts crier serving web/ (plus `config`) for test `t`. Returns
//   {srv, url, port, open(path, opts), chat(opts), restart()}
// open() and chat() open pages in new browser contexts; after the test the
// contexts are closed first, then crier is stopped (and must exit cleanly).
// restart() stops crier and starts a new one on the same port.
export async function setup(t, browser, config = {}) {
  const full = { ...config, web: { root: WEB_ROOT, ...(config.web || {}) } };
  const contexts = [];
  const ctx = {
    srv: await startCrier(full),
    get url() { return this.srv.url; },
    get port() { return this.srv.port; },
    open: (where, opts = {}) =>
      openPage(browser, where.startsWith('http') ? where : `${ctx.url}${where}`, { ...opts, contexts }),
    chat: (opts = {}) => openChat(browser, opts.base || ctx.url, { ...opts, contexts }),
    async restart() {
      const port = ctx.srv.port;
      await stopClean(ctx.srv);
      ctx.srv = await startCrier({ ...full, listen: `127.0.0.1:${port}` });
    },
  };
  t.after(async () => {
    for (const c of contexts) await withTimeout(c.close(), 5000, 'closing a browser context').catch(() => {});
    await stopClean(ctx.srv);
  });
  return ctx;
}

// Starts crier serving web/ (plus `config`) for a test without a browser.
export async function startServer(t, config = {}) {
  const srv = await startCrier({ ...config, web: { root: WEB_ROOT, ...(config.web || {}) } });
  t.after(() => stopClean(srv));
  return srv;
}

// Opens `url` in a new browser context (its own cookies and connections).
// The page keeps a log of its console errors and of every text #state showed.
export async function openPage(browser, url, { viewport = { width: 900, height: 700 }, contexts } = {}) {
  const context = await browser.newContext({ viewport });
  if (contexts) contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.log = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') page.log.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.log.push(`pageerror: ${e.message}`));
  await page.addInitScript(() => {
    window.__states = [];
    document.addEventListener('DOMContentLoaded', () => {
      const el = document.getElementById('state');
      if (!el) return;
      const note = () => {
        const s = el.textContent;
        if (window.__states[window.__states.length - 1] !== s) window.__states.push(s);
      };
      note();
      new MutationObserver(note).observe(el, { childList: true, characterData: true, subtree: true });
    });
  });
  await page.goto(url, { waitUntil: 'load' });
  return page;
}

const text = (page, sel) => page.locator(sel).textContent();

// Waits until the element's text is `want`; fails with what it showed.
export async function expectText(page, sel, want, { timeout = STEP_MS } = {}) {
  try {
    await page.waitForFunction(
      ([s, w]) => document.querySelector(s)?.textContent.trim() === w,
      [sel, want],
      { timeout },
    );
  } catch {
    const seen = await text(page, sel).catch((e) => `(${e.message})`);
    const notice = await text(page, '#notice').catch(() => '');
    assert.fail(`${sel} should read "${want}" within ${timeout} ms; it reads "${seen}"` +
      `${notice ? `; notice: ${notice}` : ''}${page.log.length ? `\npage log:\n${page.log.join('\n')}` : ''}`);
  }
}

// A chat page on `base` (room, extra query), once it is connected.
export async function openChat(browser, base, { room, name, transport, query = '', token, viewport, contexts } = {}) {
  const q = new URLSearchParams(query);
  if (room) q.set('room', room);
  const frag = token ? `#token=${encodeURIComponent(token)}` : ''; // an access token, in the fragment
  const page = await openPage(browser, `${base}/chat.html${q.size ? `?${q}` : ''}${frag}`, { viewport, contexts });
  await expectText(page, '#state', 'connected');
  if (transport) await expectText(page, '#transport', transport);
  if (name) await page.fill('#name', name);
  // The page joins its room right after connecting.
  await page.waitForFunction(() => window.crierChat?.joined === true, null, { timeout: STEP_MS });
  return page;
}

// The messages shown: [[user, text]].
export function messages(page) {
  return page.$$eval('#messages > :not(.divider)', (items) =>
    items.map((li) => [li.querySelector('.user')?.textContent, li.querySelector('.text')?.textContent]),
  );
}

// Waits until the page shows a message from `user` with `body`.
export async function expectMessage(page, user, body, { timeout = STEP_MS } = {}) {
  try {
    await page.waitForFunction(
      ([u, b]) => [...document.querySelectorAll('#messages > *')].some(
        (li) => li.querySelector('.user')?.textContent === u && li.querySelector('.text')?.textContent === b),
      [user, body],
      { timeout },
    );
  } catch {
    const shown = await messages(page).catch((e) => e.message);
    const state = await text(page, '#state').catch(() => '?');
    assert.fail(`message ${user}: "${body}" not shown within ${timeout} ms (state ${state}); shown: ` +
      `${JSON.stringify(shown)}${page.log.length ? `\npage log:\n${page.log.join('\n')}` : ''}`);
  }
}

// Types and sends a message through the page's form.
export async function say(page, name, body) {
  await page.fill('#name', name);
  await page.fill('#message', body);
  await page.click('#send');
}

// `a` and `b` chat both ways; every message shows on both pages.
export async function chatBothWays(a, b, tag) {
  await say(a, 'ann', `hello from ann over ${tag}`);
  await expectMessage(b, 'ann', `hello from ann over ${tag}`);
  await expectMessage(a, 'ann', `hello from ann over ${tag}`);
  await say(b, 'bob', `hi ann, bob here over ${tag}`);
  await expectMessage(a, 'bob', `hi ann, bob here over ${tag}`);
  await expectMessage(b, 'bob', `hi ann, bob here over ${tag}`);
}

export function artifact(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

// One raw HTTP/1.1 GET of `target` exactly as written (no normalisation):
// {status, headers, body}.
export function rawGet(port, target, { timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`GET ${target}: no complete answer within ${timeout} ms`));
    }, timeout);
    sock.on('connect', () =>
      sock.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
      if (!m) return reject(new Error(`GET ${target}: no status line in ${JSON.stringify(raw.slice(0, 200))}`));
      const [head, ...rest] = raw.split('\r\n\r\n');
      const headers = {};
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(m[1]), headers, body: rest.join('\r\n\r\n') });
    });
  });
}

// A real nginx in front of `upstreamPort`, proxying HTTP/1.1 unbuffered.
// With upgrade: false (the default) it does not forward Upgrade/Connection,
// so WebSocket upgrades cannot work through it; with upgrade: true they do.
// Its own prefix, pid, logs and temp paths live in a temp directory.
// Returns {port, url, dir, logs(), stop(), restart()}; stopped after the test.
// stop() then restart() is a network drop for the clients, crier staying up.
export async function startNginx(t, upstreamPort, { upgrade = false } = {}) {
  assert.ok(fs.existsSync(NGINX), `no nginx at ${NGINX} (apt-get install -y nginx, or set NGINX_BIN)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-nginx-'));
  fs.chmodSync(dir, 0o755); // workers may run as another user
  fs.mkdirSync(path.join(dir, 'logs'));
  fs.mkdirSync(path.join(dir, 'tmp'));
  const port = await freePort();
  const upgradeConf = upgrade
    ? `proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;`
    : `# Deliberately no "proxy_set_header Upgrade/Connection": nginx drops
      # these hop-by-hop headers, so a WebSocket upgrade never reaches crier.`;
  const conf = `
worker_processes 1;
error_log ${dir}/logs/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 256; }
http {
  access_log ${dir}/logs/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 60s;
      ${upgradeConf}
    }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const logs = () => {
    let log = '';
    try {
      log = fs.readFileSync(path.join(dir, 'logs/error.log'), 'utf8');
    } catch {}
    return `${output}\n${log}`;
  };
  let running = null; // {proc, exited, done}

  async function spawnNginx() {
    const proc = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.on('data', (d) => (output += d));
    proc.stderr.on('data', (d) => (output += d));
    const r = { proc, done: null };
    r.exited = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
    r.exited.then((x) => (r.done = x));
    running = r;
    await waitFor(
      async () => {
        if (r.done) throw new Error(`nginx exited (${JSON.stringify(r.done)}): ${tail(logs(), 2000)}`);
        const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.status === 200;
      },
      { timeout: 10_000, interval: 100, message: 'nginx answering /healthz' },
    );
  }

  async function stopNginx() {
    const r = running;
    running = null;
    if (!r) return;
    if (!r.done) r.proc.kill('SIGTERM'); // fast shutdown: drops every client connection
    await withTimeout(r.exited, 10_000, 'nginx did not exit').catch(() => r.proc.kill('SIGKILL'));
  }

  t.after(async () => {
    await stopNginx();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await spawnNginx();
  return { port, url, dir, logs, stop: stopNginx, restart: spawnNginx };
}
