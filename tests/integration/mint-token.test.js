// scripts/mint-token and tests/lib/token.js (README "Minting a token"): the
// tokens they print verify with the matching key (node's crypto, the JWS
// encodings: base64url without padding, ES256 as r || s) and carry the
// claims asked for. That crier takes them is checked in C (test_auth) and
// by the surfaces' tests.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { removeTempFile, writeTempFile } from '../lib/server.js';
import { makeKeys, mintToken, nowS } from '../lib/token.js';

const SECRET = 'a-test-secret-of-more-than-32-bytes!';

const part = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

function decode(token) {
  const segs = token.split('.');
  assert.equal(segs.length, 3, `three segments: ${token}`);
  for (const s of segs) assert.match(s, /^[A-Za-z0-9_-]*$/, 'base64url without padding');
  return { header: part(segs[0]), claims: part(segs[1]), input: `${segs[0]}.${segs[1]}`, sig: segs[2] };
}

function verifies({ header, input, sig }, key) {
  const hash = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }[header.alg.slice(2)];
  const s = Buffer.from(sig, 'base64url');
  switch (header.alg.slice(0, 2)) {
    case 'HS':
      return crypto.timingSafeEqual(crypto.createHmac(hash, key).update(input).digest(), s);
    case 'RS':
      return crypto.verify(hash, Buffer.from(input), key, s);
    case 'ES':
      return crypto.verify(hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }, s);
  }
  return false;
}

const mint = (...args) => execFileSync('scripts/mint-token', args, { encoding: 'utf8' }).trim();

test('scripts/mint-token: HS256 with the claims asked for', () => {
  const before = nowS();
  const t = decode(mint('--secret', SECRET, '--sub', 'alice', '--exp', '600', '--subscribe', 'chat.*,user.alice',
    '--publish', 'chat.*', '--iss', 'https://id.example', '--aud', 'crier'));
  assert.deepEqual(t.header, { alg: 'HS256', typ: 'JWT' });
  assert.ok(verifies(t, SECRET));
  assert.ok(!verifies(t, `${SECRET}x`));
  assert.equal(t.claims.sub, 'alice');
  assert.ok(t.claims.exp >= before + 600 && t.claims.exp <= nowS() + 600);
  assert.deepEqual(t.claims.rooms, { subscribe: ['chat.*', 'user.alice'], publish: ['chat.*'] });
  assert.equal(t.claims.iss, 'https://id.example');
  assert.equal(t.claims.aud, 'crier');
  // --exp 0: no exp; --claims merges last
  const t2 = decode(mint('--secret', SECRET, '--exp', '0', '--claims', '{"nbf": 5, "sub": "bob"}'));
  assert.equal(t2.claims.exp, undefined);
  assert.equal(t2.claims.nbf, 5);
  assert.equal(t2.claims.sub, 'bob');
  assert.equal(t2.claims.rooms, undefined);
});

test('scripts/mint-token: RS256 and ES256 from a private key file', (t) => {
  const keys = makeKeys();
  const rsa = writeTempFile('rsa.pem', keys.rsa.privateKey);
  const ec = writeTempFile('ec.pem', keys.ec.privateKey);
  t.after(() => [rsa, ec].forEach(removeTempFile));
  const r = decode(mint('--key', rsa, '--sub', 'rob'));
  assert.equal(r.header.alg, 'RS256');
  assert.ok(verifies(r, keys.rsa.publicKey));
  const e = decode(mint('--key', ec, '--sub', 'eve'));
  assert.equal(e.header.alg, 'ES256');
  assert.equal(Buffer.from(e.sig, 'base64url').length, 64, 'ES256 signature is r || s, 64 bytes');
  assert.ok(verifies(e, keys.ec.publicKey));
  assert.ok(verifies(decode(mint('--key', rsa, '--alg', 'RS512')), keys.rsa.publicKey));
});

test('scripts/mint-token: bad usage exits 2', () => {
  const cases = [[], ['--sub', 'x'], ['--secret', 's', '--key', 'k'], ['--secret', 's', '--exp', '-1'],
    ['--bogus', '1'], ['--key', '/nonexistent/key.pem'], ['--key', 'README.md'], ['--secret', 's', '--claims', '{']];
  for (const args of cases) {
    let code = 0;
    try {
      execFileSync('scripts/mint-token', args, { stdio: 'pipe' });
    } catch (err) {
      code = err.status;
    }
    assert.equal(code, 2, `mint-token ${args.join(' ')}`);
  }
});

test('token.js: every alg, alg none, header changes', () => {
  const keys = makeKeys();
  for (const alg of ['HS256', 'HS384', 'HS512']) assert.ok(verifies(decode(mintToken({ alg, secret: SECRET })), SECRET));
  for (const alg of ['RS256', 'RS384', 'RS512']) {
    assert.ok(verifies(decode(mintToken({ alg, privateKey: keys.rsa.privateKey })), keys.rsa.publicKey));
  }
  assert.ok(verifies(decode(mintToken({ alg: 'ES256', privateKey: keys.ec.privateKey })), keys.ec.publicKey));
  const none = mintToken({ alg: 'none', claims: { sub: 'm' } });
  assert.ok(none.endsWith('.'), none);
  assert.deepEqual(decode(none).header, { alg: 'none', typ: 'JWT' });
  const h = decode(mintToken({ secret: SECRET, header: { typ: undefined, kid: 'k1' } })).header;
  assert.deepEqual(h, { alg: 'HS256', kid: 'k1' });
  assert.ok(mintToken({ secret: SECRET, signature: 'forged' }).endsWith('.forged'));
});
