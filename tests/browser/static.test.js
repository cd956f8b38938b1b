// The static handler under the web root: raw requests (nothing normalises
// the path) that try to leave the root get 404, so does a symlink leading
// out; pages and the client come with the right content types.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { WEB_ROOT, rawGet, startServer } from './helpers.js';

const TRAVERSALS = [
  '/../etc/passwd',
  '/../../../../../../etc/passwd',
  '/%2e%2e/%2e%2e/etc/passwd',
  '/%2E%2E/%2E%2E/etc/passwd',
  '/..%2f..%2fetc%2fpasswd',
  '/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '/web/../../etc/passwd',
  '/./../etc/passwd',
  '/chat.html/../../etc/passwd',
  '/..',
  '/%2e%2e',
  '//etc/passwd',
  '/..\\..\\etc\\passwd',
];

test('path traversal attempts get 404', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  for (const target of TRAVERSALS) {
    const res = await rawGet(srv.port, target);
    assert.equal(res.status, 404, `GET ${target}: ${res.status}\n${res.body.slice(0, 200)}`);
    assert.doesNotMatch(res.body, /root:.*:0:0:/, `GET ${target} leaked /etc/passwd`);
  }
});

test('a symlink out of the web root gets 404; one inside it is served', { timeout: 60_000 }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'crier-web-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.cpSync(WEB_ROOT, root, { recursive: true });
  fs.symlinkSync('/etc/passwd', path.join(root, 'passwd.txt'));
  fs.symlinkSync('/etc', path.join(root, 'etc'));
  fs.symlinkSync('chat.html', path.join(root, 'alias.html'));
  const srv = await startServer(t, { web: { root } });

  for (const target of ['/passwd.txt', '/etc/passwd', '/etc/hostname']) {
    const res = await rawGet(srv.port, target);
    assert.equal(res.status, 404, `GET ${target} through a symlink out of the root: ${res.status}`);
    assert.doesNotMatch(res.body, /root:.*:0:0:/);
  }
  const alias = await rawGet(srv.port, '/alias.html');
  assert.equal(alias.status, 200, 'a symlink that stays inside the root');
  assert.equal(alias.body, fs.readFileSync(path.join(root, 'chat.html'), 'latin1'));
});

test('pages and the client are served with their content types', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  const cases = [
    ['/', 'index.html', /^text\/html\b/],
    ['/index.html', 'index.html', /^text\/html\b/],
    ['/chat.html', 'chat.html', /^text\/html\b/],
    ['/dashboard.html', 'dashboard.html', /^text\/html\b/],
    ['/crier.js', 'crier.js', /^(text|application)\/javascript\b/],
    ['/favicon.svg', 'favicon.svg', /^image\/svg\+xml\b/],
  ];
  for (const [target, file, type] of cases) {
    const res = await rawGet(srv.port, target);
    assert.equal(res.status, 200, `GET ${target}`);
    assert.match(res.headers['content-type'] ?? '', type, `GET ${target}: Content-Type`);
    assert.equal(res.body, fs.readFileSync(path.join(WEB_ROOT, file), 'latin1'), `GET ${target}: body`);
  }
  for (const target of ['/nope.html', '/crier.js/', '/hubs', '/.hidden']) {
    const res = await rawGet(srv.port, target);
    assert.equal(res.status, 404, `GET ${target}`);
  }
});
