// The Debian package (issue #17 item 3): `make deb` builds it with
// dpkg-buildpackage, it depends on runtime libraries only and holds the
// files the README lists (dpkg-deb), `dpkg -i` installs it on this machine,
// crier runs as the package lays it out (/usr/bin/crier --config
// /etc/crier/config.json; no systemd as PID 1 here, so the binary is started
// by hand) and serves the packaged pages, installing it again keeps an
// edited config (a conffile), and `dpkg --purge` takes it all away.
//
// The install part needs root (or sudo -n) and changes the machine, so:
// - it runs under a machine-wide lock (helpers.js PACKAGE_LOCK, flock), so
//   that two runs at once (two checkouts, two CI jobs on one host) cannot
//   install over or purge each other's package;
// - it only ever purges a package it installed itself: when a crier package
//   is on the machine already (any state but not-installed, config-files
//   too), the install, upgrade and purge checks are skipped with a
//   diagnostic saying why, and that package is left alone. The build and
//   the package's contents are checked either way.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { request } from '../lib/http.js';
import { freePort, startCrier, stopClean } from '../lib/server.js';
import {
  INDEX_HTML,
  PACKAGE_LOCK,
  VERSION,
  assertUnitSettings,
  assertUnitVerifies,
  holdLock,
  knownPackage,
  rootPrefix,
  run,
  runOk,
  scratchDir,
  which,
} from './helpers.js';

const BUILD_TIMEOUT = 10 * 60_000;
const DPKG_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

const LOCK_WAIT_MS = 15 * 60_000; // another run's install .. purge, with its dpkg -i twice

test('make deb; dpkg -i; crier as packaged serves / and /healthz; dpkg --purge', { timeout: BUILD_TIMEOUT + LOCK_WAIT_MS + 180_000 }, async (t) => {
  for (const tool of ['dpkg-buildpackage', 'dh']) {
    assert.ok(which(tool), `no ${tool} (scripts/setup.sh test installs dpkg-dev and debhelper)`);
  }

  const dir = scratchDir(t, 'crier-deb-');
  const build = path.join(dir, 'build');
  await runOk('make', ['-s', `B=${build}`, 'deb'], { timeout: BUILD_TIMEOUT });
  const deb = path.join(build, 'deb', fs.readdirSync(path.join(build, 'deb')).find((f) => /^crier_.*\.deb$/.test(f)) || 'none');
  assert.ok(fs.existsSync(deb), `no crier_*.deb in ${build}/deb`);

  await t.test('control: version, runtime libraries only', async () => {
    const f = (field) => runOk('dpkg-deb', ['-f', deb, field]).then((r) => r.stdout.trim());
    assert.equal(await f('Package'), 'crier');
    assert.equal(await f('Version'), VERSION);
    const depends = await f('Depends');
    for (const lib of ['libwebsockets', 'libmicrohttpd', 'libjansson', 'libhiredis', 'libjwt', 'libcurl', 'libssl']) {
      assert.match(depends, new RegExp(`\\b${lib}`), `Depends lacks ${lib}: ${depends}`);
    }
    assert.doesNotMatch(depends, /-dev\b|build-essential|pkg-config/, `a build dependency in Depends: ${depends}`);
    const files = (await runOk('dpkg-deb', ['-c', deb])).stdout;
    for (const p of ['./usr/bin/crier', './usr/share/crier/web/index.html', './etc/crier/config.json',
      './lib/systemd/system/crier.service', './usr/share/man/man1/crier.1.gz']) {
      assert.ok(files.includes(` ${p}\n`), `package lacks ${p}`);
    }
  });

  const root = await rootPrefix();
  if (!root) {
    t.diagnostic('not root and no passwordless sudo: the package was built and its contents checked; install, upgrade and purge skipped');
    return;
  }
  const asRoot = (cmd, args, opts = {}) => runOk(root[0] || cmd, root.length ? [...root.slice(1), cmd, ...args] : args, { env: DPKG_ENV, ...opts });

  // Install .. purge: one run on this machine at a time.
  const lock = await holdLock(PACKAGE_LOCK, { timeoutMs: LOCK_WAIT_MS });
  let ours = false;
  try {
    const found = await knownPackage();
    if (found) {
      const why = `a crier package is on this machine already (${found}), not installed by this test: ` +
        'it is left alone, and the install, upgrade and purge checks are skipped ' +
        '(remove it with dpkg --purge crier to run them)';
      t.diagnostic(why);
      await t.test('installed, run, upgraded and purged', { skip: why }, () => {});
      return;
    }
    ours = true; // from here on, the package on the machine is ours: purged whatever happens
    await asRoot('dpkg', ['-i', deb], { timeout: 120_000 });
    await installedChecks(t, deb, asRoot);
  } finally {
    if (ours && (await knownPackage())) await asRoot('dpkg', ['--purge', 'crier'], { timeout: 120_000 }).catch(() => {});
    await lock.release();
  }
});

// The checks on the package dpkg -i installed (this run's own); the last
// one purges it.
async function installedChecks(t, deb, asRoot) {

  await t.test('installed: status, conffile, unit', async () => {
    const s = await runOk('dpkg-query', ['-W', '-f', '${Status} ${Version}', 'crier']);
    assert.equal(s.stdout, `install ok installed ${VERSION}`);
    const conffiles = await runOk('dpkg-query', ['-W', '-f', '${Conffiles}', 'crier']);
    assert.match(conffiles.stdout, /\/etc\/crier\/config\.json [0-9a-f]{32}/);
    const unit = fs.readFileSync('/lib/systemd/system/crier.service', 'utf8');
    assertUnitSettings(unit, { bin: '/usr/bin/crier', config: '/etc/crier/config.json' });
    if (which('systemd-analyze')) await assertUnitVerifies('/lib/systemd/system/crier.service');
  });

  await t.test('/usr/bin/crier --config /etc/crier/config.json, from /: "/" and /healthz', async () => {
    const r = await run('/usr/bin/crier', ['--check-config', '--config', '/etc/crier/config.json'], { cwd: '/' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /config OK \(\/etc\/crier\/config\.json\): listen 127\.0\.0\.1:8080, web\.root \/usr\/share\/crier\/web\n/);
    const port = await freePort();
    const srv = await startCrier({}, ['--listen', `127.0.0.1:${port}`], {
      bin: '/usr/bin/crier',
      cwd: '/',
      configFile: '/etc/crier/config.json',
    });
    try {
      const index = await request(`${srv.url}/`);
      assert.equal(index.status, 200, `GET /: ${index.status}\n${srv.stderr()}`);
      assert.equal(index.text, INDEX_HTML);
      const health = await request(`${srv.url}/healthz`);
      assert.equal(health.status, 200);
    } finally {
      await stopClean(srv);
    }
  });

  await t.test('installed again (as an upgrade does): an edited /etc/crier/config.json is kept', async () => {
    const edited = fs.readFileSync('/etc/crier/config.json', 'utf8').replace('"log_level": "info"', '"log_level": "warn"');
    assert.ok(edited.includes('"log_level": "warn"'), 'the packaged config has no "log_level": "info" to edit');
    await asRoot('sh', ['-c', `cat > /etc/crier/config.json <<'EOF'\n${edited}EOF\n`]);
    await asRoot('dpkg', ['-i', deb], { timeout: 120_000 });
    assert.equal(fs.readFileSync('/etc/crier/config.json', 'utf8'), edited);
    const r = await run('/usr/bin/crier', ['--check-config', '--config', '/etc/crier/config.json'], { cwd: '/' });
    assert.equal(r.code, 0, r.stderr);
  });

  await t.test('dpkg --purge removes the binary, the pages, the unit and the config', async () => {
    await asRoot('dpkg', ['--purge', 'crier'], { timeout: 120_000 });
    for (const p of ['/usr/bin/crier', '/usr/share/crier', '/lib/systemd/system/crier.service', '/etc/crier']) {
      assert.ok(!fs.existsSync(p), `${p} still there after purge`);
    }
    const s = await run('dpkg-query', ['-W', '-f', '${Status}', 'crier']);
    assert.ok(s.code !== 0 || !/installed/.test(s.stdout.replace('not-installed', '')), s.stdout);
  });
}
