// scripts/mint-token.mjs: the code of scripts/mint-token (run that).
// Mints a JSON Web Token for crier (README "Access control"); prints it.
//
//   scripts/mint-token --secret S --sub alice --exp 3600 --subscribe 'chat.*' --publish 'chat.*'
//   scripts/mint-token --key private.pem --alg RS256 --sub alice
//
// --secret S | --secret-file F   HMAC secret (auth.jwt.hmac_secret): HS256 by default
// --key private.pem              RSA or EC private key (PEM): RS256 or ES256 by default
// --alg ALG                      HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384 ES512
// --sub USER                     the user id
// --exp SECONDS                  expires this many seconds from now (default 3600; 0: no exp)
// --subscribe PATTERN            a room (or prefix*) the token may subscribe to; repeatable,
//                                or comma-separated
// --publish PATTERN              a room (or prefix*) the token may publish to; likewise
// --iss ISSUER, --aud AUDIENCE   the iss and aud claims (auth.jwt.issuer, auth.jwt.audience)
// --claims JSON                  more claims, merged last
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { mintToken, nowS } = await import(path.join(here, '..', 'tests', 'lib', 'token.js'));

function usage(code) {
  const text = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const lines = text
    .split('\n')
    .filter((l) => l.startsWith('//'))
    .slice(1)
    .map((l) => l.slice(3));
  (code ? process.stderr : process.stdout).write(lines.join('\n') + '\n');
  process.exit(code);
}

const opts = { subscribe: [], publish: [], exp: 3600 };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '-h' || a === '--help') usage(0);
  const value = args[++i];
  if (value === undefined) {
    process.stderr.write(`mint-token: ${a} needs a value\n`);
    usage(2);
  }
  switch (a) {
    case '--secret': opts.secret = value; break;
    case '--secret-file': opts.secret = fs.readFileSync(value, 'utf8').replace(/\r?\n$/, ''); break;
    case '--key': opts.key = fs.readFileSync(value, 'utf8'); break;
    case '--alg': opts.alg = value; break;
    case '--sub': opts.sub = value; break;
    case '--exp': opts.exp = Number(value); break;
    case '--subscribe': opts.subscribe.push(...value.split(',').filter(Boolean)); break;
    case '--publish': opts.publish.push(...value.split(',').filter(Boolean)); break;
    case '--iss': opts.iss = value; break;
    case '--aud': opts.aud = value; break;
    case '--claims': opts.claims = JSON.parse(value); break;
    default:
      process.stderr.write(`mint-token: unknown option ${a}\n`);
      usage(2);
  }
}

if ((opts.secret === undefined) === (opts.key === undefined)) {
  process.stderr.write('mint-token: give one of --secret (or --secret-file) and --key\n');
  usage(2);
}
if (!Number.isInteger(opts.exp) || opts.exp < 0) {
  process.stderr.write('mint-token: --exp takes a whole number of seconds (0: no exp)\n');
  process.exit(2);
}
let privateKey;
let alg = opts.alg;
if (opts.key !== undefined) {
  privateKey = crypto.createPrivateKey(opts.key);
  alg ??= privateKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256';
} else {
  alg ??= 'HS256';
}

const now = nowS();
const claims = { iat: now };
if (opts.sub !== undefined) claims.sub = opts.sub;
if (opts.exp > 0) claims.exp = now + opts.exp;
if (opts.iss !== undefined) claims.iss = opts.iss;
if (opts.aud !== undefined) claims.aud = opts.aud;
if (opts.subscribe.length || opts.publish.length) {
  claims.rooms = {};
  if (opts.subscribe.length) claims.rooms.subscribe = opts.subscribe;
  if (opts.publish.length) claims.rooms.publish = opts.publish;
}
Object.assign(claims, opts.claims);

process.stdout.write(mintToken({ alg, secret: opts.secret, privateKey, claims }) + '\n');
