// The operator's command line (issue #17): --version names crier's version
// and its libraries', --check-config validates without starting anything
// (exit 0 / 2), and the web pages are found whatever the working directory:
// web.root's default is next to the binary (not the current directory), a
// relative web.root in a config file is taken from the file's directory.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { request } from '../lib/http.js';
import { assertNoSanitizerReport, freePort, removeTempFile, runCrier, startFor, tail, writeTempFile } from '../lib/server.js';
import { makeKeys } from '../lib/token.js';
import { waitFor } from '../lib/util.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const VERSION = fs.readFileSync(path.join(ROOT, 'VERSION'), 'utf8').trim();
const INDEX = fs.readFileSync(path.join(ROOT, 'web/index.html'), 'utf8');

test('--version: crier VERSION[+gCOMMIT] and one line per library, exit 0', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await runCrier([flag]);
    assert.equal(r.code, 0, `${flag}: exit ${r.code}\n${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    const escaped = VERSION.replace(/\./g, '\\.');
    assert.match(lines[0], new RegExp(`^crier ${escaped}(\\+g[0-9a-f]+(\\.dirty)?)?$`), r.stdout);
    for (const lib of ['libwebsockets', 'libmicrohttpd', 'jansson', 'hiredis', 'libjwt', 'libcurl', 'openssl']) {
      const line = lines.find((l) => l.startsWith(`${lib} `));
      assert.ok(line, `${flag}: no ${lib} line:\n${r.stdout}`);
      assert.match(line, /^\S+ \d+\.\d+(\.\d+)?\b/, `${flag}: ${lib} line without a version: ${line}`);
    }
    assertNoSanitizerReport(r.stderr);
  }
});

test('--help lists --version and --check-config', async () => {
  const r = await runCrier(['--help']);
  assert.equal(r.code, 0);
  for (const opt of ['--version', '--check-config']) assert.ok(r.stdout.includes(opt), r.stdout);
});

// Nothing may listen on port while a --check-config runs (it starts nothing).
async function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(true));
  });
}

test('--check-config: a good config prints "config OK" with the address and web root, exit 0, listens nowhere', async () => {
  const port = await freePort();
  const file = writeTempFile('crier.json', JSON.stringify({ listen: `127.0.0.1:${port}`, log_level: 'warn' }));
  try {
    for (const flag of ['--check-config', '-t']) {
      const r = await runCrier([flag, '--config', file], { timeout: 5000 });
      assert.equal(r.code, 0, `${flag}: exit ${r.code}\n${tail(r.stderr)}`);
      assert.match(r.stdout, /config OK/);
      assert.ok(r.stdout.includes(file), `names the file: ${r.stdout}`);
      assert.ok(r.stdout.includes(`listen 127.0.0.1:${port}`), r.stdout);
      assert.ok(r.stdout.includes(`web.root ${path.join(ROOT, 'web')}`), r.stdout);
      assert.ok(await refused(port), 'something listens on the config port after --check-config');
      assertNoSanitizerReport(r.stderr);
    }
    // --listen and --log-level are checked too; no --config: the defaults.
    const r = await runCrier(['--check-config', '--listen', '[::1]:9']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /config OK \(built-in defaults\): listen \[::1\]:9,/);
  } finally {
    removeTempFile(file);
  }
});

test('--check-config: a bad config, option or key file prints the error, exit 2', async (t) => {
  const cases = [
    ['unknown key', { limits: { foo: 1 } }, [], 'limits.foo'],
    ['out of range', { limits: { poll_timeout_s: 0 } }, [], 'limits.poll_timeout_s'],
    ['missing web.root', { web: { root: 'no-such-pages' } }, [], 'web.root'],
    ['missing API keys file', { auth: { api_keys_file: '/nonexistent/crier-keys' } }, [], '/nonexistent/crier-keys'],
    ['bad --listen', {}, ['--listen', '127.0.0.1:notaport'], 'notaport'],
    ['bad --log-level', {}, ['--log-level', 'loud'], 'loud'],
  ];
  for (const [what, config, args, named] of cases) {
    await t.test(what, async () => {
      const file = writeTempFile('crier.json', JSON.stringify(config));
      const r = await runCrier(['--check-config', '--config', file, ...args], { timeout: 5000 }).finally(() =>
        removeTempFile(file),
      );
      assert.equal(r.code, 2, `exit ${r.code}\n${tail(r.stderr)}`);
      assert.doesNotMatch(r.stdout, /config OK/);
      assert.ok(r.stderr.includes(named), `stderr does not name "${named}":\n${tail(r.stderr)}`);
      assertNoSanitizerReport(r.stderr);
    });
  }
  await t.test('malformed JSON', async () => {
    const file = writeTempFile('crier.json', '{"listen": ');
    const r = await runCrier(['--check-config', '--config', file], { timeout: 5000 }).finally(() =>
      removeTempFile(file),
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /crier\.json:1:\d+/);
  });
  await t.test('missing config file', async () => {
    const r = await runCrier(['--check-config', '--config', '/nonexistent/crier.json'], { timeout: 5000 });
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes('/nonexistent/crier.json'), r.stderr);
  });
});

// The bug of issue #17: started from another directory, crier served 404
// for "/" (web.root "web" was taken from the working directory).
test('started from another directory without web.root: "/" serves web/index.html', async (t) => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-cwd-'));
  t.after(() => fs.rmSync(elsewhere, { recursive: true, force: true }));
  const srv = await startFor(t, {}, [], { cwd: elsewhere });
  const res = await request(`${srv.url}/`);
  assert.equal(res.status, 200, `GET / from cwd ${elsewhere}: ${res.status} ${res.text.slice(0, 200)}`);
  assert.equal(res.text, INDEX);
  assert.equal((await request(`${srv.url}/crier.js`)).status, 200);
});

test('a relative web.root in a config file is taken from the config file\'s directory', async (t) => {
  // startFor writes the config to TMP/crier-test-XXXX/crier.json; the pages
  // go to TMP/crier-pages-XXXX, named from there as ../crier-pages-XXXX.
  const pages = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-pages-'));
  t.after(() => fs.rmSync(pages, { recursive: true, force: true }));
  fs.writeFileSync(path.join(pages, 'index.html'), '<p>relative pages</p>\n');
  const srv = await startFor(t, { web: { root: `../${path.basename(pages)}` } });
  const res = await request(`${srv.url}/`);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.text, '<p>relative pages</p>\n');
});

// Issue #17 follow-up: auth.api_keys_file and auth.jwt.public_key_file, when
// relative, are taken from the config file's directory like web.root, at
// start-up, in --check-config and on a SIGHUP reload, whatever the working
// directory (they were taken from the working directory: crier started
// elsewhere could not read them and exited 2).
test('relative key files in a config file are read next to it, from any working directory', async (t) => {
  const KEY1 = 'relative-file-key-0123456789';
  const KEY2 = 'relative-file-key-9876543210';
  const confDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-conf-'));
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-cwd-'));
  t.after(() => [confDir, elsewhere].forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  fs.mkdirSync(path.join(confDir, 'keys'));
  fs.writeFileSync(path.join(confDir, 'keys', 'jwt.pem'), makeKeys().rsa.publicKey);
  fs.writeFileSync(path.join(confDir, 'api-keys.txt'), `${KEY1}\n`);
  const config = {
    listen: `127.0.0.1:${await freePort()}`,
    log_level: 'info',
    backplane: { type: 'memory' },
    auth: { api_keys_file: 'api-keys.txt', jwt: { public_key_file: 'keys/jwt.pem' } },
  };
  const configFile = path.join(confDir, 'crier.json');
  fs.writeFileSync(configFile, JSON.stringify(config));

  // --check-config from elsewhere, with the file named absolutely and relatively.
  for (const [cwd, name] of [[elsewhere, configFile], [path.dirname(confDir), `${path.basename(confDir)}/crier.json`]]) {
    const r = await runCrier(['--check-config', '--config', name], { cwd, timeout: 5000 });
    assert.equal(r.code, 0, `--check-config --config ${name} from ${cwd}: exit ${r.code}\n${tail(r.stderr)}`);
    assert.match(r.stdout, /config OK/);
  }

  const srv = await startFor(t, config, [], { cwd: elsewhere, configFile });
  assert.match(srv.stderr(), /auth is on: tokens \(RS256 ES256\).*1 API keys/);
  const metrics = async (key) =>
    (await request(`${srv.url}/metrics`, { headers: { Authorization: `Bearer ${key}` } })).status;
  assert.equal(await metrics(KEY1), 200, 'the key of api-keys.txt next to the config');

  // SIGHUP reads the relative files again from the config file's directory.
  fs.writeFileSync(path.join(confDir, 'api-keys.txt'), `${KEY2}\n`);
  const before = srv.stderr().length;
  srv.proc.kill('SIGHUP');
  await waitFor(() => /configuration reloaded|reload refused/.test(srv.stderr().slice(before)), {
    message: 'the reload outcome line',
  });
  assert.match(srv.stderr().slice(before), /configuration reloaded.*\(the auth key files read again\)/);
  assert.equal(await metrics(KEY2), 200, 'the new key of api-keys.txt after SIGHUP');
  assert.equal(await metrics(KEY1), 401, 'the old key after SIGHUP');
});
