// Minting JSON Web Tokens for the tests (and scripts/mint-token), with
// node's crypto only.
//
//   mintToken({ alg: 'HS256', secret, claims })             HS256/384/512
//   mintToken({ alg: 'RS256', privateKey, claims })         RS256/384/512 (PEM or KeyObject)
//   mintToken({ alg: 'ES256', privateKey, claims })         ES256/384/512, the JWS signature
//                                                           encoding (r || s, ieee-p1363)
//   mintToken({ alg: 'none', claims })                      unsigned: "header.claims."
//   header: extra or replaced header members, e.g. { typ: undefined } or { kid: 'k1' }
//   signature: a string to use instead of the real signature
//
//   makeKeys() -> { rsa: { publicKey, privateKey }, ec: { publicKey, privateKey } }
//   (PEM: SPKI public keys, PKCS#8 private keys; RSA 2048 bits, EC on P-256)
//   nowS() -> the current time in seconds, for exp/nbf/iat

import crypto from 'node:crypto';

export const b64url = (buf) => Buffer.from(buf).toString('base64url');

export const nowS = () => Math.floor(Date.now() / 1000);

const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

function sign(alg, input, { secret, privateKey }) {
  const family = alg.slice(0, 2);
  const hash = HASH[alg.slice(2)];
  if (alg === 'none') return '';
  if (!hash) throw new Error(`mintToken: unknown alg ${alg}`);
  if (family === 'HS') {
    if (secret === undefined) throw new Error(`mintToken: ${alg} needs a secret`);
    return b64url(crypto.createHmac(hash, secret).update(input).digest());
  }
  if (!privateKey) throw new Error(`mintToken: ${alg} needs a privateKey`);
  if (family === 'RS') return b64url(crypto.sign(hash, Buffer.from(input), privateKey));
  if (family === 'ES') {
    return b64url(
      crypto.sign(hash, Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }),
    );
  }
  throw new Error(`mintToken: unknown alg ${alg}`);
}

// A compact JWT: base64url(header).base64url(claims).signature.
export function mintToken({
  alg = 'HS256',
  secret,
  privateKey,
  claims = {},
  header = {},
  signature,
} = {}) {
  const h = { alg, typ: 'JWT', ...header };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  const input = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(claims))}`;
  const sig = signature !== undefined ? signature : sign(alg, input, { secret, privateKey });
  return `${input}.${sig}`;
}

let cachedKeys;

// RSA (2048) and EC (P-256) key pairs as PEM text; made once per process.
export function makeKeys() {
  if (cachedKeys) return cachedKeys;
  const enc = {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  };
  cachedKeys = {
    rsa: crypto.generateKeyPairSync('rsa', { modulusLength: 2048, ...enc }),
    ec: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256', ...enc }),
  };
  return cachedKeys;
}
