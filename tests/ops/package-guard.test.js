// The guards of the package test (tests/ops/package.test.js), without
// building or installing anything: two holders of PACKAGE_LOCK never hold it
// at once (so two runs cannot install over or purge each other's package),
// and a crier package in any state but not-installed counts as one the test
// did not install (so it is left alone, never purged).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { holdLock, knownPackage, scratchDir } from './helpers.js';

test('holdLock: a second holder waits for the first to release, and gives up after its timeout', async (t) => {
  const file = path.join(scratchDir(t, 'crier-lock-'), 'test.lock');
  const first = await holdLock(file);
  await assert.rejects(holdLock(file, { timeoutMs: 1000 }), /not taken within 1000 ms/);
  const order = [];
  const second = holdLock(file, { timeoutMs: 30_000 }).then((l) => (order.push('second'), l));
  await new Promise((r) => setTimeout(r, 300));
  order.push('release');
  await first.release();
  const held = await second;
  assert.deepEqual(order, ['release', 'second']);
  await held.release();
});

test('holdLock: the lock goes with a holder that dies', async (t) => {
  const file = path.join(scratchDir(t, 'crier-lock-'), 'test.lock');
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [
    '--input-type=module',
    '-e',
    `import { holdLock } from ${JSON.stringify(new URL('./helpers.js', import.meta.url).href)};
     await holdLock(${JSON.stringify(file)}); console.log('held'); setInterval(() => {}, 1000);`,
  ]);
  await new Promise((resolve) => child.stdout.on('data', (d) => String(d).includes('held') && resolve()));
  child.kill('SIGKILL');
  const l = await holdLock(file, { timeoutMs: 10_000 });
  await l.release();
});

test('knownPackage: any state but not-installed is a package the test did not install', async (t) => {
  const bin = scratchDir(t, 'crier-fake-dpkg-');
  const fake = (script) => {
    fs.writeFileSync(path.join(bin, 'dpkg-query'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    return { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  };
  assert.equal(await knownPackage({ env: fake("printf 'install ok installed 0.5.0'") }), 'install ok installed 0.5.0');
  assert.equal(await knownPackage({ env: fake("printf 'deinstall ok config-files 0.5.0'") }), 'deinstall ok config-files 0.5.0');
  assert.equal(await knownPackage({ env: fake("printf 'install ok half-configured 0.5.0'") }), 'install ok half-configured 0.5.0');
  assert.equal(await knownPackage({ env: fake("printf 'unknown ok not-installed '") }), null);
  assert.equal(await knownPackage({ env: fake("echo 'dpkg-query: no packages found matching crier' >&2; exit 1") }), null);
});
