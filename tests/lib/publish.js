// A steady publisher for the resume tests: one POST at a time over one
// kept-alive connection, straight to crier, at a fixed rate.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

import { sleep } from './util.js';

// POSTs body to url over agent; resolves {status, text}.
export function post(agent, url, body, timeout = 10_000) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/json' }, timeout }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${url}: no answer in ${timeout} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

// Publishes payload(1..n) to room at a steady rate (message i is due at
// (i - 1) * periodMs). Resolves {bad: [the first answers that were not 201
// with id i], ms}.
export async function publishSteady(base, room, n, periodMs, payload) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = `${base}/rooms/${room}/messages`;
  const bad = [];
  const t0 = performance.now();
  try {
    for (let i = 1; i <= n; i++) {
      const wait = t0 + (i - 1) * periodMs - performance.now();
      if (wait >= 2) await sleep(wait);
      const res = await post(agent, url, JSON.stringify(payload(i)));
      let id;
      try {
        id = JSON.parse(res.text).id;
      } catch {
        id = undefined;
      }
      if ((res.status !== 201 || id !== i) && bad.length < 5) bad.push({ i, ...res });
    }
  } finally {
    agent.destroy();
  }
  return { bad, ms: Math.round(performance.now() - t0) };
}
