// SPDX-License-Identifier: MIT
//
// tests/bench/rss.mjs - crier's resident memory (VmRSS) through two bursts
// a client can cause, and after they expire (issue #11 item 4):
//
//   rooms   ROOMS one-message rooms (history.ttl_s TTL_S), then the sweep
//   flood   64 KiB messages into a dozen new rooms for FLOOD_S seconds
//           (bounded by history.max_bytes, default 256 MiB; history.ttl_s
//           FLOOD_TTL_S), then their expiry
//
// Usage: node tests/bench/rss.mjs [CRIER_BIN]   (default build/crier)
// Knobs: PHASES ("rooms,flood"), ROOMS (200000), TTL_S (5), FLOOD_S (7),
// FLOOD_TTL_S (10), MAX_BYTES (history.max_bytes,
// default: crier's), OLD=1 for a crier without these keys and gauges (then
// the sweep is waited for by time). Starts its own crier on a free loopback port; prints
// one line per reading and a summary. Linux only (/proc/PID/status).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../lib/server.js';

const BIN = process.argv[2] || 'build/crier';
const ROOMS = Number(process.env.ROOMS || 200000);
const TTL_S = Number(process.env.TTL_S || 5);
const FLOOD_S = Number(process.env.FLOOD_S || 7);
const FLOOD_TTL_S = Number(process.env.FLOOD_TTL_S || 10);
const PHASES = (process.env.PHASES || 'rooms,flood').split(',');
const CONCURRENCY = 32;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
function post(port, room, body) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: `/rooms/${room}/messages`, method: 'POST', agent,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function metrics(port) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const out = {};
  for (const line of (await res.text()).split('\n')) {
    const m = /^(crier_rooms|crier_history_bytes|crier_history_evicted_total) (\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

async function start(config) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-rss-'));
  const file = path.join(dir, 'crier.json');
  fs.writeFileSync(file, JSON.stringify({ listen: `127.0.0.1:${port}`, log_level: 'error', ...config }));
  const proc = spawn(BIN, ['--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return { port, proc, dir };
    } catch {
      // not yet
    }
    await sleep(50);
  }
  throw new Error('crier did not start');
}

async function stop(s) {
  s.proc.kill('SIGTERM');
  await new Promise((r) => s.proc.on('close', r));
  fs.rmSync(s.dir, { recursive: true, force: true });
}

function report(label, pid, extra = {}) {
  const mib = rssMiB(pid);
  console.log(`${label.padEnd(34)} VmRSS ${mib.toFixed(1).padStart(7)} MiB  ${JSON.stringify(extra)}`);
  return mib;
}

async function roomsBurst() {
  const old = !!process.env.OLD;
  const limits = old ? {} : { max_rooms: Math.max(ROOMS, 100000) };
  const history = { ttl_s: TTL_S, ...(process.env.MAX_BYTES ? { max_bytes: Number(process.env.MAX_BYTES) } : {}) };
  const s = await start({ limits, history });
  await sleep(300);
  const base = report('rooms: at rest', s.proc.pid);
  const t0 = Date.now();
  let next = 0;
  let refused = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < ROOMS) {
        const i = next++;
        if ((await post(s.port, `burst-${i}`, `{"i":${i}}`)) !== 201) refused++;
      }
    }),
  );
  const peak = report(`rooms: ${ROOMS} published in ${((Date.now() - t0) / 1000).toFixed(1)} s`, s.proc.pid, {
    ...(await metrics(s.port)),
    refused,
  });
  let m;
  const t1 = Date.now();
  do {
    await sleep(500);
    m = await metrics(s.port);
  } while ((old ? Date.now() - t1 < TTL_S * 1000 + 2000 : m.crier_rooms > 0) && Date.now() - t1 < 120000);
  await sleep(6000); // one trim at most every 5 s
  const after = report('rooms: swept', s.proc.pid, m);
  await stop(s);
  return { base, peak, after };
}

async function flood() {
  const history = { ttl_s: FLOOD_TTL_S, ...(process.env.MAX_BYTES ? { max_bytes: Number(process.env.MAX_BYTES) } : {}) };
  const s = await start({ history });
  await sleep(300);
  const base = report('flood: at rest', s.proc.pid);
  const big = JSON.stringify('x'.repeat(65536 - 100));
  const end = Date.now() + FLOOD_S * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: 12 }, async (_, r) => {
      while (Date.now() < end) {
        await post(s.port, `flood-${r}`, big);
        n++;
      }
    }),
  );
  const peak = report(`flood: ${n} x 64 KiB in ${FLOOD_S} s`, s.proc.pid, await metrics(s.port));
  await sleep(FLOOD_TTL_S * 1000 + 2000);
  await sleep(6000); // one trim at most every 5 s
  const after = report('flood: expired', s.proc.pid, await metrics(s.port));
  await stop(s);
  return { base, peak, after };
}

const mib = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(0)} MiB`;
if (PHASES.includes('rooms')) {
  const r = await roomsBurst();
  console.log(`summary rooms: burst ${mib(r.peak - r.base)}, after the sweep ${mib(r.after - r.base)}`);
}
if (PHASES.includes('flood')) {
  const f = await flood();
  console.log(`summary flood: burst ${mib(f.peak - f.base)}, after expiry ${mib(f.after - f.base)}`);
}
agent.destroy();
