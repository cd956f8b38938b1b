// `make install` into a DESTDIR (issue #17 items 1 and 2): the files land
// where the README says, the installed binary started from another working
// directory serves the installed pages (web.root's default is found next to
// the binary, not in the current directory), the unit passes `systemd-analyze
// verify` and carries its hardening, `make uninstall` removes all but the
// config. Builds crier once in a scratch build directory (about a minute).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { request } from '../lib/http.js';
import { freePort, runCrier, startCrier, stopClean } from '../lib/server.js';
import {
  INDEX_HTML,
  ROOT,
  VERSION,
  assertUnitSettings,
  assertUnitVerifies,
  run,
  runOk,
  scratchDir,
  which,
} from './helpers.js';

const MAKE_TIMEOUT = 10 * 60_000;

function make(args, build) {
  return runOk('make', ['-s', '-j2', `B=${build}`, ...args], { timeout: MAKE_TIMEOUT });
}

test('make install DESTDIR=... PREFIX=/usr: the layout, run from elsewhere, the unit, uninstall', { timeout: MAKE_TIMEOUT + 120_000 }, async (t) => {
  const dir = scratchDir(t, 'crier-install-');
  const build = path.join(dir, 'build');
  const dest = path.join(dir, 'root');
  await make(['install', `DESTDIR=${dest}`, 'PREFIX=/usr'], build);

  const at = (p) => path.join(dest, p);
  const bin = at('usr/bin/crier');
  await t.test('files where the README says', () => {
    fs.accessSync(bin, fs.constants.X_OK);
    const pages = fs.readdirSync(path.join(ROOT, 'web'), { recursive: true }).filter((f) =>
      fs.statSync(path.join(ROOT, 'web', f)).isFile(),
    );
    assert.ok(pages.includes('index.html'));
    for (const f of pages) {
      assert.deepEqual(fs.readFileSync(at(`usr/share/crier/web/${f}`)), fs.readFileSync(path.join(ROOT, 'web', f)), f);
    }
    assert.ok(fs.existsSync(at('usr/share/man/man1/crier.1')), 'man page');
    assert.deepEqual(fs.readFileSync(at('etc/crier/config.json')), fs.readFileSync(path.join(ROOT, 'config.example.json')));
    assert.ok(fs.existsSync(at('lib/systemd/system/crier.service')), 'systemd unit');
  });

  await t.test('--version and --check-config of the installed binary', async () => {
    const r = await run(bin, ['--version'], { cwd: '/' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^crier ${VERSION.replace(/\./g, '\\.')}\\b`));
    const c = await run(bin, ['--check-config', '--config', at('etc/crier/config.json')], { cwd: '/' });
    assert.equal(c.code, 0, c.stderr);
    assert.ok(c.stdout.includes(`web.root ${at('usr/share/crier/web')}`), c.stdout);
  });

  await t.test('started from another directory with the installed config: "/" is the installed index.html', async () => {
    const elsewhere = scratchDir(t, 'crier-cwd-');
    const port = await freePort();
    const srv = await startCrier({}, ['--listen', `127.0.0.1:${port}`], {
      bin,
      cwd: elsewhere,
      configFile: at('etc/crier/config.json'),
    });
    try {
      const res = await request(`${srv.url}/`);
      assert.equal(res.status, 200, `GET /: ${res.status} ${res.text.slice(0, 200)}\n${srv.stderr()}`);
      assert.equal(res.text, INDEX_HTML);
      assert.equal((await request(`${srv.url}/healthz`)).status, 200);
    } finally {
      await stopClean(srv);
    }
  });

  await t.test('the unit: hardening, paths, systemd-analyze verify', async (t2) => {
    const unit = fs.readFileSync(at('lib/systemd/system/crier.service'), 'utf8');
    assertUnitSettings(unit, { bin: '/usr/bin/crier', config: '/etc/crier/config.json' });
    if (!which('systemd-analyze')) return t2.skip('no systemd-analyze (apt-get install systemd)');
    // verify wants ExecStart's binary to exist: point the unit at the
    // DESTDIR's. The man page is not installed on this machine (--man=no);
    // the package test checks Documentation=man:crier(1) too.
    const checked = path.join(dir, 'crier.service');
    fs.writeFileSync(checked, unit.replaceAll('/usr/bin/crier', bin));
    await assertUnitVerifies(checked, { man: false });
    // A broken unit is caught (the check can fail at all).
    const broken = path.join(dir, 'broken.service');
    fs.writeFileSync(broken, unit.replaceAll('/usr/bin/crier', bin).replace('ProtectSystem=strict', 'ProtectSystem=bogus'));
    await assert.rejects(assertUnitVerifies(broken, { man: false }), /protect system/i);
    // Exposure as systemd rates it: "OK" (below 4.0) or better.
    const sec = await run('systemd-analyze', ['security', '--offline=yes', checked]);
    const m = /Overall exposure level for crier\.service: (\d+\.\d+)/.exec(sec.stdout + sec.stderr);
    assert.ok(m, `systemd-analyze security:\n${sec.stdout}${sec.stderr}`);
    assert.ok(Number(m[1]) < 4, `exposure ${m[1]}`);
  });

  await t.test('make uninstall removes everything but the config', async () => {
    await make(['uninstall', `DESTDIR=${dest}`, 'PREFIX=/usr'], build);
    for (const p of ['usr/bin/crier', 'usr/share/crier', 'usr/share/man/man1/crier.1', 'lib/systemd/system/crier.service']) {
      assert.ok(!fs.existsSync(at(p)), `${p} still there`);
    }
    assert.ok(fs.existsSync(at('etc/crier/config.json')), 'the config was removed');
  });

  await t.test('another PREFIX: config and unit under it, the unit names its paths', async () => {
    const opt = path.join(dir, 'opt');
    await make(['install', `DESTDIR=${opt}`, 'PREFIX=/opt/crier'], build);
    const unit = fs.readFileSync(path.join(opt, 'opt/crier/lib/systemd/system/crier.service'), 'utf8');
    assertUnitSettings(unit, { bin: '/opt/crier/bin/crier', config: '/opt/crier/etc/crier/config.json' });
    assert.ok(fs.existsSync(path.join(opt, 'opt/crier/etc/crier/config.json')));
    assert.ok(fs.existsSync(path.join(opt, 'opt/crier/share/crier/web/index.html')));
    // The prefix is baked in as the fallback web root.
    const c = await run(path.join(opt, 'opt/crier/bin/crier'), ['--check-config'], { cwd: '/' });
    assert.equal(c.code, 0, c.stderr);
    assert.ok(c.stdout.includes(`web.root ${path.join(opt, 'opt/crier/share/crier/web')}`), c.stdout);
  });
});

// The man page against the program (issue #17 follow-up: drift): no roff
// warnings; every option `crier --help` lists, short and long, is in its
// OPTIONS and every option there is in --help; every signal and exit code
// --help names is in SIGNALS and EXIT STATUS; its CONFIGURATION names every
// section of config.example.json and every top-level key gateway/config.c
// takes.
test('the man page has no roff warnings and matches --help and the config keys', async (t) => {
  if (!which('man')) return t.skip('no man');
  const r = await run('man', ['--warnings=all', '-l', path.join(ROOT, 'docs/crier.1')], {
    env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80', LANG: 'C.UTF-8' },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', r.stderr);
  const man = r.stdout.replace(/\u2010/g, '-'); // groff may print a hyphen as U+2010
  const section = (name, next) => man.slice(man.indexOf(`\n${name}\n`), next ? man.indexOf(`\n${next}\n`) : undefined);
  const options = section('OPTIONS', 'CONFIGURATION');
  const config = section('CONFIGURATION', 'SIGNALS');
  const signals = section('SIGNALS', 'EXIT STATUS');
  const exits = section('EXIT STATUS');
  for (const [name, text] of Object.entries({ options, config, signals, exits })) assert.ok(text.length > 20, `no ${name} section`);

  const help = await runCrier(['--help']);
  assert.equal(help.code, 0, help.stderr);
  const listed = [...help.stdout.matchAll(/^ {2}(-[A-Za-z]), (--[a-z][a-z-]*)\b/gm)].map((m) => [m[1], m[2]]);
  assert.ok(listed.length >= 6, `--help lists ${listed.length} options:\n${help.stdout}`);
  for (const [short, long] of listed) {
    assert.match(options, new RegExp(`(^|\\s)${short}, ${long}\\b`, 'm'), `man page OPTIONS lacks "${short}, ${long}" (--help has it)`);
  }
  for (const [, long] of options.matchAll(/^ {7}-[A-Za-z], (--[a-z][a-z-]*)/gm)) {
    assert.ok(listed.some(([, l]) => l === long), `man page OPTIONS has ${long}, which --help does not list`);
  }
  for (const sig of help.stdout.match(/\bSIG[A-Z]+\b/g)) assert.ok(signals.includes(sig), `man page SIGNALS lacks ${sig}`);
  const codes = /Exit codes:([^]*)$/.exec(help.stdout);
  assert.ok(codes, `--help names no exit codes:\n${help.stdout}`);
  for (const [, code] of codes[1].matchAll(/\b(\d) [a-z]/g)) {
    assert.match(exits, new RegExp(`^ {7}${code}\\b`, 'm'), `man page EXIT STATUS lacks ${code}`);
  }

  const example = JSON.parse(fs.readFileSync(path.join(ROOT, 'config.example.json'), 'utf8'));
  const source = fs.readFileSync(path.join(ROOT, 'gateway/config.c'), 'utf8');
  const table = source.slice(source.indexOf('key_table[] = {'), source.indexOf('};', source.indexOf('key_table[] = {')));
  const topLevel = [...table.matchAll(/_KEY\("?([a-z_]+)/g)].map((m) => m[1]);
  assert.ok(topLevel.includes('listen') && topLevel.includes('auth'), `key_table not found in gateway/config.c: ${topLevel}`);
  for (const key of new Set([...Object.keys(example), ...topLevel, 'web.root'])) {
    assert.match(config, new RegExp(`\\b${key.replace('.', '\\.')}\\b`), `man page CONFIGURATION lacks ${key}`);
  }
});
