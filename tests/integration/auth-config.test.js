// Access control's start-up (issue #13): the auth.* keys and the key files
// auth_init reads. A bad one ends crier with exit 2 and a message naming the
// key (and never quoting a secret); auth off is said in a warning line; auth
// on is said in an info line. (The checks on each surface are in the
// surfaces' own tests.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertNoSanitizerReport,
  freePort,
  removeTempFile,
  runCrier,
  startFor,
  tail,
  writeTempFile,
} from '../lib/server.js';
import { makeKeys } from '../lib/token.js';
import { waitFor } from '../lib/util.js';

// Runs crier on config (an object) with a free --listen; expects exit 2 and
// every text of `expected` on stderr.
async function expectStartError(config, ...expected) {
  const file = writeTempFile('crier.json', JSON.stringify(config));
  const args = ['--config', file, '--listen', `127.0.0.1:${await freePort()}`];
  const r = await runCrier(args, { timeout: 5000 }).finally(() => removeTempFile(file));
  assert.equal(r.code, 2, `exit ${r.code} (signal ${r.signal}), expected 2\n--- stderr ---\n${tail(r.stderr)}`);
  for (const e of expected) {
    assert.ok(r.stderr.includes(e), `stderr does not hold "${e}":\n${tail(r.stderr)}`);
  }
  assertNoSanitizerReport(r.stderr);
  return r.stderr;
}

test('bad auth keys and key files exit 2 naming the key', async (t) => {
  const keys = makeKeys();
  const privateFile = writeTempFile('private.pem', keys.rsa.privateKey);
  const ecFile = writeTempFile('ec.pem', keys.ec.publicKey);
  const badKeys = writeTempFile('keys', '# keys\ngood-key-0123456789\nshort\n');
  t.after(() => [privateFile, ecFile, badKeys].forEach(removeTempFile));
  const cases = [
    ['alg none listed', { auth: { jwt: { hmac_secret: 's'.repeat(32), algorithms: ['none'] } } },
      ["'auth.jwt.algorithms': 'none' is never accepted"]],
    ['RS256 without a key file', { auth: { jwt: { hmac_secret: 's'.repeat(32), algorithms: ['RS256'] } } },
      ["'auth.jwt.algorithms' lists RS256, which needs 'auth.jwt.public_key_file'"]],
    ['a missing public key file', { auth: { jwt: { public_key_file: '/nonexistent/key.pem' } } },
      ["auth.jwt.public_key_file '/nonexistent/key.pem': cannot read it: No such file or directory"]],
    ['a private key as the public key', { auth: { jwt: { public_key_file: privateFile } } },
      ['auth.jwt.public_key_file', 'holds a private key']],
    ['an EC key with RS256 only', { auth: { jwt: { public_key_file: ecFile, algorithms: ['RS256'] } } },
      ['auth.jwt.algorithms lists no algorithm this prime256v1 key verifies']],
    ['a bad line in the API key file', { auth: { api_keys_file: badKeys } },
      [`auth.api_keys_file '${badKeys}' line 3: an API key must be 16 to 511`]],
    ['a missing API key file', { auth: { api_keys_file: '/nonexistent/keys' } },
      ["auth.api_keys_file '/nonexistent/keys': cannot open it"]],
    ['a short API key', { auth: { api_keys: ['short-but-secret'.slice(0, 15)] } },
      ["'auth.api_keys[0]' must be a string of 16 to 511 visible ASCII characters"]],
    ['a bad room rule', { auth: { rooms: [{ match: 'chat.*', subscribe: 'everyone' }] } },
      ["'auth.rooms[0].subscribe' must be one of public, token, claim, api_key"]],
    ['an origin with a path', { cors: { allowed_origins: ['https://app.example/'] } },
      ["'cors.allowed_origins[0]'"]],
    ['a rate out of range', { limits: { rate: { publish: { per_s: -1 } } } },
      ["'limits.rate.publish.per_s' must be an integer from 0 to 1000000"]],
  ];
  for (const [what, config, expected] of cases) {
    await t.test(what, () => expectStartError(config, ...expected));
  }
  await t.test('a secret is never printed', async () => {
    const stderr = await expectStartError(
      { auth: { jwt: { hmac_secret: 'do-not-print-me-0123456789abcdef', algorithms: ['ES256'] } } },
      'auth.jwt.algorithms',
    );
    assert.ok(!stderr.includes('do-not-print-me'), stderr);
    const stderr2 = await expectStartError({ auth: { api_keys: ['secret key with spaces'] } }, 'auth.api_keys[0]');
    assert.ok(!stderr2.includes('secret key'), stderr2);
  });
});

test('auth off: a warning at start; auth on: an info line, and a short secret is warned about', async (t) => {
  const off = await startFor(t, {});
  await waitFor(() => off.stderr().includes('auth is off: anyone who reaches the port may subscribe and publish'),
    { message: 'the auth-off warning' });
  assert.match(off.stderr(), /warn +auth: auth is off/);

  const keys = makeKeys();
  const pub = writeTempFile('rsa.pem', keys.rsa.publicKey);
  const keyFile = writeTempFile('keys', 'file-key-0123456789\n');
  t.after(() => [pub, keyFile].forEach(removeTempFile));
  const on = await startFor(t, {
    auth: {
      jwt: { hmac_secret: 'short-secret', public_key_file: pub },
      rooms: [{ match: 'public.*', subscribe: 'public', publish: 'token' }],
      api_keys: ['config-key-0123456789'],
      api_keys_file: keyFile,
    },
  });
  await waitFor(() => on.stderr().includes('auth is on'), { message: 'the auth-on line' });
  const text = on.stderr();
  assert.ok(!text.includes('auth is off'), text);
  assert.match(text, /auth is on: tokens \(HS256 RS256 ES256\), 1 room rules .*, 2 API keys, admin endpoints need an API key/);
  assert.match(text, /auth\.jwt\.hmac_secret has 12 bytes/);
  assert.ok(!text.includes('short-secret') && !text.includes('config-key-0123456789') &&
    !text.includes('file-key-0123456789'), `a secret is in the log:\n${tail(text)}`);
});
