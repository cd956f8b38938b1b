// Helpers of the operations suite (tests/ops/, `tests/run.sh ops`): running
// make, dpkg and systemd-analyze, and a scratch directory per test.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const VERSION = fs.readFileSync(path.join(ROOT, 'VERSION'), 'utf8').trim();
export const INDEX_HTML = fs.readFileSync(path.join(ROOT, 'web/index.html'), 'utf8');

// Runs a command to its end: {code, stdout, stderr}; never throws for a
// non-zero exit (the caller asserts).
export function run(cmd, args, { cwd = ROOT, timeout = 60_000, env = process.env } = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout, env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr: stderr + (err && code === -1 ? `\n[${err.message}]` : '') });
    });
  });
}

// Asserts exit 0, naming the command and its output otherwise.
export async function runOk(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  const tailOf = (s) => (s.length > 4000 ? `…${s.slice(-4000)}` : s);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: exit ${r.code}\n${tailOf(r.stdout)}\n${tailOf(r.stderr)}`);
  return r;
}

// A fresh directory, removed after the test.
export function scratchDir(t, prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// How to run a command as root: [] as root, ["sudo", "-n"] where sudo
// works without a password, null otherwise.
export async function rootPrefix() {
  if (process.getuid() === 0) return [];
  const r = await run('sudo', ['-n', 'true'], { timeout: 10_000 });
  return r.code === 0 ? ['sudo', '-n'] : null;
}

export function which(cmd) {
  for (const dir of (process.env.PATH || '/usr/bin:/bin').split(':')) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

// `systemd-analyze verify` on unitFile: exit 0 and nothing printed (it exits
// 0 on unknown keys and bad values too, warning on stderr).
export async function assertUnitVerifies(unitFile, { man = true } = {}) {
  const args = ['verify', ...(man ? [] : ['--man=no']), unitFile];
  const r = await run('systemd-analyze', args, { timeout: 60_000 });
  assert.equal(r.code, 0, `systemd-analyze ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  assert.equal((r.stdout + r.stderr).trim(), '', `systemd-analyze ${args.join(' ')} warns:\n${r.stdout}${r.stderr}`);
}

// The unit's hardening and service settings (issue #17 item 2).
export function assertUnitSettings(text, { bin, config }) {
  const want = [
    `ExecStart=${bin} --config ${config}`,
    `ExecReload=${bin} --check-config --config ${config}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'KillSignal=SIGTERM',
    'DynamicUser=yes',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
  ];
  const lines = text.split('\n').map((l) => l.trim());
  for (const w of want) assert.ok(lines.includes(w), `unit lacks "${w}"`);
  const nofile = /^LimitNOFILE=(\d+)$/m.exec(text);
  assert.ok(nofile && Number(nofile[1]) >= 20000, 'LimitNOFILE below 20000');
  const stop = /^TimeoutStopSec=(\d+)s?$/m.exec(text);
  assert.ok(stop && Number(stop[1]) >= 10, 'TimeoutStopSec shorter than the drain');
}

// The machine-wide lock of the tests that change the machine's packages
// (tests/ops/package.test.js): a fixed path, so that every run on this
// machine, from any checkout, takes the same one.
export const PACKAGE_LOCK = fs.existsSync('/run/lock') ? '/run/lock/crier-package-test.lock' : '/tmp/crier-package-test.lock';

// Takes an exclusive flock(1) on file, waiting at most timeoutMs; resolves
// with a release() that gives it back. The lock is held by a child
// `flock FILE cat` reading our pipe: it goes with this process, however it
// ends (the pipe closes, cat and flock exit, the kernel drops the lock).
export function holdLock(file, { timeoutMs = 15 * 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const holder = spawn('flock', ['-w', String(Math.ceil(timeoutMs / 1000)), file, 'sh', '-c', 'echo locked; exec cat'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const exited = new Promise((res) => holder.once('exit', (code) => res(code)));
    holder.stderr.on('data', (d) => (err += d));
    holder.stdout.on('data', (d) => {
      out += d;
      if (out.includes('locked\n')) {
        resolve({
          release: () => {
            holder.stdin.end();
            return exited;
          },
        });
      }
    });
    holder.once('error', reject);
    exited.then((code) => reject(new Error(`flock ${file}: not taken within ${timeoutMs} ms (exit ${code}) ${err}`)));
  });
}

// The crier package dpkg knows of on this machine: "STATUS VERSION" (e.g.
// "install ok installed 0.6.0", or "deinstall ok config-files 0.6.0": removed,
// its config kept), or null when there is none (never installed, or purged).
export async function knownPackage({ env = process.env } = {}) {
  const r = await run('dpkg-query', ['-W', '-f', '${Status} ${Version}', 'crier'], { env });
  if (r.code !== 0 || !r.stdout.trim() || /\bnot-installed\b/.test(r.stdout)) return null;
  return r.stdout.trim();
}
