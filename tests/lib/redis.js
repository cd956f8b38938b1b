// A real redis-server (Debian's) for the tests, on a free loopback port.
//
// startRedis() spawns /usr/bin/redis-server with no persistence and waits
// until it answers PING; it returns {port, url, stop(), kill(), restart(),
// pause(), resume()}.
// kill() is SIGKILL (a crash); restart() starts a fresh one on the same port
// (what a Redis without persistence comes back as). Every redis-server
// started here is killed when the test process exits.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { freePort } from './server.js';
import { sleep } from './util.js';

export const REDIS_SERVER = process.env.REDIS_SERVER_BIN || '/usr/bin/redis-server';

const live = new Set();
process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

// Sends one RESP command; resolves with the raw reply text.
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let reply = '';
    sock.setTimeout(2000, () => sock.destroy(new Error(`redis :${port} did not answer ${args[0]}`)));
    sock.on('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
    });
    sock.on('data', (d) => {
      reply += d.toString('utf8');
      if (reply.endsWith('\r\n')) {
        sock.end();
        resolve(reply);
      }
    });
    sock.on('error', reject);
  });
}

function spawnRedis(port, dir, extraArgs) {
  const proc = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', '', ...extraArgs],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  live.add(proc);
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => {
    live.delete(proc);
    resolve({ code, signal });
  }));
  return { proc, exited, stderr: () => stderr };
}

async function waitForPing(port, child) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const reply = await redisCommand(port, 'PING');
      if (reply.startsWith('+PONG') || reply.startsWith('-NOAUTH')) return; // up (with a password)
    } catch {
      // not listening yet
    }
    if (child.proc.exitCode !== null) throw new Error(`redis-server exited: ${child.stderr()}`);
    if (Date.now() > deadline) throw new Error(`redis-server on :${port} did not answer PING in 10 s`);
    await sleep(30);
  }
}

// extraArgs: more redis-server arguments (e.g. ['--requirepass', 'pw']).
export async function startRedis({ extraArgs = [] } = {}) {
  if (!fs.existsSync(REDIS_SERVER)) throw new Error(`no ${REDIS_SERVER} (apt-get install -y redis-server)`);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-redis-'));
  let child = spawnRedis(port, dir, extraArgs);
  await waitForPing(port, child);
  const server = {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async kill() {
      child.proc.kill('SIGKILL');
      await child.exited;
    },
    // A Redis that does not answer for a while (SIGSTOP): connections stay
    // open, commands wait. resume() is SIGCONT; stop() resumes it first.
    pause() {
      child.proc.kill('SIGSTOP');
    },
    resume() {
      child.proc.kill('SIGCONT');
    },
    async restart() {
      if (child.proc.exitCode === null && child.proc.signalCode === null) await server.kill();
      child = spawnRedis(port, dir, extraArgs);
      await waitForPing(port, child);
    },
    async stop() {
      child.proc.kill('SIGCONT');
      child.proc.kill('SIGTERM');
      await child.exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
