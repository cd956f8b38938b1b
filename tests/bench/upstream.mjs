// SPDX-License-Identifier: MIT
//
// tests/bench/upstream.mjs - upstream hub methods end to end (README
// "Upstream hub methods"): CLIENTS official @microsoft/signalr clients (over
// WebSocket) invoke a method whose backend is a minimal Node http server
// (a child process, so that it does not share the driver's event loop), at
// a fixed offered RATE of invocations a second in all, for SECS seconds.
// The backend measures its own handling time of each call and returns it in
// the result; each invocation's latency is taken at the client, and the
// backend's time is subtracted, so what remains is crier's part (its
// transports, the curl thread, the loopback hops) plus the client's.
//
// Usage: node tests/bench/upstream.mjs [CRIER_BIN]   (default build/crier)
// Knobs: CLIENTS (50), RATE (1000), SECS (10), WARMUP_S (1).
// Prints one JSON line: {offered_per_s, calls_per_s, ok, errors, p50_ms,
// p99_ms, p99_minus_backend_ms, backend_p99_ms}.
// Internal: `node tests/bench/upstream.mjs --backend PORT` runs the backend.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

if (process.argv[2] === '--backend') {
  const port = Number(process.argv[3]);
  http
    .createServer((req, res) => {
      const t0 = process.hrtime.bigint();
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const call = JSON.parse(body);
        const out = JSON.stringify({ result: { echo: call.arguments[0], t_ns: 0 } });
        const t_ns = Number(process.hrtime.bigint() - t0);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(out.replace('"t_ns":0', `"t_ns":${t_ns}`));
      });
    })
    .listen(port, '127.0.0.1', () => process.send?.('ready'));
} else {
  await main();
}

// A loopback port that was free a moment ago (tests/lib/server.js's, without
// node:test, which that module loads).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function main() {
  const signalR = await import('@microsoft/signalr');
  const BIN = process.argv[2] || 'build/crier';
  const CLIENTS = Number(process.env.CLIENTS || 50);
  const RATE = Number(process.env.RATE || 1000);
  const SECS = Number(process.env.SECS || 10);
  const WARMUP_S = Number(process.env.WARMUP_S || 1);

  const backendPort = await freePort();
  const backend = spawn(process.execPath, [new URL(import.meta.url).pathname, '--backend', String(backendPort)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise((resolve) => backend.once('message', resolve));

  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-upbench-'));
  const config = path.join(dir, 'crier.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      listen: `127.0.0.1:${port}`,
      log_level: 'warn',
      signalr: { negotiate_burst: 100000, negotiate_rate_per_s: 100000 },
      hubs: { bench: { path: '/hubs/bench', methods: { Echo: { upstream: `http://127.0.0.1:${backendPort}/echo` } } } },
      upstream: { timeout_ms: 5000, max_in_flight: 100000 },
    }),
  );
  const crier = spawn(BIN, ['--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const stopAll = () => {
    crier.kill('SIGTERM');
    backend.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
      } catch {
        // not yet
      }
      if (i > 100) throw new Error('crier did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const conns = [];
    for (let i = 0; i < CLIENTS; i++) {
      const c = new signalR.HubConnectionBuilder()
        .withUrl(`http://127.0.0.1:${port}/hubs/bench`, { transport: signalR.HttpTransportType.WebSockets, skipNegotiation: true })
        .configureLogging(signalR.LogLevel.None)
        .build();
      await c.start();
      conns.push(c);
    }
    const lat = [], net = [], back = [];
    let ok = 0, errors = 0, measuring = false;
    const periodMs = (CLIENTS * 1000) / RATE;
    const timers = conns.map((c, i) =>
      setTimeout(() => {
        timers[i] = setInterval(() => {
          const t0 = process.hrtime.bigint();
          const counted = measuring;
          c.invoke('Echo', i).then(
            (r) => {
              if (!counted) return;
              const ms = Number(process.hrtime.bigint() - t0) / 1e6;
              ok++;
              lat.push(ms);
              back.push(r.t_ns / 1e6);
              net.push(ms - r.t_ns / 1e6);
            },
            () => counted && errors++,
          );
        }, periodMs);
      }, (i * periodMs) / CLIENTS),
    );
    await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
    measuring = true;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, SECS * 1000));
    measuring = false;
    const secs = (Date.now() - t0) / 1000;
    timers.forEach((t) => clearInterval(t));
    await new Promise((r) => setTimeout(r, 1000)); // the last answers
    const pct = (a, p) => {
      if (!a.length) return null;
      const s = [...a].sort((x, y) => x - y);
      return Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(3));
    };
    console.log(
      JSON.stringify({
        clients: CLIENTS,
        offered_per_s: RATE,
        calls_per_s: Number((ok / secs).toFixed(1)),
        ok,
        errors,
        p50_ms: pct(lat, 50),
        p99_ms: pct(lat, 99),
        p99_minus_backend_ms: pct(net, 99),
        backend_p99_ms: pct(back, 99),
      }),
    );
    await Promise.all(conns.map((c) => c.stop()));
  } finally {
    stopAll();
  }
}
