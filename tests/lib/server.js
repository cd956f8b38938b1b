// Starting and stopping the crier binary under test.
//
// startCrier(config, extraArgs) spawns CRIER_BIN (default build/test/crier, the
// ASan+UBSan build) on a free loopback port with the config written to a temp
// file, and waits until GET /healthz answers 200. stopClean() sends SIGTERM and
// asserts a clean exit: code 0 and no sanitizer report on stderr (nor, for the
// ThreadSanitizer build, in its TSAN_OPTIONS log_path file).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after } from 'node:test';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sleep, withTimeout } from './util.js';

export const CRIER_BIN = process.env.CRIER_BIN || 'build/test/crier';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const SANITIZER_MARKERS = [
  'LeakSanitizer',
  'ERROR: AddressSanitizer',
  'runtime error:',
  'WARNING: ThreadSanitizer',
  'ThreadSanitizer: reported',
];

// Processes still running, killed if the test process exits without stopping them.
const live = new Set();
process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

// A stopClean that fails (a sanitizer report, a bad exit) throws in its
// test's t.after, and node:test then skips that test's later hooks: sockets
// they would have closed keep this test file's process alive for ever. So
// once the file's tests are done, a process still alive 3 s after such a
// failure exits (the results are reported by then).
let stopFailed = false;
after(() => {
  if (stopFailed) setTimeout(() => process.exit(process.exitCode || 1), 3000).unref();
});

// Environment for the binary: the caller's, plus the sanitizer options the
// test runner uses. `asanExtra` ("key=value:...") is appended and so wins.
export function crierEnv(asanExtra = '') {
  const join = (...parts) => parts.filter(Boolean).join(':');
  return {
    ...process.env,
    ASAN_OPTIONS: join(process.env.ASAN_OPTIONS, 'detect_leaks=1:abort_on_error=0', asanExtra),
    UBSAN_OPTIONS: join(process.env.UBSAN_OPTIONS, 'print_stacktrace=1:halt_on_error=1'),
  };
}

// A loopback port that was free a moment ago.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Writes `text` to a new file in a fresh temp directory; returns its path.
export function writeTempFile(name, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-test-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

// Removes a file made by writeTempFile, with its directory.
export function removeTempFile(file) {
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
}

// Spawns the binary, collecting its output; `exited` resolves with
// {code, signal} when it ends. `cwd`: its working directory (default ours);
// `bin`: another binary than CRIER_BIN (an installed one).
function spawnCrier(args, env, cwd, bin = CRIER_BIN) {
  if (cwd) bin = path.resolve(bin);
  const proc = spawn(bin, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  proc.stdout.setEncoding('utf8').on('data', (d) => (out.stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d) => (out.stderr += d));
  live.add(proc);
  const exited = new Promise((resolve) => {
    proc.on('error', (err) => {
      out.stderr += `\n[spawn error: ${err.message}]`;
      live.delete(proc);
      resolve({ code: null, signal: null, error: err });
    });
    // 'close' (not 'exit') so that all output has been read.
    proc.on('close', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    });
  });
  return { proc, out, exited };
}

// Runs the binary to completion (for CLI checks): {code, signal, stdout, stderr}.
export async function runCrier(args, { timeout = 10_000, env = crierEnv(), cwd } = {}) {
  const { proc, out, exited } = spawnCrier(args, env, cwd);
  try {
    const res = await withTimeout(exited, timeout, `crier ${args.join(' ')} did not exit`);
    return { ...res, stdout: out.stdout, stderr: out.stderr };
  } finally {
    if (live.has(proc)) proc.kill('SIGKILL');
  }
}

// The integration suite's second pass runs every test on the Redis backplane:
// CRIER_TEST_BACKPLANE=redis and CRIER_TEST_REDIS_URL (tests/run.sh starts
// that redis-server). Each crier gets a key prefix of its own, so tests that
// run at once on one Redis do not share rooms.
let prefixCount = 0;
function testBackplane(config) {
  if (process.env.CRIER_TEST_BACKPLANE !== 'redis' || 'backplane' in config) return null;
  return {
    type: 'redis',
    url: process.env.CRIER_TEST_REDIS_URL || 'redis://127.0.0.1:6379/0',
    key_prefix: `t${process.pid}-${++prefixCount}:`,
  };
}

// Starts crier with `config` (plus a free loopback "listen", unless the config
// names one) and waits for /healthz (and, with a Redis backplane, for it to
// be connected, unless waitBackplane is false). A "--listen HOST:PORT" in
// extraArgs is where the server is then expected. `cwd`: the directory to
// start it in (default ours, the repository root). `bin`: the binary to
// start instead of CRIER_BIN. `configFile`: a config file to use as it is
// (then `config` must hold its "listen", or extraArgs a --listen).
export async function startCrier(
  config = {},
  extraArgs = [],
  { asanExtra = '', waitBackplane = true, cwd, bin, configFile: givenConfig } = {},
) {
  const port = await freePort();
  const backplane = testBackplane(config);
  const fullConfig = { listen: `127.0.0.1:${port}`, ...config, ...(backplane ? { backplane } : {}) };
  const configFile = givenConfig || writeTempFile('crier.json', JSON.stringify(fullConfig, null, 2));
  const removeConfig = () => givenConfig || removeTempFile(configFile);

  let listen = fullConfig.listen;
  const i = extraArgs.indexOf('--listen');
  if (i >= 0) listen = extraArgs[i + 1];
  const [host, portText] = [listen.slice(0, listen.lastIndexOf(':')), listen.slice(listen.lastIndexOf(':') + 1)];
  const url = `http://${host}:${portText}`;

  const { proc, out, exited } = spawnCrier(['--config', configFile, ...extraArgs], crierEnv(asanExtra), cwd, bin);
  let result = null;
  exited.then((r) => (result = r));

  const server = {
    port: Number(portText),
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    proc,
    pid: proc.pid,
    config: fullConfig,
    configFile, // rewrite it and send SIGHUP to reload (tests/integration/reload.test.js)
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    exited: exited.then((r) => ({ ...r, stderr: out.stderr })),
    // SIGTERM, then wait (at most 10 s) for the exit: {code, signal, stderr, ms}.
    async stop() {
      const t0 = Date.now();
      if (!result) proc.kill('SIGTERM');
      try {
        const r = await withTimeout(exited, STOP_TIMEOUT_MS, 'crier did not exit after SIGTERM');
        return { ...r, stderr: out.stderr, ms: Date.now() - t0 };
      } catch (err) {
        proc.kill('SIGKILL');
        throw new Error(`${err.message}\n--- stderr ---\n${tail(out.stderr)}`);
      } finally {
        removeConfig();
      }
    },
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (result) {
      removeConfig();
      throw new Error(
        `crier exited during start-up (code ${result.code}, signal ${result.signal})\n` +
          `--- stderr ---\n${tail(out.stderr)}`,
      );
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      const body = await res.json().catch(() => ({}));
      const connected = !waitBackplane || fullConfig.backplane?.type !== 'redis' || body.backplane?.connected;
      if (res.status === 200 && connected) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() >= deadline) {
      proc.kill('SIGKILL');
      await exited;
      removeConfig();
      throw new Error(
        `crier did not answer GET /healthz with 200 within ${START_TIMEOUT_MS} ms\n` +
          `--- stderr ---\n${tail(out.stderr)}`,
      );
    }
    await sleep(50);
  }
}

// Fails when stderr holds a sanitizer report.
export function assertNoSanitizerReport(stderr) {
  for (const marker of SANITIZER_MARKERS) {
    assert.ok(!stderr.includes(marker), `sanitizer report ("${marker}") on stderr:\n${tail(stderr)}`);
  }
}

// The ThreadSanitizer build (build/tsan/crier) run with TSAN_OPTIONS
// log_path=DIR/crier writes its reports to DIR/crier.PID instead of stderr
// (tests/run.sh does so). Fails when that file exists for pid.
export function assertNoTsanReport(pid) {
  const m = /(?:^|[\s:])log_path=([^\s:]+)/.exec(process.env.TSAN_OPTIONS || '');
  if (!m || !pid) return;
  const file = `${m[1]}.${pid}`;
  if (!fs.existsSync(file)) return;
  assert.fail(`ThreadSanitizer report in ${file}:\n${tail(fs.readFileSync(file, 'utf8'))}`);
}

// Stops the server and asserts a clean exit: code 0, no sanitizer report.
// Returns the stop result.
export async function stopClean(server) {
  try {
    const r = await server.stop();
    assertNoTsanReport(server.pid);
    assert.equal(r.code, 0, `crier exit code ${r.code} (signal ${r.signal})\n--- stderr ---\n${tail(r.stderr)}`);
    assertNoSanitizerReport(r.stderr);
    return r;
  } catch (err) {
    stopFailed = true;
    throw err;
  }
}

// Starts crier and registers a clean stop with the test context `t`
// (runs even when the test fails).
export async function startFor(t, config = {}, extraArgs = [], opts = {}) {
  const server = await startCrier(config, extraArgs, opts);
  t.after(() => stopClean(server));
  return server;
}

// The resident set size of a process, in KiB.
export function rssKb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

export function tail(text, chars = 6000) {
  return text.length > chars ? `…${text.slice(-chars)}` : text;
}
